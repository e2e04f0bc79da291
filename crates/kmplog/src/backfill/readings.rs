//! Logger rows as readings: each value of a row becomes a reading with
//! status `logged`, stamped with the meter's time of the row (civil time on
//! the meter's clock, placed in the logger's time zone), under a key made of
//! the meter's serial number, the logger, the log id and the register. The
//! key names the reading itself, not the read, so a row read twice, by two
//! backfills or by one over what another read, is one row in every sink.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kmp::catalogue::{self, Model};
use kmp::logger::Logger;

use super::paging::LogRow;
use crate::reading::{Reading, Status};

/// The meter whose logger the rows come from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The bus name the readings carry.
    pub bus: &'a str,
    /// The meter address.
    pub address: u8,
    /// The meter's serial number: what makes the key the meter's, whatever
    /// address or line it is read at.
    pub serial: u32,
    /// The logger the rows are from.
    pub logger: Logger,
    /// The model whose catalogue names the registers, when known.
    pub model: Option<Model>,
}

/// The key of the reading of `register` in the row `log_id` of `source`'s
/// logger: `logged-<serial>-<logger type>-<log id>-<register>`.
pub fn key(source: &Source<'_>, log_id: u32, register: u16) -> String {
    format!(
        "logged-{}-{}-{log_id}-{register}",
        source.serial, source.logger.0
    )
}

/// The readings of `rows`, each with its key, and how many rows were left
/// out because they carry no time (or one the zone cannot place).
pub fn logged_readings(
    source: &Source<'_>,
    rows: &[LogRow],
    zone: &TimeZone,
) -> (Vec<(String, Reading)>, usize) {
    let request = format!("{} logger", source.logger);
    let mut readings = Vec::new();
    let mut untimed = 0;
    for row in rows {
        let Some(time) = row.time.and_then(|time| meter_time(time, zone)) else {
            untimed += 1;
            continue;
        };
        for value in &row.values {
            let reading = Reading {
                time,
                bus: source.bus.to_owned(),
                address: source.address,
                request: request.clone(),
                register: value.register,
                name: catalogue::export_name(source.model, value.register),
                value: Some((value.value, value.unit)),
                status: Status::Logged,
            };
            readings.push((key(source, row.log_id, value.register), reading));
        }
    }
    (readings, untimed)
}

/// The instant of a time on the meter's clock in `zone`; the earlier one
/// where a clock change makes it ambiguous, as a meter that logs on the
/// hour by a clock that goes back logs the repeated hour once.
pub(crate) fn meter_time(time: jiff::civil::DateTime, zone: &TimeZone) -> Option<Timestamp> {
    zone.to_ambiguous_timestamp(time).compatible().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmp::{RegisterValue, Unit};

    fn row(log_id: u32, time: Option<&str>) -> LogRow {
        LogRow {
            log_id,
            time: time.map(|time| time.parse().unwrap()),
            values: vec![
                RegisterValue {
                    register: 60,
                    unit: Unit(0x08),
                    value: "12.345".parse().unwrap(),
                },
                RegisterValue {
                    register: 68,
                    unit: Unit(0x29),
                    value: "678.90".parse().unwrap(),
                },
            ],
        }
    }

    #[test]
    fn each_value_is_a_logged_reading_at_the_meters_time_in_the_zone() {
        let source = Source {
            bus: "heat",
            address: 63,
            serial: 70_224_973,
            logger: Logger::HOURLY,
            model: None,
        };
        let zone = TimeZone::get("Europe/Copenhagen").unwrap();
        let rows = [row(41, None), row(42, Some("2026-07-01T10:00"))];
        let (readings, untimed) = logged_readings(&source, &rows, &zone);
        assert_eq!(untimed, 1);
        let keys: Vec<&str> = readings.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["logged-70224973-5-42-60", "logged-70224973-5-42-68"]);
        let (_, energy) = &readings[0];
        assert_eq!(
            energy.time.to_string(),
            "2026-07-01T08:00:00Z",
            "summer time"
        );
        assert_eq!(energy.status, Status::Logged);
        assert_eq!(energy.name, "E1");
        assert_eq!(energy.request, "hourly logger");
        assert_eq!(energy.value_text(), "12.345");
    }
}
