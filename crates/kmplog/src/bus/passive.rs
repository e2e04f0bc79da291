//! Passive mode: the bus only listens. Another master polls the meters; this
//! task pairs each GetRegister request it sees with the reply from the same
//! address and exports the values that the bus's requests ask for.
//!
//! A request that gets no reply before the next request on the line ends as
//! `timeout` readings, so a silent meter shows in passive mode too.

use jiff::Timestamp;
use kmp::frame::{Direction, Frame};
use kmp::message::{Request, Response};
use kmp::splitter::{Event, Splitter};
use tokio::io::AsyncReadExt;

use super::state::SharedState;
use super::task::{BusContext, endpoint_of, line_failed};
use crate::config::{BusConfig, RequestConfig};
use crate::reading::{Reading, Status};

/// A request seen on the line, waiting for its reply.
struct Pending {
    address: u8,
    registers: Vec<u16>,
}

/// Listens on the bus until shutdown.
pub async fn run_passive(config: BusConfig, state: SharedState, context: BusContext) {
    let endpoint = endpoint_of(&config.endpoint);
    let listeners: Vec<&RequestConfig> = config
        .requests
        .iter()
        .filter(|request| !request.send)
        .collect();
    let mut backoff = super::task::MIN_BACKOFF;
    loop {
        let mut line = match endpoint.open().await {
            Ok(line) => {
                backoff = super::task::MIN_BACKOFF;
                state.lock().connected = true;
                line
            }
            Err(error) => {
                line_failed(&context.clock, &state, error.to_string());
                tokio::select! {
                    () = context.shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(super::task::MAX_BACKOFF);
                continue;
            }
        };
        let mut splitter = Splitter::new();
        let mut pending: Option<Pending> = None;
        let mut buffer = [0u8; 1024];
        loop {
            let received = tokio::select! {
                () = context.shutdown.cancelled() => return,
                received = line.read(&mut buffer) => received,
            };
            let count = match received {
                Ok(0) => {
                    line_failed(&context.clock, &state, "closed by the other end".to_owned());
                    break;
                }
                Ok(count) => count,
                Err(error) => {
                    line_failed(&context.clock, &state, error.to_string());
                    break;
                }
            };
            for event in splitter.feed(buffer.get(..count).unwrap_or_default()) {
                let readings = observe(
                    event,
                    &mut pending,
                    &config.name,
                    &listeners,
                    &state,
                    context.clock.now(),
                );
                if !readings.is_empty() {
                    let _ = context.readings.send(readings);
                }
            }
        }
    }
}

/// Takes one event off the line; returns the readings it completes.
fn observe(
    event: Event,
    pending: &mut Option<Pending>,
    bus: &str,
    listeners: &[&RequestConfig],
    state: &SharedState,
    now: Timestamp,
) -> Vec<Reading> {
    match event {
        Event::Frame(frame) if frame.direction == Direction::ToMeter => {
            // A new request: the previous one, if still open, got no reply.
            let unanswered = pending
                .take()
                .map(|open| readings_for(bus, listeners, &open, None, now));
            if let Ok(Request::GetRegister(registers)) = Request::decode(&frame) {
                *pending = Some(Pending {
                    address: frame.address,
                    registers: registers.to_vec(),
                });
                state.lock().polls += 1;
            }
            unanswered.unwrap_or_default()
        }
        Event::Frame(frame) => match pending.take() {
            Some(open)
                if open.address == frame.address
                    && frame.cid == kmp::Command::GetRegister.cid() =>
            {
                reply_readings(bus, listeners, &open, &frame, now)
            }
            other => {
                *pending = other;
                Vec::new()
            }
        },
        Event::Garbage(_) | Event::Malformed { .. } => {
            state.lock().faults += 1;
            Vec::new()
        }
        Event::Ack => Vec::new(),
    }
}

fn reply_readings(
    bus: &str,
    listeners: &[&RequestConfig],
    open: &Pending,
    frame: &Frame,
    now: Timestamp,
) -> Vec<Reading> {
    match Response::decode(frame) {
        Ok(Response::Registers(values)) => readings_for(bus, listeners, open, Some(&values), now),
        _ => readings_for(bus, listeners, open, None, now)
            .into_iter()
            .map(|r| Reading {
                status: Status::BadReply,
                ..r
            })
            .collect(),
    }
}

/// Readings for every item of the listening requests that covers the
/// request seen: values from `reply`, or `timeout` without one.
fn readings_for(
    bus: &str,
    listeners: &[&RequestConfig],
    open: &Pending,
    reply: Option<&[kmp::RegisterValue]>,
    now: Timestamp,
) -> Vec<Reading> {
    let mut readings = Vec::new();
    for request in listeners
        .iter()
        .filter(|request| request.addresses.contains(&open.address))
    {
        for item in request
            .items
            .iter()
            .filter(|item| open.registers.contains(&item.register))
        {
            let (value, status) = match reply {
                None => (None, Status::Timeout),
                Some(values) => match values.iter().find(|value| value.register == item.register) {
                    Some(found) => (Some((found.value, found.unit)), Status::Ok),
                    None => (None, Status::NotAnswered),
                },
            };
            readings.push(Reading {
                time: now,
                bus: bus.to_owned(),
                address: open.address,
                request: request.description.clone(),
                register: item.register,
                name: item.export_name.clone(),
                value,
                status,
            });
        }
    }
    readings
}
