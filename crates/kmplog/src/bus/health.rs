//! What a bus tells its operator: its line down (with the reason) and up
//! again, a meter that stops answering and comes back. Each is logged once
//! per change of state, never per poll, so that a gateway down for an hour
//! is two lines in the journal, not thousands. Active and listen-only buses
//! share these.

use std::collections::HashMap;

use tracing::{info, warn};

use super::state::SharedState;
use crate::clock::Clock;
use crate::reading::{Reading, Status};

/// Records that the line of the bus failed with `error`; logs it when the
/// line was up (or had never been tried), not on every failed reopen.
pub(crate) fn line_failed(clock: &Clock, state: &SharedState, error: String) {
    let mut state = state.lock();
    let was_down = !state.connected && state.last_error.is_some();
    if !was_down {
        warn!(
            bus = state.name.as_str(),
            line = state.endpoint.as_str(),
            reason = error.as_str(),
            "line down"
        );
    }
    state.connected = false;
    state.last_error = Some((clock.now(), error));
}

/// Records that the line of the bus is open; logs it when it was down or
/// is opened for the first time.
pub(crate) fn line_opened(state: &SharedState) {
    let mut state = state.lock();
    if !state.connected {
        if state.last_error.is_some() {
            info!(
                bus = state.name.as_str(),
                line = state.endpoint.as_str(),
                "line up again"
            );
        } else {
            info!(
                bus = state.name.as_str(),
                line = state.endpoint.as_str(),
                "line open"
            );
        }
    }
    state.connected = true;
    state.retry_at = None;
}

/// Which meters of a bus answer, to log when one stops or comes back.
#[derive(Debug, Default)]
pub(crate) struct MeterWatch {
    answering: HashMap<u8, bool>,
}

impl MeterWatch {
    /// Learns from the readings of one transaction (or several) of bus
    /// `bus`. A meter that gave no reply at all is silent; any reply, even a
    /// corrupt one, means it answers; a line that is down says nothing about
    /// the meters on it.
    pub(crate) fn observe(&mut self, bus: &str, readings: &[Reading]) {
        let mut seen: Vec<(u8, bool)> = Vec::new();
        for reading in readings.iter().filter(|r| r.status != Status::LineDown) {
            let answered = reading.status != Status::Timeout;
            match seen
                .iter_mut()
                .find(|(address, _)| *address == reading.address)
            {
                Some((_, any)) => *any |= answered,
                None => seen.push((reading.address, answered)),
            }
        }
        for (address, answered) in seen {
            let before = self.answering.insert(address, answered);
            match (before, answered) {
                (Some(true) | None, false) => {
                    warn!(bus, address, "meter does not answer");
                }
                (Some(false), true) => info!(bus, address, "meter answers again"),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log lines written while `body` runs, as text without times.
    fn logged(body: impl FnOnce()) -> Vec<String> {
        let ((), text) = crate::logging::capture(body);
        text.lines().map(|line| line.trim().to_owned()).collect()
    }

    fn reading(address: u8, status: Status) -> Reading {
        Reading {
            time: jiff::Timestamp::UNIX_EPOCH,
            bus: "gw".to_owned(),
            address,
            request: "poll".to_owned(),
            register: 86,
            name: "T1".to_owned(),
            value: None,
            status,
        }
    }

    #[test]
    fn a_meter_is_logged_when_it_stops_answering_and_comes_back_only() {
        let runs = [
            Status::Ok,
            Status::Timeout,
            Status::Timeout,
            Status::LineDown,
            Status::Timeout,
            Status::CrcError,
            Status::Ok,
            Status::Timeout,
        ];
        let lines = logged(|| {
            let mut meters = MeterWatch::default();
            for status in runs {
                meters.observe("gw", &[reading(7, status), reading(8, Status::Ok)]);
            }
        });
        assert_eq!(
            lines,
            [
                r#"WARN meter does not answer bus="gw" address=7"#,
                r#"INFO meter answers again bus="gw" address=7"#,
                r#"WARN meter does not answer bus="gw" address=7"#,
            ],
            "{lines:#?}"
        );
    }

    #[test]
    fn a_line_is_logged_when_it_goes_down_and_comes_up_only() {
        let state = SharedState::new(crate::bus::state::BusState {
            name: "gw".to_owned(),
            endpoint: "tcp 127.0.0.1:1".to_owned(),
            ..Default::default()
        });
        let clock = Clock::System;
        let lines = logged(|| {
            line_opened(&state);
            line_failed(&clock, &state, "closed by the other end".to_owned());
            line_failed(&clock, &state, "connection refused".to_owned());
            line_failed(&clock, &state, "connection refused".to_owned());
            line_opened(&state);
            line_opened(&state);
        });
        assert_eq!(
            lines,
            [
                r#"INFO line open bus="gw" line="tcp 127.0.0.1:1""#,
                r#"WARN line down bus="gw" line="tcp 127.0.0.1:1" reason="closed by the other end""#,
                r#"INFO line up again bus="gw" line="tcp 127.0.0.1:1""#,
            ],
            "{lines:#?}"
        );
    }
}
