//! The logger: from a validated configuration, one task per bus, the sinks,
//! the live view and the event channel, until it is stopped.

use std::io::IsTerminal;
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::bus::state::SharedState;
use crate::bus::task::{BusContext, initial_state, run_bus};
use crate::clock::Clock;
use crate::config::{Config, TerminalMode};
use crate::live::{self, Latest};
use crate::reading::Reading;
use crate::sink::files::{DailyFiles, Format};
use crate::sink::sqlite::SqliteSink;
use crate::sink::stdout::JsonLinesStdout;
use crate::sink::{Dispatcher, Sink, SinkError};

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
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    collector: tokio::task::JoinHandle<()>,
}

/// The time zone of the configuration, or the system's.
pub fn time_zone(config: &Config) -> Result<TimeZone, String> {
    match &config.time_zone {
        Some(name) => TimeZone::get(name).map_err(|error| format!("time zone {name}: {error}")),
        None => Ok(TimeZone::system()),
    }
}

/// Opens the sinks the configuration asks for.
fn open_sinks(
    config: &Config,
    zone: &TimeZone,
    json_stdout: bool,
) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(path) = &config.sinks.sqlite {
        sinks.push(Box::new(SqliteSink::open(path)?));
    }
    if let Some(directory) = &config.sinks.csv {
        sinks.push(Box::new(DailyFiles::open(
            directory,
            Format::Csv,
            zone.clone(),
        )?));
    }
    if let Some(directory) = &config.sinks.jsonl {
        sinks.push(Box::new(DailyFiles::open(
            directory,
            Format::JsonLines,
            zone.clone(),
        )?));
    }
    if json_stdout {
        sinks.push(Box::new(JsonLinesStdout));
    }
    Ok(sinks)
}

impl Logger {
    /// Starts everything. Errors are about the environment (a sink that
    /// cannot be opened, an unknown time zone), never about meters.
    pub fn start(config: &Config, options: &Options) -> Result<Logger, String> {
        let zone = time_zone(config)?;
        let on_terminal = std::io::stdout().is_terminal();
        let (json_stdout, table) = match config.sinks.terminal {
            TerminalMode::Off => (false, false),
            TerminalMode::Json => (true, false),
            TerminalMode::Table => (options.json, !options.json),
            TerminalMode::Auto => (options.json || !on_terminal, !options.json && on_terminal),
        };
        let sinks = open_sinks(config, &zone, json_stdout).map_err(|error| error.to_string())?;
        let dispatcher =
            Dispatcher::start(sinks).map_err(|error| format!("cannot start the sinks: {error}"))?;
        let (events, _) = broadcast::channel(256);
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
        let view = table.then(|| (buses.clone(), zone, options.clock.clone()));
        let collector = tokio::spawn(collect(readings, dispatcher, view));
        Ok(Logger {
            events,
            buses,
            shutdown,
            tasks,
            collector,
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

    /// Stops the buses and waits until the sinks have written everything.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        // The bus tasks held the only senders: the collector now drains and ends.
        let _ = self.collector.await;
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

/// Takes readings from the buses to the sinks and the live view.
async fn collect(
    mut readings: mpsc::UnboundedReceiver<Vec<Reading>>,
    dispatcher: Dispatcher,
    view: Option<(Vec<SharedState>, TimeZone, Clock)>,
) {
    let mut latest = Latest::default();
    let mut redraw = tokio::time::interval(Duration::from_secs(1));
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            batch = readings.recv() => match batch {
                Some(batch) => {
                    latest.update(&batch);
                    dispatcher.send(batch);
                }
                None => break,
            },
            _ = redraw.tick(), if view.is_some() => {
                if let Some((buses, zone, clock)) = &view {
                    print!("{}{}", live::CLEAR, live::render(buses, &latest, zone, clock.now()));
                }
            }
        }
    }
    // Writing to SQLite or files can block: do it off the async threads.
    let _ = tokio::task::spawn_blocking(move || dispatcher.close()).await;
}
