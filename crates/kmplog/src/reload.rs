//! Live reload: the buses of a running logger, and how a new configuration
//! is applied to them without a restart.
//!
//! [`RunningBuses`] holds one task per bus with a stop token of its own (a
//! child of the logger's). A reload compares the new buses with the running
//! ones by name ([`diff`]): a bus whose configuration is the same keeps its
//! task, its line and its counters; a changed bus is asked to stop, which
//! its task does between transactions, so the one in flight ends and its
//! readings are handed on, and then starts again on its new queue with its
//! counters carried over, and what its backfills knew (an outage under
//! way, gaps not yet read) for the requests whose meter, registers and
//! logger stayed the same; a removed bus stops the same way; a new bus
//! starts. The collector, the outbox and the sinks are not touched, so no
//! reading is lost. Sinks and the time zone are opened once at the start:
//! a change to them is reported as needing a restart, not half applied.

use std::collections::HashMap;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backfill::auto::BackfillMemory;
use crate::bus::events::EventRouter;
use crate::bus::state::{BusList, BusState, SharedState};
use crate::bus::task::{BusContext, initial_state, run_bus};
use crate::config::{self, BusConfig, BusEndpoint, Config, Diagnostics, RequestConfig, Severity};
use crate::sink::url::SinkUrl;
use crate::transport::TransportError;

/// What a reload did, bus by bus, in the new configuration's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Buses that kept running untouched.
    pub unchanged: Vec<String>,
    /// Buses restarted on their new configuration, each with what changed.
    pub changed: Vec<(String, Vec<String>)>,
    /// Buses started.
    pub added: Vec<String>,
    /// Buses stopped.
    pub removed: Vec<String>,
    /// Changes not applied because they need a restart (sinks, time zone).
    pub restart_needed: Vec<String>,
}

impl Reloaded {
    /// The report as the API answers it.
    pub fn to_json(&self) -> serde_json::Value {
        let changed: Vec<serde_json::Value> = self
            .changed
            .iter()
            .map(|(bus, what)| serde_json::json!({ "bus": bus, "changes": what }))
            .collect();
        serde_json::json!({
            "unchanged": self.unchanged,
            "changed": changed,
            "added": self.added,
            "removed": self.removed,
            "restart_needed": self.restart_needed,
        })
    }
}

/// Why a reload applied nothing.
#[derive(Debug)]
pub enum Refused {
    /// The file has mistakes: every one, as `kmplog check` shows them.
    Invalid(Diagnostics),
    /// The logger cannot reload (it has no file, or it is stopping).
    Unavailable(String),
    /// A bus's new serial port cannot be opened: the running buses go on
    /// as they were, their old ports included.
    Port(PortRefused),
}

/// A serial port a reload could not open.
#[derive(Debug)]
pub struct PortRefused {
    /// The bus.
    pub bus: String,
    /// Its 0-based place in the new configuration.
    pub index: usize,
    /// Why the port cannot be opened, naming it.
    pub error: String,
}

impl std::fmt::Display for PortRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bus {}: {}; nothing was reloaded, every bus runs on as before",
            self.bus, self.error
        )
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Invalid(diagnostics) => {
                let mistakes = diagnostics.count(Severity::Error);
                write!(
                    f,
                    "the configuration has {mistakes} mistake{}, so nothing was reloaded:\n{diagnostics}",
                    if mistakes == 1 { "" } else { "s" }
                )
            }
            Refused::Unavailable(why) => f.write_str(why),
            Refused::Port(port) => port.fmt(f),
        }
    }
}

/// How one bus differs between the running and the new configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChange {
    /// The same configuration.
    Unchanged(String),
    /// Another configuration under the same name, with what changed.
    Changed(String, Vec<String>),
    /// Only in the new configuration.
    Added(String),
    /// Only in the running one.
    Removed(String),
}

/// How `new` differs from `old`, bus by bus by name: the new buses in their
/// order, then the removed ones.
pub fn diff(old: &[BusConfig], new: &[BusConfig]) -> Vec<BusChange> {
    let mut changes: Vec<BusChange> = new
        .iter()
        .map(
            |bus| match old.iter().find(|running| running.name == bus.name) {
                None => BusChange::Added(bus.name.clone()),
                Some(running) if running == bus => BusChange::Unchanged(bus.name.clone()),
                Some(running) => BusChange::Changed(bus.name.clone(), bus_changes(running, bus)),
            },
        )
        .collect();
    changes.extend(
        old.iter()
            .filter(|running| !new.iter().any(|bus| bus.name == running.name))
            .map(|running| BusChange::Removed(running.name.clone())),
    );
    changes
}

/// What changed in a bus, each as `what: old → new`.
fn bus_changes(old: &BusConfig, new: &BusConfig) -> Vec<String> {
    let mut changes = Vec::new();
    if old.endpoint != new.endpoint {
        changes.push(format!("line: {} → {}", old.endpoint, new.endpoint));
    }
    if old.echo != new.echo {
        changes.push(format!("echo: {:?} → {:?}", old.echo, new.echo));
    }
    if old.retry_pause != new.retry_pause {
        changes.push(format!(
            "retry pause: {:?} → {:?}",
            old.retry_pause, new.retry_pause
        ));
    }
    let descriptions = |requests: &[RequestConfig]| -> Vec<String> {
        requests
            .iter()
            .map(|request| request.description.clone())
            .collect()
    };
    for request in &new.requests {
        match old
            .requests
            .iter()
            .find(|running| running.description == request.description)
        {
            None => changes.push(format!("request '{}' added", request.description)),
            Some(running) => {
                for (field, before, after) in request_changes(running, request) {
                    changes.push(format!(
                        "request '{}': {field}: {before} → {after}",
                        request.description
                    ));
                }
            }
        }
    }
    for running in &old.requests {
        if !new
            .requests
            .iter()
            .any(|request| request.description == running.description)
        {
            changes.push(format!("request '{}' removed", running.description));
        }
    }
    let (before, after) = (descriptions(&old.requests), descriptions(&new.requests));
    let kept = |names: &[String], other: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|name| other.contains(name))
            .cloned()
            .collect()
    };
    let (kept_before, kept_after) = (kept(&before, &after), kept(&after, &before));
    if kept_before != kept_after {
        changes.push(format!(
            "order: {} → {}",
            kept_before.join(", "),
            kept_after.join(", ")
        ));
    }
    changes
}

/// The fields of a request that differ: name, old and new.
fn request_changes(
    old: &RequestConfig,
    new: &RequestConfig,
) -> Vec<(&'static str, String, String)> {
    let fields = |request: &RequestConfig| -> Vec<(&'static str, String)> {
        let items: Vec<String> = request
            .items
            .iter()
            .map(|item| format!("{}={}", item.export_name, item.register))
            .collect();
        vec![
            ("send", request.send.to_string()),
            ("addresses", format!("{:?}", request.addresses)),
            ("model", format!("{:?}", request.model)),
            ("timeout", format!("{:?}", request.timeout)),
            ("retries", request.retries.to_string()),
            ("items", items.join(" ")),
            (
                "method",
                request
                    .method
                    .as_ref()
                    .map_or_else(|| "listen".to_owned(), crate::bus::state::method_in_words),
            ),
            ("on_complete", format!("{:?}", request.on_complete)),
            ("on_failure", format!("{:?}", request.on_failure)),
            ("on_info_flag", format!("{:?}", request.on_info_flag)),
            ("on_no_data", format!("{:?}", request.on_no_data)),
            ("thresholds", format!("{:?}", request.thresholds)),
            ("reads_per_day", format!("{:?}", request.reads_per_day)),
            ("backfill", format!("{:?}", request.backfill)),
        ]
    };
    fields(old)
        .into_iter()
        .zip(fields(new))
        .filter(|((_, before), (_, after))| before != after)
        .map(|((field, before), (_, after))| (field, before, after))
        .collect()
}

/// One bus's task and what it runs.
struct Running {
    config: BusConfig,
    state: SharedState,
    stop: CancellationToken,
    /// Ends with what a polling bus's backfills know.
    task: JoinHandle<Option<BackfillMemory>>,
    /// The lease it runs under, in a cluster.
    permit: Option<crate::cluster::Permit>,
}

/// The bus tasks of a logger.
pub struct RunningBuses {
    /// What every bus task gets; its token is the logger's.
    context: BusContext,
    running: Vec<Running>,
    list: BusList,
    /// In a cluster, the permit each bus is started under.
    permits: HashMap<String, crate::cluster::Permit>,
}

/// Whether the bus polls (a master), rather than only listening.
pub(crate) fn sends(bus: &BusConfig) -> bool {
    bus.requests.iter().any(|request| request.send)
}

impl RunningBuses {
    /// Starts a task for each of `buses`.
    pub fn start(buses: &[BusConfig], context: BusContext) -> Self {
        let mut running = RunningBuses {
            context,
            running: Vec::new(),
            list: BusList::default(),
            permits: HashMap::new(),
        };
        for bus in buses {
            let started = running.spawn(bus.clone(), SharedState::new(initial_state(bus)), None);
            running.running.push(started);
        }
        running.publish();
        running
    }

    /// Tries the serial port of each bus of `buses` that no running bus
    /// holds, before anything stops, so that a bus is not moved off a line
    /// that works onto a port that cannot be opened (missing, held by
    /// another master, no permission): that reload is refused while the old
    /// bus still runs. A new bus is treated as at the start: a port another
    /// master holds refuses it, a missing one is left to the bus, which says
    /// so and tries again. A port a running bus holds is its own, so it is
    /// not tried (its lock would refuse a second opening). In a cluster
    /// (`new_buses` false) a new bus is not tried at all: another instance
    /// may be polling it, and it starts here only when this one owns it.
    ///
    /// # Errors
    /// [`Refused::Port`] for the first port that cannot be opened.
    pub fn try_new_ports(&self, buses: &[BusConfig], new_buses: bool) -> Result<(), Refused> {
        let held = |path: &Path| {
            self.running.iter().any(|running| {
                matches!(&running.config.endpoint, BusEndpoint::Serial(settings) if settings.path == path)
            })
        };
        for (index, bus) in buses.iter().enumerate() {
            let BusEndpoint::Serial(settings) = &bus.endpoint else {
                continue;
            };
            if held(&settings.path) {
                continue;
            }
            let replaces_a_running_bus = self
                .running
                .iter()
                .any(|running| running.config.name == bus.name);
            if !replaces_a_running_bus && !new_buses {
                continue;
            }
            match crate::transport::serial::open(settings) {
                Ok(_) => {}
                Err(error)
                    if replaces_a_running_bus
                        || matches!(error, TransportError::SerialInUse { .. }) =>
                {
                    return Err(Refused::Port(PortRefused {
                        bus: bus.name.clone(),
                        index,
                        error: error.to_string(),
                    }));
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// The states of the buses, which follow reloads.
    pub fn list(&self) -> BusList {
        self.list.clone()
    }

    /// Starts a task for bus `config`, going on from `memory`, what an
    /// earlier task of it knew of its backfills.
    fn spawn(
        &self,
        config: BusConfig,
        state: SharedState,
        memory: Option<BackfillMemory>,
    ) -> Running {
        let mut context = self.context.clone();
        context.shutdown = self.context.shutdown.child_token();
        let stop = context.shutdown.clone();
        let permit = self.permits.get(&config.name).cloned();
        if let Some(permit) = &permit {
            permit.attach(stop.clone());
        }
        context.permit.clone_from(&permit);
        let task = if sends(&config) {
            let run = run_bus(config.clone(), state.clone(), context, memory);
            tokio::spawn(async move { Some(run.await) })
        } else {
            let run = crate::bus::passive::run_passive(config.clone(), state.clone(), context);
            tokio::spawn(async move {
                run.await;
                None
            })
        };
        Running {
            config,
            state,
            stop,
            task,
            permit,
        }
    }

    fn publish(&self) {
        self.list.replace(
            self.running.iter().map(|bus| bus.config.clone()).collect(),
            self.running.iter().map(|bus| bus.state.clone()).collect(),
        );
    }

    /// Runs `buses` from now on: unchanged buses go on, changed and removed
    /// ones stop after their transaction in flight, changed and new ones
    /// start; `events` is routed for the new buses before they start.
    pub async fn apply(&mut self, buses: &[BusConfig], events: &EventRouter) -> Reloaded {
        let old: Vec<BusConfig> = self.running.iter().map(|bus| bus.config.clone()).collect();
        let changes = diff(&old, buses);
        let mut running: HashMap<String, Running> = self
            .running
            .drain(..)
            .map(|bus| (bus.config.name.clone(), bus))
            .collect();
        // Every bus that stops is asked at once, so that the slowest
        // transaction in flight is all the reload waits for.
        let mut stopped: HashMap<String, (BusState, Option<BackfillMemory>)> = HashMap::new();
        for change in &changes {
            if let BusChange::Changed(name, _) | BusChange::Removed(name) = change
                && let Some(bus) = running.get(name)
            {
                bus.stop.cancel();
            }
        }
        for change in &changes {
            if let BusChange::Changed(name, _) | BusChange::Removed(name) = change
                && let Some(bus) = running.remove(name)
            {
                // A bus task that panicked has said so; its state is kept,
                // its backfills' memory is lost.
                let memory = bus.task.await.ok().flatten();
                stopped.insert(name.clone(), (bus.state.snapshot(), memory));
            }
        }
        // Routed only now: an event that comes while the old tasks finish
        // goes to the old queues, not to a task that does not know it.
        events.reroute(buses);
        let mut report = Reloaded::default();
        for (bus, change) in buses.iter().zip(&changes) {
            match change {
                BusChange::Unchanged(name) => {
                    if let Some(kept) = running.remove(name) {
                        self.running.push(kept);
                    }
                    report.unchanged.push(name.clone());
                }
                BusChange::Changed(name, what) => {
                    let mut state = initial_state(bus);
                    let mut memory = None;
                    if let Some((before, backfills)) = stopped.remove(name) {
                        carry_over(&before, &mut state);
                        memory = backfills;
                    }
                    let started = self.spawn(bus.clone(), SharedState::new(state), memory);
                    self.running.push(started);
                    report.changed.push((name.clone(), what.clone()));
                }
                BusChange::Added(name) => {
                    let started =
                        self.spawn(bus.clone(), SharedState::new(initial_state(bus)), None);
                    self.running.push(started);
                    report.added.push(name.clone());
                }
                BusChange::Removed(_) => {}
            }
        }
        report.removed = changes
            .iter()
            .filter_map(|change| match change {
                BusChange::Removed(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        self.publish();
        report
    }

    /// In a cluster: runs those of `buses` that `permits` name, each under
    /// its permit, from now on. A bus whose task runs under another permit
    /// (its lease lapsed and was acquired again) is stopped first and
    /// started afresh; the rest goes as [`RunningBuses::apply`] has it.
    pub async fn apply_owned(
        &mut self,
        buses: &[BusConfig],
        events: &EventRouter,
        permits: &[crate::cluster::Permit],
    ) -> Reloaded {
        self.permits = permits
            .iter()
            .map(|permit| (permit.bus().to_owned(), permit.clone()))
            .collect();
        let current = |bus: &Running| {
            bus.permit.is_some() && bus.permit.as_ref() == self.permits.get(&bus.config.name)
        };
        if !self.running.iter().all(current) {
            let kept: Vec<BusConfig> = self
                .running
                .iter()
                .filter(|bus| current(bus))
                .map(|bus| bus.config.clone())
                .collect();
            self.apply(&kept, events).await;
        }
        let owned: Vec<BusConfig> = buses
            .iter()
            .filter(|bus| self.permits.contains_key(&bus.name))
            .cloned()
            .collect();
        self.apply(&owned, events).await
    }

    /// Stops every bus after its transaction in flight and waits for them.
    /// The bus context goes with it: the collector ends once the last
    /// sender of readings is gone.
    pub async fn stop(self) {
        self.context.shutdown.cancel();
        for bus in self.running {
            let _ = bus.task.await;
        }
    }
}

/// What a restarted bus keeps of its run so far: its counters, its last
/// error and what it knows of the meters still on its queue, so that
/// `/metrics` counters do not fall back to zero on a reload.
fn carry_over(before: &BusState, state: &mut BusState) {
    state.polls = before.polls;
    state.timeouts = before.timeouts;
    state.faults = before.faults;
    state.crc_errors = before.crc_errors;
    state.reconnects = before.reconnects;
    state.last_error.clone_from(&before.last_error);
    state.lateness_us.clone_from(&before.lateness_us);
    for meter in &mut state.meters {
        if let Some(known) = before
            .meters
            .iter()
            .find(|known| known.address == meter.address)
        {
            let model = meter.model;
            *meter = known.clone();
            meter.model = model.or(known.model);
        }
    }
}

/// What a running logger's reload reads: its file and the sinks its command
/// line adds.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The configuration file.
    pub file: std::path::PathBuf,
    /// `--sink` URLs, added to the file's sinks as at the start.
    pub extra_sinks: Vec<SinkUrl>,
}

impl ReloadSource {
    /// The configuration in the file now, with the command line's sinks.
    ///
    /// # Errors
    /// Every mistake in the file, or that it cannot be read.
    pub fn load(&self) -> Result<Config, Refused> {
        let (mut config, _) = config::load(&self.file).map_err(Refused::Invalid)?;
        config.sinks.urls.extend(self.extra_sinks.iter().cloned());
        Ok(config)
    }
}

/// A reload asked for: what asked (for the log) and where the answer goes.
#[derive(Debug)]
pub struct ReloadOrder {
    /// `POST /api/reload`, `PUT /api/config`.
    pub trigger: &'static str,
    /// Takes what the reload did.
    pub answer: oneshot::Sender<Result<Reloaded, Refused>>,
}

/// Asks the running logger to reload its file: what the API holds.
#[derive(Debug, Clone)]
pub struct Reloader {
    orders: mpsc::Sender<ReloadOrder>,
    /// The configuration file the logger runs.
    pub file: std::path::PathBuf,
}

impl Reloader {
    /// A reloader for `file` and the receiver of its orders, which the
    /// logger's loop answers.
    pub fn new(file: &Path) -> (Self, mpsc::Receiver<ReloadOrder>) {
        let (orders, receiver) = mpsc::channel(4);
        (
            Reloader {
                orders,
                file: file.to_path_buf(),
            },
            receiver,
        )
    }

    /// Reloads the file and waits for what it did.
    ///
    /// # Errors
    /// [`Refused`] when the file has mistakes or the logger is stopping.
    pub async fn reload(&self, trigger: &'static str) -> Result<Reloaded, Refused> {
        let (answer, answered) = oneshot::channel();
        let stopping = || Refused::Unavailable("the logger is stopping".to_owned());
        let order = ReloadOrder { trigger, answer };
        self.orders.send(order).await.map_err(|_| stopping())?;
        answered.await.map_err(|_| stopping())?
    }
}

/// Reloads `logger` from `source` (`None`: it runs no file, as the demo)
/// and logs the outcome under `trigger`.
pub async fn reload_logger(
    logger: &mut crate::logger::Logger,
    source: Option<&ReloadSource>,
    trigger: &str,
) -> Result<Reloaded, Refused> {
    let outcome = match source {
        None => Err(Refused::Unavailable(
            "this logger runs no configuration file (kmplog demo), so there is nothing to reload"
                .to_owned(),
        )),
        Some(source) => match source.load() {
            Ok(config) => logger.reload(&config).await,
            Err(refused) => Err(refused),
        },
    };
    log_outcome(trigger, &outcome);
    outcome
}

/// Resolves on each SIGHUP; never where there are no signals, or when the
/// handler cannot be installed (which it says).
pub struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    /// Takes SIGHUP from now on: it no longer ends the process.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|error| warn!(reason = %error, "SIGHUP will not reload"))
                .ok();
            Hangups(signal)
        }
        #[cfg(not(unix))]
        Hangups()
    }

    /// The next SIGHUP.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

impl Default for Hangups {
    fn default() -> Self {
        Self::new()
    }
}

/// Logs what a reload did (each change with its old and new value) or why
/// it applied nothing, as `trigger` names it (`SIGHUP`, `POST /api/reload`).
fn log_outcome(trigger: &str, outcome: &Result<Reloaded, Refused>) {
    match outcome {
        Ok(reloaded) => {
            for (bus, what) in &reloaded.changed {
                for change in what {
                    info!(trigger, bus = %bus, change = %change, "bus reloaded");
                }
            }
            for bus in &reloaded.added {
                info!(trigger, bus = %bus, "bus added");
            }
            for bus in &reloaded.removed {
                info!(trigger, bus = %bus, "bus removed");
            }
            for change in &reloaded.restart_needed {
                warn!(trigger, change = %change, "not applied until a restart");
            }
            info!(
                trigger,
                unchanged = reloaded.unchanged.len(),
                changed = reloaded.changed.len(),
                added = reloaded.added.len(),
                removed = reloaded.removed.len(),
                "configuration reloaded"
            );
        }
        Err(refused) => warn!(trigger, reason = %refused, "configuration not reloaded"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kmp::catalogue::Model;
    use tokio::net::TcpListener;

    use super::*;
    use crate::clock::Clock;
    use crate::reading::{Batch, Status};
    use crate::sim::line::LineConfig;
    use crate::sim::meter::Meter;
    use crate::sim::{Settings, Simulator, tcp};

    fn buses(text: &str) -> Vec<BusConfig> {
        config::parse(text, "kmplog.toml").expect("valid").0.buses
    }

    fn bus(name: &str, address: &str, requests: &str) -> String {
        format!("[[bus]]\nname = \"{name}\"\ntcp = \"{address}\"\n{requests}")
    }

    fn polling(description: &str, every: &str) -> String {
        format!(
            "[[bus.request]]\ndescription = \"{description}\"\naddresses = \"1\"\nitems = [\"T1\"]\npolling = \"{every}\"\n"
        )
    }

    #[test]
    fn the_diff_names_each_change_with_its_old_and_new_value() {
        let old = buses(
            &[
                bus("keep", "h:1", &polling("a", "5s")),
                bus(
                    "change",
                    "h:2",
                    &(polling("a", "5s") + &polling("b", "1min")),
                ),
                bus("gone", "h:3", &polling("a", "5s")),
            ]
            .concat(),
        );
        let new = buses(
            &[
                bus("keep", "h:1", &polling("a", "5s")),
                bus(
                    "change",
                    "h:9",
                    &(polling("b", "1min") + &polling("a", "10s") + &polling("c", "1h")),
                ),
                bus("new", "h:4", &polling("a", "5s")),
            ]
            .concat(),
        );
        assert_eq!(
            diff(&old, &new),
            [
                BusChange::Unchanged("keep".to_owned()),
                BusChange::Changed(
                    "change".to_owned(),
                    vec![
                        "line: tcp h:2 → tcp h:9".to_owned(),
                        "request 'a': method: every 5 s → every 10 s".to_owned(),
                        "request 'c' added".to_owned(),
                        "order: a, b → b, a".to_owned(),
                    ]
                ),
                BusChange::Added("new".to_owned()),
                BusChange::Removed("gone".to_owned()),
            ]
        );
    }

    async fn simulated_gateway() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let simulator = Simulator::new(Settings {
            meters: vec![Meter::new(1, Model::Multical603)],
            line: LineConfig::default(),
            seed: Some(1),
            quiet: true,
            outage: None,
        });
        tokio::spawn(tcp::serve(listener, simulator, None));
        address
    }

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !condition() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_reload_keeps_unchanged_buses_running_and_restarts_changed_ones_losing_no_reading() {
        let (first, second) = (simulated_gateway().await, simulated_gateway().await);
        let third = simulated_gateway().await;
        let old = buses(
            &[
                bus("keep", &first, &polling("steady", "100ms")),
                bus("change", &second, &polling("old", "100ms")),
            ]
            .concat(),
        );
        let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        let events = EventRouter::for_buses(&old);
        let context = BusContext {
            clock: Clock::System,
            zone: jiff::tz::TimeZone::UTC,
            events: events.clone(),
            readings: sender,
            shutdown: CancellationToken::new(),
            permit: None,
        };
        let mut running = RunningBuses::start(&old, context);
        let list = running.list();
        let before = list.states();
        let polls = |state: &SharedState| state.snapshot().polls;
        until("both buses poll", || {
            before.iter().all(|state| polls(state) >= 3)
        })
        .await;

        let new = buses(
            &[
                bus("keep", &first, &polling("steady", "100ms")),
                bus("change", &second, &polling("new", "100ms")),
                bus("added", &third, &polling("fresh", "100ms")),
            ]
            .concat(),
        );
        let kept_polls = polls(&before[0]);
        let reloaded = running.apply(&new, &events).await;
        assert_eq!(reloaded.unchanged, ["keep"]);
        assert_eq!(reloaded.added, ["added"]);
        assert_eq!(
            reloaded.changed,
            [(
                "change".to_owned(),
                vec![
                    "request 'new' added".to_owned(),
                    "request 'old' removed".to_owned()
                ]
            )]
        );
        let after = list.states();
        assert_eq!(after.len(), 3);
        assert!(before[0].is(&after[0]), "the unchanged bus keeps its state");
        // The old task of the changed bus has ended: its count is final.
        let old_polls = polls(&before[1]);
        assert!(polls(&after[1]) >= old_polls, "counters are carried over");
        until("the new queues run and the unchanged one goes on", || {
            polls(&after[1]) >= old_polls + 3
                && polls(&after[2]) >= 3
                && polls(&after[0]) >= kept_polls + 3
        })
        .await;
        assert_eq!(
            after[0].snapshot().reconnects,
            0,
            "the unchanged bus kept its line"
        );
        running.stop().await;

        let mut readings = Vec::new();
        while let Ok(batch) = received.try_recv() {
            readings.extend(batch.into_readings());
        }
        let of = |request: &str| readings.iter().filter(|r| r.request == request).count() as u64;
        // Every transaction of the old queue, the one in flight included,
        // gave its reading, and each was a real answer.
        assert_eq!(of("old"), old_polls);
        assert!(of("new") >= 3 && of("fresh") >= 3 && of("steady") >= kept_polls);
        assert!(
            readings.iter().all(|r| r.status == Status::Ok),
            "{readings:?}"
        );
    }

    /// A new bus is tried as at the start: a port another master holds
    /// refuses the reload, a missing one is left to the bus.
    #[tokio::test]
    async fn a_new_bus_is_refused_only_on_a_port_another_master_holds() {
        let pty = crate::sim::pty::Pty::open().unwrap();
        let on = |path: &str| {
            buses(&format!(
                "[[bus]]\nname = \"new\"\nserial = \"{path}\"\n{}",
                polling("a", "5s")
            ))
        };
        let (readings, _unread) = tokio::sync::mpsc::unbounded_channel();
        let running = RunningBuses::start(
            &[],
            BusContext {
                clock: Clock::System,
                zone: jiff::tz::TimeZone::UTC,
                events: EventRouter::default(),
                readings,
                shutdown: CancellationToken::new(),
                permit: None,
            },
        );
        assert!(
            running
                .try_new_ports(&on("/dev/kmplog-no-such-port"), true)
                .is_ok()
        );
        let path = pty.path().display().to_string();
        let held = crate::transport::serial::open(&crate::transport::SerialSettings {
            exclusive: true,
            ..crate::transport::SerialSettings::new(&path)
        })
        .unwrap();
        let mut new_bus = on(&path);
        if let BusEndpoint::Serial(settings) = &mut new_bus[0].endpoint {
            settings.exclusive = true;
        }
        let refused = running
            .try_new_ports(&new_bus, true)
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(&format!(
                "bus new: serial port {path} is held by another master"
            )),
            "{refused}"
        );
        assert!(
            running.try_new_ports(&new_bus, false).is_ok(),
            "in a cluster a new bus may be another instance's"
        );
        drop(held);
        assert!(running.try_new_ports(&new_bus, true).is_ok());
    }
}
