//! A [`Reading`]: one register of one meter at one moment, with its exact
//! value and unit, or the status that says why there is no value.
//!
//! Every attempt ends as readings (DESIGN invariant 3): a silent meter gives
//! readings with status `timeout`, a register the meter left out one with
//! status `not_answered`, so sinks and dashboards see gaps for what they are.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use kmp::catalogue::info;
use kmp::unit::{Quantity, Unit};
use kmp::value::{RegisterValue, Value};
use serde_json::{Value as Json, json};

use crate::bus::Outcome;
use crate::config::Item;

/// Why a reading has the value it has, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The meter answered with this value.
    Ok,
    /// A running total went down or dropped to zero: kept, but flagged.
    Suspect,
    /// The meter answered but left this register out.
    NotAnswered,
    /// The meter did not answer within the timeout, retries included.
    Timeout,
    /// The reply failed its CRC check.
    CrcError,
    /// The reply frame was truncated, badly stuffed or too long.
    BadFrame,
    /// The reply frame was valid but its content did not fit the command.
    BadReply,
    /// The line could not be opened or failed during the request.
    LineDown,
    /// A row of the meter's own logger, read afterwards (`kmplog backfill`):
    /// stamped with the meter's time of the row, not the time it was read.
    Logged,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 9] = [
        Status::Ok,
        Status::Suspect,
        Status::NotAnswered,
        Status::Timeout,
        Status::CrcError,
        Status::BadFrame,
        Status::BadReply,
        Status::LineDown,
        Status::Logged,
    ];

    /// The status as stored and printed: `ok`, `timeout`, `crc_error`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Suspect => "suspect",
            Status::NotAnswered => "not_answered",
            Status::Timeout => "timeout",
            Status::CrcError => "crc_error",
            Status::BadFrame => "bad_frame",
            Status::BadReply => "bad_reply",
            Status::LineDown => "line_down",
            Status::Logged => "logged",
        }
    }

    /// The status written as `text` (`ok`, `timeout`, ...).
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// The status of every register of a transaction that gave no registers.
    pub fn of_failed(outcome: &Outcome) -> Status {
        match outcome {
            Outcome::Response(_) | Outcome::Ack => Status::BadReply,
            Outcome::NoReply => Status::Timeout,
            Outcome::BadFrame(kmp::FrameError::Crc { .. }) => Status::CrcError,
            Outcome::BadFrame(_) => Status::BadFrame,
            Outcome::BadMessage(_) => Status::BadReply,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One register of one meter at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// When the reply arrived (or the attempt ended).
    pub time: Timestamp,
    /// The bus name.
    pub bus: String,
    /// The meter address.
    pub address: u8,
    /// The request's description.
    pub request: String,
    /// The register ID.
    pub register: u16,
    /// The export name.
    pub name: String,
    /// The exact value and unit, when the meter gave one.
    pub value: Option<(Value, Unit)>,
    /// What happened.
    pub status: Status,
}

impl Reading {
    /// The value as exact decimal text, empty when there is none.
    pub fn value_text(&self) -> String {
        self.value
            .map(|(value, _)| value.to_string())
            .unwrap_or_default()
    }

    /// The unit symbol, empty when there is no value.
    pub fn unit_text(&self) -> String {
        self.value
            .map(|(_, unit)| unit.to_string())
            .unwrap_or_default()
    }

    /// The natural form (date, time, text, flags) where the unit has one.
    pub fn natural_text(&self) -> Option<String> {
        self.register_value()?.natural()
    }

    /// The value as the meter sent it, with its register and unit.
    fn register_value(&self) -> Option<RegisterValue> {
        let (value, unit) = self.value?;
        Some(RegisterValue {
            register: self.register,
            unit,
            value,
        })
    }

    /// The reading as one JSON object, as the JSON-lines outputs write it.
    ///
    /// The info code (register 99) also gets `"flags"`, the names of the bits
    /// set (`[]` for 0). A reading does not carry its meter's model, so the
    /// bits are named by the table [`info_flags`](kmp::catalogue::info::info_flags)
    /// uses without one: the MULTICAL 603's, which the 302 and 403 share.
    pub fn to_json(&self) -> Json {
        let mut object = json!({
            "ts": self.time.to_string(),
            "bus": self.bus,
            "address": self.address,
            "request": self.request,
            "register": self.register,
            "name": self.name,
            "value": self.value.map(|(value, _)| value.to_string()),
            "unit": self.value.map(|(_, unit)| unit.to_string()),
            "unit_code": self.value.map(|(_, unit)| unit.code()),
            "status": self.status.as_str(),
        });
        if let Some(map) = object.as_object_mut() {
            if let Some(text) = self.natural_text() {
                map.insert("text".to_owned(), Json::String(text));
            }
            let flags = self
                .register_value()
                .and_then(|entry| info::register_flags(None, &entry));
            if let Some(flags) = flags {
                let names = flags.iter().map(|flag| Json::from(flag.name)).collect();
                map.insert("flags".to_owned(), names);
            }
        }
        object
    }
}

/// What one transaction gave a meter's registers.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// The registers the meter sent (those it left out are `not_answered`).
    Registers(&'a [RegisterValue]),
    /// No registers, for this reason.
    Failed(Status),
}

impl Reading {
    /// The reading of `item`, read by `request` from the meter at `address`
    /// on `bus`, as `reply` left it.
    pub fn of_item(
        time: Timestamp,
        bus: &str,
        address: u8,
        request: &str,
        item: &Item,
        reply: Reply<'_>,
    ) -> Reading {
        let (value, status) = match reply {
            Reply::Registers(values) => {
                match values.iter().find(|value| value.register == item.register) {
                    Some(found) => (Some((found.value, found.unit)), Status::Ok),
                    None => (None, Status::NotAnswered),
                }
            }
            Reply::Failed(status) => (None, status),
        };
        Reading {
            time,
            bus: bus.to_owned(),
            address,
            request: request.to_owned(),
            register: item.register,
            name: item.export_name.clone(),
            value,
            status,
        }
    }
}

/// Flags running totals that go down or drop to zero (SPEC §4), so that a
/// dashboard never sees a counter fall and jump back.
#[derive(Debug, Default)]
pub struct CounterGuard {
    last: HashMap<(String, u8, u16), Value>,
}

impl CounterGuard {
    /// Checks `reading` and marks it [`Status::Suspect`] when a running total
    /// went backwards; the last good value stays the reference.
    pub fn check(&mut self, reading: &mut Reading) {
        let Some((value, unit)) = reading.value else {
            return;
        };
        if reading.status != Status::Ok || !is_running_total(unit) {
            return;
        }
        let key = (reading.bus.clone(), reading.address, reading.register);
        match self.last.get(&key) {
            Some(last)
                if value.compare(last).is_lt()
                    || (value.mantissa() == 0 && last.mantissa() != 0) =>
            {
                reading.status = Status::Suspect;
            }
            _ => {
                self.last.insert(key, value);
            }
        }
    }
}

/// Units of registers that only grow: energy, volume, mass and hour counters.
fn is_running_total(unit: Unit) -> bool {
    const HOURS: u8 = 0x2E;
    matches!(
        unit.quantity(),
        Quantity::Energy
            | Quantity::ReactiveEnergy
            | Quantity::ApparentEnergy
            | Quantity::Volume
            | Quantity::Mass
    ) || unit.code() == HOURS
}

/// What a bus hands on to the collector, which writes it to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Readings of a poll: the outbox gives each a key of its own.
    Polled(Vec<Reading>),
    /// Rows of a meter's logger, each under the key that names the row's
    /// value itself ([`crate::backfill::readings::key`]), so that a sink
    /// keeps one of each however often it is read.
    Logged(Vec<(String, Reading)>),
}

impl Batch {
    /// How many readings.
    pub fn len(&self) -> usize {
        match self {
            Batch::Polled(readings) => readings.len(),
            Batch::Logged(readings) => readings.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The readings, without the keys of logged ones.
    pub fn into_readings(self) -> Vec<Reading> {
        match self {
            Batch::Polled(readings) => readings,
            Batch::Logged(readings) => readings.into_iter().map(|(_, reading)| reading).collect(),
        }
    }
}

/// A batch of readings as the outbox numbered them, for the live views:
/// the readings carry the sequence numbers `last_seq - len + 1 ..= last_seq`
/// in order (the outbox numbers a batch in one transaction, without gaps).
#[derive(Debug, Clone)]
pub struct LiveBatch {
    /// The outbox sequence number of the batch's last reading.
    pub last_seq: u64,
    /// The readings.
    pub readings: Arc<[Reading]>,
}

impl LiveBatch {
    /// Each reading with its sequence number.
    pub fn numbered(&self) -> impl Iterator<Item = (u64, &Reading)> {
        let first = (self.last_seq + 1).saturating_sub(self.readings.len() as u64);
        (first..).zip(self.readings.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(register: u16, value: &str, unit: u8) -> Reading {
        Reading {
            time: Timestamp::UNIX_EPOCH,
            bus: "heat".to_owned(),
            address: 63,
            request: "main".to_owned(),
            register,
            name: "E1".to_owned(),
            value: Some((value.parse().unwrap(), Unit(unit))),
            status: Status::Ok,
        }
    }

    #[test]
    fn running_totals_that_fall_are_suspect() {
        let mut guard = CounterGuard::default();
        for (value, expected) in [
            ("100.000", Status::Ok),
            ("100.5", Status::Ok),
            ("0.000", Status::Suspect),
            ("99.9", Status::Suspect),
            ("100.50", Status::Ok),
            ("101", Status::Ok),
        ] {
            let mut energy = reading(60, value, 0x08);
            guard.check(&mut energy);
            assert_eq!(energy.status, expected, "E1 = {value}");
        }
    }

    #[test]
    fn other_quantities_may_go_down() {
        let mut guard = CounterGuard::default();
        for value in ["70.00", "60.00", "0.00"] {
            let mut temperature = reading(86, value, 0x25);
            guard.check(&mut temperature);
            assert_eq!(temperature.status, Status::Ok);
        }
    }

    #[test]
    fn json_form_keeps_the_exact_value() {
        let json = reading(60, "34.00", 0x08).to_json();
        assert_eq!(json["value"], "34.00");
        assert_eq!(json["unit"], "GJ");
        assert_eq!(json["status"], "ok");
        assert_eq!(json["ts"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn info_code_has_its_flags_in_json() {
        let mut info = reading(99, "3", 0x00);
        info.name = "INFO".to_owned();
        let json = info.to_json();
        assert_eq!(json["value"], "3");
        assert_eq!(
            json["flags"],
            json!(["supply_voltage_interrupted", "low_battery"])
        );
        assert_eq!(reading(99, "0", 0x00).to_json()["flags"], json!([]));
        // A fraction is no info code; other registers have no flags.
        assert!(reading(99, "0.5", 0x00).to_json().get("flags").is_none());
        assert!(reading(113, "3", 0x00).to_json().get("flags").is_none());
        let mut missing = reading(99, "3", 0x00);
        missing.value = None;
        assert!(missing.to_json().get("flags").is_none());
    }

    #[test]
    fn failed_transactions_map_to_statuses() {
        assert_eq!(Status::of_failed(&Outcome::NoReply), Status::Timeout);
        assert_eq!(
            Status::of_failed(&Outcome::BadFrame(kmp::FrameError::Crc {
                expected: 1,
                found: 2
            })),
            Status::CrcError
        );
        assert_eq!(
            Status::of_failed(&Outcome::BadFrame(kmp::FrameError::Truncated { len: 3 })),
            Status::BadFrame
        );
    }
}
