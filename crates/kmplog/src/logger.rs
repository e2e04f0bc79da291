//! The logger: from a validated configuration, one task per bus, the
//! collector that writes every reading to the outbox, the sinks that take
//! them from there, the live view and the event router, until it is stopped.
//!
//! Stopping goes in pipeline order, so that nothing read is lost: the buses
//! finish their transactions, the collector writes what they read to the
//! outbox, then the sinks deliver what they can within a grace time; what
//! they cannot waits in the outbox for the next start.
//!
//! A new configuration is applied to the running buses by
//! [`Logger::reload`] ([`crate::reload`] has how).

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::bus::events::EventRouter;
use crate::bus::state::BusList;
use crate::bus::task::BusContext;
use crate::clock::Clock;
use crate::config::{BusConfig, BusEndpoint, Config, TerminalMode};
use crate::live::{Latest, LiveTable};
use crate::outbox::Outbox;
use crate::outbox::collector::{Unwritten, collect};
use crate::reading::LiveBatch;
use crate::reload::{Refused, Reloaded, RunningBuses, sends};
use crate::sink::files::{DailyFiles, Format};
use crate::sink::mqtt::MqttSink;
use crate::sink::mqtt::discovery::Configured;
use crate::sink::postgres::PostgresSink;
use crate::sink::sqlite::SqliteSink;
use crate::sink::stdout::JsonLinesStdout;
use crate::sink::url::SinkUrl;
use crate::sink::{Sink, SinkError, Sinks};
use crate::transport::{TransportError, serial};

/// How long the sinks may go on delivering once the logger stops.
const SINK_GRACE: Duration = Duration::from_secs(5);
/// How long the collector keeps trying to write to an outbox that fails
/// (a full disk), once the buses have stopped, before it gives up on the
/// readings it holds: long enough for a passing hiccup, short enough that a
/// service manager does not have to kill the logger.
const OUTBOX_GRACE: Duration = Duration::from_secs(5);

/// How the logger runs, beyond its configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print JSON lines on stdout even on a terminal.
    pub json: bool,
    /// Stop after this long; `None`: until stopped.
    pub duration: Option<Duration>,
    /// Time source.
    pub clock: Clock,
    /// In a cluster, this instance's name, which every reading carries.
    pub instance: Option<String>,
}

/// A running logger: stop it with [`Logger::stop`] or let it run out.
pub struct Logger {
    /// Fires named events into the buses whose requests wait for them.
    pub events: EventRouter,
    /// The configuration and state of each bus, which follow reloads.
    pub buses: BusList,
    /// The latest reading of every register.
    pub latest: Arc<Mutex<Latest>>,
    /// Every batch of readings as it is read, for live views.
    pub live: broadcast::Sender<LiveBatch>,
    running: RunningBuses,
    /// The buses of the configuration, serial ports locked where they poll.
    configured: Vec<BusConfig>,
    /// In a cluster, the leases of the buses this instance runs; `None`:
    /// it runs every bus.
    owned: Option<Vec<crate::cluster::Permit>>,
    /// The sinks and time zone it started with, which a reload cannot change.
    started: Config,
    /// What sinks that describe meters take from the configuration.
    described: watch::Sender<Configured>,
    collector: std::thread::JoinHandle<Result<(), Unwritten>>,
    collector_running: Arc<AtomicBool>,
    sinks: Sinks,
    view: Option<LiveTable>,
}

/// The time zone of the configuration, or the system's.
pub fn time_zone(config: &Config) -> Result<TimeZone, String> {
    match &config.time_zone {
        Some(name) => TimeZone::get(name).map_err(|error| format!("time zone {name}: {error}")),
        None => Ok(TimeZone::system()),
    }
}

/// Opens the sinks the configuration asks for. Sinks that take commands
/// (MQTT) fire named `events` into the buses; those that describe meters
/// (MQTT discovery) follow `configured` through reloads.
pub(crate) fn open_sinks(
    config: &Config,
    zone: &TimeZone,
    json_stdout: bool,
    events: &EventRouter,
    configured: &watch::Receiver<Configured>,
) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    let sinks = &config.sinks;
    let named = sinks.sqlite.iter().cloned().map(SinkUrl::Sqlite);
    let named = named.chain(sinks.csv.iter().cloned().map(SinkUrl::Csv));
    let named = named.chain(sinks.jsonl.iter().cloned().map(SinkUrl::Jsonl));
    let mut opened: Vec<Box<dyn Sink>> = Vec::new();
    for url in named.chain(sinks.urls.iter().cloned()) {
        let sink: Box<dyn Sink> = match &url {
            SinkUrl::Sqlite(path) => Box::new(SqliteSink::open(path)?),
            SinkUrl::Csv(directory) => {
                Box::new(DailyFiles::open(directory, Format::Csv, zone.clone())?)
            }
            SinkUrl::Jsonl(directory) => Box::new(DailyFiles::open(
                directory,
                Format::JsonLines,
                zone.clone(),
            )?),
            SinkUrl::Postgres(url) => Box::new(PostgresSink::open(url)?),
            SinkUrl::Mqtt(url) => Box::new(MqttSink::following(
                url,
                events.clone(),
                configured.clone(),
            )?),
            SinkUrl::Influx(url) => Box::new(crate::sink::influx::InfluxSink::open(url)?),
        };
        if opened.iter().any(|other| other.name() == sink.name()) {
            return Err(SinkError(format!("sink {url} is named twice")));
        }
        opened.push(sink);
    }
    if json_stdout {
        opened.push(Box::new(JsonLinesStdout));
    }
    Ok(opened)
}

impl Logger {
    /// Starts everything. Errors are about the environment (a sink that
    /// cannot be opened, an unknown time zone), never about meters.
    pub fn start(config: &Config, options: &Options) -> Result<Logger, String> {
        let zone = time_zone(config)?;
        let on_terminal = std::io::stdout().is_terminal();
        let (json_stdout, table) = match config.sinks.terminal {
            // --json asks for JSON lines whatever the file says.
            TerminalMode::Off => (options.json, false),
            TerminalMode::Json => (true, false),
            TerminalMode::Table => (options.json, !options.json),
            TerminalMode::Auto => (options.json || !on_terminal, !options.json && on_terminal),
        };
        // The outbox first: its lock refuses a second logger on this
        // configuration before anything has been opened or sent.
        let mut outbox = Outbox::open(&config.sinks.outbox, config.sinks.outbox_max_rows)
            .map_err(|error| error.to_string())?
            .with_max_bytes(config.sinks.outbox_max_bytes)
            .with_instance(options.instance.clone());
        let buses_config = masters_lock_their_ports(config)?;
        let events = EventRouter::for_buses(&config.buses);
        let (described, following) = watch::channel(Configured::of(config));
        let sinks = open_sinks(config, &zone, json_stdout, &events, &following)
            .map_err(|error| error.to_string())?;
        let last = outbox.last_seq().map_err(|error| error.to_string())?;
        let (appended, appended_receiver) = watch::channel(last);
        let sinks = Sinks::start(&mut outbox, sinks, &appended_receiver)?;
        let (readings_sender, readings) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let context = BusContext {
            clock: options.clock.clone(),
            zone: zone.clone(),
            events: events.clone(),
            readings: readings_sender,
            shutdown: shutdown.clone(),
            permit: None,
        };
        // In a cluster no bus runs until its lease is acquired.
        let owned = config.cluster.as_ref().map(|_| Vec::new());
        let running =
            RunningBuses::start(if owned.is_some() { &[] } else { &buses_config }, context);
        let buses = running.list();
        let latest = Arc::new(Mutex::new(Latest::default()));
        let (live, _) = broadcast::channel(64);
        let collector_running = Arc::new(AtomicBool::new(true));
        let collector = {
            let (latest, live) = (Arc::clone(&latest), live.clone());
            let running = Arc::clone(&collector_running);
            std::thread::Builder::new()
                .name("collector".to_owned())
                .spawn(move || {
                    // Cleared however the thread ends, a panic included.
                    let _running = Running(running);
                    collect(readings, outbox, appended, latest, live, OUTBOX_GRACE)
                })
                .map_err(|error| format!("cannot start the collector: {error}"))?
        };
        let view = table.then(|| {
            LiveTable::start(
                buses.clone(),
                Arc::clone(&latest),
                zone,
                options.clock.clone(),
            )
        });
        Ok(Logger {
            events,
            buses,
            latest,
            live,
            running,
            configured: buses_config,
            owned,
            started: config.clone(),
            described,
            collector,
            collector_running,
            sinks,
            view,
        })
    }

    /// Waits until `options.duration` has passed or Ctrl-C / SIGTERM came:
    /// the moment to call [`Logger::stop`].
    pub async fn until_asked_to_stop(options: &Options) {
        let stop = async {
            match options.duration {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop => {}
            () = termination() => {}
        }
    }

    /// Whether the collector still takes readings into the outbox: a
    /// logger whose collector died reads meters for nothing.
    pub fn collector_probe(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let running = Arc::clone(&self.collector_running);
        move || running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs the buses of `config` from now on, without a restart (see
    /// [`crate::reload`]). Each serial port that no running bus holds is
    /// tried first, and one that cannot be opened refuses the reload with
    /// every bus still running as it was. What the start alone sets up
    /// (sinks, the time zone) is reported as needing a restart.
    ///
    /// # Errors
    /// [`Refused::Port`]: a new serial port cannot be opened.
    pub async fn reload(&mut self, config: &Config) -> Result<Reloaded, Refused> {
        let buses = masters_lock(config);
        self.running.try_new_ports(&buses, self.owned.is_none())?;
        self.configured = buses;
        let mut reloaded = match &self.owned {
            None => self.running.apply(&self.configured, &self.events).await,
            Some(permits) => {
                self.running
                    .apply_owned(&self.configured, &self.events, permits)
                    .await
            }
        };
        let now = Configured::of(config);
        self.described.send_if_modified(|described| {
            let changed = *described != now;
            *described = now;
            changed
        });
        if config.cluster != self.started.cluster {
            reloaded
                .restart_needed
                .push("[cluster] changed: restart kmplog to apply it".to_owned());
        }
        if config.sinks != self.started.sinks {
            reloaded
                .restart_needed
                .push("[sinks] changed: restart kmplog to apply it".to_owned());
        }
        if config.time_zone != self.started.time_zone {
            reloaded.restart_needed.push(format!(
                "time_zone {:?} → {:?}: restart kmplog to apply it",
                self.started.time_zone, config.time_zone
            ));
        }
        Ok(reloaded)
    }

    /// The buses of the configuration now (they follow reloads).
    pub fn configured(&self) -> &[BusConfig] {
        &self.configured
    }

    /// In a cluster: runs from now on the buses `permits` name, each under
    /// its permit; those no longer named stop after their transaction in
    /// flight, and are stopped when this returns.
    pub async fn own(&mut self, permits: Vec<crate::cluster::Permit>) {
        self.running
            .apply_owned(&self.configured, &self.events, &permits)
            .await;
        self.owned = Some(permits);
    }

    /// Stops the buses, writes what they read to the outbox and lets the
    /// sinks deliver what they can within their grace time. The error is
    /// readings the outbox could not take (a full disk) within its grace.
    pub async fn stop(mut self) -> Result<(), Unwritten> {
        self.running.stop().await;
        // The bus tasks held the only senders: the collector now drains and
        // ends; joining threads blocks, so off the async workers.
        let (collector, sinks) = (self.collector, self.sinks);
        let collected = tokio::task::spawn_blocking(move || {
            // A collector that panicked has said so on stderr already.
            let collected = collector.join().unwrap_or(Ok(()));
            sinks.stop(SINK_GRACE);
            collected
        })
        .await
        .unwrap_or(Ok(()));
        // Last, so that the table shows the stop and what was logged during
        // it comes out on stderr after the screen is back.
        if let Some(view) = self.view.take() {
            view.stop().await;
        }
        collected
    }
}

/// Clears its flag when dropped: the collector thread has ended.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The buses, with the serial ports of those that poll locked against
/// another master, and each such port tried now: a port another kmplog
/// polls ends the start at once, rather than collide with it on the line.
/// A port that is missing or fails otherwise is left to its bus, which
/// says so and opens it again later.
fn masters_lock_their_ports(config: &Config) -> Result<Vec<BusConfig>, String> {
    let buses = masters_lock(config);
    for bus in &buses {
        if let BusEndpoint::Serial(settings) = &bus.endpoint
            && settings.exclusive
            && let Err(error @ TransportError::SerialInUse { .. }) = serial::open(settings)
        {
            return Err(format!("bus {}: {error}", bus.name));
        }
    }
    Ok(buses)
}

/// The buses, with the serial ports of those that poll to be locked
/// against another master when opened.
fn masters_lock(config: &Config) -> Vec<BusConfig> {
    let mut buses = config.buses.clone();
    for bus in &mut buses {
        let polls = sends(bus);
        if let BusEndpoint::Serial(settings) = &mut bus.endpoint
            && polls
        {
            settings.exclusive = true;
        }
    }
    buses
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
