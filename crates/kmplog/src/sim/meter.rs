//! One simulated meter: its identity (address, model, serial number, type) and
//! the values of its registers at a given moment.
//!
//! Everything here is a pure function of the [`Moment`] passed in: no clock is
//! read, so the same moment gives the same reply on every line, and the
//! counters keep growing however many connections come and go. The values
//! swing smoothly around realistic means, and the counters are the exact
//! integrals of the rates shown (energy of power, volume of flow), computed in
//! closed form, so that they never decrease and agree with the gauges.
//!
//! Each meter was installed [`HISTORY`] before the simulator started, so its
//! loggers ([`super::loggers`]) are full: any past moment's registers are the
//! same closed forms at an earlier time.

use std::f64::consts::TAU;
use std::time::Duration;

use kmp::catalogue::Model;
use kmp::catalogue::info::INFO_REGISTER;
use kmp::message::SoftwareRevision;
use kmp::{RegisterValue, Request, Response, Unit, Value};

/// Heat capacity of water in kWh per m³ and K: power in kW is flow in m³/h
/// times the temperature difference times this.
pub const WATER_KWH_PER_M3_K: f64 = 1.163;

/// How long before the simulator started each meter was installed: 21 years,
/// more than the deepest logger (20 yearly rows) reaches back.
pub const HISTORY: Duration = Duration::from_secs(662_709_600);

/// A moment as the simulator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Time since the simulator started: drives the values.
    pub elapsed: Duration,
    /// Seconds since 1970-01-01 UTC: what the clock and date registers show.
    pub unix_seconds: i64,
}

impl Moment {
    /// The moment `elapsed` after a start at `start_unix_seconds`.
    pub fn after(start_unix_seconds: i64, elapsed: Duration) -> Moment {
        let seconds = i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX);
        Moment {
            elapsed,
            unix_seconds: start_unix_seconds.saturating_add(seconds),
        }
    }
}

/// What a meter sends back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response frame.
    Response(Response),
    /// A single ACK byte (after SetClock).
    Ack,
}

/// One simulated meter.
#[derive(Debug, Clone)]
pub struct Meter {
    address: u8,
    model: Model,
    kind: Kind,
    /// What a heat meter's info-code register (99) holds: 0 unless set.
    info_code: u32,
    /// Whether a heat meter answers the logger command 0xB8.
    loggers: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Heat(Heat),
    Electricity(Electricity),
}

impl Meter {
    /// The meter of `model` at `address`. Its serial number and the phases of
    /// its values follow from the address, so a meter is the same every run.
    pub fn new(address: u8, model: Model) -> Meter {
        let mut rng = fastrand::Rng::with_seed(u64::from(address));
        let kind = if model.is_heat_meter() {
            Kind::Heat(Heat::new(address, &mut rng))
        } else {
            Kind::Electricity(Electricity::new(address, &mut rng))
        };
        Meter {
            address,
            model,
            kind,
            info_code: 0,
            loggers: true,
        }
    }

    /// The same meter without loggers: it stays silent to 0xB8, as a meter
    /// of an older generation does.
    pub fn without_loggers(self) -> Meter {
        Meter {
            loggers: false,
            ..self
        }
    }

    /// Whether the meter keeps loggers and answers 0xB8: heat meters do,
    /// unless made without.
    pub fn has_loggers(&self) -> bool {
        self.loggers && self.model.is_heat_meter()
    }

    /// The same meter reporting `code` in its info-code register, for tests
    /// and demos of the flags; a fixed code, as the public sources give no
    /// realistic timeline (a MULTICAL clears "supply voltage interrupted"
    /// from the current code when the power returns, and logs it instead).
    pub fn with_info_code(self, code: u32) -> Meter {
        Meter {
            info_code: code,
            ..self
        }
    }

    /// The address the meter answers.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// The meter's model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The serial number: distinct per address, the same every run.
    pub fn serial(&self) -> u32 {
        70_000_000 + u32::from(self.address) * 3_571
    }

    /// The meter's answer to `request` at `at`, or `None` where a meter stays
    /// silent (a command it does not serve).
    pub fn answer(&self, request: &Request, at: Moment) -> Option<Answer> {
        match request {
            Request::GetType => Some(Answer::Response(Response::Type {
                meter_type: type_code(self.model),
                revision: SoftwareRevision {
                    letter: 3,
                    number: 1,
                },
            })),
            Request::GetSerialNo => Some(Answer::Response(Response::SerialNo {
                serial: self.serial(),
            })),
            Request::GetRegister(registers) => Some(Answer::Response(Response::Registers(
                registers
                    .iter()
                    .filter_map(|&id| self.read(id, at))
                    .collect(),
            ))),
            // SetClock's layout is not public: the meter is taken to accept
            // any data, as the ACK is all a master can check.
            Request::Logger(request) if self.has_loggers() => {
                super::loggers::answer(self, request, at)
                    .map(|response| Answer::Response(Response::Logger(response)))
            }
            Request::Logger(_) => None,
            Request::Raw { cid, .. } if *cid == kmp::Command::SetClock.cid() => Some(Answer::Ack),
            Request::Raw { .. } => None,
        }
    }

    /// Register `id` at `at`; `None` when the model's catalogue lacks it, as
    /// a meter leaves out registers it does not have.
    pub fn read(&self, id: u16, at: Moment) -> Option<RegisterValue> {
        self.read_at(id, at.elapsed.as_secs_f64(), at.unix_seconds)
    }

    /// Register `id` `since_start` seconds after the simulator started (less
    /// than 0 before it), when the clock showed `unix_seconds`.
    pub(super) fn read_at(
        &self,
        id: u16,
        since_start: f64,
        unix_seconds: i64,
    ) -> Option<RegisterValue> {
        self.model.register(id)?;
        self.value_at(id, since_start, unix_seconds)
    }

    /// Register `id` as [`Meter::read_at`] has it, whether or not the model's
    /// catalogue lists it: a logger keeps registers GetRegister may not name.
    pub(super) fn value_at(
        &self,
        id: u16,
        since_start: f64,
        unix_seconds: i64,
    ) -> Option<RegisterValue> {
        // The value model's time runs from the installation.
        let t = since_start + HISTORY.as_secs_f64();
        let reading = match &self.kind {
            Kind::Heat(_) if id == INFO_REGISTER => Some(Reading::number(self.info_code.into())),
            Kind::Heat(heat) => heat.read(id, self.model, t, unix_seconds),
            Kind::Electricity(electricity) => electricity.read(id, t),
        }
        .or_else(|| self.read_common(id, unix_seconds))
        // A catalogued register the simulator has no model for: a plain zero
        // is still an answer, and better than leaving it out.
        .unwrap_or(Reading::number(0));
        let magnitude = reading.mantissa.unsigned_abs();
        let width = reading.width.max(byte_len(magnitude));
        let value =
            Value::from_parts(reading.mantissa < 0, magnitude, reading.exponent, width).ok()?;
        Some(RegisterValue {
            register: id,
            unit: reading.unit,
            value,
        })
    }

    /// Registers every model has in the same form.
    fn read_common(&self, id: u16, unix_seconds: i64) -> Option<Reading> {
        let (date, time) = civil(unix_seconds);
        Some(match id {
            1001 => Reading::number(self.serial().into()),
            1002 => Reading::exact(HHMMSS, time, 0),
            1003 => Reading::exact(YYMMDD, date % 1_000_000, 0),
            348 => date_time_7(date, time),
            404 => Reading::number(type_code(self.model).into()),
            _ => return None,
        })
    }
}

/// GetType codes. No public source pairs type codes with models (see the
/// catalogue's `METER_TYPES`), so these are the simulator's own placeholders:
/// distinct per model, and not claimed to be Kamstrup's.
fn type_code(model: Model) -> u16 {
    match model {
        Model::Multical601 => 0x0601,
        Model::Multical602 => 0x0602,
        Model::Multical603 => 0x0603,
        Model::Multical801 => 0x0801,
        Model::Multical302 => 0x0302,
        Model::Multical403 => 0x0403,
        Model::Kamstrup382 => 0x0382,
    }
}

const NUMBER: Unit = Unit(0x00);
const KWH: Unit = Unit(0x02);
const MWH: Unit = Unit(0x03);
const GJ: Unit = Unit(0x08);
const KW: Unit = Unit(0x16);
const VOLT: Unit = Unit(0x21);
const AMPERE: Unit = Unit(0x22);
const CELSIUS: Unit = Unit(0x25);
const KELVIN: Unit = Unit(0x26);
const CUBIC_METRE: Unit = Unit(0x28);
const LITRE_PER_HOUR: Unit = Unit(0x29);
const CUBIC_METRE_PER_HOUR: Unit = Unit(0x2A);
const CUBIC_METRE_CELSIUS: Unit = Unit(0x2B);
const TON: Unit = Unit(0x2C);
const HOUR: Unit = Unit(0x2E);
const HHMMSS: Unit = Unit(0x2F);
const YYMMDD: Unit = Unit(0x30);
const BAR: Unit = Unit(0x34);
const BIT_FIELD: Unit = Unit(0x3B);

/// Register 348 as a MULTICAL 603 keeps it in its loggers: unit 0x4F, seven
/// bytes (offset byte, YY, MM, DD, hh, mm, ss), from `yyyymmdd` and `hhmmss`.
fn date_time_7(date: i128, time: i128) -> Reading {
    let field = |value: i128| u8::try_from(value).unwrap_or(0);
    let stamp = kmp::DateTime7 {
        offset: 0,
        year: u16::try_from(date / 10_000).unwrap_or(2000),
        month: field(date / 100 % 100),
        day: field(date % 100),
        hour: field(time / 10_000),
        minute: field(time / 100 % 100),
        second: field(time % 100),
    };
    Reading {
        width: 7,
        ..Reading::exact(
            kmp::unit::DATE_TIME_7,
            i128::try_from(stamp.to_value().mantissa()).unwrap_or(0),
            0,
        )
    }
}

/// Bytes needed to hold `mantissa` (at least 1).
fn byte_len(mantissa: u128) -> usize {
    (128 - mantissa.leading_zeros() as usize).div_ceil(8).max(1)
}

/// A value as it goes on the wire: unit, mantissa, exponent and the least
/// width on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    unit: Unit,
    mantissa: i128,
    exponent: i8,
    width: usize,
}

impl Reading {
    /// In the 4 bytes meters commonly use, wider where the mantissa needs it.
    fn exact(unit: Unit, mantissa: i128, exponent: i8) -> Reading {
        Reading {
            unit,
            mantissa,
            exponent,
            width: 4,
        }
    }

    fn number(value: i128) -> Reading {
        Reading::exact(NUMBER, value, 0)
    }

    /// A gauge: `value` rounded to the exponent's precision.
    fn gauge(unit: Unit, value: f64, exponent: i8) -> Reading {
        Reading::exact(unit, (value * scale(exponent)).round() as i128, exponent)
    }

    /// A counter: `value` cut down to the exponent's precision, as a meter's
    /// display does, so that a growing value never reads lower later.
    fn counter(unit: Unit, value: f64, exponent: i8) -> Reading {
        Reading::exact(unit, (value * scale(exponent)).floor() as i128, exponent)
    }
}

fn scale(exponent: i8) -> f64 {
    10f64.powi(-i32::from(exponent))
}

/// `mean + amplitude · sin(ω t + phase)`: a quantity swinging around its mean.
#[derive(Debug, Clone, Copy)]
struct Wave {
    mean: f64,
    amplitude: f64,
    omega: f64,
    phase: f64,
}

impl Wave {
    fn new(mean: f64, amplitude: f64, period_seconds: f64, rng: &mut fastrand::Rng) -> Wave {
        Wave {
            mean,
            amplitude,
            omega: TAU / period_seconds,
            phase: rng.f64() * TAU,
        }
    }

    fn at(self, t: f64) -> f64 {
        self.mean + self.amplitude * (self.omega * t + self.phase).sin()
    }

    /// `∫₀ᵗ self`.
    fn integral(self, t: f64) -> f64 {
        self.mean * t + self.swing_integral(t)
    }

    /// `∫₀ᵗ (self − mean)`.
    fn swing_integral(self, t: f64) -> f64 {
        self.amplitude / self.omega * (self.phase.cos() - (self.omega * t + self.phase).cos())
    }

    /// `∫₀ᵗ self · other`, using sin x sin y = (cos(x − y) − cos(x + y)) / 2.
    fn product_integral(self, other: Wave, t: f64) -> f64 {
        let difference = cos_integral(self.omega - other.omega, self.phase - other.phase, t);
        let sum = cos_integral(self.omega + other.omega, self.phase + other.phase, t);
        self.mean * other.mean * t
            + self.mean * other.swing_integral(t)
            + other.mean * self.swing_integral(t)
            + self.amplitude * other.amplitude * (difference - sum) / 2.0
    }
}

/// `∫₀ᵗ cos(ω s + phase) ds`.
fn cos_integral(omega: f64, phase: f64, t: f64) -> f64 {
    if omega.abs() < 1e-12 {
        t * phase.cos()
    } else {
        ((omega * t + phase).sin() - phase.sin()) / omega
    }
}

/// A heat meter on a building's district-heating connection.
#[derive(Debug, Clone)]
struct Heat {
    /// Flow in the flow pipe, l/h.
    flow: Wave,
    /// Return temperature T2, °C.
    return_temp: Wave,
    /// T1 − T2, K.
    difference: Wave,
    /// Heat energy E1 when the meter was installed, kWh.
    base_kwh: f64,
    /// Volume V1 when the meter was installed, m³.
    base_m3: f64,
    /// Operating hours when the meter was installed.
    base_hours: f64,
}

/// Cooling energy accrues slowly on a heat meter: now and then the return
/// is warmer than the flow.
const COOLING_KW: f64 = 0.02;

impl Heat {
    fn new(address: u8, rng: &mut fastrand::Rng) -> Heat {
        let address = f64::from(address);
        let mean_flow = 400.0 + 100.0 * (address % 8.0);
        Heat {
            flow: Wave::new(mean_flow, 0.3 * mean_flow, 600.0, rng),
            return_temp: Wave::new(38.0, 4.0, 3_600.0, rng),
            difference: Wave::new(31.0, 4.0, 1_500.0, rng),
            base_kwh: 20_000.0 + 997.0 * address,
            base_m3: 600.0 + 37.0 * address,
            base_hours: 20_000.0 + 113.0 * address,
        }
    }

    /// `∫₀ᵗ flow · T`, in m³·°C, for T = T2 (`with_difference` false) or T1.
    fn volume_temperature(&self, t: f64, with_difference: bool) -> f64 {
        let mut integral = self.flow.product_integral(self.return_temp, t);
        if with_difference {
            integral += self.flow.product_integral(self.difference, t);
        }
        integral / 1_000.0 / 3_600.0
    }

    fn energy_kwh(&self, t: f64) -> f64 {
        let m3_kelvin = self.flow.product_integral(self.difference, t) / 1_000.0 / 3_600.0;
        self.base_kwh + WATER_KWH_PER_M3_K * m3_kelvin
    }

    fn volume_m3(&self, t: f64) -> f64 {
        self.base_m3 + self.flow.integral(t) / 1_000.0 / 3_600.0
    }

    fn power_kw(flow_lh: f64, difference: f64) -> f64 {
        WATER_KWH_PER_M3_K * flow_lh / 1_000.0 * difference
    }

    /// T1 and T2 in units of `10^exponent` °C, rounded each, so that the
    /// difference register is exactly T1 − T2 as read.
    fn temperatures(&self, t: f64, exponent: i8) -> (i128, i128) {
        let t2 = self.return_temp.at(t);
        let t1 = t2 + self.difference.at(t);
        let round = |celsius: f64| (celsius * scale(exponent)).round() as i128;
        (round(t1), round(t2))
    }

    fn read(&self, id: u16, model: Model, t: f64, unix_seconds: i64) -> Option<Reading> {
        let flow = self.flow.at(t);
        let mean_t2 = self.return_temp.mean;
        let mean_t1 = mean_t2 + self.difference.mean;
        let (max_flow, min_flow) = (
            self.flow.mean + self.flow.amplitude,
            self.flow.mean - self.flow.amplitude,
        );
        let energy = |kwh: f64| energy_reading(model, kwh);
        let temperature = |exponent: i8, pick: fn((i128, i128)) -> i128, unit: Unit| {
            Reading::exact(unit, pick(self.temperatures(t, exponent)), exponent)
        };
        let (date, _) = civil(unix_seconds);
        let yymmdd = date % 1_000_000;
        Some(match id {
            60 | 94 => energy(self.energy_kwh(t)),
            // E4 and E5: energy carried in by the flow and out by the return,
            // from a common base, so that E4 − E5 = E1 − its base.
            61 => {
                energy(2.2 * self.base_kwh + WATER_KWH_PER_M3_K * self.volume_temperature(t, true))
            }
            62 => {
                energy(1.2 * self.base_kwh + WATER_KWH_PER_M3_K * self.volume_temperature(t, false))
            }
            63 => energy(self.base_kwh / 500.0 + COOLING_KW * t / 3_600.0),
            // Tap-water, tariff and other energy registers unused here.
            64 | 65 | 95 | 96 | 362 | 473 | 474 => energy(0.0),
            266 => Reading::counter(KWH, self.energy_kwh(t), -2),
            267 => Reading::counter(KWH, self.base_kwh / 500.0 + COOLING_KW * t / 3_600.0, -2),
            68 | 69 => Reading::counter(CUBIC_METRE, self.volume_m3(t), -2),
            239 => Reading::counter(CUBIC_METRE, self.volume_m3(t), -3),
            // Mass of the water at its mean density.
            72 | 73 => Reading::counter(TON, self.volume_m3(t) * 0.98, -2),
            74 | 75 => Reading::gauge(LITRE_PER_HOUR, flow, 0),
            80 => Reading::gauge(KW, Self::power_kw(flow, self.difference.at(t)), -1),
            86 => temperature(-2, |(t1, _)| t1, CELSIUS),
            87 => temperature(-2, |(_, t2)| t2, CELSIUS),
            89 => temperature(-2, |(t1, t2)| t1 - t2, KELVIN),
            398 => temperature(-1, |(t1, _)| t1, CELSIUS),
            399 => temperature(-1, |(_, t2)| t2, CELSIUS),
            400 => temperature(-1, |(t1, t2)| t1 - t2, KELVIN),
            // Cold tap water and outdoor temperature.
            88 => Reading::gauge(CELSIUS, 10.0 + (t / 7_200.0).sin(), -2),
            122 => Reading::gauge(CELSIUS, 5.0 + 3.0 * (t / 5_400.0).sin(), -2),
            91 => Reading::gauge(BAR, 6.0, -1),
            92 => Reading::gauge(BAR, 3.5, -1),
            97 => Reading::counter(
                CUBIC_METRE_CELSIUS,
                self.base_m3 * mean_t1 + self.volume_temperature(t, true),
                0,
            ),
            110 => Reading::counter(
                CUBIC_METRE_CELSIUS,
                self.base_m3 * mean_t2 + self.volume_temperature(t, false),
                0,
            ),
            // Pulse input A counts a cold-water meter at a steady 50 l/h.
            84 => Reading::counter(CUBIC_METRE, 123.0 + 0.05 * t / 3_600.0, -3),
            85 => Reading::counter(CUBIC_METRE, 0.0, -3),
            // No info events (the info code itself is the meter's, above).
            113 => Reading::number(0),
            369 => Reading::exact(BIT_FIELD, 0, 0),
            1004 => Reading::counter(HOUR, self.base_hours + t / 3_600.0, 0),
            175 => Reading::counter(HOUR, 0.0, 0),
            124 | 139 => Reading::gauge(LITRE_PER_HOUR, max_flow, 0),
            126 | 141 => Reading::gauge(LITRE_PER_HOUR, min_flow, 0),
            128 | 143 => Reading::gauge(
                KW,
                Self::power_kw(max_flow, self.difference.mean + self.difference.amplitude),
                -1,
            ),
            130 | 145 => Reading::gauge(
                KW,
                Self::power_kw(min_flow, self.difference.mean - self.difference.amplitude),
                -1,
            ),
            // The maxima fell today; the minima on the first day of the year
            // or month.
            123 | 127 | 138 | 142 => Reading::exact(YYMMDD, yymmdd, 0),
            125 | 129 => Reading::exact(YYMMDD, yymmdd / 10_000 * 10_000 + 101, 0),
            140 | 144 => Reading::exact(YYMMDD, yymmdd / 100 * 100 + 1, 0),
            146 | 149 | 229 | 379 | 381 => Reading::gauge(CELSIUS, mean_t1, -2),
            147 | 150 | 230 | 380 | 382 => Reading::gauge(CELSIUS, mean_t2, -2),
            259 | 260 => Reading::gauge(CUBIC_METRE_PER_HOUR, 2.5, -1),
            366 => Reading::gauge(CELSIUS, 50.0, 0),
            _ => return None,
        })
    }
}

/// E1 and its kin in the unit the model shows them in: GJ on the MULTICAL
/// 60x, MWh on the 801, kWh on the 302 and 403 (each is a factory setting on
/// real meters; these are common ones).
fn energy_reading(model: Model, kwh: f64) -> Reading {
    match model {
        Model::Multical801 => Reading::counter(MWH, kwh / 1_000.0, -3),
        Model::Multical302 | Model::Multical403 => Reading::counter(KWH, kwh, 0),
        _ => Reading::counter(GJ, kwh * 0.0036, -3),
    }
}

/// A three-phase household electricity meter.
#[derive(Debug, Clone)]
struct Electricity {
    /// Active power per phase, kW.
    power: [Wave; 3],
    /// Voltage per phase, V.
    voltage: [Wave; 3],
    /// Imported energy when the meter was installed, kWh.
    base_import_kwh: f64,
    /// Exported energy, kWh: the house has no generation, so it stays put.
    export_kwh: f64,
}

const POWER_FACTOR: f64 = 0.95;

impl Electricity {
    fn new(address: u8, rng: &mut fastrand::Rng) -> Electricity {
        let mean = 0.5 + 0.1 * f64::from(address % 5);
        let power = [300.0, 420.0, 540.0].map(|period| Wave::new(mean, 0.6 * mean, period, rng));
        let voltage = [60.0, 75.0, 90.0].map(|period| Wave::new(230.0, 2.0, period, rng));
        Electricity {
            power,
            voltage,
            base_import_kwh: 10_000.0 + 211.0 * f64::from(address),
            export_kwh: 12.3,
        }
    }

    fn import_kwh(&self, t: f64) -> f64 {
        self.base_import_kwh + self.power.iter().map(|p| p.integral(t)).sum::<f64>() / 3_600.0
    }

    /// Per phase, power in W and current in A × 100, rounded so that the
    /// total power register is exactly the sum of the phases as read.
    fn phase(&self, index: usize, t: f64) -> Option<(i128, i128)> {
        let power = self.power.get(index)?.at(t);
        let voltage = self.voltage.get(index)?.at(t);
        let current = power * 1_000.0 / (voltage * POWER_FACTOR);
        Some((
            (power * 1_000.0).round() as i128,
            (current * 100.0).round() as i128,
        ))
    }

    fn read(&self, id: u16, t: f64) -> Option<Reading> {
        Some(match id {
            1 => Reading::counter(KWH, self.import_kwh(t), -1),
            13 => Reading::counter(KWH, self.import_kwh(t), -3),
            2 => Reading::counter(KWH, self.export_kwh, -1),
            14 => Reading::counter(KWH, self.export_kwh, -3),
            1023 => {
                let total = (0..3)
                    .filter_map(|index| self.phase(index, t))
                    .map(|(w, _)| w);
                Reading::exact(KW, total.sum(), -3)
            }
            1080..=1082 => Reading::exact(KW, self.phase(usize::from(id - 1080), t)?.0, -3),
            1076..=1078 => Reading::exact(AMPERE, self.phase(usize::from(id - 1076), t)?.1, -2),
            1054..=1056 => {
                Reading::gauge(VOLT, self.voltage.get(usize::from(id - 1054))?.at(t), -1)
            }
            1024 | 1344..=1346 => Reading::exact(KW, 0, -3),
            39 => {
                let peak: f64 = self.power.iter().map(|p| p.mean + p.amplitude).sum();
                Reading::gauge(KW, peak, -3)
            }
            _ => return None,
        })
    }
}

/// The UTC calendar date as `yyyymmdd` and time of day as `hhmmss` of a Unix
/// time, as the meter's date and time registers hold them. A time outside
/// jiff's range (years -9999 to 9999) reads as the epoch.
pub(super) fn civil(unix_seconds: i64) -> (i128, i128) {
    let utc = jiff::Timestamp::from_second(unix_seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .datetime();
    let date =
        i128::from(utc.year()) * 10_000 + i128::from(utc.month()) * 100 + i128::from(utc.day());
    let time =
        i128::from(utc.hour()) * 10_000 + i128::from(utc.minute()) * 100 + i128::from(utc.second());
    (date, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configuration_names_the_model_of_each_simulated_type() {
        let demo = include_str!("../../../../examples/demo.toml");
        let (config, _) = crate::config::parse(demo, "demo.toml").expect("the demo is valid");
        for model in Model::ALL {
            assert_eq!(
                config
                    .models
                    .model_of(type_code(model))
                    .map(|(found, _)| found),
                Some(model),
                "{model}"
            );
        }
    }

    fn at(seconds: u64) -> Moment {
        // 2025-11-24 12:34:56 UTC.
        Moment::after(1_763_987_696, Duration::from_secs(seconds))
    }

    fn read(meter: &Meter, id: u16, moment: Moment) -> RegisterValue {
        meter
            .read(id, moment)
            .unwrap_or_else(|| panic!("register {id}"))
    }

    fn as_f64(value: RegisterValue) -> f64 {
        value.value.to_f64()
    }

    #[test]
    fn civil_dates() {
        for (unix, date, time) in [
            (0, 19_700_101, 0),
            (951_782_400, 20_000_229, 0),
            (1_763_987_696, 20_251_124, 123_456),
            (-1, 19_691_231, 235_959),
        ] {
            assert_eq!(civil(unix), (date, time), "{unix}");
        }
    }

    #[test]
    fn wave_integrals_match_numeric_integration() {
        let mut rng = fastrand::Rng::with_seed(1);
        let a = Wave::new(500.0, 150.0, 600.0, &mut rng);
        let b = Wave::new(31.0, 4.0, 1_500.0, &mut rng);
        let t = 2_345.0;
        let steps = 200_000;
        let dt = t / f64::from(steps);
        let (mut single, mut product, mut square) = (0.0, 0.0, 0.0);
        for step in 0..steps {
            let s = (f64::from(step) + 0.5) * dt;
            single += a.at(s) * dt;
            product += a.at(s) * b.at(s) * dt;
            square += a.at(s) * a.at(s) * dt;
        }
        for (closed, numeric) in [
            (a.integral(t), single),
            (a.product_integral(b, t), product),
            (a.product_integral(a, t), square),
        ] {
            assert!(
                (closed - numeric).abs() < 1e-6 * numeric,
                "{closed} vs {numeric}"
            );
        }
    }

    #[test]
    fn info_code_is_zero_unless_set() {
        let code = |meter: &Meter| meter.read(INFO_REGISTER, at(30)).map(|v| v.value);
        let meter = Meter::new(63, Model::Multical603);
        assert_eq!(code(&meter), Value::new(0, 0).ok());
        let meter = meter.with_info_code(2 + 4_096);
        assert_eq!(code(&meter), Value::new(4_098, 0).ok());
        assert_eq!(
            meter.read(113, at(30)).map(|v| v.value),
            Value::new(0, 0).ok()
        );
        // The electricity meter has no info-code register to report it in.
        let meter = Meter::new(5, Model::Kamstrup382).with_info_code(2);
        assert_eq!(code(&meter), None);
    }

    #[test]
    fn registers_outside_the_catalogue_are_left_out() {
        for (model, id, present) in [
            (Model::Multical603, 60, true),
            (Model::Multical603, 1, false),
            (Model::Multical603, 9_999, false),
            (Model::Kamstrup382, 1, true),
            (Model::Kamstrup382, 60, false),
            (Model::Multical403, 1004, true),
        ] {
            let meter = Meter::new(63, model);
            assert_eq!(meter.read(id, at(0)).is_some(), present, "{model} {id}");
        }
        let meter = Meter::new(63, Model::Multical603);
        let request = Request::get_register(&[60, 1, 68]).unwrap();
        let Some(Answer::Response(Response::Registers(values))) = meter.answer(&request, at(0))
        else {
            panic!("no register response");
        };
        let ids: Vec<u16> = values.iter().map(|value| value.register).collect();
        assert_eq!(ids, [60, 68]);
    }

    #[test]
    fn every_catalogued_register_is_answered_and_survives_the_wire() {
        for model in Model::ALL {
            let meter = Meter::new(5, model);
            let ids: Vec<u16> = model.registers().iter().map(|info| info.id).collect();
            for chunk in ids.chunks(kmp::message::MAX_REGISTERS) {
                let request = Request::get_register(chunk).unwrap();
                let Some(Answer::Response(response)) = meter.answer(&request, at(10)) else {
                    panic!("{model}: no answer to {chunk:?}");
                };
                let frame = kmp::Frame::decode(&response.to_frame(5).encode()).unwrap();
                let Ok(Response::Registers(values)) = Response::decode(&frame) else {
                    panic!("{model}: {chunk:?} does not decode");
                };
                let got: Vec<u16> = values.iter().map(|value| value.register).collect();
                assert_eq!(got, chunk, "{model}");
            }
        }
    }

    #[test]
    fn heat_values_are_realistic_and_consistent() {
        for address in [1, 17, 63, 255] {
            let meter = Meter::new(address, Model::Multical603);
            for seconds in (0..7_200).step_by(97) {
                let moment = at(seconds);
                let t1 = read(&meter, 86, moment);
                let t2 = read(&meter, 87, moment);
                let dt = read(&meter, 89, moment);
                assert_eq!((t1.unit, t2.unit, dt.unit), (CELSIUS, CELSIUS, KELVIN));
                assert_eq!(
                    dt.value.mantissa() as i128,
                    t1.value.mantissa() as i128 - t2.value.mantissa() as i128
                );
                let (t1, t2) = (as_f64(t1), as_f64(t2));
                assert!((58.0..=82.0).contains(&t1), "T1 {t1}");
                assert!((30.0..=45.0).contains(&t2), "T2 {t2}");
                let flow = read(&meter, 74, moment);
                let power = read(&meter, 80, moment);
                assert_eq!((flow.unit, power.unit), (LITRE_PER_HOUR, KW));
                let expected = WATER_KWH_PER_M3_K * as_f64(flow) / 1_000.0 * as_f64(dt);
                assert!(
                    (as_f64(power) - expected).abs() <= 0.1,
                    "power {} vs flow × ΔT × 1.163 = {expected}",
                    power.value
                );
            }
        }
    }

    #[test]
    fn counters_never_decrease() {
        let counters: &[(Model, &[u16])] = &[
            (
                Model::Multical603,
                &[60, 61, 62, 63, 68, 97, 110, 266, 1004],
            ),
            (Model::Multical403, &[60, 68, 72, 84, 239, 1004]),
            (Model::Kamstrup382, &[1, 2, 13, 14]),
        ];
        for &(model, ids) in counters {
            let meter = Meter::new(9, model);
            // The catalogue decides which of them the model has.
            let ids: Vec<u16> = ids
                .iter()
                .copied()
                .filter(|&id| model.register(id).is_some())
                .collect();
            assert!(ids.len() >= 2, "{model}: {ids:?}");
            for id in ids {
                let mut last = read(&meter, id, at(0)).value;
                for millis in (0..3_000_000).step_by(1_237) {
                    let moment = Moment::after(0, Duration::from_millis(millis));
                    let now = read(&meter, id, moment).value;
                    assert!(now.mantissa() >= last.mantissa(), "{model} {id} fell");
                    last = now;
                }
                let start = read(&meter, id, at(0)).value.mantissa();
                let later = read(&meter, id, at(86_400)).value.mantissa();
                assert!(
                    later > start || matches!(id, 2 | 14),
                    "{model} {id} stood still"
                );
            }
        }
    }

    #[test]
    fn electricity_values_are_consistent() {
        let meter = Meter::new(5, Model::Kamstrup382);
        for seconds in (0..3_600).step_by(61) {
            let moment = at(seconds);
            let phases: i128 = (1080..=1082)
                .map(|id| read(&meter, id, moment).value.mantissa() as i128)
                .sum();
            assert_eq!(read(&meter, 1023, moment).value.mantissa() as i128, phases);
            for (voltage, current) in [(1054, 1076), (1055, 1077), (1056, 1078)] {
                let voltage = read(&meter, voltage, moment);
                assert_eq!(voltage.unit, VOLT);
                assert!((225.0..=235.0).contains(&as_f64(voltage)));
                let current = read(&meter, current, moment);
                assert_eq!(current.unit, AMPERE);
                assert!((0.0..=10.0).contains(&as_f64(current)));
            }
        }
    }

    #[test]
    fn identity_and_commands() {
        let meters: Vec<Meter> = [1, 2, 63, 255]
            .map(|address| Meter::new(address, Model::Multical603))
            .into();
        let mut serials: Vec<u32> = meters.iter().map(Meter::serial).collect();
        serials.dedup();
        assert_eq!(serials.len(), 4);
        let meter = &meters[2];
        for (request, expected) in [
            (
                Request::GetSerialNo,
                Some(Answer::Response(Response::SerialNo {
                    serial: meter.serial(),
                })),
            ),
            (
                Request::Raw {
                    cid: 0x09,
                    data: vec![1, 2, 3],
                },
                Some(Answer::Ack),
            ),
            (
                Request::Raw {
                    cid: 0x11,
                    data: vec![],
                },
                None,
            ),
            (
                Request::Raw {
                    cid: 0xA1,
                    data: vec![],
                },
                None,
            ),
        ] {
            assert_eq!(meter.answer(&request, at(0)), expected, "{request:?}");
        }
        let Some(Answer::Response(Response::Type { meter_type, .. })) =
            meter.answer(&Request::GetType, at(0))
        else {
            panic!("no type");
        };
        assert_eq!(meter_type, 0x0603);
        let clock = read(meter, 1002, at(0));
        assert_eq!(clock.natural().as_deref(), Some("12:34:56"));
        let date = read(meter, 1003, at(0));
        assert_eq!(date.natural().as_deref(), Some("2025-11-24"));
    }
}
