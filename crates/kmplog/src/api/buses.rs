//! `GET /api/buses`: every bus with its queue, meters and counters, written
//! straight into the response a few buses at a time. The console asks for
//! it every 2 s; at thousands of buses a JSON tree of them all would hold
//! some 60 KB per bus at once, where this holds one bus's copy and one
//! chunk of text.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Serialize, Serializer};

use super::ApiState;
use crate::bus::state::{BusState, MeterState, RequestState, SharedState};

/// About how many bytes each piece of the body holds.
const CHUNK_BYTES: usize = 64 * 1024;

/// The handler.
pub async fn list(State(state): State<ApiState>) -> Response {
    let body = Body::from_stream(futures_util::stream::iter(Chunks::new(
        state.buses.states(),
    )));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The body `{"buses": [...]}` in pieces of about [`CHUNK_BYTES`]: each bus
/// is copied (under its lock, briefly) and written when its piece is made.
struct Chunks {
    buses: std::vec::IntoIter<SharedState>,
    started: bool,
    finished: bool,
}

impl Chunks {
    fn new(buses: Vec<SharedState>) -> Self {
        Chunks {
            buses: buses.into_iter(),
            started: false,
            finished: false,
        }
    }
}

impl Iterator for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut text = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        if !self.started {
            text.extend_from_slice(b"{\"buses\":[");
        }
        while text.len() < CHUNK_BYTES {
            let Some(bus) = self.buses.next() else {
                text.extend_from_slice(b"]}");
                self.finished = true;
                break;
            };
            if self.started {
                text.push(b',');
            }
            self.started = true;
            let bus = bus.snapshot();
            serde_json::to_writer(&mut text, &BusView(&bus))
                .expect("a bus's state serializes into memory");
        }
        Some(Ok(Bytes::from(text)))
    }
}

/// An optional time as its RFC 3339 text, `null` when there is none.
struct OptionalTime<'a>(&'a Option<Timestamp>);

impl Serialize for OptionalTime<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(time) => serializer.collect_str(time),
            None => serializer.serialize_none(),
        }
    }
}

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

/// One bus, its fields in the order the console and scripts know.
struct BusView<'a>(&'a BusState);

impl Serialize for BusView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let bus = self.0;
        let mut map = serializer.serialize_map(Some(16))?;
        map.serialize_entry("name", &bus.name)?;
        map.serialize_entry("line", &bus.endpoint)?;
        map.serialize_entry("connected", &bus.connected)?;
        map.serialize_entry("state", &state_in_words(bus))?;
        map.serialize_entry("listening_only", &bus.listening_only)?;
        map.serialize_entry("retry_at", &OptionalTime(&bus.retry_at))?;
        map.serialize_entry("crc_errors", &bus.crc_errors)?;
        map.serialize_entry("time_zone", &bus.time_zone)?;
        let meters: Vec<MeterView<'_>> = bus.meters.iter().map(MeterView).collect();
        map.serialize_entry("meters", &meters)?;
        map.serialize_entry("polls", &bus.polls)?;
        map.serialize_entry("timeouts", &bus.timeouts)?;
        map.serialize_entry("faults", &bus.faults)?;
        map.serialize_entry("reconnects", &bus.reconnects)?;
        map.serialize_entry("lateness_us", &bus.lateness_us)?;
        map.serialize_entry(
            "last_error",
            &bus.last_error.as_ref().map(|(at, error)| LastError {
                time: at.to_string(),
                error,
            }),
        )?;
        let requests: Vec<RequestView<'_>> = bus.requests.iter().map(RequestView).collect();
        map.serialize_entry("requests", &requests)?;
        map.end()
    }
}

#[derive(Serialize)]
struct LastError<'a> {
    time: String,
    error: &'a str,
}

/// One request of a bus's queue.
struct RequestView<'a>(&'a RequestState);

impl Serialize for RequestView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let request = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("description", &request.description)?;
        map.serialize_entry("method", &request.method)?;
        map.serialize_entry("method_words", &request.method_words)?;
        map.serialize_entry("last_run", &OptionalTime(&request.last_run))?;
        map.serialize_entry("next_run", &OptionalTime(&request.next_run))?;
        map.serialize_entry("last_result", &request.last_result)?;
        map.end()
    }
}

/// One meter of a bus, with its health.
struct MeterView<'a>(&'a MeterState);

impl Serialize for MeterView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let meter = self.0;
        let mut map = serializer.serialize_map(Some(11))?;
        map.serialize_entry("address", &meter.address)?;
        map.serialize_entry("model", &meter.model.map(|model| model.name()))?;
        map.serialize_entry("serial", &meter.serial)?;
        map.serialize_entry("last_answer", &OptionalTime(&meter.last_answer))?;
        map.serialize_entry("last_status", &meter.last_status)?;
        map.serialize_entry("attempts", &meter.attempts)?;
        map.serialize_entry("answers", &meter.answers)?;
        map.serialize_entry("suspect", &meter.suspect)?;
        map.serialize_entry("info_flags", &meter.info_flags)?;
        map.serialize_entry("reads_today", &meter.reads_today)?;
        map.serialize_entry("reads_per_day", &meter.reads_per_day)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::VecDeque;

    use futures_util::StreamExt;
    use serde_json::{Value as JsonValue, json};

    use crate::bus::state::BusList;

    /// One meter as JSON, as the tree had it.
    fn meter_json(meter: &MeterState) -> JsonValue {
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

    /// What `GET /api/buses` answered before it was streamed: a JSON tree of
    /// every bus, kept here as the reference the stream must equal.
    fn tree_of(snapshots: Vec<BusState>) -> JsonValue {
        let buses: Vec<JsonValue> = snapshots
        .into_iter()
        .map(|bus| {
            let requests: Vec<JsonValue> = bus
                .requests
                .iter()
                .map(|request| {
                    json!({
                        "description": request.description,
                        "method": request.method,
                        "method_words": request.method_words,
                        "last_run": request.last_run.map(|at| at.to_string()),
                        "next_run": request.next_run.map(|at| at.to_string()),
                        "last_result": request.last_result,
                    })
                })
                .collect();
            json!({
                "name": bus.name,
                "line": bus.endpoint,
                "connected": bus.connected,
                "state": state_in_words(&bus),
                "listening_only": bus.listening_only,
                "retry_at": bus.retry_at.map(|at| at.to_string()),
                "crc_errors": bus.crc_errors,
                "time_zone": bus.time_zone,
                "meters": bus.meters.iter().map(meter_json).collect::<Vec<_>>(),
                "polls": bus.polls,
                "timeouts": bus.timeouts,
                "faults": bus.faults,
                "reconnects": bus.reconnects,
                "lateness_us": bus.lateness_us,
                "last_error": bus.last_error.map(|(at, error)| json!({ "time": at.to_string(), "error": error })),
                "requests": requests,
            })
        })
        .collect();
        json!({ "buses": buses })
    }

    /// A bus with something in every field, and one with nothing, so that
    /// every `Some` and `None` and text that needs escaping is written.
    fn representative(number: usize) -> BusState {
        let at: Timestamp = "2026-12-01T10:00:00.125Z".parse().unwrap();
        if number % 3 == 2 {
            return BusState {
                name: format!("idle{number}"),
                ..BusState::default()
            };
        }
        let meter = |address: u8| MeterState {
            address,
            model: (address % 2 == 1).then_some(kmp::catalogue::Model::Multical603),
            serial: (address % 2 == 1).then(|| format!("6700{address}")),
            last_answer: Some(at),
            last_status: Some(if address == 3 { "timeout" } else { "ok" }.to_owned()),
            attempts: 12,
            answers: 11 + u64::from(address),
            suspect: u64::from(address == 2),
            info_flags: if address == 1 {
                vec!["leak".to_owned(), "burst \"pipe\"".to_owned()]
            } else {
                Vec::new()
            },
            reads_per_day: (address == 1).then_some(96),
            reads_today: 7,
            day: Some(jiff::civil::date(2026, 12, 1)),
        };
        BusState {
            name: format!("gw{number:04}"),
            endpoint: format!("tcp 127.0.0.1:{}", 4000 + number),
            connected: number.is_multiple_of(3),
            listening_only: number % 6 == 3,
            retry_at: (number % 3 == 1).then_some(at),
            time_zone: Some("Europe/Copenhagen".to_owned()),
            meters: (1..=20).map(meter).collect(),
            requests: vec![
                RequestState {
                    description: "Main values ∆T <täglich>".to_owned(),
                    method: "polling 60s".to_owned(),
                    method_words: "every 60 s".to_owned(),
                    last_run: Some(at),
                    next_run: Some(at),
                    last_result: Some("19 of 20 meters answered".to_owned()),
                },
                RequestState {
                    description: "On demand".to_owned(),
                    method: "event hot".to_owned(),
                    method_words: "on event `hot`".to_owned(),
                    last_run: None,
                    next_run: None,
                    last_result: None,
                },
            ],
            polls: 1_000_000 + number as u64,
            timeouts: 3,
            faults: 2,
            crc_errors: 1,
            reconnects: 4,
            last_error: (number % 3 == 1)
                .then(|| (at, "connection refused\n(os error 111)".to_owned())),
            lateness_us: (0..1024)
                .map(|sample| sample * 37 % 5000)
                .collect::<VecDeque<u64>>(),
        }
    }

    #[tokio::test]
    async fn the_stream_writes_what_the_tree_did_byte_for_byte() {
        // Enough buses for several pieces, and none.
        for count in [0, 1, 2, 3, 100] {
            let states: Vec<BusState> = (0..count).map(representative).collect();
            let tree = serde_json::to_vec(&tree_of(states.clone())).unwrap();
            let shared: Vec<SharedState> = states.into_iter().map(SharedState::new).collect();
            let list = BusList::from(shared);
            let mut pieces = futures_util::stream::iter(Chunks::new(list.states()));
            let mut streamed = Vec::new();
            let mut count_of_pieces = 0;
            while let Some(piece) = pieces.next().await {
                let piece = piece.unwrap();
                assert!(
                    piece.len() < 2 * CHUNK_BYTES,
                    "a piece of {} bytes",
                    piece.len()
                );
                streamed.extend_from_slice(&piece);
                count_of_pieces += 1;
            }
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(tree).unwrap(),
                "{count} buses"
            );
            if count == 100 {
                assert!(count_of_pieces > 5, "{count_of_pieces} pieces");
            }
        }
    }

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
