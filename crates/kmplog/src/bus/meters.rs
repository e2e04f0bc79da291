//! What a bus shows of each of its meters: model, serial number, last answer
//! and health (answer rate, suspect totals, info-code flags, reads on the
//! day against the read budget), kept up to date from the readings the bus
//! hands on, active and listen-only alike.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kmp::catalogue::info;

use super::state::{MeterState, SharedState};
use crate::config::BusConfig;
use crate::reading::{Reading, Status};

/// The register that holds a meter's serial number in every catalogue.
const SERIAL_REGISTER: u16 = 1001;

/// The meters of `config`'s requests, each address once, in queue order,
/// with the model and the smallest read budget its requests give.
pub fn meters_of(config: &BusConfig) -> Vec<MeterState> {
    let mut meters: Vec<MeterState> = Vec::new();
    for request in &config.requests {
        for &address in &request.addresses {
            let index = match meters.iter().position(|meter| meter.address == address) {
                Some(index) => index,
                None => {
                    meters.push(MeterState {
                        address,
                        ..MeterState::default()
                    });
                    meters.len() - 1
                }
            };
            if let Some(meter) = meters.get_mut(index) {
                meter.model = meter.model.or(request.model);
                meter.reads_per_day = match (meter.reads_per_day, request.reads_per_day) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    meters
}

/// Records the readings of one attempt (or several) in the meters' states.
/// Each address's readings of one time count as one attempt.
pub fn record_readings(state: &SharedState, zone: &TimeZone, readings: &[Reading]) {
    let mut state = state.lock();
    let mut attempt_start = 0;
    while let Some(first) = readings.get(attempt_start) {
        let attempt_len = readings
            .get(attempt_start..)
            .unwrap_or_default()
            .iter()
            .take_while(|reading| reading.address == first.address && reading.time == first.time)
            .count();
        let attempt = readings
            .get(attempt_start..attempt_start + attempt_len)
            .unwrap_or_default();
        attempt_start += attempt_len;
        let meter = match state
            .meters
            .iter()
            .position(|meter| meter.address == first.address)
        {
            Some(index) => state.meters.get_mut(index),
            None => {
                state.meters.push(MeterState {
                    address: first.address,
                    ..MeterState::default()
                });
                state.meters.last_mut()
            }
        };
        if let Some(meter) = meter {
            record_attempt(meter, zone, attempt);
        }
    }
}

/// Counts a read of the meter at `address` at `time` that gave no readings
/// of its own (a logger exchange of a backfill) against its read budget.
pub fn record_read(state: &SharedState, zone: &TimeZone, address: u8, time: Timestamp) {
    let mut state = state.lock();
    if let Some(meter) = state
        .meters
        .iter_mut()
        .find(|meter| meter.address == address)
    {
        count_read(meter, zone, time);
    }
}

/// The reads of the meter on the day of `time` so far.
pub fn reads_on(meter: &MeterState, zone: &TimeZone, time: Timestamp) -> u32 {
    let day = time.to_zoned_datetime(zone.clone()).date();
    if meter.day == Some(day) {
        meter.reads_today
    } else {
        0
    }
}

/// Counts one read at `time`, the first of a new day starting the count.
fn count_read(meter: &mut MeterState, zone: &TimeZone, time: Timestamp) {
    meter.reads_today = reads_on(meter, zone, time) + 1;
    meter.day = Some(time.to_zoned_datetime(zone.clone()).date());
}

fn record_attempt(meter: &mut MeterState, zone: &TimeZone, attempt: &[Reading]) {
    let Some(first) = attempt.first() else {
        return;
    };
    let answered = attempt.iter().any(|reading| {
        matches!(
            reading.status,
            Status::Ok | Status::Suspect | Status::NotAnswered
        )
    });
    meter.attempts += 1;
    meter.last_status = Some(first.status.as_str().to_owned());
    if answered {
        meter.answers += 1;
        meter.last_answer = Some(first.time);
        count_read(meter, zone, first.time);
    }
    for reading in attempt {
        if reading.status == Status::Suspect {
            meter.suspect += 1;
        }
        if reading.register == SERIAL_REGISTER
            && let Some((serial, _)) = reading.value
        {
            meter.serial = Some(serial.to_string());
        }
        if info::is_info_register(meter.model, reading.register) && reading.value.is_some() {
            let flags = reading
                .to_json()
                .get("flags")
                .and_then(|flags| flags.as_array().cloned())
                .unwrap_or_default();
            meter.info_flags = flags
                .iter()
                .filter_map(|flag| flag.as_str().map(str::to_owned))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::state::BusState;
    use kmp::{Unit, Value};

    fn reading(
        address: u8,
        second: i64,
        register: u16,
        value: Option<&str>,
        status: Status,
    ) -> Reading {
        Reading {
            time: jiff::Timestamp::from_second(1_800_000_000 + second).unwrap(),
            bus: "gw".to_owned(),
            address,
            request: "main".to_owned(),
            register,
            name: format!("R{register}"),
            value: value.map(|text| (text.parse::<Value>().unwrap(), Unit(0))),
            status,
        }
    }

    #[test]
    fn attempts_answers_serial_and_suspects_are_counted_per_meter() {
        let state = SharedState::new(BusState::default());
        let zone = TimeZone::UTC;
        record_readings(
            &state,
            &zone,
            &[
                reading(1, 0, 1001, Some("12345678"), Status::Ok),
                reading(1, 0, 60, Some("10"), Status::Suspect),
                reading(2, 1, 60, None, Status::Timeout),
            ],
        );
        record_readings(&state, &zone, &[reading(1, 2, 60, None, Status::Timeout)]);
        let meters = state.snapshot().meters;
        let one = meters.iter().find(|meter| meter.address == 1).unwrap();
        assert_eq!((one.attempts, one.answers, one.suspect), (2, 1, 1));
        assert_eq!(one.serial.as_deref(), Some("12345678"));
        assert_eq!(one.last_status.as_deref(), Some("timeout"));
        assert_eq!(one.reads_today, 1);
        let two = meters.iter().find(|meter| meter.address == 2).unwrap();
        assert_eq!((two.attempts, two.answers), (1, 0));
        assert_eq!(two.last_answer, None);
    }

    #[test]
    fn each_address_is_one_meter_with_the_model_and_the_smallest_budget_of_its_requests() {
        let (config, _) = crate::config::parse(
            r#"
[[bus]]
name = "gw"
tcp = "127.0.0.1:4001"

[[bus.request]]
description = "Live"
addresses = "1;2"
polling = "1h"
items = ["T1"]

[[bus.request]]
description = "Daily"
addresses = "2;3"
model = "603"
reads_per_day = 24
polling = "1h"
items = ["E1"]
"#,
            "kmplog.toml",
        )
        .unwrap();
        let meters = meters_of(&config.buses[0]);
        let summary: Vec<(u8, Option<&str>, Option<u32>)> = meters
            .iter()
            .map(|meter| {
                (
                    meter.address,
                    meter.model.map(|model| model.name()),
                    meter.reads_per_day,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, None, None),
                (2, Some("MULTICAL 603"), Some(24)),
                (3, Some("MULTICAL 603"), Some(24)),
            ]
        );
    }

    #[test]
    fn reads_today_start_again_on_a_new_day() {
        let state = SharedState::new(BusState::default());
        let zone = TimeZone::UTC;
        record_readings(&state, &zone, &[reading(1, 0, 60, Some("1"), Status::Ok)]);
        record_readings(&state, &zone, &[reading(1, 10, 60, Some("1"), Status::Ok)]);
        assert_eq!(state.snapshot().meters[0].reads_today, 2);
        record_readings(
            &state,
            &zone,
            &[reading(1, 86_400, 60, Some("1"), Status::Ok)],
        );
        assert_eq!(state.snapshot().meters[0].reads_today, 1);
    }
}
