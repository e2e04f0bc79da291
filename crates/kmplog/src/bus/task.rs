//! The task that owns one bus: it runs the bus's queue on its schedules, one
//! request at a time, addresses in turn, and turns every attempt into
//! readings.
//!
//! Due requests run in queue order; a request that falls due while the bus is
//! busy waits, and the ticks it missed are merged into one run (the next fire
//! time is always computed strictly after the moment the run ends). Events
//! wait in the bus's inbox and run their requests after the request in
//! progress, before the next due one: a bus that is always busy still runs
//! them, and each due request still gets its turn between them. A line that
//! fails is reopened with back-off while the schedule goes on; requests that
//! fall due meanwhile end as `line_down` readings. Each address's readings
//! are handed on as soon as they are read, not at the end of the run.
//! A backfill after an outage ([`crate::backfill::auto`]) gets one exchange
//! after each request and while the bus is idle: it learns from the runs,
//! and decides itself what to ask.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kmp::catalogue::info;
use kmp::message::{Request, Response};
use kmp_schedule::Schedule;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::{EventRouter, Inbox};
use super::health::{MeterWatch, line_failed, line_opened};
use super::master::{Exchange, LineFault, Master, MasterSettings, Outcome};
use super::meters::{meters_of, record_readings};
use super::state::{BusState, RequestState, SharedState, method_in_words};
use super::wake::{Answer, WAKE_TIMEOUT, Wakefulness};
use crate::backfill::auto::{AutoBackfill, BackfillMemory};
use crate::clock::Clock;
use crate::config::{BusConfig, BusEndpoint, RequestConfig};
use crate::reading::{Batch, CounterGuard, Reading, Reply, Status};
use crate::transport::{BoxedLine, Endpoint, Opener, TransportError};
use kmp::FrameError;

/// First pause before reopening a failed line; doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between attempts to reopen a line while its requests are
/// due, so that a gateway that comes back is read again within it. An idle
/// bus does not try at all: only a request that runs opens the line.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a bus task needs from the rest of the logger.
#[derive(Clone)]
pub struct BusContext {
    /// Time source.
    pub clock: Clock,
    /// Time zone of the schedules.
    pub zone: TimeZone,
    /// Named events: the task takes its own from its inbox and fires
    /// completion, failure and threshold events.
    pub events: EventRouter,
    /// Where readings go.
    pub readings: mpsc::UnboundedSender<Batch>,
    /// Stops the task.
    pub shutdown: CancellationToken,
    /// In a cluster, the lease this bus is polled under: asked before
    /// opening the line and before each transaction, each with the room it
    /// needs (see [`crate::cluster::lease`]); `None`: always allowed.
    pub permit: Option<crate::cluster::Permit>,
}

/// One request with its schedule.
struct Planned {
    config: RequestConfig,
    schedule: Schedule,
    next: Option<Timestamp>,
    /// The longest one of its transactions on an open line can take, which
    /// a permit must leave room for.
    longest: Duration,
}

/// Which side of a threshold a value was on, to fire on crossings only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inside,
    Beyond,
}

/// The line and what it takes to reopen it.
struct Connection {
    opener: Box<dyn Opener>,
    /// The longest opening the line can take, which a permit must leave
    /// room for.
    longest_opening: Duration,
    /// What is known of the meters' optical ports on this line.
    wakefulness: Wakefulness,
    master: Option<Master<BoxedLine>>,
    opened_before: bool,
    backoff: Duration,
    retry_at: Option<Timestamp>,
}

/// Runs one bus until shutdown, going on from what an earlier task of it
/// knew of its backfills (`memory`); gives what its own know.
pub async fn run_bus(
    config: BusConfig,
    state: SharedState,
    context: BusContext,
    memory: Option<BackfillMemory>,
) -> BackfillMemory {
    let endpoint = endpoint_of(&config.endpoint);
    run_bus_on(config, Box::new(endpoint), state, context, memory).await
}

/// Runs one bus on the line `opener` opens, until shutdown: [`run_bus`].
pub async fn run_bus_on(
    config: BusConfig,
    opener: Box<dyn Opener>,
    state: SharedState,
    context: BusContext,
    memory: Option<BackfillMemory>,
) -> BackfillMemory {
    let mut bus = Bus::new(config, opener, state, context);
    if let Some(memory) = memory {
        bus.backfill.adopt(memory);
    }
    let shutdown = bus.context.shutdown.clone();
    'running: loop {
        let now = bus.context.clock.now();
        let due: Vec<usize> = bus
            .planned
            .iter()
            .enumerate()
            .filter(|(_, plan)| plan.next.is_some_and(|next| next <= now))
            .map(|(index, _)| index)
            .collect();
        if due.is_empty() {
            if bus.backfill_step().await {
                bus.run_events().await;
                continue;
            }
            let wake = bus.planned.iter().filter_map(|plan| plan.next).min();
            tokio::select! {
                () = shutdown.cancelled() => break 'running,
                () = sleep_until_option(&bus.context.clock, wake) => {}
                () = bus.inbox.arrived() => {}
            }
            bus.run_events().await;
            continue;
        }
        for index in due {
            if shutdown.is_cancelled() {
                break 'running;
            }
            bus.run(index).await;
            // An event waits for the request in progress, not for the round.
            bus.run_events().await;
            // So does one exchange of a backfill: due requests keep their
            // turns between its pages.
            bus.backfill_step().await;
        }
    }
    bus.backfill.into_memory()
}

/// One bus while it runs: its queue, its line and what it remembers.
struct Bus {
    config: BusConfig,
    planned: Vec<Planned>,
    connection: Connection,
    state: SharedState,
    context: BusContext,
    inbox: Arc<Inbox>,
    guard: CounterGuard,
    memory: EventMemory,
    meters: MeterWatch,
    backfill: AutoBackfill,
}

impl Bus {
    fn new(
        config: BusConfig,
        opener: Box<dyn Opener>,
        state: SharedState,
        context: BusContext,
    ) -> Self {
        let start = context.clock.now().to_zoned_datetime(context.zone.clone());
        let planned: Vec<Planned> = config
            .requests
            .iter()
            .filter(|request| request.send)
            // A request that sends always has a method (the configuration
            // check sees to it); listening ones run in the passive task.
            .filter_map(|request| {
                let schedule = Schedule::new(request.method.clone()?, &start);
                let next = schedule.first().map(|zoned| zoned.timestamp());
                Some(Planned {
                    longest: crate::cluster::lease::longest_transaction(&config, request),
                    config: request.clone(),
                    schedule,
                    next,
                })
            })
            .collect();
        let backfill = AutoBackfill::new(
            &config,
            planned.iter().map(|plan| (&plan.config, &plan.schedule)),
            context.zone.clone(),
            opener.byte_time(),
        );
        let longest_opening = crate::cluster::lease::longest_opening(&config);
        publish_plan(&state, &planned);
        state.lock().time_zone = context.zone.iana_name().map(str::to_owned);
        Bus {
            inbox: context.events.inbox(&config.name),
            memory: EventMemory::new(context.clock.now()),
            config,
            planned,
            connection: Connection {
                opener,
                longest_opening,
                wakefulness: Wakefulness::default(),
                master: None,
                opened_before: false,
                backoff: MIN_BACKOFF,
                retry_at: None,
            },
            state,
            context,
            guard: CounterGuard::default(),
            meters: MeterWatch::default(),
            backfill,
        }
    }

    /// Makes one exchange of a backfill, when one has work and the line is
    /// open or opens; says whether it did.
    async fn backfill_step(&mut self) -> bool {
        let Bus {
            planned,
            connection,
            state,
            context,
            backfill,
            ..
        } = self;
        if context.shutdown.is_cancelled() {
            return false;
        }
        let Some(request) = backfill.next_request(state, context.clock.now()) else {
            return false;
        };
        let permit = context.permit.as_ref();
        if connection
            .master(&context.clock, state, permit)
            .await
            .is_none()
        {
            return false;
        }
        // A backfill exchange uses its request's timeouts.
        if let (Some(permit), Some(plan)) = (permit, planned.get(request))
            && !permit.allows(plan.longest).await
        {
            connection.master = None;
            return false;
        }
        let Some(master) = connection.master.as_mut() else {
            return false;
        };
        master.set_write_by(permit.map(crate::cluster::Permit::deadline));
        match backfill.step(master, state, &context.clock).await {
            Ok(logged) => {
                if !logged.is_empty() {
                    let _ = context.readings.send(Batch::Logged(logged));
                }
                true
            }
            Err(error @ TransportError::NoRoom { .. }) => {
                // The lease cannot hold the page (its reply is longer than
                // a poll's).
                connection.no_room(&error);
                false
            }
            Err(error) => {
                connection.failed(&context.clock, state, error.to_string());
                false
            }
        }
    }

    /// Runs the requests of the events waiting, in the order the events
    /// came, each request once however many of its events came. Events
    /// fired meanwhile wait for the next call, so that due requests keep
    /// their turns between them.
    async fn run_events(&mut self) {
        let mut triggered: Vec<usize> = Vec::new();
        for name in self.inbox.take() {
            for (index, plan) in self.planned.iter().enumerate() {
                if plan.schedule.event() == Some(name.as_str()) && !triggered.contains(&index) {
                    triggered.push(index);
                }
            }
        }
        for index in triggered {
            if self.context.shutdown.is_cancelled() {
                return;
            }
            self.run(index).await;
        }
    }

    /// Runs request `index` on every address, then fires its events.
    async fn run(&mut self, index: usize) {
        let Bus {
            config,
            planned,
            connection,
            state,
            context,
            guard,
            memory,
            meters,
            backfill,
            ..
        } = self;
        let Some(plan) = planned.get_mut(index) else {
            return;
        };
        let started = context.clock.now();
        // How late a timed run starts: the scheduler's own delay plus any
        // wait behind earlier requests on the bus.
        if let Some(due) = plan.next.filter(|due| *due <= started) {
            state.lock().record_lateness(started.duration_since(due));
        }
        let check = |readings: &mut Vec<Reading>| {
            for reading in readings.iter_mut() {
                guard.check(reading);
            }
            meters.observe(&config.name, readings);
            record_readings(state, &context.zone, readings);
            backfill.observe(index, readings);
        };
        let record = run_request(
            config,
            &plan.config,
            plan.longest,
            connection,
            state,
            context,
            check,
        )
        .await;
        if context.shutdown.is_cancelled() {
            // Stopped mid-run (its permit was revoked): no events from a
            // run cut short.
            return;
        }
        let ended = context.clock.now();
        // The next fire strictly after this run started: the ticks that
        // fell while the bus was busy before it are merged into this run;
        // those that fell during it into one run right after it (so a
        // request slower than its interval runs back to back, never in a
        // burst).
        plan.next = plan
            .schedule
            .next_after(&started.to_zoned_datetime(context.zone.clone()))
            .map(|zoned| zoned.timestamp());
        // The lease left no room for one of its transactions: no events
        // and no result from a run cut short.
        if !record.cut_short {
            fire_events(index, &plan.config, &record, memory, ended, &context.events);
        }
        let mut state = state.lock();
        if let Some(request) = state.requests.get_mut(index) {
            request.next_run = plan.next;
            if !record.cut_short {
                request.last_run = Some(ended);
                request.last_result = Some(record.summary());
            }
        }
    }
}

async fn sleep_until_option(clock: &Clock, when: Option<Timestamp>) {
    match when {
        Some(when) => clock.sleep_until(when).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn endpoint_of(endpoint: &BusEndpoint) -> Endpoint {
    match endpoint {
        BusEndpoint::Serial(settings) => Endpoint::Serial(settings.clone()),
        BusEndpoint::Tcp(settings) => Endpoint::Tcp(settings.clone()),
        BusEndpoint::Udp { address } => Endpoint::Udp(address.clone()),
    }
}

fn publish_plan(state: &SharedState, planned: &[Planned]) {
    let mut state = state.lock();
    state.requests = planned
        .iter()
        .map(|plan| RequestState {
            description: plan.config.description.clone(),
            method: plan
                .config
                .method
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            method_words: plan
                .config
                .method
                .as_ref()
                .map_or_else(String::new, method_in_words),
            last_run: None,
            next_run: plan.next,
            last_result: None,
        })
        .collect();
}

/// Runs one request on every address in turn; each address's readings go
/// to `check`, then on to the collector, as soon as they are read. Returns
/// what the run's events and summary need of them. Under a permit, opening
/// the line and each transaction (`longest` at most) start only when the
/// permit allows them; a permit that says no ends the run there.
async fn run_request(
    bus: &BusConfig,
    request: &RequestConfig,
    longest: Duration,
    connection: &mut Connection,
    state: &SharedState,
    context: &BusContext,
    mut check: impl FnMut(&mut Vec<Reading>),
) -> RunRecord {
    let registers: Vec<u16> = request.items.iter().map(|item| item.register).collect();
    let Ok(get_register) = Request::get_register(&registers) else {
        // The configuration check guarantees 1 to 8 registers, none 0.
        return RunRecord::default();
    };
    let settings = MasterSettings::for_request(bus, request, connection.opener.byte_time());
    let mut record = RunRecord::default();
    for &address in &request.addresses {
        // Stopped (a bus that moves to another instance, a reload, the
        // logger's stop): after the transaction in flight, not the run.
        if context.shutdown.is_cancelled() {
            break;
        }
        let permit = context.permit.as_ref();
        let open = connection
            .master(&context.clock, state, permit)
            .await
            .is_some();
        if let Some(permit) = permit
            && (permit.is_revoked() || (open && !permit.allows(longest).await))
        {
            connection.master = None;
            break;
        }
        let start = context.clock.now();
        let asleep = connection.wakefulness.expects_asleep(address, start);
        let outcome = match connection.master.as_mut() {
            Some(master) => {
                master.set_settings(MasterSettings {
                    wake_timeout: asleep.then_some(WAKE_TIMEOUT),
                    ..settings.clone()
                });
                master.set_write_by(permit.map(crate::cluster::Permit::deadline));
                match master.transact(address, &get_register).await {
                    Ok(exchange) => {
                        record_exchange(state, &exchange);
                        let answer = match exchange.outcome {
                            Outcome::Response(_) if exchange.first_silent => Answer::AfterWaking,
                            Outcome::Response(_) => Answer::AtOnce,
                            _ => Answer::None,
                        };
                        connection
                            .wakefulness
                            .record(address, start, context.clock.now(), answer);
                        Ok(exchange.outcome)
                    }
                    Err(error @ TransportError::NoRoom { .. }) => {
                        // A drain or a retry took the room the permit saw:
                        // the run ends here, nothing recorded for this
                        // meter.
                        connection.no_room(&error);
                        record.cut_short = true;
                        break;
                    }
                    Err(error) => {
                        connection.failed(&context.clock, state, error.to_string());
                        Err(())
                    }
                }
            }
            None => Err(()),
        };
        let reply = match &outcome {
            Ok(Outcome::Response(Response::Registers(values))) => Reply::Registers(values),
            Ok(other) => Reply::Failed(Status::of_failed(other)),
            Err(()) => Reply::Failed(Status::LineDown),
        };
        let time = context.clock.now();
        let mut read: Vec<Reading> = request
            .items
            .iter()
            .map(|item| {
                Reading::of_item(time, &bus.name, address, &request.description, item, reply)
            })
            .collect();
        check(&mut read);
        record.note(request, address, &read);
        let _ = context.readings.send(Batch::Polled(read));
    }
    record
}

/// What a run keeps of its readings for its events and its summary, taken
/// meter by meter: the readings themselves go on to the collector as soon
/// as they are read, so that a bus holds no more than one meter's at once.
#[derive(Debug, Default)]
struct RunRecord {
    /// Whether the lease left no room for one of its transactions, which
    /// ended the run before its last meter.
    cut_short: bool,
    /// Whether a reading failed (no reply, a corrupt one, the line down).
    failed: bool,
    /// Each address in the order read, whether it answered every register,
    /// and whether it gave a value.
    meters: Vec<MeterRun>,
    /// The readings the request's thresholds and info flags look at.
    watched: Vec<Reading>,
}

#[derive(Debug, Clone, Copy)]
struct MeterRun {
    address: u8,
    answered: bool,
    gave_data: bool,
}

impl RunRecord {
    /// Takes in the readings of `address` for `request`.
    fn note(&mut self, request: &RequestConfig, address: u8, readings: &[Reading]) {
        self.failed |= readings.iter().any(|reading| {
            matches!(
                reading.status,
                Status::Timeout
                    | Status::CrcError
                    | Status::BadFrame
                    | Status::BadReply
                    | Status::LineDown
            )
        });
        let answered = readings.iter().all(|reading| {
            matches!(
                reading.status,
                Status::Ok | Status::Suspect | Status::NotAnswered
            )
        });
        let gave_data = readings.iter().any(|reading| reading.value.is_some());
        match self
            .meters
            .iter_mut()
            .find(|meter| meter.address == address)
        {
            Some(meter) => {
                meter.answered &= answered;
                meter.gave_data |= gave_data;
            }
            None => self.meters.push(MeterRun {
                address,
                answered,
                gave_data,
            }),
        }
        let watched = |reading: &&Reading| {
            request
                .thresholds
                .iter()
                .any(|threshold| threshold.export_name == reading.name)
                || (request.on_info_flag.is_some()
                    && info::is_info_register(request.model, reading.register))
        };
        self.watched
            .extend(readings.iter().filter(watched).cloned());
    }

    /// Whether `address` gave a value in this run.
    fn gave_data(&self, address: u8) -> bool {
        self.meters
            .iter()
            .any(|meter| meter.address == address && meter.gave_data)
    }

    /// `ok`, or how many meters answered.
    fn summary(&self) -> String {
        let answered = self.meters.iter().filter(|meter| meter.answered).count();
        if answered == self.meters.len() {
            "ok".to_owned()
        } else {
            format!("{answered} of {} meters answered", self.meters.len())
        }
    }
}

fn record_exchange(state: &SharedState, exchange: &Exchange) {
    let mut state = state.lock();
    state.polls += 1;
    state.faults += exchange.faults.len() as u64;
    let crc = |fault: &LineFault| matches!(fault, LineFault::Malformed(FrameError::Crc { .. }));
    state.crc_errors += exchange.faults.iter().filter(|fault| crc(fault)).count() as u64;
    if exchange.outcome == Outcome::NoReply {
        state.timeouts += 1;
    }
}

impl Connection {
    /// The open line, opening it if it is closed and its back-off has
    /// passed; under a permit, only when the opening can end before the
    /// deadline (`None` then, with the permit revoked).
    async fn master(
        &mut self,
        clock: &Clock,
        state: &SharedState,
        permit: Option<&crate::cluster::Permit>,
    ) -> Option<&mut Master<BoxedLine>> {
        if self.master.is_none() {
            if self.retry_at.is_some_and(|at| clock.now() < at) {
                return None;
            }
            if let Some(permit) = permit
                && !permit.allows(self.longest_opening).await
            {
                return None;
            }
            match self.opener.open().await {
                Ok(line) => {
                    self.master = Some(Master::new(
                        line,
                        self.opener.to_string(),
                        MasterSettings::default(),
                    ));
                    self.backoff = MIN_BACKOFF;
                    self.retry_at = None;
                    line_opened(state);
                    if self.opened_before {
                        state.lock().reconnects += 1;
                    }
                    self.opened_before = true;
                }
                Err(error) => {
                    self.failed(clock, state, error.to_string());
                    return None;
                }
            }
        }
        self.master.as_mut()
    }

    /// The lease left no room for a transaction (`error` says which line
    /// and how long it could take): as when the permit says no, the line is
    /// dropped before the deadline. Not a failure of the line.
    fn no_room(&mut self, error: &TransportError) {
        tracing::info!(%error, "the transaction stops for the lease");
        self.master = None;
    }

    /// Drops the line and schedules the next attempt to open it.
    fn failed(&mut self, clock: &Clock, state: &SharedState, error: String) {
        self.master = None;
        let backoff =
            jiff::SignedDuration::try_from(self.backoff).unwrap_or(jiff::SignedDuration::MAX);
        self.retry_at = clock.now().checked_add(backoff).ok();
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        line_failed(clock, state, error);
        state.lock().retry_at = self.retry_at;
    }
}

/// What the bus remembers between runs to fire events on changes only.
struct EventMemory {
    /// When the bus started: a meter that never gave data counts from here.
    started: Timestamp,
    /// Which side of each threshold each meter was on: (request, address, threshold).
    sides: HashMap<(usize, u8, usize), Side>,
    /// The info-code bits each meter had: (request, address).
    info_bits: HashMap<(usize, u8), u32>,
    /// When each meter last gave data, and whether its silence was reported.
    last_data: HashMap<(usize, u8), (Timestamp, bool)>,
}

impl EventMemory {
    fn new(started: Timestamp) -> Self {
        EventMemory {
            started,
            sides: HashMap::new(),
            info_bits: HashMap::new(),
            last_data: HashMap::new(),
        }
    }
}

/// Fires the request's events after a run that ended at `now`: completion
/// or failure, threshold crossings, info-code flags raised, and meters that
/// have given no data for too long. Each event at most once per run,
/// however many meters caused it.
fn fire_events(
    index: usize,
    request: &RequestConfig,
    record: &RunRecord,
    memory: &mut EventMemory,
    now: Timestamp,
    events: &EventRouter,
) {
    let readings = &record.watched;
    let outcome_event = if record.failed {
        &request.on_failure
    } else {
        &request.on_complete
    };
    let mut fired: Vec<&str> = outcome_event.iter().map(String::as_str).collect();
    for (number, threshold) in request.thresholds.iter().enumerate() {
        for reading in readings
            .iter()
            .filter(|reading| reading.name == threshold.export_name)
        {
            let Some((value, _)) = reading.value else {
                continue;
            };
            let beyond = threshold
                .above
                .is_some_and(|limit| value.compare(&limit).is_gt())
                || threshold
                    .below
                    .is_some_and(|limit| value.compare(&limit).is_lt());
            let side = if beyond { Side::Beyond } else { Side::Inside };
            let before = memory.sides.insert((index, reading.address, number), side);
            if side == Side::Beyond && before != Some(Side::Beyond) {
                once(&mut fired, &threshold.event);
            }
        }
    }
    if let Some(event) = &request.on_info_flag {
        for reading in readings
            .iter()
            .filter(|reading| info::is_info_register(request.model, reading.register))
        {
            let Some(bits) = reading.value.and_then(|(value, _)| info_code(&value)) else {
                continue;
            };
            let before = memory
                .info_bits
                .insert((index, reading.address), bits)
                .unwrap_or(0);
            if bits & !before != 0 {
                once(&mut fired, event);
            }
        }
    }
    if let Some((event, after)) = &request.on_no_data {
        let after = jiff::SignedDuration::try_from(*after).unwrap_or(jiff::SignedDuration::MAX);
        for &address in &request.addresses {
            let gave_data = record.gave_data(address);
            let started = memory.started;
            let (last, reported) = memory
                .last_data
                .entry((index, address))
                .or_insert((started, false));
            if gave_data {
                (*last, *reported) = (now, false);
            } else if !*reported && now.duration_since(*last) >= after {
                *reported = true;
                once(&mut fired, event);
            }
        }
    }
    for name in fired {
        // A request may fire an event that no request waits for (yet).
        let _ = events.fire(name);
    }
}

/// Adds `event` to the events to fire, unless it is there already.
fn once<'a>(fired: &mut Vec<&'a str>, event: &'a str) {
    if !fired.contains(&event) {
        fired.push(event);
    }
}

/// The info code as a bit set, when the value is a whole number that fits.
fn info_code(value: &kmp::Value) -> Option<u32> {
    (value.exponent() == 0 && !value.is_negative())
        .then(|| u32::try_from(value.mantissa()).ok())
        .flatten()
}

/// The state a bus starts with.
pub fn initial_state(config: &BusConfig) -> BusState {
    let listening_only = config.requests.iter().all(|request| !request.send);
    // An active bus publishes its plan when it starts; a listening one has
    // no plan, so its requests are shown as they are.
    let requests = if listening_only {
        config
            .requests
            .iter()
            .map(|request| RequestState {
                description: request.description.clone(),
                method: "listen".to_owned(),
                method_words: "listening only".to_owned(),
                last_run: None,
                next_run: None,
                last_result: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    BusState {
        name: config.name.clone(),
        endpoint: endpoint_of(&config.endpoint).to_string(),
        listening_only,
        requests,
        meters: meters_of(config),
        ..BusState::default()
    }
}
