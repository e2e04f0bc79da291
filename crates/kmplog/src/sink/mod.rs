//! Sinks: where readings go once they are in the [outbox](crate::outbox).
//! Each sink runs on a thread of its own, with its own cursor in the outbox:
//! it takes the readings after its cursor, delivers them, and only then moves
//! the cursor on. A sink that fails keeps its place and tries again with
//! back-off; it holds up neither the buses nor the other sinks, and when it
//! comes back it gets everything it missed, in order. While readings keep
//! coming, a sink gathers them for a moment ([`Sink::gather`]) and delivers
//! them together.

pub mod files;
pub mod influx;
pub mod mqtt;
pub mod postgres;
pub mod sqlite;
pub mod stdout;
pub mod url;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::outbox::{Outbox, OutboxError, OutboxReader, Stored};

/// What [`Sink::deliver`] returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + 'a>>;

/// A destination for readings.
pub trait Sink: Send + 'static {
    /// The sink's name, such as `sqlite:kmplog.db`: its cursor in the
    /// outbox is kept under it, so it must stay the same across restarts.
    fn name(&self) -> String;

    /// Whether the sink resumes where it stopped after a restart (files,
    /// databases, brokers) or starts with the readings taken from then on
    /// (standard output).
    fn durable(&self) -> bool {
        true
    }

    /// Delivers a batch, in order. `Ok` means the destination has it for
    /// good; an error leaves the batch in the outbox to be delivered again,
    /// so a sink must take a batch it has partly seen before without
    /// duplicating (the readings' keys are for that).
    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a>;

    /// For a sink that keeps a connection of its own (a broker's): a count
    /// of the times it connected, so that a sink that failed is tried again
    /// as soon as its connection is back, not after its back-off. Sinks
    /// that connect as they deliver have none.
    fn connections(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// How long the sink waits after a delivery that took all there was,
    /// so that the readings arriving meanwhile go in one delivery instead
    /// of one each: each delivery costs a transaction (or a request) at the
    /// destination and an acknowledgement in the outbox, whatever its size.
    /// A reading after a quiet spell goes at once; one arriving during the
    /// wait is delivered at most this much later.
    fn gather(&self) -> Duration {
        GATHER
    }
}

/// A sink that cannot take readings now; they wait in the outbox.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// Wraps any error with what was being done.
    pub fn context(doing: &str, error: impl std::fmt::Display) -> Self {
        SinkError(format!("{doing}: {error}"))
    }
}

/// Readings a sink takes from the outbox at a time.
const BATCH: usize = 500;
/// First pause after a failed delivery; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between delivery attempts: a database or broker that
/// comes back after a long outage is written to again within it, rather
/// than after a pause that grew while it was away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle sink looks at the outbox even without news.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// [`Sink::gather`] unless a sink says otherwise: at 2,500 buses, about
/// 3,300 readings a second arrive a meter's worth at a time; gathered for
/// a second they make a few deliveries of [`BATCH`] instead of hundreds of
/// a few readings (BENCHMARKS.md "Scale").
const GATHER: Duration = Duration::from_secs(1);

/// When the sinks were told to stop, and until when they may go on.
#[derive(Debug, Clone, Default)]
struct Stop {
    token: CancellationToken,
    deadline: Arc<OnceLock<std::time::Instant>>,
}

impl Stop {
    fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the sinks are stopping and their grace time is over.
    async fn for_good(&self) {
        self.token.cancelled().await;
        if let Some(deadline) = self.deadline.get() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(*deadline)).await;
        }
    }
}

/// The running sinks.
pub struct Sinks {
    threads: Vec<JoinHandle<()>>,
    stop: Stop,
}

impl Sinks {
    /// Registers every sink's cursor in `outbox` and starts a thread for
    /// each; `appended` says when new readings are in the outbox.
    pub fn start(
        outbox: &mut Outbox,
        sinks: Vec<Box<dyn Sink>>,
        appended: &watch::Receiver<u64>,
    ) -> Result<Sinks, String> {
        let names: Vec<String> = sinks.iter().map(|sink| sink.name()).collect();
        for sink in &sinks {
            outbox
                .register(&sink.name(), sink.durable())
                .map_err(|error| error.to_string())?;
        }
        for gone in outbox
            .forget_other_sinks(&names)
            .map_err(|error| error.to_string())?
        {
            info!(
                sink = %gone,
                "sink no longer configured; the outbox keeps no readings for it"
            );
        }
        let stop = Stop::default();
        let mut threads = Vec::new();
        for sink in sinks {
            let reader = outbox.reader().map_err(|error| error.to_string())?;
            let (appended, stop) = (appended.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("sink {}", sink.name()))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime.block_on(drain(sink, reader, appended, stop)),
                        Err(error) => {
                            error!(sink = %sink.name(), reason = %error, "sink cannot start")
                        }
                    }
                })
                .map_err(|error| format!("cannot start a sink thread: {error}"))?;
            threads.push(thread);
        }
        Ok(Sinks { threads, stop })
    }

    /// Stops the sinks: each delivers what it can within `grace`, the rest
    /// stays in the outbox for the next start.
    pub fn stop(self, grace: Duration) {
        let _ = self.stop.deadline.set(std::time::Instant::now() + grace);
        self.stop.token.cancel();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// One sink's loop: deliver what follows its cursor, acknowledge, repeat.
/// A sink that fails is logged once as down, with the reason, and once as
/// delivering again, with the backlog it had.
async fn drain(
    mut sink: Box<dyn Sink>,
    reader: OutboxReader,
    mut appended: watch::Receiver<u64>,
    stop: Stop,
) {
    let name = sink.name();
    let mut connections = sink.connections();
    let mut backoff = MIN_BACKOFF;
    let mut down: Option<String> = None;
    let gather = sink.gather();
    // Set after a delivery that took all there was: the next one waits.
    let mut gathering_until: Option<tokio::time::Instant> = None;
    let report = |reason: String, reader: &OutboxReader, down: &mut Option<String>| {
        let backlog = reader.depth(&name).ok();
        match down {
            None => warn!(sink = %name, %reason, backlog, "sink down; readings wait in the outbox"),
            Some(before) if *before != reason => {
                debug!(sink = %name, %reason, backlog, "sink still down");
            }
            Some(_) => {}
        }
        *down = Some(reason);
    };
    loop {
        if let Some(until) = gathering_until.take() {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = stop.token.cancelled() => {}
            }
        }
        let batch = match reader
            .cursor(&name)
            .and_then(|cursor| Ok((cursor, reader.after(cursor, BATCH)?)))
        {
            Ok(batch) => Some(batch),
            Err(error) => {
                report(error.to_string(), &reader, &mut down);
                None
            }
        };
        let Some((_, batch)) = batch.filter(|(cursor, batch)| batch.through > *cursor) else {
            if stop.is_stopping() {
                return;
            }
            tokio::select! {
                _ = appended.changed() => {}
                () = stop.token.cancelled() => {}
                () = tokio::time::sleep(IDLE_CHECK) => {}
            }
            continue;
        };
        if batch.readings.is_empty() {
            // Only damaged rows, which the outbox has reported: pass over them.
            if let Err(error) = ack(&reader, &name, batch.through) {
                report(error, &reader, &mut down);
            }
            continue;
        }
        let delivered = tokio::select! {
            delivered = sink.deliver(&batch.readings) => delivered,
            () = stop.for_good() => return,
        };
        let backlog = reader.depth(&name).ok();
        match delivered
            .map_err(|error| error.to_string())
            .and_then(|()| ack(&reader, &name, batch.through))
        {
            Ok(()) => {
                backoff = MIN_BACKOFF;
                if batch.readings.len() < BATCH && !stop.is_stopping() {
                    gathering_until = Some(tokio::time::Instant::now() + gather);
                }
                if down.take().is_some() {
                    info!(sink = %name, backlog, "sink delivering again");
                }
            }
            Err(error) => {
                report(error, &reader, &mut down);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = connected_again(&mut connections) => {}
                    () = stop.for_good() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Completes when the sink's own connection is made again; never for a
/// sink without one.
async fn connected_again(connections: &mut Option<watch::Receiver<u64>>) {
    let changed = match connections {
        Some(receiver) => receiver.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

fn ack(reader: &OutboxReader, name: &str, last: u64) -> Result<(), String> {
    reader
        .ack(name, last)
        .map_err(|error: OutboxError| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Reading, Status};
    use std::sync::Mutex;

    /// Records what it is given; refuses the first `failures` deliveries.
    struct Flaky {
        failures: u32,
        delivered: Arc<Mutex<Vec<u64>>>,
    }

    impl Sink for Flaky {
        fn name(&self) -> String {
            "flaky".to_owned()
        }

        fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
            Box::pin(async move {
                if self.failures > 0 {
                    self.failures -= 1;
                    return Err(SinkError("down".to_owned()));
                }
                self.delivered
                    .lock()
                    .unwrap()
                    .extend(batch.iter().map(|stored| stored.seq));
                Ok(())
            })
        }
    }

    fn reading(register: u16) -> Reading {
        Reading {
            time: "2026-11-25T08:00:00Z".parse().unwrap(),
            bus: "b".to_owned(),
            address: 1,
            request: "r".to_owned(),
            register,
            name: "X".to_owned(),
            value: None,
            status: Status::Timeout,
        }
    }

    fn run(failures: u32, grace: Duration) -> (Vec<u64>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000).unwrap();
        let (appended, receiver) = watch::channel(0);
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky {
            failures,
            delivered: Arc::clone(&delivered),
        };
        let sinks = Sinks::start(&mut outbox, vec![Box::new(sink)], &receiver).unwrap();
        for register in 1..=3 {
            appended.send_replace(outbox.append(&[reading(register)]).unwrap());
        }
        // Let a recovering sink catch up before stopping.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while failures < 10
            && delivered.lock().unwrap().len() < 3
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        sinks.stop(grace);
        let depth = outbox.reader().unwrap().depth("flaky").unwrap();
        let delivered = delivered.lock().unwrap().clone();
        (delivered, depth)
    }

    #[test]
    fn a_sink_that_comes_back_gets_everything_in_order_once() {
        let (delivered, depth) = run(2, Duration::from_secs(1));
        assert_eq!((delivered, depth), (vec![1, 2, 3], 0));
    }

    #[test]
    fn a_dead_sink_is_given_up_at_the_grace_time_and_its_readings_wait() {
        let (delivered, depth) = run(u32::MAX, Duration::from_millis(300));
        assert_eq!((delivered, depth), (vec![], 3));
    }

    /// Records the size of each batch it is given.
    struct Batches(Arc<Mutex<Vec<usize>>>);

    impl Sink for Batches {
        fn name(&self) -> String {
            "batches".to_owned()
        }

        fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
            self.0.lock().unwrap().push(batch.len());
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn readings_arriving_one_at_a_time_are_gathered_into_few_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000).unwrap();
        let (appended, receiver) = watch::channel(0);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let sink = Batches(Arc::clone(&sizes));
        let sinks = Sinks::start(&mut outbox, vec![Box::new(sink)], &receiver).unwrap();
        // 30 readings over 0.6 s, well within one gathering.
        for register in 1..=30 {
            appended.send_replace(outbox.append(&[reading(register)]).unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        let total = || sizes.lock().unwrap().iter().sum::<usize>();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while total() < 30 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        sinks.stop(Duration::from_secs(1));
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 30, "{sizes:?}");
        assert!(
            sizes.len() <= 3,
            "one delivery per reading or so: {sizes:?}"
        );
    }

    /// Runs the flaky sink's loop on this thread until it has `count`
    /// readings (or 10 s pass); returns them and what was logged.
    fn drain_until(outbox: &Outbox, failures: u32, count: usize) -> (Vec<u64>, String) {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky {
            failures,
            delivered: Arc::clone(&delivered),
        };
        let reader = outbox.reader().unwrap();
        let (_appended, receiver) = watch::channel(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ((), logged) = crate::logging::capture(|| {
            runtime.block_on(async {
                let enough = async {
                    while delivered.lock().unwrap().len() < count {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    () = drain(Box::new(sink), reader, receiver, Stop::default()) => {}
                    () = enough => {}
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            });
        });
        let delivered = delivered.lock().unwrap().clone();
        (delivered, logged)
    }

    /// Refuses every delivery until `back`, then records when it took one;
    /// with `connections`, it says when it is connected again.
    struct DownUntil {
        back: tokio::time::Instant,
        delivered_at: Arc<Mutex<Option<tokio::time::Instant>>>,
        connections: Option<watch::Receiver<u64>>,
    }

    impl Sink for DownUntil {
        fn name(&self) -> String {
            "down-until".to_owned()
        }

        fn deliver<'a>(&'a mut self, _batch: &'a [Stored]) -> SinkFuture<'a> {
            Box::pin(async move {
                let now = tokio::time::Instant::now();
                if now < self.back {
                    return Err(SinkError("connection refused".to_owned()));
                }
                self.delivered_at.lock().unwrap().get_or_insert(now);
                Ok(())
            })
        }

        fn connections(&self) -> Option<watch::Receiver<u64>> {
            self.connections.clone()
        }
    }

    /// How long after the end of a 40 s outage the sink first took a
    /// reading; with `reconnects`, the sink's connection comes back with it.
    fn delivery_after_outage(reconnects: bool) -> Duration {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000).unwrap();
        outbox.register("down-until", true).unwrap();
        outbox.append(&[reading(1)]).unwrap();
        let reader = outbox.reader().unwrap();
        let (_appended, receiver) = watch::channel(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let back = tokio::time::Instant::now() + Duration::from_secs(40);
            let delivered_at = Arc::new(Mutex::new(None));
            let (connected, connections) = watch::channel(0_u64);
            let sink = DownUntil {
                back,
                delivered_at: Arc::clone(&delivered_at),
                connections: reconnects.then_some(connections),
            };
            let connection = async {
                tokio::time::sleep_until(back).await;
                connected.send_replace(1);
                std::future::pending::<()>().await;
            };
            let delivered = async {
                loop {
                    if let Some(at) = *delivered_at.lock().unwrap() {
                        return at;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::select! {
                () = drain(Box::new(sink), reader, receiver, Stop::default()) => {
                    unreachable!("the loop runs until stopped")
                }
                () = connection => unreachable!("it stays connected"),
                at = delivered => at.duration_since(back),
            }
        })
    }

    #[test]
    fn a_sink_back_after_a_long_outage_is_written_to_within_five_seconds() {
        let after_return = delivery_after_outage(false);
        assert!(
            after_return <= Duration::from_secs(5),
            "delivered {after_return:?} after the sink came back"
        );
    }

    #[test]
    fn a_sink_whose_connection_is_back_is_written_to_at_once() {
        let after_return = delivery_after_outage(true);
        assert!(
            after_return < Duration::from_millis(50),
            "delivered {after_return:?} after the sink's connection came back"
        );
    }

    #[test]
    fn a_sink_passes_over_damaged_rows_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let mut outbox = Outbox::open(&path, 10_000).unwrap();
        outbox.register("flaky", true).unwrap();
        let readings: Vec<Reading> = (0..503).map(reading).collect();
        outbox.append(&readings).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE readings SET status = 'damaged' WHERE seq <= 500",
                [],
            )
            .unwrap();
        let started = std::time::Instant::now();
        let (delivered, logged) = drain_until(&outbox, 0, 3);
        assert_eq!(delivered, [501, 502, 503], "{logged}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "at once, not after {:?}",
            started.elapsed()
        );
        assert_eq!(outbox.reader().unwrap().depth("flaky").unwrap(), 0);
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(logged.contains("first=1 last=500 count=500"), "{logged}");
    }

    #[test]
    fn a_sink_down_and_back_is_logged_once_each_with_its_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000).unwrap();
        outbox.register("flaky", true).unwrap();
        outbox
            .append(&[reading(1), reading(2), reading(3)])
            .unwrap();
        let (delivered, logged) = drain_until(&outbox, 3, 3);
        assert_eq!(delivered, [1, 2, 3]);
        let lines: Vec<&str> = logged.lines().collect();
        assert_eq!(lines.len(), 2, "{logged}");
        assert!(
            lines[0].contains("WARN sink down")
                && lines[0].contains("sink=flaky reason=down backlog=3"),
            "{logged}"
        );
        assert!(
            lines[1].contains("INFO sink delivering again") && lines[1].contains("backlog=3"),
            "{logged}"
        );
    }
}
