//! Passive mode: the bus only listens. Another master polls the meters; this
//! task pairs each GetRegister request it sees with the reply from the same
//! address and exports the values that the bus's requests ask for.
//!
//! A request that gets no reply within the listening request's timeout, or
//! before the next request on the line, ends as `timeout` readings, so a
//! silent meter shows in passive mode too, even when it was the last one
//! polled. One still open when the line fails ends as `line_down`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kmp::frame::{Direction, Frame};
use kmp::message::{Request, Response};
use kmp::splitter::{Event, Splitter};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::health::{MeterWatch, line_failed, line_opened};
use super::meters::record_readings;
use super::state::SharedState;
use super::task::{BusContext, endpoint_of};
use crate::config::{BusConfig, RequestConfig};
use crate::reading::{Batch, Reading, Reply, Status};

/// A request seen on the line, waiting for its reply.
struct Pending {
    address: u8,
    registers: Vec<u16>,
    /// When the reply is overdue: the longest timeout of the listening
    /// requests for this address.
    deadline: Instant,
}

/// How long to wait for a reply to a request no listening request covers:
/// its readings are not exported, the wait only keeps the pairing right.
const UNWATCHED_TIMEOUT: Duration = Duration::from_millis(1600);

/// Listens on the bus until shutdown.
pub async fn run_passive(config: BusConfig, state: SharedState, context: BusContext) {
    let endpoint = endpoint_of(&config.endpoint);
    let listeners: Vec<&RequestConfig> = config
        .requests
        .iter()
        .filter(|request| !request.send)
        .collect();
    let mut backoff = super::task::MIN_BACKOFF;
    let mut meters = MeterWatch::default();
    state.lock().time_zone = context.zone.iana_name().map(str::to_owned);
    loop {
        let mut line = match endpoint.open().await {
            Ok(line) => {
                line_opened(&state);
                line
            }
            Err(error) => {
                line_failed(&context.clock, &state, error.to_string());
                state.lock().retry_at = SignedDuration::try_from(backoff)
                    .ok()
                    .and_then(|pause| context.clock.now().checked_add(pause).ok());
                if wait(&context, &mut backoff).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let mut splitter = Splitter::new();
        let mut pending: Option<Pending> = None;
        let mut buffer = [0u8; 1024];
        loop {
            let deadline = pending.as_ref().map(|open| open.deadline);
            let received = tokio::select! {
                () = context.shutdown.cancelled() => return,
                () = sleep_until_option(deadline) => {
                    let overdue = pending.take().map(|open| {
                        readings_for(&config.name, &listeners, &open, Reply::Failed(Status::Timeout), context.clock.now())
                    });
                    send(&context, &state, &mut meters, &config.name, overdue.unwrap_or_default());
                    continue;
                }
                received = line.read(&mut buffer) => received,
            };
            let received = match received {
                Ok(0) => Err("closed by the other end".to_owned()),
                Ok(count) => Ok(count),
                Err(error) => Err(error.to_string()),
            };
            let count = match received {
                Ok(count) => count,
                Err(error) => {
                    line_failed(&context.clock, &state, error);
                    // The reply to an open request cannot come on this line any more.
                    if let Some(open) = pending.take() {
                        let readings = readings_for(
                            &config.name,
                            &listeners,
                            &open,
                            Reply::Failed(Status::LineDown),
                            context.clock.now(),
                        );
                        send(&context, &state, &mut meters, &config.name, readings);
                    }
                    break;
                }
            };
            // Traffic came: the line works, so a later failure starts the
            // back-off afresh.
            backoff = super::task::MIN_BACKOFF;
            for event in splitter.feed(buffer.get(..count).unwrap_or_default()) {
                let readings = observe(
                    event,
                    &mut pending,
                    &config.name,
                    &listeners,
                    &state,
                    context.clock.now(),
                );
                send(&context, &state, &mut meters, &config.name, readings);
            }
        }
        // A gateway that accepts and closes at once (its serial port is
        // taken) must not be reopened in a tight loop.
        if wait(&context, &mut backoff).await.is_err() {
            return;
        }
    }
}

/// Waits `backoff` before the line is reopened and doubles it for the next
/// time; `Err` when the logger stops meanwhile.
async fn wait(context: &BusContext, backoff: &mut Duration) -> Result<(), ()> {
    tokio::select! {
        () = context.shutdown.cancelled() => return Err(()),
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(super::task::MAX_BACKOFF);
    Ok(())
}

fn send(
    context: &BusContext,
    state: &SharedState,
    meters: &mut MeterWatch,
    bus: &str,
    readings: Vec<Reading>,
) {
    if !readings.is_empty() {
        meters.observe(bus, &readings);
        record_readings(state, &context.zone, &readings);
        let _ = context.readings.send(Batch::Polled(readings));
    }
}

async fn sleep_until_option(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
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
            let unanswered = pending.take().map(|open| {
                readings_for(bus, listeners, &open, Reply::Failed(Status::Timeout), now)
            });
            if let Ok(Request::GetRegister(registers)) = Request::decode(&frame) {
                let timeout = listeners
                    .iter()
                    .filter(|request| request.addresses.contains(&frame.address))
                    .map(|request| request.timeout)
                    .max()
                    .unwrap_or(UNWATCHED_TIMEOUT);
                *pending = Some(Pending {
                    address: frame.address,
                    registers: registers.to_vec(),
                    deadline: Instant::now() + timeout,
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
        Ok(Response::Registers(values)) => {
            readings_for(bus, listeners, open, Reply::Registers(&values), now)
        }
        _ => readings_for(bus, listeners, open, Reply::Failed(Status::BadReply), now),
    }
}

/// Readings for every item of the listening requests that covers the
/// request seen, as `reply` left them.
fn readings_for(
    bus: &str,
    listeners: &[&RequestConfig],
    open: &Pending,
    reply: Reply<'_>,
    now: Timestamp,
) -> Vec<Reading> {
    listeners
        .iter()
        .filter(|request| request.addresses.contains(&open.address))
        .flat_map(|request| {
            request
                .items
                .iter()
                .filter(|item| open.registers.contains(&item.register))
                .map(move |item| {
                    Reading::of_item(now, bus, open.address, &request.description, item, reply)
                })
        })
        .collect()
}
