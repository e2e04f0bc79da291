//! What a bus shows of itself while it runs: connection, last and next run of
//! each request, counters of polls and faults, the last error. Shared with
//! the live table (and later the web page) behind a mutex that is only held
//! to copy or update a few fields.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;

/// The state of one request in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    /// Its description.
    pub description: String,
    /// Its method, as text (`polling 30s`).
    pub method: String,
    /// When it last ran.
    pub last_run: Option<Timestamp>,
    /// When it runs next; `None` for events and spent one-shots.
    pub next_run: Option<Timestamp>,
    /// How its last run went (`ok`, `2 of 3 meters answered`).
    pub last_result: Option<String>,
}

/// The state of one bus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BusState {
    /// The bus name.
    pub name: String,
    /// Where its line is (`tcp 10.0.0.5:4001`).
    pub endpoint: String,
    /// Whether the line is open.
    pub connected: bool,
    /// Its queue, in order.
    pub requests: Vec<RequestState>,
    /// Transactions run.
    pub polls: u64,
    /// Transactions without a reply.
    pub timeouts: u64,
    /// Corrupt replies and line faults (CRC, truncated, garbage, wrong address).
    pub faults: u64,
    /// Frames received with a CRC error (also counted in `faults`).
    pub crc_errors: u64,
    /// Times the line was (re)opened after the first.
    pub reconnects: u64,
    /// The last error, with its time.
    pub last_error: Option<(Timestamp, String)>,
    /// How late the latest timed runs started, in microseconds, oldest
    /// first; at most [`LATENESS_SAMPLES`].
    pub lateness_us: VecDeque<u64>,
}

/// How many lateness samples a bus keeps.
pub const LATENESS_SAMPLES: usize = 1024;

impl BusState {
    /// Records how late a timed run started (negative counts as on time).
    pub fn record_lateness(&mut self, late: jiff::SignedDuration) {
        if self.lateness_us.len() == LATENESS_SAMPLES {
            self.lateness_us.pop_front();
        }
        let micros = u64::try_from(late.as_micros()).unwrap_or(0);
        self.lateness_us.push_back(micros);
    }
}

/// A bus state shared between its task and its viewers.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<Mutex<BusState>>);

impl SharedState {
    /// Wraps a state.
    pub fn new(state: BusState) -> Self {
        SharedState(Arc::new(Mutex::new(state)))
    }

    /// Locks for an update. A panic elsewhere while holding the lock leaves
    /// plain data behind, so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, BusState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> BusState {
        self.lock().clone()
    }
}
