//! The parts of `GET /api/buses` that the web console reads beyond the
//! counters: each bus's state in words and its meters with their health.

use jiff::Timestamp;
use serde_json::{Value as JsonValue, json};

use crate::bus::state::{BusState, MeterState};

/// The bus's state in words: `connected`, `listening only`, `line down:
/// REASON; retrying at TIME` or `not opened yet`.
pub fn state_in_words(bus: &BusState) -> String {
    if bus.connected {
        return if bus.listening_only {
            "listening only".to_owned()
        } else {
            "connected".to_owned()
        };
    }
    match (&bus.last_error, bus.retry_at) {
        (Some((_, reason)), Some(retry)) => format!("line down: {reason}; retrying at {retry}"),
        (Some((_, reason)), None) => {
            format!("line down: {reason}; retrying when a request is due")
        }
        (None, _) => "not opened yet".to_owned(),
    }
}

/// One meter as JSON.
pub fn meter_json(meter: &MeterState) -> JsonValue {
    json!({
        "address": meter.address,
        "model": meter.model.map(|model| model.name()),
        "serial": meter.serial,
        "last_answer": meter.last_answer.map(|at: Timestamp| at.to_string()),
        "last_status": meter.last_status,
        "attempts": meter.attempts,
        "answers": meter.answers,
        "suspect": meter.suspect,
        "info_flags": meter.info_flags,
        "reads_today": meter.reads_today,
        "reads_per_day": meter.reads_per_day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_in_words_names_the_reason_and_the_retry() {
        let connected = BusState {
            connected: true,
            ..BusState::default()
        };
        assert_eq!(state_in_words(&connected), "connected");
        let listening = BusState {
            connected: true,
            listening_only: true,
            ..BusState::default()
        };
        assert_eq!(state_in_words(&listening), "listening only");
        let at: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let down = BusState {
            last_error: Some((at, "connection refused".to_owned())),
            retry_at: Some("2026-12-01T10:00:05Z".parse().unwrap()),
            ..BusState::default()
        };
        assert_eq!(
            state_in_words(&down),
            "line down: connection refused; retrying at 2026-12-01T10:00:05Z"
        );
        assert_eq!(state_in_words(&BusState::default()), "not opened yet");
    }
}
