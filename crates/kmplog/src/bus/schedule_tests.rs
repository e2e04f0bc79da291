//! The bus task on paused time: each request method, queue order, merged
//! ticks and reconnection, against the simulator over an in-memory line.
//! Hours of schedule run in milliseconds, and every time stamp is exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kmp::catalogue::Model;
use kmp_schedule::{Cron, Interval, Method, TimesOfDay};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::EchoMode;
use super::events::EventRouter;
use super::state::SharedState;
use super::task::{BusContext, initial_state, run_bus_on};
use crate::backfill::auto::BackfillMemory;
use crate::clock::Clock;
use crate::config::{BusConfig, BusEndpoint, Item, RequestConfig};
use crate::reading::{Batch, Reading, Status};
use crate::sim::line::LineConfig;
use crate::sim::meter::Meter;
use crate::sim::{Settings, Simulator, session};
use crate::transport::{OpenFuture, Opener, TcpSettings, TransportError};

/// Opens in-memory lines to a simulator; the first `failures` opens fail,
/// and so does every open before `down_until` (from `cut_at` on, when
/// set); a line open at `cut_at` is closed then.
struct SimulatedLine {
    simulator: Arc<Simulator>,
    failures: AtomicU32,
    opens: AtomicU32,
    down_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    cut_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// The test keeps a handle to count the opens.
impl Opener for Arc<SimulatedLine> {
    fn open(&self) -> OpenFuture<'_> {
        self.as_ref().open()
    }

    fn byte_time(&self) -> Duration {
        Duration::ZERO
    }
}

impl std::fmt::Display for SimulatedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated line")
    }
}

impl Opener for SimulatedLine {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move {
            self.opens.fetch_add(1, Ordering::SeqCst);
            let now = tokio::time::Instant::now();
            let cut = self.cut_at.lock().unwrap().is_none_or(|at| at <= now);
            let down = cut
                && self
                    .down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|until| now < until);
            if down || self.failures.load(Ordering::SeqCst) > 0 {
                if !down {
                    self.failures.fetch_sub(1, Ordering::SeqCst);
                }
                let source =
                    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "gateway down");
                return Err(TransportError::Connect {
                    address: "simulated".to_owned(),
                    source,
                });
            }
            let (logger_end, meter_end) = tokio::io::duplex(4096);
            let simulator = Arc::clone(&self.simulator);
            let cut_at = *self.cut_at.lock().unwrap();
            tokio::spawn(async move {
                let served = session::serve(&simulator, "test", meter_end, None);
                match cut_at.filter(|at| tokio::time::Instant::now() < *at) {
                    // Dropping the meter's end closes the line.
                    Some(at) => tokio::select! {
                        _ = served => {}
                        () = tokio::time::sleep_until(at) => {}
                    },
                    None => {
                        let _ = served.await;
                    }
                }
            });
            Ok(Box::new(logger_end) as crate::transport::BoxedLine)
        })
    }

    fn byte_time(&self) -> Duration {
        Duration::ZERO
    }
}

fn line(addresses: &[u8], failures: u32) -> Arc<SimulatedLine> {
    line_with(addresses, failures, LineConfig::default())
}

fn line_with(addresses: &[u8], failures: u32, config: LineConfig) -> Arc<SimulatedLine> {
    let meters = addresses
        .iter()
        .map(|&address| Meter::new(address, Model::Multical603))
        .collect();
    line_of(meters, failures, config)
}

fn line_of(meters: Vec<Meter>, failures: u32, config: LineConfig) -> Arc<SimulatedLine> {
    let simulator = Simulator::new(Settings {
        meters,
        line: config,
        seed: Some(1),
        quiet: true,
        outage: None,
    });
    Arc::new(SimulatedLine {
        simulator,
        failures: AtomicU32::new(failures),
        opens: AtomicU32::new(0),
        down_until: std::sync::Mutex::new(None),
        cut_at: std::sync::Mutex::new(None),
    })
}

fn request(description: &str, addresses: &[u8], method: Method) -> RequestConfig {
    RequestConfig {
        description: description.to_owned(),
        send: true,
        addresses: addresses.to_vec(),
        model: None,
        timeout: Duration::from_millis(1600),
        retries: 0,
        items: vec![Item {
            register: 86,
            export_name: "T1".to_owned(),
        }],
        method: Some(method),
        on_complete: None,
        on_failure: None,
        on_info_flag: None,
        on_no_data: None,
        thresholds: Vec::new(),
        reads_per_day: None,
        backfill: None,
    }
}

fn polling(text: &str) -> Method {
    Method::Polling(Interval::parse(text).unwrap())
}

/// The outcome of running a bus for a while.
struct Run {
    readings: Vec<Reading>,
    /// The keys of the logged readings, in the order handed on.
    logged_keys: Vec<String>,
    origin: Timestamp,
    state: SharedState,
}

impl Run {
    /// Seconds after the origin at which `request` produced readings, one
    /// entry per run (the first address's reading).
    fn runs_of(&self, request: &str) -> Vec<f64> {
        let mut seconds: Vec<f64> = Vec::new();
        let first_address = self
            .readings
            .iter()
            .find(|r| r.request == request)
            .map(|r| r.address);
        for reading in self
            .readings
            .iter()
            .filter(|r| r.request == request && Some(r.address) == first_address)
        {
            seconds.push(self.origin.duration_until(reading.time).as_secs_f64());
        }
        seconds
    }
}

/// A bus task running on paused time, and the ends the test holds.
struct Started {
    readings: mpsc::UnboundedReceiver<Batch>,
    events: EventRouter,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<BackfillMemory>,
    origin: Timestamp,
    state: SharedState,
}

/// Starts a bus with `requests` on `opener` at `origin` of paused time.
fn start(
    requests: Vec<RequestConfig>,
    opener: Arc<SimulatedLine>,
    origin: &str,
    zone: TimeZone,
) -> Started {
    start_under(requests, opener, origin, zone, None, None)
}

/// [`start`], under `permit` when one is given, going on from what an
/// earlier task knew of its backfills (`memory`).
fn start_under(
    requests: Vec<RequestConfig>,
    opener: impl Opener + 'static,
    origin: &str,
    zone: TimeZone,
    permit: Option<crate::cluster::Permit>,
    memory: Option<BackfillMemory>,
) -> Started {
    let origin: Timestamp = origin.parse().unwrap();
    let config = BusConfig {
        name: "test".to_owned(),
        endpoint: BusEndpoint::Tcp(TcpSettings::new("unused:1")),
        echo: EchoMode::Auto,
        retry_pause: Duration::from_millis(200),
        requests,
    };
    let (readings_sender, readings) = mpsc::unbounded_channel();
    let events = EventRouter::for_buses(std::slice::from_ref(&config));
    let shutdown = CancellationToken::new();
    let context = BusContext {
        clock: Clock::tokio_from(origin),
        zone,
        events: events.clone(),
        readings: readings_sender,
        shutdown: shutdown.clone(),
        permit: permit.clone(),
    };
    if let Some(permit) = permit {
        permit.attach(shutdown.clone());
    }
    let state = SharedState::new(initial_state(&config));
    let task = tokio::spawn(run_bus_on(
        config,
        Box::new(opener),
        state.clone(),
        context,
        memory,
    ));
    Started {
        readings,
        events,
        shutdown,
        task,
        origin,
        state,
    }
}

/// Runs a bus with `requests` for `duration` of paused time from `origin`;
/// `events` are fired at the given offsets.
async fn run(
    requests: Vec<RequestConfig>,
    opener: Arc<SimulatedLine>,
    origin: &str,
    zone: TimeZone,
    duration: Duration,
    events: &[(Duration, &str)],
) -> Run {
    let mut bus = start(requests, opener, origin, zone);
    let started = tokio::time::Instant::now();
    for (at, name) in events {
        tokio::time::sleep_until(started + *at).await;
        // An event no request waits for is refused, and runs nothing.
        let _ = bus.events.fire(name);
    }
    tokio::time::sleep_until(started + duration).await;
    bus.shutdown.cancel();
    bus.task.await.unwrap();
    let mut all = Vec::new();
    let mut logged_keys = Vec::new();
    while let Ok(batch) = bus.readings.try_recv() {
        if let Batch::Logged(logged) = &batch {
            logged_keys.extend(logged.iter().map(|(key, _)| key.clone()));
        }
        all.extend(batch.into_readings());
    }
    Run {
        readings: all,
        logged_keys,
        origin: bus.origin,
        state: bus.state,
    }
}

const ORIGIN: &str = "2026-11-25T00:00:00Z";

/// Asserts that runs happened at `expected` seconds (to the millisecond),
/// each within the time a transaction takes (20 ms reply delay) plus a little.
fn check_runs(actual: &[f64], expected: &[f64]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "runs at {actual:?}, expected {expected:?}"
    );
    for (actual, expected) in actual.iter().zip(expected) {
        assert!(
            (expected - 0.001..=expected + 0.1).contains(actual),
            "run at {actual} s, expected {expected} s: {actual:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn polling_runs_on_its_grid() {
    let run = run(
        vec![request("poll", &[1], polling("10s"))],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(35),
        &[],
    )
    .await;
    check_runs(&run.runs_of("poll"), &[0.0, 10.0, 20.0, 30.0]);
    assert!(
        run.readings
            .iter()
            .all(|reading| reading.status == Status::Ok)
    );
}

#[tokio::test(start_paused = true)]
async fn once_runs_at_start_only() {
    let run = run(
        vec![request("once", &[1], Method::Once)],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(60),
        &[],
    )
    .await;
    check_runs(&run.runs_of("once"), &[0.0]);
}

#[tokio::test(start_paused = true)]
async fn times_of_day_and_cron_fire_when_they_say() {
    let requests = vec![
        request(
            "times",
            &[1],
            Method::TimesOfDay(TimesOfDay::parse("00:00:05;00:00:20").unwrap()),
        ),
        request(
            "cron",
            &[1],
            Method::Cron(Cron::parse("*/15 * * * * *").unwrap()),
        ),
    ];
    let run = run(
        requests,
        line(&[1], 0),
        "2026-11-24T23:59:59Z",
        TimeZone::UTC,
        Duration::from_secs(40),
        &[],
    )
    .await;
    check_runs(&run.runs_of("times"), &[6.0, 21.0]);
    check_runs(&run.runs_of("cron"), &[1.0, 16.0, 31.0]);
}

#[tokio::test(start_paused = true)]
async fn cron_in_the_spring_gap_fires_once_right_after_the_jump() {
    // 00:59 UTC is 01:59 in Copenhagen; at 02:00 the clock jumps to 03:00.
    let zone = TimeZone::get("Europe/Copenhagen").unwrap();
    let requests = vec![request(
        "gap",
        &[1],
        Method::Cron(Cron::parse("0 30 2 * * *").unwrap()),
    )];
    let run = run(
        requests,
        line(&[1], 0),
        "2026-03-29T00:59:00Z",
        zone,
        Duration::from_secs(3 * 3600),
        &[],
    )
    .await;
    check_runs(&run.runs_of("gap"), &[60.0]);
}

#[tokio::test(start_paused = true)]
async fn events_run_their_requests_only_when_fired() {
    let requests = vec![request("on demand", &[1], Method::Event("go".to_owned()))];
    // The two events at 20 s come together: one run, as with merged ticks.
    let events = [
        (Duration::from_secs(5), "go"),
        (Duration::from_secs(12), "other"),
        (Duration::from_secs(20), "go"),
        (Duration::from_secs(20), "go"),
    ];
    let run = run(
        requests,
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(30),
        &events,
    )
    .await;
    check_runs(&run.runs_of("on demand"), &[5.0, 20.0]);
}

#[tokio::test(start_paused = true)]
async fn due_requests_run_in_queue_order_one_at_a_time() {
    let requests = vec![
        request("first", &[1, 2], polling("10s")),
        request("second", &[1, 2], polling("10s")),
    ];
    let run = run(
        requests,
        line(&[1, 2], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(25),
        &[],
    )
    .await;
    let order: Vec<(String, u8)> = run
        .readings
        .iter()
        .map(|r| (r.request.clone(), r.address))
        .collect();
    let one_round =
        [("first", 1), ("first", 2), ("second", 1), ("second", 2)].map(|(r, a)| (r.to_owned(), a));
    assert_eq!(
        order,
        [one_round.clone(), one_round.clone(), one_round].concat()
    );
    let times: Vec<Timestamp> = run.readings.iter().map(|r| r.time).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] < pair[1]),
        "transactions overlap: {times:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn ticks_missed_while_the_bus_is_busy_are_merged() {
    // "slow" asks three silent addresses with a 2 s timeout: 6 s of waiting,
    // during which "fast" misses five ticks of its 1 s polling.
    let mut slow = request("slow", &[5, 6, 7], polling("1min"));
    slow.timeout = Duration::from_secs(2);
    let requests = vec![request("fast", &[1], polling("1s")), slow];
    let run = run(
        requests,
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(9_500),
        &[],
    )
    .await;
    let fast = run.runs_of("fast");
    // 0, then once (not six times) when the bus is free again, then on the grid.
    assert_eq!(fast.len(), 5, "fast ran at {fast:?}");
    assert!((6.0..6.2).contains(&fast[1]), "fast ran at {fast:?}");
    check_runs(&fast[2..], &[7.0, 8.0, 9.0]);
    assert!(
        run.readings
            .iter()
            .filter(|r| r.request == "slow")
            .all(|r| r.status == Status::Timeout)
    );
    assert_eq!(run.state.snapshot().timeouts, 3);
}

#[tokio::test(start_paused = true)]
async fn failed_line_is_reopened_with_back_off_while_the_schedule_goes_on() {
    let opener = line(&[1], 3);
    let run = run(
        vec![request("poll", &[1], polling("1s"))],
        Arc::clone(&opener),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(9_500),
        &[],
    )
    .await;
    let statuses: Vec<(u64, Status)> = run
        .readings
        .iter()
        .map(|r| {
            (
                run.origin.duration_until(r.time).as_secs_f64() as u64,
                r.status,
            )
        })
        .collect();
    // Opens fail at 0 s, 1 s (back-off 1 s) and 3 s (2 s); the next try, at
    // 7 s after 4 s of back-off, succeeds. Every tick still gives readings.
    let expected: Vec<(u64, Status)> = (0..=9)
        .map(|second| {
            (
                second,
                if second < 7 {
                    Status::LineDown
                } else {
                    Status::Ok
                },
            )
        })
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(opener.opens.load(Ordering::SeqCst), 4);
    let state = run.state.snapshot();
    assert!(state.connected);
    assert_eq!(state.retry_at, None, "the line is up: no retry pending");
    assert_eq!(
        state.last_error.map(|(_, error)| error),
        Some("cannot connect to simulated: gateway down".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn a_line_that_is_down_shows_when_it_is_tried_again() {
    let opener = line(&[1], 100);
    let run = run(
        vec![request("poll", &[1], polling("1s"))],
        Arc::clone(&opener),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(4_500),
        &[],
    )
    .await;
    // Opens fail at 0 s, 1 s and 3 s; after 3 s the back-off is 4 s.
    let state = run.state.snapshot();
    assert!(!state.connected);
    assert_eq!(
        state
            .retry_at
            .map(|at| run.origin.duration_until(at).as_secs_f64()),
        Some(7.0)
    );
    // Every attempt that found the line down counts for its meter.
    let meter = state
        .meters
        .iter()
        .find(|meter| meter.address == 1)
        .unwrap();
    assert_eq!((meter.attempts, meter.answers), (5, 0));
    assert_eq!(meter.last_status.as_deref(), Some("line_down"));
}

#[tokio::test(start_paused = true)]
async fn a_port_learned_to_sleep_gets_a_short_wake_up_frame() {
    // The optical port sleeps after 30 s idle; the meter is read every 60 s.
    let sleepy = LineConfig {
        sleep_after: Some(Duration::from_secs(30)),
        ..LineConfig::default()
    };
    let mut poll = request("poll", &[1], polling("1min"));
    poll.retries = 1;
    let run = run(
        vec![poll],
        line_with(&[1], 0, sleepy),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(200),
        &[],
    )
    .await;
    assert!(
        run.readings
            .iter()
            .all(|reading| reading.status == Status::Ok),
        "the wake-up retry gets every reading"
    );
    // The first two runs wait the whole 1.6 s timeout on the frame that only
    // wakes the port; once the bus has learned that the port sleeps, 0.25 s.
    // Each adds the 0.2 s retry pause and the 20 ms reply delay.
    check_runs(&run.runs_of("poll"), &[1.82, 61.82, 120.47, 180.47]);
}

#[tokio::test(start_paused = true)]
async fn a_request_slower_than_its_interval_runs_back_to_back() {
    // Meter 9 is silent: each run waits 2 s for it, then reads meter 1; the
    // ticks every second that fall during a run make one run right after it.
    let mut slow = request("slow", &[9, 1], polling("1s"));
    slow.timeout = Duration::from_secs(2);
    let run = run(
        vec![slow],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(6_500),
        &[],
    )
    .await;
    // Readings of meter 9 end each run's wait, 2.02 s after the run before
    // (the last run starts at 6.06 s, before the stop, and is finished).
    check_runs(&run.runs_of("slow"), &[2.0, 4.02, 6.04, 8.06]);
}

#[tokio::test(start_paused = true)]
async fn crc_errors_become_readings_and_are_counted() {
    let mut faulty = LineConfig::default();
    faulty.faults.bad_crc = 1.0;
    let run = run(
        vec![request("poll", &[1], polling("10s"))],
        line_with(&[1], 0, faulty),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(15),
        &[],
    )
    .await;
    assert_eq!(
        run.readings.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Status::CrcError, Status::CrcError]
    );
    let state = run.state.snapshot();
    // Two runs without retries: two corrupt replies.
    assert_eq!((state.polls, state.crc_errors, state.faults), (2, 2, 2));
}

/// Counts the runs of `request` (readings of its first address).
fn run_count(run: &Run, request: &str) -> usize {
    run.runs_of(request).len()
}

#[tokio::test(start_paused = true)]
async fn a_raised_info_flag_fires_its_event_once() {
    // Meter 1 reports low battery (bit 2) from the start; meter 2 nothing.
    let meters = vec![
        Meter::new(1, Model::Multical603).with_info_code(2),
        Meter::new(2, Model::Multical603),
    ];
    let mut watch = request("watch", &[1, 2], polling("10s"));
    watch.items = vec![Item {
        register: 99,
        export_name: "INFO".to_owned(),
    }];
    watch.on_info_flag = Some("flagged".to_owned());
    let on_flag = request("on flag", &[1], Method::Event("flagged".to_owned()));
    let run = run(
        vec![watch, on_flag],
        line_of(meters, 0, LineConfig::default()),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(35),
        &[],
    )
    .await;
    assert_eq!(
        (run_count(&run, "watch"), run_count(&run, "on flag")),
        (4, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_meter_without_data_for_too_long_fires_its_event_once() {
    // Meter 9 never answers; after 25 s without its data the event fires,
    // once, however many runs follow.
    let mut watch = request("watch", &[1, 9], polling("10s"));
    watch.timeout = Duration::from_secs(1);
    watch.on_no_data = Some(("silent".to_owned(), Duration::from_secs(25)));
    let on_silence = request("on silence", &[1], Method::Event("silent".to_owned()));
    let run = run(
        vec![watch, on_silence],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(65),
        &[],
    )
    .await;
    assert_eq!(run_count(&run, "watch"), 7);
    // The run at 30 s ends at 31 s, the first past 25 s: the event runs then.
    check_runs(&run.runs_of("on silence"), &[31.04]);
}

#[tokio::test(start_paused = true)]
async fn events_and_chains_run_on_a_bus_that_is_always_busy() {
    // Meter 9 is silent: each run of "busy" waits its 2 s timeout, longer
    // than its 1 s interval, so a timed request is due at every moment.
    let mut busy = request("busy", &[9], polling("1s"));
    busy.timeout = Duration::from_secs(2);
    busy.on_failure = Some("failed".to_owned());
    let on_failure = request("on failure", &[1], Method::Event("failed".to_owned()));
    let on_go = request("on go", &[1], Method::Event("go".to_owned()));
    let run = run(
        vec![busy, on_failure, on_go],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(9_500),
        &[(Duration::from_secs(5), "go")],
    )
    .await;
    // Each event runs its request right after the run in progress, in the
    // order the events came: `go` (at 5 s) before the `failed` of the run
    // that ends at 6.04 s; then the timed request has its turn again.
    check_runs(&run.runs_of("on go"), &[6.06]);
    check_runs(&run.runs_of("on failure"), &[2.02, 4.04, 6.08, 8.1]);
    check_runs(&run.runs_of("busy"), &[2.0, 4.02, 6.04, 8.08, 10.1]);
}

#[tokio::test(start_paused = true)]
async fn a_line_back_after_a_long_outage_is_read_within_five_seconds() {
    // The gateway is down for the first 40 s. With back-off doubling to a
    // minute, the bus would try at 31 s and then only at 63 s.
    let opener = line(&[1], 0);
    *opener.down_until.lock().unwrap() =
        Some(tokio::time::Instant::now() + Duration::from_secs(40));
    let run = run(
        vec![request("poll", &[1], polling("1s"))],
        opener,
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(70),
        &[],
    )
    .await;
    let first_good = run
        .readings
        .iter()
        .find(|reading| reading.status == Status::Ok)
        .map(|reading| run.origin.duration_until(reading.time).as_secs_f64());
    assert!(
        first_good.is_some_and(|at| (40.0..=45.1).contains(&at)),
        "first good reading at {first_good:?} s, the gateway was back at 40 s"
    );
}

#[tokio::test(start_paused = true)]
async fn each_address_is_handed_on_as_soon_as_it_is_read() {
    // Meter 9, asked second, is silent for 10 s: meter 1's readings must not
    // wait for it (a kill -9 meanwhile would lose them).
    let mut poll = request("poll", &[1, 9, 2], polling("1min"));
    poll.timeout = Duration::from_secs(10);
    let mut bus = start(vec![poll], line(&[1, 2], 0), ORIGIN, TimeZone::UTC);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first: Vec<(u8, Status)> = bus
        .readings
        .try_recv()
        .map(|batch| {
            batch
                .into_readings()
                .iter()
                .map(|r| (r.address, r.status))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(first, [(1, Status::Ok)], "handed on while meter 9 is asked");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rest: Vec<(u8, Status)> = std::iter::from_fn(|| bus.readings.try_recv().ok())
        .flat_map(Batch::into_readings)
        .map(|r| (r.address, r.status))
        .collect();
    assert_eq!(rest, [(9, Status::Timeout), (2, Status::Ok)]);
    bus.shutdown.cancel();
    bus.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stop_waits_for_the_transaction_in_flight_not_the_run() {
    // Four silent meters of 2 s each: a stop at 1 s ends the task once
    // meter 9's transaction is over, not after the 8 s run (a bus that
    // moves to another instance is stopped so, and the instance renews
    // none of its other leases until it has).
    let mut poll = request("poll", &[9, 8, 7, 6], polling("1min"));
    poll.timeout = Duration::from_secs(2);
    let mut bus = start(vec![poll], line(&[1], 0), ORIGIN, TimeZone::UTC);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = tokio::time::Instant::now();
    bus.shutdown.cancel();
    bus.task.await.unwrap();
    let waited = stopped.elapsed();
    assert!(
        waited <= Duration::from_millis(1500),
        "the stop waited {waited:?}"
    );
    let read: Vec<u8> = std::iter::from_fn(|| bus.readings.try_recv().ok())
        .flat_map(Batch::into_readings)
        .map(|reading| reading.address)
        .collect();
    assert_eq!(read, [9], "only the transaction in flight was finished");
}

#[tokio::test(start_paused = true)]
async fn an_event_waits_for_the_request_in_progress_not_for_the_round() {
    // Two timed requests on silent meters make a 4 s round; `go` at 1 s
    // runs between them, and the second still has its turn.
    let slow = |description: &str, address: u8| {
        let mut slow = request(description, &[address], polling("1s"));
        slow.timeout = Duration::from_secs(2);
        slow
    };
    let on_go = request("on go", &[1], Method::Event("go".to_owned()));
    let run = run(
        vec![slow("first", 8), slow("second", 9), on_go],
        line(&[1], 0),
        ORIGIN,
        TimeZone::UTC,
        Duration::from_millis(5_000),
        &[(Duration::from_secs(1), "go")],
    )
    .await;
    check_runs(&run.runs_of("first"), &[2.0, 6.02]);
    check_runs(&run.runs_of("on go"), &[2.02]);
    check_runs(&run.runs_of("second"), &[4.02]);
}

/// A request polling E1 and V1 of meter 63 every 10 minutes, backfilling
/// from its hourly logger, on a line cut at 30 min and down until `back`.
fn backfilled(back: Duration, reads_per_day: Option<u32>) -> (RequestConfig, Arc<SimulatedLine>) {
    let opener = line(&[63], 0);
    cut(&opener, back);
    (backfilled_poll(reads_per_day), opener)
}

fn backfilled_poll(reads_per_day: Option<u32>) -> RequestConfig {
    let mut poll = request("poll", &[63], polling("10min"));
    poll.items = vec![
        Item {
            register: 60,
            export_name: "E1".to_owned(),
        },
        Item {
            register: 68,
            export_name: "V1".to_owned(),
        },
    ];
    poll.backfill = Some(kmp::logger::Logger::HOURLY);
    poll.reads_per_day = reads_per_day;
    poll
}

/// Cuts the line just after 30 min and keeps it down until `back`.
fn cut(opener: &SimulatedLine, back: Duration) {
    let start = tokio::time::Instant::now();
    *opener.cut_at.lock().unwrap() = Some(start + Duration::from_secs(30 * 60 + 1));
    *opener.down_until.lock().unwrap() = Some(start + back);
}

/// The runs of "poll" on its 10-minute grid from 0 to `last` seconds.
fn on_the_grid(run: &Run, last: u64) {
    let grid: Vec<f64> = (0..=last).step_by(600).map(|at| at as f64).collect();
    let mut runs = run.runs_of("poll");
    // One entry per item of a run.
    runs.dedup();
    check_runs(&runs, &grid);
}

#[tokio::test(start_paused = true)]
async fn after_an_outage_of_hours_the_missed_hourly_rows_are_read_between_the_polls() {
    let (poll, opener) = backfilled(Duration::from_secs(3 * 3600 + 30 * 60), Some(200));
    let simulator = Arc::clone(&opener.simulator);
    let run = run(
        vec![poll],
        opener,
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(5 * 3600 + 60),
        &[],
    )
    .await;
    // Due polling went on: every run on its grid, through the outage (as
    // line_down) and while the logger was read.
    on_the_grid(&run, 5 * 3600);
    let polled = |status: Status| {
        run.readings
            .iter()
            .filter(|r| r.request == "poll" && r.status == status)
            .count()
    };
    assert_eq!(polled(Status::LineDown), 2 * 17, "40 min to 3 h 20 min");
    let logged: Vec<&Reading> = run
        .readings
        .iter()
        .filter(|r| r.status == Status::Logged)
        .collect();
    // The gap is 3 h by both clocks (the meter's runs days ahead of the
    // bus's here): three hourly rows, E1 and V1 of each.
    assert_eq!(logged.len(), 6, "{logged:#?}");
    let mut times: Vec<Timestamp> = logged.iter().map(|r| r.time).collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            jiff::SignedDuration::from_hours(1)
        );
    }
    // On the meter's clock, between the last good poll and the recovery.
    let now = simulator.now();
    let started = now.unix_seconds - now.elapsed.as_secs() as i64;
    let meter_clock = |seconds: i64| Timestamp::from_second(started + seconds).unwrap();
    let (last_good, recovered) = (meter_clock(1800), meter_clock(12_600));
    assert!(
        times
            .iter()
            .all(|time| (last_good..=recovered).contains(time)),
        "{times:?} not within {last_good}..{recovered}"
    );
    assert!(
        logged
            .iter()
            .all(|r| r.request == "hourly logger" && r.address == 63)
    );
    let serial = Meter::new(63, Model::Multical603).serial();
    let mut keys = run.logged_keys.clone();
    assert!(
        keys.iter()
            .all(|key| key.starts_with(&format!("logged-{serial}-5-"))),
        "{keys:?}"
    );
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6, "each row's value once");
    // Within the budget: the polls of the day and the logger's exchanges.
    let meter = run.state.snapshot().meters[0].clone();
    assert!(meter.reads_today <= 200, "{meter:?}");
}

#[tokio::test(start_paused = true)]
async fn an_outage_shorter_than_the_loggers_interval_is_not_backfilled() {
    let (poll, opener) = backfilled(Duration::from_secs(65 * 60), None);
    let run = run(
        vec![poll],
        opener,
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(3 * 3600),
        &[],
    )
    .await;
    on_the_grid(&run, 3 * 3600 - 600);
    assert!(run.readings.iter().any(|r| r.status == Status::LineDown));
    assert!(!run.readings.iter().any(|r| r.status == Status::Logged));
}

#[tokio::test(start_paused = true)]
async fn a_backfill_waits_when_the_day_has_no_reads_to_spare() {
    // 144 polls a day. After the outage the meter has had 6 reads (4 polls,
    // its clock, the recovering poll) and 122 polls are due till midnight:
    // a budget of 130 leaves room for its clock and its serial number, not
    // for the logger's rows.
    let (poll, opener) = backfilled(Duration::from_secs(3 * 3600 + 30 * 60), Some(130));
    let run = run(
        vec![poll],
        opener,
        ORIGIN,
        TimeZone::UTC,
        Duration::from_secs(5 * 3600 + 300),
        &[],
    )
    .await;
    on_the_grid(&run, 5 * 3600);
    assert!(!run.readings.iter().any(|r| r.status == Status::Logged));
    let meter = run.state.snapshot().meters[0].clone();
    // 14 polls, 2 clock readings and the serial number; the 113 polls left
    // till midnight fit.
    assert_eq!(meter.reads_today, 17, "{meter:?}");
    assert!(meter.reads_today + 113 <= 130);
}

#[test]
fn a_meter_without_loggers_is_said_once_and_polled_on() {
    let (run, lines) = with_logs_on_paused_time(async {
        let opener = line_of(
            vec![Meter::new(63, Model::Multical603).without_loggers()],
            0,
            LineConfig::default(),
        );
        cut(&opener, Duration::from_secs(3 * 3600));
        run(
            vec![backfilled_poll(None)],
            opener,
            ORIGIN,
            TimeZone::UTC,
            Duration::from_secs(6 * 3600),
            &[],
        )
        .await
    });
    on_the_grid(&run, 6 * 3600 - 600);
    assert!(!run.readings.iter().any(|r| r.status == Status::Logged));
    let given_up: Vec<&str> = lines
        .lines()
        .filter(|line| line.contains("backfill given up"))
        .collect();
    assert_eq!(given_up.len(), 1, "{lines}");
    assert!(
        given_up[0].contains("gave no hourly logger rows: no reply"),
        "{lines}"
    );
}

#[test]
fn a_backfill_cut_off_by_silence_goes_on_after_the_next_answered_poll() {
    // 30 h of outage, 8 registers: the rows take several pages, and a meter
    // that leaves a quarter of the requests unanswered cuts the read off.
    let (run, lines) = with_logs_on_paused_time(async {
        let faults = crate::sim::line::Faults {
            no_reply: 0.25,
            ..Default::default()
        };
        let config = LineConfig {
            faults,
            ..LineConfig::default()
        };
        let opener = line_with(&[63], 0, config);
        cut(&opener, Duration::from_secs(30 * 3600 + 30 * 60));
        let mut poll = backfilled_poll(None);
        poll.items = [60, 61, 62, 63, 68, 86, 87, 99]
            .into_iter()
            .map(|register| Item {
                register,
                export_name: format!("R{register}"),
            })
            .collect();
        poll.retries = 0;
        run(
            vec![poll],
            opener,
            ORIGIN,
            TimeZone::UTC,
            Duration::from_secs(33 * 3600),
            &[],
        )
        .await
    });
    let paused = lines.matches("backfill paused").count();
    assert!(paused >= 1, "{lines}");
    let finished: Vec<&str> = lines
        .lines()
        .filter(|line| line.contains("backfill finished"))
        .collect();
    assert_eq!(finished.len(), 1, "{lines}");
    // The meter's clock starts at the system's, so the gap of some 30 h
    // holds 30 or 31 hourly rows, as the hour falls: one per hour that
    // ends within it.
    let field = |name: &str| -> jiff::civil::DateTime {
        let start = finished[0].find(&format!(" {name}=")).unwrap() + name.len() + 2;
        finished[0][start..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (from, to) = (field("from"), field("to"));
    let mut hour = from.round(jiff::Unit::Hour).unwrap();
    if hour < from {
        hour += jiff::SignedDuration::from_hours(1);
    }
    let mut rows = 0;
    while hour <= to {
        rows += 1;
        hour += jiff::SignedDuration::from_hours(1);
    }
    assert!((30..=31).contains(&rows), "{from} to {to}");
    assert!(
        finished[0].contains(&format!("rows={rows} readings={}", rows * 8)),
        "{lines}"
    );
    let mut keys = run.logged_keys.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), rows * 8, "each row's value once");
}

/// Under a permit, the line opens only when the connect (5 s, the default)
/// ends before the deadline, and a poll on the open line only when its
/// transaction (1.6 s) does: each step gets the room it needs, no more.
#[tokio::test(start_paused = true)]
async fn under_a_permit_the_connect_and_each_transaction_must_end_before_the_deadline() {
    for (deadline_ms, opens, runs) in [
        (4_999, 0, &[][..]),
        (5_000, 1, &[0.0][..]),
        (11_599, 1, &[0.0][..]),
        (11_600, 1, &[0.0, 10.0][..]),
    ] {
        let opener = line(&[1], 0);
        let run = run_until_the_deadline(
            vec![request("poll", &[1], polling("10s"))],
            Arc::clone(&opener),
            deadline_ms,
        )
        .await;
        assert_eq!(
            opener.opens.load(Ordering::SeqCst),
            opens,
            "deadline {deadline_ms} ms"
        );
        check_runs(&run.runs_of("poll"), runs);
    }
}

/// Runs `requests` on `opener` under a permit whose deadline is
/// `deadline_ms` away and never renewed, until the task stops by itself.
async fn run_until_the_deadline(
    requests: Vec<RequestConfig>,
    opener: impl Opener + 'static,
    deadline_ms: u64,
) -> Run {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(deadline_ms);
    let permit = crate::cluster::Permit::new("test", 1, deadline);
    let mut bus = start_under(
        requests,
        opener,
        ORIGIN,
        TimeZone::UTC,
        Some(permit.clone()),
        None,
    );
    // At the deadline the permit is revoked and the task stops by itself.
    tokio::time::timeout(Duration::from_secs(30), &mut bus.task)
        .await
        .expect("the bus stops at the deadline")
        .unwrap();
    assert!(permit.is_revoked());
    let mut readings = Vec::new();
    while let Ok(batch) = bus.readings.try_recv() {
        readings.extend(batch.into_readings());
    }
    Run {
        readings,
        logged_keys: Vec::new(),
        origin: bus.origin,
        state: bus.state,
    }
}

/// Runs `body` on a runtime of its own with paused time, and gives its
/// result and what it logged. Tests that read the log run so: a callsite
/// first met on a thread without a subscriber could be shut off for them.
fn with_logs_on_paused_time<T>(body: impl std::future::Future<Output = T>) -> (T, String) {
    crate::logging::capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(body)
    })
}

/// A bus restarted by a reload in the middle of an outage (here: a
/// request added before the backfilled one, which moves it in the queue)
/// goes on from what its previous task knew: the rows the logger kept
/// through the outage are read after the recovery. Without that memory
/// the new task never saw the meter answer before, and reads nothing; nor
/// does it for a request whose registers changed (another read).
#[test]
fn a_bus_restarted_during_an_outage_still_backfills_it() {
    for (carried, same_registers) in [(true, true), (true, false), (false, true)] {
        let (keys, lines) =
            with_logs_on_paused_time(restarted_during_an_outage(carried, same_registers));
        let goes_on = carried && same_registers;
        // Three hourly rows, E1 and V1 of each.
        let expected = if goes_on { 6 } else { 0 };
        assert_eq!(
            keys.len(),
            expected,
            "carried {carried}, same registers {same_registers}: {keys:?}\n{lines}"
        );
        assert_eq!(
            lines.matches("backfill finished").count(),
            usize::from(goes_on),
            "{lines}"
        );
    }
}

/// The keys of the logged readings of a bus restarted 2 h into a run, 1 h
/// 30 min into an outage, with the first task's backfill memory or not,
/// reading the same registers after the restart or E1 alone.
async fn restarted_during_an_outage(carried: bool, same_registers: bool) -> Vec<String> {
    let (mut poll, opener) = backfilled(Duration::from_secs(3 * 3600 + 30 * 60), None);
    let first = start(
        vec![poll.clone()],
        Arc::clone(&opener),
        ORIGIN,
        TimeZone::UTC,
    );
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    first.shutdown.cancel();
    let memory = first.task.await.unwrap();
    if !same_registers {
        poll.items.truncate(1);
    }
    let other = request("other", &[63], polling("1h"));
    let mut second = start_under(
        vec![other, poll],
        opener,
        "2026-11-25T02:00:00Z",
        TimeZone::UTC,
        None,
        carried.then_some(memory),
    );
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    second.shutdown.cancel();
    second.task.await.unwrap();
    let mut keys = Vec::new();
    while let Ok(batch) = second.readings.try_recv() {
        if let Batch::Logged(logged) = batch {
            keys.extend(logged.into_iter().map(|(key, _)| key));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Opens lines whose far end, after each request it receives, sends a
/// byte every 100 ms for 4 s, as a reply that goes on past every bound
/// would; counts the requests' bytes.
struct Jabbering {
    received: Arc<AtomicU32>,
}

impl std::fmt::Display for Jabbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("jabbering line")
    }
}

impl Opener for Jabbering {
    fn open(&self) -> OpenFuture<'_> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let received = Arc::clone(&self.received);
        Box::pin(async move {
            let (logger_end, mut far_end) = tokio::io::duplex(4096);
            tokio::spawn(async move {
                let mut buffer = [0u8; 256];
                let mut until = tokio::time::Instant::now();
                loop {
                    let jabbering = tokio::time::Instant::now() < until;
                    tokio::select! {
                        read = far_end.read(&mut buffer) => match read {
                            Ok(0) | Err(_) => return,
                            Ok(count) => {
                                received.fetch_add(u32::try_from(count).unwrap(), Ordering::SeqCst);
                                until = tokio::time::Instant::now() + Duration::from_secs(4);
                            }
                        },
                        () = tokio::time::sleep(Duration::from_millis(100)), if jabbering => {
                            if far_end.write_all(&[0xFF]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            Ok(Box::new(logger_end) as crate::transport::BoxedLine)
        })
    }

    fn byte_time(&self) -> Duration {
        Duration::ZERO
    }
}

/// A reply that goes on past its attempt is drained before the retry (until
/// 4.3 s here); under a permit the retry is written only when it can end
/// before the deadline. When it cannot, the run ends there: no timeout
/// recorded, nothing written after the deadline. With room, the retry is
/// written and the meter's silence recorded.
#[tokio::test(start_paused = true)]
async fn under_a_permit_a_retry_the_drain_leaves_no_room_for_is_not_sent() {
    let request_bytes = kmp::message::Request::get_register(&[86])
        .unwrap()
        .to_frame(1)
        .encode()
        .len();
    for (deadline_ms, requests, statuses) in
        [(5_500, 1, &[][..]), (20_000, 2, &[Status::Timeout][..])]
    {
        let received = Arc::new(AtomicU32::new(0));
        let poll = RequestConfig {
            retries: 1,
            ..request("poll", &[1], polling("1h"))
        };
        let jabbering = Jabbering {
            received: Arc::clone(&received),
        };
        let run = run_until_the_deadline(vec![poll], jabbering, deadline_ms).await;
        let seen: Vec<Status> = run.readings.iter().map(|reading| reading.status).collect();
        assert_eq!(seen, statuses, "deadline {deadline_ms} ms");
        assert_eq!(
            received.load(Ordering::SeqCst) as usize,
            requests * request_bytes,
            "deadline {deadline_ms} ms"
        );
        let last_result = run.state.lock().requests[0].last_result.clone();
        assert_eq!(last_result.is_some(), requests == 2, "{last_result:?}");
    }
}
