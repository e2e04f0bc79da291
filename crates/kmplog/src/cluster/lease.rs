//! The lease of one bus as its holder sees it: a local deadline, and the
//! permit a bus task asks before each transaction.
//!
//! The coordinator keeps each lease's expiry by its own clock (`now() +
//! lease`). The holder never reads that expiry: it measures from the moment
//! it *sent* the statement that renewed (or acquired) the lease, on its own
//! monotonic clock, and stops a margin before `lease` has passed
//! ([`Timing::deadline`]). The server executed the statement after it was
//! sent, so its expiry lies later than the holder's deadline whatever the
//! delays on the way; the margin covers the two clocks' rates differing and
//! the moment the line takes to close. ARCHITECTURE.md (Cluster) has the
//! whole argument.
//!
//! Opening the line, and each transaction on it, starts only when it can
//! end before the deadline ([`Permit::allows`], asked before each step with
//! the room that step needs), and each attempt on the line only when the
//! master can end it by then (the bus task gives the master the deadline:
//! [`crate::bus::Master::set_write_by`], which also counts drains and long
//! replies); when the deadline passes unrenewed the permit is
//! revoked, which stops the bus's task between transactions, so its line
//! is closed before anyone else may acquire the bus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bus::wake::WAKE_TIMEOUT;
use crate::config::{BusConfig, BusEndpoint, RequestConfig};
use crate::transport::SerialSettings;

/// The lease when `[cluster]` sets none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// How an instance times its leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the coordinator keeps a lease after its last renewal.
    pub lease: Duration,
}

impl Timing {
    /// How often leases are renewed and members heartbeat: three times a
    /// lease, so that two renewals in a row may fail before one lapses.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// What the holder gives up of each lease: a tenth of it. It covers a
    /// clock that runs up to 1 % fast over the lease many times over, and
    /// the time a stopped bus takes to close its line.
    pub fn margin(&self) -> Duration {
        self.lease / 10
    }

    /// The local deadline of a lease renewed by a statement sent at `sent`:
    /// `sent + lease - margin`. Measured from before the statement left, so
    /// that no delay (on the network, in the server, in this process) can
    /// move it past the server's expiry.
    pub fn deadline(&self, sent: Instant) -> Instant {
        sent + self.lease - self.margin()
    }
}

/// The longest opening the line of `bus` can take: its connect timeout on
/// TCP; a serial port or a UDP socket opens at once. A bus task asks for
/// this much room before it opens the line.
pub fn longest_opening(bus: &BusConfig) -> Duration {
    match &bus.endpoint {
        BusEndpoint::Tcp(settings) => settings.connect_timeout,
        BusEndpoint::Serial(_) | BusEndpoint::Udp { .. } => Duration::ZERO,
    }
}

/// The longest one transaction of `request` on an open line of `bus` can
/// take: every attempt's wait (the first one perhaps waking an optical
/// port), the pauses before retries and the request's bytes on a paced
/// line. A bus task asks for this much room before each transaction.
pub fn longest_transaction(bus: &BusConfig, request: &RequestConfig) -> Duration {
    let byte_time = match &bus.endpoint {
        BusEndpoint::Serial(settings) => serial_byte_time(settings),
        BusEndpoint::Tcp(_) | BusEndpoint::Udp { .. } => Duration::ZERO,
    };
    let registers: Vec<u16> = request.items.iter().map(|item| item.register).collect();
    let frame_bytes = kmp::message::Request::get_register(&registers).map_or(0, |get| {
        request
            .addresses
            .iter()
            .map(|&address| get.to_frame(address).encode().len())
            .max()
            .unwrap_or(0)
    });
    let sending = byte_time.saturating_mul(u32::try_from(frame_bytes).unwrap_or(u32::MAX));
    let first = request.timeout.max(WAKE_TIMEOUT) + sending;
    let later = (request.timeout + sending + bus.retry_pause).saturating_mul(request.retries);
    first + later
}

/// The longest step a bus task takes under a permit for `request`: opening
/// the line, or one transaction on it, whichever is longer. Each is
/// checked on its own, so a lease needs room for the longer one only.
pub fn longest_step(bus: &BusConfig, request: &RequestConfig) -> Duration {
    longest_opening(bus).max(longest_transaction(bus, request))
}

fn serial_byte_time(settings: &SerialSettings) -> Duration {
    crate::transport::Endpoint::Serial(settings.clone()).byte_time()
}

/// What a permit holds, shared between the cluster and the bus task.
struct Shared {
    bus: String,
    token: i64,
    deadline: watch::Sender<Instant>,
    revoked: CancellationToken,
    /// The stop tokens of the tasks running the bus on this permit.
    tasks: Mutex<Vec<CancellationToken>>,
}

/// The right to poll one bus, under one lease acquisition (its fencing
/// token), until a deadline that renewals push forward. Clones share it.
#[derive(Clone)]
pub struct Permit(Arc<Shared>);

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("bus", &self.0.bus)
            .field("token", &self.0.token)
            .field("revoked", &self.is_revoked())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Permit {
    /// The same acquisition: a lease lost and acquired again is another.
    fn eq(&self, other: &Permit) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Permit {
    /// A permit for `bus` acquired with fencing token `token`, valid until
    /// `deadline`.
    pub fn new(bus: &str, token: i64, deadline: Instant) -> Permit {
        let (deadline, _) = watch::channel(deadline);
        Permit(Arc::new(Shared {
            bus: bus.to_owned(),
            token,
            deadline,
            revoked: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// The bus.
    pub fn bus(&self) -> &str {
        &self.0.bus
    }

    /// The fencing token of the acquisition.
    pub fn token(&self) -> i64 {
        self.0.token
    }

    /// The current deadline.
    pub fn deadline(&self) -> Instant {
        *self.0.deadline.borrow()
    }

    /// Moves the deadline to `deadline` after a renewal; never back, and
    /// not once revoked.
    pub fn extend(&self, deadline: Instant) {
        if self.is_revoked() {
            return;
        }
        self.0.deadline.send_if_modified(|current| {
            let later = deadline > *current;
            if later {
                *current = deadline;
            }
            later
        });
    }

    /// Takes the bus away: its tasks stop after the transaction in flight.
    pub fn revoke(&self) {
        self.0.revoked.cancel();
        for task in self
            .0
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            task.cancel();
        }
    }

    /// Whether the permit was revoked (or its deadline passed and a check
    /// saw it).
    pub fn is_revoked(&self) -> bool {
        self.0.revoked.is_cancelled()
    }

    /// Binds a bus task's stop token to the permit: revoking it, or its
    /// deadline passing, stops the task. The watch runs until the task's
    /// token is cancelled.
    pub fn attach(&self, stop: CancellationToken) {
        if self.is_revoked() {
            stop.cancel();
            return;
        }
        self.0
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stop.clone());
        tokio::spawn(self.clone().watch(stop));
    }

    /// Revokes the permit when its deadline passes unrenewed.
    async fn watch(self, stop: CancellationToken) {
        let mut changes = self.0.deadline.subscribe();
        loop {
            let deadline = *changes.borrow_and_update();
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.0.revoked.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if Instant::now() >= self.deadline() {
                        tracing::warn!(
                            bus = %self.0.bus,
                            token = self.0.token,
                            "lease not renewed in time: the bus stops"
                        );
                        self.revoke();
                        return;
                    }
                }
            }
        }
    }

    /// Waits until a step of `longest` (opening the line, or a
    /// transaction) can end before the deadline (a renewal may push it),
    /// and says yes; says no once the permit is
    /// revoked or its deadline has passed: the bus must stop.
    pub async fn allows(&self, longest: Duration) -> bool {
        let mut changes = self.0.deadline.subscribe();
        loop {
            if self.is_revoked() {
                return false;
            }
            let deadline = *changes.borrow_and_update();
            let now = Instant::now();
            if now >= deadline {
                self.revoke();
                return false;
            }
            if now + longest <= deadline {
                return true;
            }
            tokio::select! {
                () = self.0.revoked.cancelled() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        self.revoke();
                    }
                }
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(3);

    fn timing() -> Timing {
        Timing { lease: LEASE }
    }

    #[test]
    fn the_deadline_is_the_send_instant_plus_the_lease_less_a_tenth() {
        let sent = Instant::now();
        assert_eq!(timing().deadline(sent), sent + Duration::from_millis(2_700));
        assert_eq!(timing().renew_every(), Duration::from_secs(1));
        assert_eq!(timing().margin(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transaction_starts_only_when_it_ends_before_the_deadline() {
        let permit = Permit::new("b", 1, timing().deadline(Instant::now()));
        assert!(permit.allows(Duration::from_secs(2)).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // 1.7 s are left: a 2 s transaction waits for a renewal...
        let waiting = tokio::spawn({
            let permit = permit.clone();
            async move { permit.allows(Duration::from_secs(2)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        // ... which comes, sent now: the deadline moves to now + 2.7 s.
        permit.extend(timing().deadline(Instant::now()));
        assert!(waiting.await.unwrap());
        assert!(!permit.is_revoked());
    }

    #[tokio::test(start_paused = true)]
    async fn without_renewal_nothing_starts_after_the_deadline_and_the_task_is_stopped() {
        let start = Instant::now();
        let permit = Permit::new("b", 7, timing().deadline(start));
        let stop = CancellationToken::new();
        permit.attach(stop.clone());
        let waiting = tokio::spawn({
            let permit = permit.clone();
            async move {
                let allowed = permit.allows(Duration::from_secs(3)).await;
                (allowed, Instant::now())
            }
        });
        let (allowed, at) = waiting.await.unwrap();
        assert!(!allowed, "no room for 3 s in a 2.7 s lease");
        assert_eq!(at - start, Duration::from_millis(2_700));
        assert!(stop.is_cancelled(), "the bus task is told to stop");
        assert!(permit.is_revoked());
        // A renewal that comes late changes nothing.
        permit.extend(Instant::now() + LEASE);
        assert!(!permit.allows(Duration::ZERO).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_lease_starts_no_transaction_after_it() {
        let start = Instant::now();
        let permit = Permit::new("b", 1, timing().deadline(start));
        // The process is stopped (SIGSTOP) for 10 s: when it resumes, the
        // check before the next transaction sees the deadline passed,
        // however little room the transaction asks for.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!permit.allows(Duration::ZERO).await);
        assert!(permit.is_revoked());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_stops_the_task_at_the_deadline_unless_renewed() {
        let permit = Permit::new("b", 1, timing().deadline(Instant::now()));
        let stop = CancellationToken::new();
        permit.attach(stop.clone());
        for _ in 0..5 {
            tokio::time::sleep(timing().renew_every()).await;
            permit.extend(timing().deadline(Instant::now()));
            assert!(!stop.is_cancelled());
        }
        let last = permit.deadline();
        tokio::time::sleep_until(last - Duration::from_millis(1)).await;
        assert!(!stop.is_cancelled());
        tokio::time::sleep_until(last).await;
        tokio::task::yield_now().await;
        assert!(stop.is_cancelled());
    }

    fn one_request(text: &str) -> crate::config::Config {
        crate::config::parse(text, "kmplog.toml").unwrap().0
    }

    #[test]
    fn the_longest_transaction_counts_every_attempt_and_the_pauses_but_not_the_connect() {
        let config = one_request(
            "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nconnect_timeout_ms = 1000\nretry_pause_ms = 100\n\
             [[bus.request]]\ndescription = \"r\"\naddresses = \"1\"\nitems = [\"T1\"]\npolling = \"5s\"\n\
             timeout_ms = 500\nretries = 2\n",
        );
        let bus = &config.buses[0];
        let request = &bus.requests[0];
        // The first attempt as long as a wake-up wait allows, two more of
        // 0.5 s after 0.1 s each.
        let transaction =
            WAKE_TIMEOUT.max(Duration::from_millis(500)) + Duration::from_millis(1_200);
        assert_eq!(longest_transaction(bus, request), transaction);
        assert_eq!(longest_opening(bus), Duration::from_secs(1));
        assert_eq!(longest_step(bus, request), transaction);
    }

    #[test]
    fn with_the_defaults_the_longest_step_is_the_connect_and_fits_the_default_lease_twice() {
        let config = one_request(
            "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\n\
             [[bus.request]]\ndescription = \"r\"\naddresses = \"1\"\nitems = [\"T1\"]\npolling = \"5s\"\n",
        );
        let bus = &config.buses[0];
        let request = &bus.requests[0];
        // Reply 1.6 s, one retry 1.8 s more.
        assert_eq!(
            longest_transaction(bus, request),
            Duration::from_millis(3_400)
        );
        assert_eq!(longest_step(bus, request), Duration::from_secs(5));
        assert!(longest_step(bus, request) * 2 <= DEFAULT_LEASE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_or_a_transaction_started_just_before_the_deadline_waits_and_stops() {
        let start = Instant::now();
        let permit = Permit::new("b", 1, timing().deadline(start));
        let (connect, transaction) = (Duration::from_secs(1), Duration::from_millis(600));
        // 2.7 s of room: a connect may start until 1.7 s, a transaction
        // until 2.1 s, each measured by what it needs.
        tokio::time::sleep(Duration::from_millis(1_700)).await;
        assert!(permit.allows(connect).await);
        assert_eq!(Instant::now() - start, Duration::from_millis(1_700));
        tokio::time::sleep(Duration::from_millis(1)).await;
        let connecting = tokio::spawn({
            let permit = permit.clone();
            async move { (permit.allows(connect).await, Instant::now()) }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!connecting.is_finished(), "no connect 1 ms too late");
        assert!(permit.allows(transaction).await, "a transaction still fits");
        tokio::time::sleep_until(start + Duration::from_millis(2_101)).await;
        let late = tokio::spawn({
            let permit = permit.clone();
            async move { (permit.allows(transaction).await, Instant::now()) }
        });
        let (allowed, at) = late.await.unwrap();
        assert!(!allowed, "no transaction 1 ms too late");
        assert_eq!(
            at - start,
            Duration::from_millis(2_700),
            "it waited for a renewal"
        );
        let (allowed, at) = connecting.await.unwrap();
        assert!(!allowed);
        assert_eq!(at - start, Duration::from_millis(2_700));
        assert!(permit.is_revoked());
    }
}
