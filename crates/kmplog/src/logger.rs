//! The logger: from a validated configuration, one task per bus, the
//! collector that writes every reading to the outbox, the sinks that take
//! them from there, the live view and the event channel, until it is stopped.
//!
//! Stopping goes in pipeline order, so that nothing read is lost: the buses
//! finish their transactions, the collector writes what they read to the
//! outbox, then the sinks deliver what they can within a grace time; what
//! they cannot waits in the outbox for the next start.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::bus::state::SharedState;
use crate::bus::task::{BusContext, initial_state, run_bus};
use crate::clock::Clock;
use crate::config::{Config, TerminalMode};
use crate::live::{self, Latest};
use crate::outbox::Outbox;
use crate::reading::Reading;
use crate::sink::files::{DailyFiles, Format};
use crate::sink::mqtt::MqttSink;
use crate::sink::postgres::PostgresSink;
use crate::sink::sqlite::SqliteSink;
use crate::sink::stdout::JsonLinesStdout;
use crate::sink::url::SinkUrl;
use crate::sink::{Sink, SinkError, Sinks};

/// How long the sinks may go on delivering once the logger stops.
const SINK_GRACE: Duration = Duration::from_secs(5);
/// How long the collector keeps trying to write to an outbox that fails
/// (a full disk), once the logger stops, before it gives up on readings.
const OUTBOX_GRACE: Duration = Duration::from_secs(10);

/// How the logger runs, beyond its configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print JSON lines on stdout even on a terminal.
    pub json: bool,
    /// Stop after this long; `None`: until stopped.
    pub duration: Option<Duration>,
    /// Time source.
    pub clock: Clock,
}

/// A running logger: stop it with [`Logger::stop`] or let it run out.
pub struct Logger {
    /// Fires named events into the running buses.
    pub events: broadcast::Sender<String>,
    /// The state of each bus.
    pub buses: Vec<SharedState>,
    /// The latest reading of every register.
    pub latest: Arc<Mutex<Latest>>,
    /// Every batch of readings as it is read, for live views.
    pub live: broadcast::Sender<Arc<[Reading]>>,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    collector: std::thread::JoinHandle<()>,
    sinks: Sinks,
    view: Option<tokio::task::JoinHandle<()>>,
}

/// The time zone of the configuration, or the system's.
pub fn time_zone(config: &Config) -> Result<TimeZone, String> {
    match &config.time_zone {
        Some(name) => TimeZone::get(name).map_err(|error| format!("time zone {name}: {error}")),
        None => Ok(TimeZone::system()),
    }
}

/// Opens the sinks the configuration asks for. Sinks that take commands
/// (MQTT) fire named `events` into the buses.
fn open_sinks(
    config: &Config,
    zone: &TimeZone,
    json_stdout: bool,
    events: &broadcast::Sender<String>,
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
            SinkUrl::Mqtt(url) => {
                Box::new(MqttSink::open(url, events.clone())?.with_models(meter_models(config)))
            }
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

/// The meter model of each bus and address whose requests name one, for
/// sinks that describe meters (MQTT discovery's device names).
fn meter_models(
    config: &Config,
) -> std::collections::BTreeMap<(String, u8), kmp::catalogue::Model> {
    let mut models = std::collections::BTreeMap::new();
    for bus in &config.buses {
        for request in &bus.requests {
            for &address in &request.addresses {
                if let Some(model) = request.model {
                    models.entry((bus.name.clone(), address)).or_insert(model);
                }
            }
        }
    }
    models
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
        let (events, _) = broadcast::channel(256);
        let sinks =
            open_sinks(config, &zone, json_stdout, &events).map_err(|error| error.to_string())?;
        let mut outbox = Outbox::open(&config.sinks.outbox, config.sinks.outbox_max_rows)
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
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut buses = Vec::new();
        for bus in &config.buses {
            let state = SharedState::new(initial_state(bus));
            buses.push(state.clone());
            if bus.requests.iter().all(|request| !request.send) {
                tasks.spawn(crate::bus::passive::run_passive(
                    bus.clone(),
                    state,
                    context.clone(),
                ));
            } else {
                tasks.spawn(run_bus(bus.clone(), state, context.clone()));
            }
        }
        let latest = Arc::new(Mutex::new(Latest::default()));
        let (live, _) = broadcast::channel(64);
        let collector = {
            let (latest, live) = (Arc::clone(&latest), live.clone());
            std::thread::Builder::new()
                .name("collector".to_owned())
                .spawn(move || collect(readings, outbox, appended, latest, live))
                .map_err(|error| format!("cannot start the collector: {error}"))?
        };
        let view = table.then(|| {
            tokio::spawn(redraw(
                buses.clone(),
                Arc::clone(&latest),
                zone,
                options.clock.clone(),
            ))
        });
        Ok(Logger {
            events,
            buses,
            latest,
            live,
            shutdown,
            tasks,
            collector,
            sinks,
            view,
        })
    }

    /// Runs until `options.duration` has passed or Ctrl-C / SIGTERM, then
    /// stops and waits until every sink has written everything.
    pub async fn run_until_stopped(self, options: &Options) {
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
        self.stop().await;
    }

    /// Stops the buses, writes what they read to the outbox and lets the
    /// sinks deliver what they can within their grace time.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(view) = self.view.take() {
            view.abort();
        }
        // The bus tasks held the only senders: the collector now drains and
        // ends; joining threads blocks, so off the async workers.
        let (collector, sinks) = (self.collector, self.sinks);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = collector.join();
            sinks.stop(SINK_GRACE);
        })
        .await;
    }
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

/// Takes readings from the buses into the outbox, then tells the sinks and
/// the live views. A batch the outbox cannot take (a full disk) is kept and
/// tried again, so nothing read is lost while the logger runs.
fn collect(
    mut readings: mpsc::UnboundedReceiver<Vec<Reading>>,
    mut outbox: Outbox,
    appended: watch::Sender<u64>,
    latest: Arc<Mutex<Latest>>,
    live: broadcast::Sender<Arc<[Reading]>>,
) {
    let mut pending: VecDeque<Vec<Reading>> = VecDeque::new();
    let mut last_error: Option<String> = None;
    let mut open = true;
    let mut stopping_since: Option<std::time::Instant> = None;
    while open || !pending.is_empty() {
        if pending.is_empty() {
            match readings.blocking_recv() {
                Some(batch) => pending.push_back(batch),
                None => open = false,
            }
        }
        while let Ok(batch) = readings.try_recv() {
            pending.push_back(batch);
        }
        while let Some(batch) = pending.front() {
            match outbox.append(batch) {
                Ok(last) => {
                    if last_error.take().is_some() {
                        eprintln!("kmplog: outbox {}: writing again", outbox.path().display());
                    }
                    let batch: Arc<[Reading]> = pending.pop_front().unwrap_or_default().into();
                    latest
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .update(&batch);
                    let _ = live.send(batch);
                    appended.send_replace(last);
                }
                Err(error) => {
                    let message = error.to_string();
                    let waiting: usize = pending.iter().map(Vec::len).sum();
                    if last_error.as_deref() != Some(message.as_str()) {
                        eprintln!("kmplog: {message}; {waiting} readings wait in memory");
                    }
                    last_error = Some(message);
                    if !open {
                        let since = *stopping_since.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() > OUTBOX_GRACE {
                            eprintln!(
                                "kmplog: error: stopping with {waiting} readings the outbox could not take"
                            );
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    break;
                }
            }
        }
    }
}

/// Redraws the live table on the terminal once a second.
async fn redraw(buses: Vec<SharedState>, latest: Arc<Mutex<Latest>>, zone: TimeZone, clock: Clock) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let screen = {
            let latest = latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            live::render(&buses, &latest, &zone, clock.now())
        };
        print!("{}{screen}", live::CLEAR);
    }
}
