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
    /// Its method in words, for people (`every 30 s`, `on event `hot``).
    pub method_words: String,
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
    /// Whether the bus only listens to another master (every request has
    /// `send = false`).
    pub listening_only: bool,
    /// When a line that is down is tried again; `None` while it is up, or
    /// when no request is due to open it.
    pub retry_at: Option<Timestamp>,
    /// The IANA name of the time zone its schedules run in (and the
    /// logger's), when it has one.
    pub time_zone: Option<String>,
    /// The meters of its requests, by address, in the order they first
    /// appear in the queue.
    pub meters: Vec<MeterState>,
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

/// What a bus knows of one meter, from the readings it took of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeterState {
    /// Its address on the bus.
    pub address: u8,
    /// Its model, when a request names it.
    pub model: Option<kmp::catalogue::Model>,
    /// Its serial number, once a request has read register 1001.
    pub serial: Option<String>,
    /// When it last answered.
    pub last_answer: Option<Timestamp>,
    /// The status of its latest attempt (`ok`, `timeout`, ...).
    pub last_status: Option<String>,
    /// Attempts to read it (one per request run, whatever the registers).
    pub attempts: u64,
    /// Attempts it answered.
    pub answers: u64,
    /// Values flagged `suspect` (a running total that fell).
    pub suspect: u64,
    /// The info-code flags its latest info code raised.
    pub info_flags: Vec<String>,
    /// The fewest reads a day any of its requests allows (`reads_per_day`).
    pub reads_per_day: Option<u32>,
    /// Reads of it on the logger's current day, and that day.
    pub reads_today: u32,
    /// The day `reads_today` counts, in the logger's time zone.
    pub day: Option<jiff::civil::Date>,
}

/// A method in words: `every 5 s`, `at 11:00:00, 11:20:00`,
/// ``cron `0 */15 * * * *` ``, ``on event `hot` ``, `once, at start`.
pub fn method_in_words(method: &kmp_schedule::Method) -> String {
    use kmp_schedule::Method;
    match method {
        Method::Once => "once, at start".to_owned(),
        Method::Polling(interval) => {
            // `5s` → `5 s`: the interval's own text, its unit set apart.
            let text = interval.to_string();
            let split = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            format!("every {number} {unit}")
        }
        Method::TimesOfDay(times) => format!("at {}", times.to_string().replace(';', ", ")),
        Method::Cron(cron) => format!("cron `{cron}`"),
        Method::Event(name) => format!("on event `{name}`"),
    }
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

    /// Whether `other` is this very state (a clone of it), not a copy.
    pub fn is(&self, other: &SharedState) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The running buses, their configurations and states in the
/// configuration's order, shared by the logger and its viewers: a reload
/// replaces the list, and every viewer sees the new one on its next look.
#[derive(Debug, Clone, Default)]
pub struct BusList(Arc<std::sync::RwLock<Listing>>);

#[derive(Debug, Default)]
struct Listing {
    /// Empty for a list made of states alone (tests of the viewers).
    configs: Vec<crate::config::BusConfig>,
    states: Vec<SharedState>,
}

impl BusList {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Listing> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The buses now.
    pub fn states(&self) -> Vec<SharedState> {
        self.read().states.clone()
    }

    /// A copy of the state of every bus now.
    pub fn snapshots(&self) -> Vec<BusState> {
        self.read()
            .states
            .iter()
            .map(SharedState::snapshot)
            .collect()
    }

    /// The configuration of every bus now, and a copy of its state.
    pub fn configs_and_snapshots(&self) -> (Vec<crate::config::BusConfig>, Vec<BusState>) {
        let listing = self.read();
        let states = listing.states.iter().map(SharedState::snapshot).collect();
        (listing.configs.clone(), states)
    }

    /// Puts `configs` and their `states` in place of the list.
    pub fn replace(&self, configs: Vec<crate::config::BusConfig>, states: Vec<SharedState>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Listing { configs, states };
    }
}

impl From<Vec<SharedState>> for BusList {
    fn from(states: Vec<SharedState>) -> Self {
        BusList(Arc::new(std::sync::RwLock::new(Listing {
            configs: Vec::new(),
            states,
        })))
    }
}
