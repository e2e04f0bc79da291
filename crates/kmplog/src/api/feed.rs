//! `GET /api/readings/stream`: readings as they are read, as server-sent
//! events whose ids are the readings' outbox sequence numbers, so that a
//! client that reconnects with `Last-Event-ID` gets exactly what it missed.
//!
//! One task takes the logger's batches into a [`Feed`]: a bounded buffer of
//! the latest readings for reconnecting clients, and a bounded channel per
//! client. A client whose channel is full (it reads slower than the meters
//! are read) is dropped rather than buffered without end: its stream ends
//! with an event `dropped`, and it resumes from its last id. What a client
//! asks for that is older than the buffer comes from the SQLite sink's
//! database, or, without one, an event `missed` says which readings it
//! cannot have.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use jiff::Timestamp;
use kmp::unit::Unit;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::readings::{Filter, Kind};
use super::{ApiError, ApiState};
use crate::reading::{LiveBatch, Reading, Status};

/// Readings read from the database per step of a replay, so that a client
/// that was away long holds no more than this at once.
const REPLAY_STEP: u64 = 500;

/// The most readings replayed from the database to one client; an older
/// Last-Event-ID gets an event `missed` for the rest.
const MAX_DATABASE_REPLAY: u64 = 100_000;

/// The latest batches and the clients that wait for the next ones.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// Batches with consecutive sequence numbers, oldest first.
    recent: VecDeque<LiveBatch>,
    /// Readings in `recent`.
    held: usize,
    /// The readings `recent` keeps at least, when there are as many.
    keep: usize,
    /// Batches one client may have waiting.
    backlog: usize,
    clients: Vec<Client>,
}

struct Client {
    batches: mpsc::Sender<LiveBatch>,
    /// Set when the feed drops the client for falling behind.
    dropped: Arc<AtomicBool>,
}

/// What a new client starts with: the buffered batches after its
/// Last-Event-ID, then what its channel brings.
struct Subscription {
    replay: VecDeque<LiveBatch>,
    batches: mpsc::Receiver<LiveBatch>,
    dropped: Arc<AtomicBool>,
}

impl Feed {
    /// A feed of `live`'s batches, keeping `keep` readings for clients that
    /// reconnect and letting each client fall `backlog` batches behind.
    /// Spawns the task that fills it (on the current Tokio runtime); it
    /// ends when `live`'s senders are gone.
    pub fn start(live: &broadcast::Sender<LiveBatch>, keep: usize, backlog: usize) -> Feed {
        let feed = Feed {
            inner: Arc::new(Mutex::new(Inner {
                recent: VecDeque::new(),
                held: 0,
                keep,
                backlog: backlog.max(1),
                clients: Vec::new(),
            })),
        };
        let mut receiver = live.subscribe();
        let inner = Arc::clone(&feed.inner);
        tokio::spawn(async move {
            loop {
                let received = receiver.recv().await;
                let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
                match received {
                    Ok(batch) => inner.push(batch),
                    // This task fell behind the collector: the buffer has a
                    // hole, so every client reconnects and is told what is
                    // missing from its id on.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        inner.recent.clear();
                        inner.held = 0;
                        inner.drop_all();
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        inner.clients.clear();
                        return;
                    }
                }
            }
        });
        feed
    }

    /// Registers a client that has seen every reading up to `after`.
    fn subscribe(&self, after: Option<u64>) -> Subscription {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (sender, batches) = mpsc::channel(inner.backlog);
        let dropped = Arc::new(AtomicBool::new(false));
        inner.clients.push(Client {
            batches: sender,
            dropped: Arc::clone(&dropped),
        });
        let replay = match after {
            Some(after) => inner
                .recent
                .iter()
                .filter(|batch| batch.last_seq > after)
                .cloned()
                .collect(),
            None => VecDeque::new(),
        };
        Subscription {
            replay,
            batches,
            dropped,
        }
    }

    /// The sequence number of the newest reading the feed has seen.
    fn newest(&self) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.recent.back().map(|batch| batch.last_seq)
    }
}

impl Inner {
    fn push(&mut self, batch: LiveBatch) {
        let first = first_seq(&batch);
        if self
            .recent
            .back()
            .is_some_and(|last| last.last_seq + 1 != first)
        {
            // Numbers that do not follow on (a new outbox): start afresh.
            self.recent.clear();
            self.held = 0;
        }
        self.held += batch.readings.len();
        self.recent.push_back(batch.clone());
        while self
            .recent
            .front()
            .is_some_and(|oldest| self.held - oldest.readings.len() >= self.keep)
        {
            if let Some(oldest) = self.recent.pop_front() {
                self.held -= oldest.readings.len();
            }
        }
        self.clients.retain(|client| {
            match client.batches.try_send(batch.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    client.dropped.store(true, Ordering::Relaxed);
                    false
                }
                // The client went away.
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn drop_all(&mut self) {
        for client in self.clients.drain(..) {
            client.dropped.store(true, Ordering::Relaxed);
        }
    }
}

fn first_seq(batch: &LiveBatch) -> u64 {
    (batch.last_seq + 1).saturating_sub(batch.readings.len() as u64)
}

/// One client's stream: where it is and what it still has to send.
struct ClientState {
    subscription: Subscription,
    filter: Filter,
    /// In a cluster, this instance, which every event names.
    instance: Option<String>,
    database: Option<PathBuf>,
    /// The sequence number the client expects next, once known.
    next: Option<u64>,
    /// Sequence numbers older than the buffer still to replay.
    gap: Option<RangeInclusive<u64>>,
    /// The first sequence number of the gap, for the final account.
    gap_from: u64,
    /// Readings of the gap that the database did not have.
    not_found: u64,
    pending: VecDeque<Event>,
    ended: bool,
}

/// `GET /api/readings/stream`: each reading that passes the filters as an
/// event with the reading's sequence number as id and its JSON (as
/// `--json` prints it) as data.
pub async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Filter::parse(query, Kind::Live)?;
    let after = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Last-Event-ID {value:?} is not an event id of this stream; ids are reading sequence numbers, such as Last-Event-ID: 1042"
                    ))
                })?,
        ),
    };
    // An id past the newest reading comes from another outbox: start anew.
    let after = after.filter(|after| state.feed.newest().is_none_or(|newest| *after <= newest));
    let client = ClientState {
        subscription: state.feed.subscribe(after),
        filter,
        instance: state
            .cluster
            .as_ref()
            .map(|cluster| cluster.snapshot().instance),
        database: state.database.clone(),
        next: after.map(|after| after + 1),
        gap: None,
        gap_from: 0,
        not_found: 0,
        pending: VecDeque::new(),
        ended: false,
    };
    let events = futures_util::stream::unfold(client, |mut client| async move {
        let event = client.next_event().await?;
        Some((Ok(event), client))
    });
    // The server's graceful shutdown waits for open responses: end streams.
    let events = events.take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

impl ClientState {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if self.gap.is_some() {
                self.replay_step().await;
                continue;
            }
            let batch = match self.subscription.replay.pop_front() {
                Some(batch) => batch,
                None => match self.subscription.batches.recv().await {
                    Some(batch) => batch,
                    None => {
                        self.ended = true;
                        if self.subscription.dropped.load(Ordering::Relaxed) {
                            self.pending.push_back(Event::default().event("dropped").data(
                                json!({ "error": "this client read the stream slower than readings came and was dropped; reconnect with Last-Event-ID to resume" })
                                    .to_string(),
                            ));
                        }
                        continue;
                    }
                },
            };
            self.take(batch);
        }
    }

    /// Queues the events of `batch`, after what is missing before it.
    fn take(&mut self, batch: LiveBatch) {
        let first = first_seq(&batch);
        let next = *self.next.get_or_insert(first);
        if first > next {
            self.gap = Some(next..=first - 1);
            self.gap_from = next;
            // The gap goes first; this batch comes round again after it.
            self.subscription.replay.push_front(batch);
            self.next = Some(first);
            return;
        }
        for (seq, reading) in batch.numbered().filter(|(seq, _)| *seq >= next) {
            if self.filter.matches(reading) {
                self.pending
                    .push_back(reading_event(seq, reading, self.instance.as_deref()));
            }
        }
        self.next = Some(batch.last_seq + 1);
    }

    /// Sends the next step of the gap: from the database, or an event
    /// `missed` for what cannot be had.
    async fn replay_step(&mut self) {
        let Some(gap) = self.gap.take() else { return };
        let (start, end) = (*gap.start(), *gap.end());
        let Some(database) = self.database.clone() else {
            self.missed(start, end, end - start + 1, "the SQLite sink is off");
            return;
        };
        if end - start + 1 > MAX_DATABASE_REPLAY {
            let skip_to = end + 1 - MAX_DATABASE_REPLAY;
            self.missed(
                start,
                skip_to - 1,
                skip_to - start,
                "more than a stream replays",
            );
            self.gap = Some(skip_to..=end);
            return;
        }
        let step_end = end.min(start + REPLAY_STEP - 1);
        let rows = tokio::task::spawn_blocking(move || stored_by_seq(&database, start..=step_end))
            .await
            .unwrap_or_else(|error| Err(error.to_string()));
        match rows {
            Ok(rows) => {
                self.not_found += (step_end - start + 1) - rows.len() as u64;
                for (seq, reading) in rows {
                    if self.filter.matches(&reading) {
                        self.pending.push_back(reading_event(
                            seq,
                            &reading,
                            self.instance.as_deref(),
                        ));
                    }
                }
                if step_end < end {
                    self.gap = Some(step_end + 1..=end);
                } else if self.not_found > 0 {
                    let missing = std::mem::take(&mut self.not_found);
                    let from = self.gap_from;
                    self.missed(from, end, missing, "not (yet) in the SQLite database");
                }
            }
            Err(error) => self.missed(start, end, end - start + 1, &error),
        }
    }

    fn missed(&mut self, from: u64, to: u64, readings: u64, why: &str) {
        self.pending.push_back(
            Event::default()
                .event("missed")
                .id(to.to_string())
                .data(
                    json!({
                        "from_seq": from,
                        "to_seq": to,
                        "readings": readings,
                        "error": format!("{readings} readings between sequence numbers {from} and {to} cannot be sent: {why}; GET /api/readings has what the SQLite sink stored"),
                    })
                    .to_string(),
                ),
        );
    }
}

/// A reading as an event; in a cluster with the instance that streams it,
/// which read it (the stream sends this instance's readings only).
fn reading_event(seq: u64, reading: &Reading, instance: Option<&str>) -> Event {
    let mut json = reading.to_json();
    if let (Some(map), Some(instance)) = (json.as_object_mut(), instance) {
        map.insert("instance".to_owned(), serde_json::Value::from(instance));
    }
    Event::default().id(seq.to_string()).data(json.to_string())
}

/// The readings with sequence numbers in `seqs` that the SQLite sink
/// stored, in order, found by their keys (`<outbox id>-<seq>`) with the
/// outbox id of the newest row.
fn stored_by_seq(
    database: &Path,
    seqs: RangeInclusive<u64>,
) -> Result<Vec<(u64, Reading)>, String> {
    let connection = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| error.to_string())?;
    let newest: Option<String> = connection
        .query_row(
            "SELECT key FROM readings WHERE key IS NOT NULL ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| error.to_string())?;
    let Some(outbox) = newest
        .as_deref()
        .and_then(|key| key.rsplit_once('-'))
        .map(|(outbox, _)| outbox.to_owned())
    else {
        return Ok(Vec::new());
    };
    let mut statement = connection
        .prepare(
            "SELECT ts, bus, address, request, register, name, value, unit_code, status FROM readings WHERE key = ?1",
        )
        .map_err(|error| error.to_string())?;
    let mut found = Vec::new();
    for seq in seqs {
        let row = statement
            .query_row([format!("{outbox}-{seq}")], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u8>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, u16>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<u8>>(7)?,
                    row.get::<_, String>(8)?,
                ))
            })
            .optional()
            .map_err(|error| error.to_string())?;
        let Some((time, bus, address, request, register, name, value, unit, status)) = row else {
            continue;
        };
        let (Ok(time), Some(status)) = (time.parse::<Timestamp>(), Status::parse(&status)) else {
            continue;
        };
        let value = match (value.and_then(|text| text.parse().ok()), unit) {
            (Some(value), Some(unit)) => Some((value, Unit(unit))),
            _ => None,
        };
        found.push((
            seq,
            Reading {
                time,
                bus,
                address,
                request,
                register,
                name,
                value,
                status,
            },
        ));
    }
    Ok(found)
}
