//! Backfill by itself: a request with `backfill = "hourly"` (or `"daily"`)
//! has its bus read what an outage of the meter made it miss from the
//! meter's own logger, once the meter answers again.
//!
//! The bus tells [`AutoBackfill`] what each run of a request gave
//! ([`observe`](AutoBackfill::observe)). A meter that gave no answer (a
//! timeout, the line down) and answers again was unreachable from its last
//! good poll to its recovery; when that is longer than one interval of the
//! logger, the logger's rows of that span are read and handed on as
//! readings with status `logged`, under the keys `kmplog backfill` gives
//! them ([`super::readings`]), so that a row read twice, by either, is one
//! row in every sink. The bus makes one exchange of it at a time
//! ([`step`](AutoBackfill::step)) between its due requests, only while the
//! meter answers, and within its read budget (`reads_per_day`): the reads
//! its polls still need on the day are kept for them, and every logger
//! exchange counts as a read.
//!
//! Two clocks. kmplog's stamps the polls; the meter's stamps the logger's
//! rows; they are not the same clock (a meter's drifts by seconds a month,
//! may have been set by hand, may keep winter time all year). So the gap is
//! placed on the meter's clock: the bus reads it (registers 1003 and 1002)
//! when the meter first answers, again once that reading is a day old, and
//! at every recovery. The last good poll goes on the meter's clock with the
//! offset measured before the outage, the recovery with the offset measured
//! after it: a clock that moved during the outage moves the gap with it, as
//! it moved the rows. A meter whose clock cannot be read has its gaps placed
//! by kmplog's clock (said once).
//!
//! Registers: the request's own. Those the logger does not keep, the meter
//! leaves out of its answer (info bit 3); they are named once in the log.
//!
//! A meter without the logger command: an empty or refused answer ends
//! its backfills at once; a head request that goes unanswered
//! [`HEAD_TRIES`] times, each time after a poll the meter answered, too.
//! Either is one warning, and the bus does not ask again; polling goes on.
//! A read that a new outage cuts off keeps its place and goes on after the
//! next poll the meter answers; gaps wait their turn in order. A reload
//! that restarts the bus hands all this on to its new task
//! ([`BackfillMemory`]).

use std::collections::VecDeque;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kmp::catalogue::Model;
use kmp::logger::{DATE_REGISTER, Logger, TIME_REGISTER, row_time};
use kmp::message::{Request, Response};
use kmp_schedule::Schedule;
use tracing::{info, warn};

use super::paging::{LogReadError, LogReader, Plan, Span, civil, interval_seconds};
use super::readings::{Source, logged_readings, meter_time};
use crate::bus::meters::{reads_on, record_read};
use crate::bus::state::SharedState;
use crate::bus::{Master, MasterSettings, Outcome};
use crate::clock::Clock;
use crate::config::{BusConfig, BusEndpoint, RequestConfig};
use crate::reading::{Reading, Status};
use crate::transport::{Line, TransportError};

/// Times a logger's head may go unanswered before the meter is taken to
/// have no logger: once could be the meter falling silent at that moment.
pub const HEAD_TRIES: u32 = 2;

/// How old a reading of a meter's clock may grow before it is read again.
const CLOCK_AGE: SignedDuration = SignedDuration::from_hours(24);

/// A meter's clock registers: its date and its time of day.
const CLOCK_REGISTERS: [u16; 2] = [DATE_REGISTER, TIME_REGISTER];

/// The automatic backfills of one bus.
pub struct AutoBackfill {
    bus: String,
    /// The bus's line: what is known of its meters holds on it only.
    endpoint: BusEndpoint,
    zone: TimeZone,
    watches: Vec<Watch>,
    meters: Vec<MeterClock>,
    /// Every request's addresses and schedule, for the reads the polls
    /// still need on a day.
    schedules: Vec<(Vec<u8>, Schedule)>,
}

/// What the backfills of a bus know, handed from its task to the one that
/// replaces it when a reload changes the bus, so that an outage under way
/// or a gap not yet read is not forgotten.
pub struct BackfillMemory {
    endpoint: BusEndpoint,
    watches: Vec<Watch>,
    meters: Vec<MeterClock>,
}

/// What the backfills know of one meter.
struct MeterClock {
    address: u8,
    /// Its serial number, part of every key.
    serial: Option<u32>,
    offset: Option<Offset>,
    /// Said that its clock cannot be read.
    unreadable_said: bool,
}

/// The meter's clock less kmplog's, and when that was measured.
#[derive(Debug, Clone, Copy)]
struct Offset {
    ahead: SignedDuration,
    measured: Timestamp,
}

/// One meter of one request with a backfill.
struct Watch {
    /// The request's place in the bus's queue.
    request: usize,
    address: u8,
    logger: Logger,
    registers: Vec<u16>,
    model: Option<Model>,
    settings: MasterSettings,
    /// When the meter last answered this request (kmplog's clock).
    last_good: Option<Timestamp>,
    /// Whether it has failed to answer since.
    silent: bool,
    /// Whether its latest poll or exchange was answered.
    answering: bool,
    /// Recoveries not yet placed on the meter's clock.
    recoveries: Vec<Recovery>,
    /// Gaps to read, by the meter's clock.
    gaps: VecDeque<Gap>,
    reading: Option<Job>,
    head_silences: u32,
    /// The meter has no such logger: nothing more is asked.
    gave_up: bool,
    unsupported_said: bool,
}

/// A meter answering again after `last_good`.
struct Recovery {
    last_good: Timestamp,
    recovered: Timestamp,
    /// The meter's clock before the outage, when it had been read.
    ahead_before: Option<SignedDuration>,
}

/// Rows to read, from and to (both included) by the meter's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    from: DateTime,
    to: DateTime,
}

/// A gap being read.
struct Job {
    gap: Gap,
    reader: LogReader,
    rows: usize,
    readings: usize,
}

/// The next exchange a watch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Clock,
    Serial,
    Rows,
}

impl AutoBackfill {
    /// The backfills of `bus`, whose queue is `queue` (each request with
    /// its schedule, in the order the bus numbers them); `byte_time` is the
    /// line's.
    pub fn new<'a>(
        bus: &BusConfig,
        queue: impl Iterator<Item = (&'a RequestConfig, &'a Schedule)>,
        zone: TimeZone,
        byte_time: std::time::Duration,
    ) -> AutoBackfill {
        let mut watches = Vec::new();
        let mut schedules = Vec::new();
        for (index, (request, schedule)) in queue.enumerate() {
            schedules.push((request.addresses.clone(), schedule.clone()));
            let Some(logger) = request.backfill else {
                continue;
            };
            for &address in &request.addresses {
                watches.push(Watch {
                    request: index,
                    address,
                    logger,
                    registers: request.items.iter().map(|item| item.register).collect(),
                    model: request.model,
                    settings: MasterSettings::for_request(bus, request, byte_time),
                    last_good: None,
                    silent: false,
                    answering: false,
                    recoveries: Vec::new(),
                    gaps: VecDeque::new(),
                    reading: None,
                    head_silences: 0,
                    gave_up: false,
                    unsupported_said: false,
                });
            }
        }
        let mut meters: Vec<MeterClock> = Vec::new();
        for watch in &watches {
            if !meters.iter().any(|meter| meter.address == watch.address) {
                meters.push(MeterClock {
                    address: watch.address,
                    serial: None,
                    offset: None,
                    unreadable_said: false,
                });
            }
        }
        AutoBackfill {
            bus: bus.name.clone(),
            endpoint: bus.endpoint.clone(),
            zone,
            watches,
            meters,
            schedules,
        }
    }

    /// What the backfills know, for the task that takes the bus over after
    /// a reload.
    pub fn into_memory(self) -> BackfillMemory {
        BackfillMemory {
            endpoint: self.endpoint,
            watches: self.watches,
            meters: self.meters,
        }
    }

    /// Takes over what the bus's previous task knew (see
    /// [`BackfillMemory`]), for each meter of a request whose address,
    /// registers and logger are the same: the outage it was in, the gaps
    /// waiting, the read in progress, a logger found missing. What was
    /// learnt of the meters themselves (serial number, clock) is kept only
    /// on the same line: on another, address 1 may be another meter.
    pub fn adopt(&mut self, memory: BackfillMemory) {
        let BackfillMemory {
            endpoint,
            mut watches,
            mut meters,
        } = memory;
        for watch in &mut self.watches {
            let Some(at) = watches.iter().position(|old| {
                old.address == watch.address
                    && old.logger == watch.logger
                    && old.registers == watch.registers
            }) else {
                continue;
            };
            let old = watches.swap_remove(at);
            *watch = Watch {
                request: watch.request,
                model: watch.model,
                settings: watch.settings.clone(),
                ..old
            };
        }
        if endpoint != self.endpoint {
            return;
        }
        for meter in &mut self.meters {
            if let Some(at) = meters.iter().position(|old| old.address == meter.address) {
                *meter = meters.swap_remove(at);
            }
        }
    }

    /// Learns from the readings of a run of request `request`: which
    /// meters answered, which did not, which answer again.
    pub fn observe(&mut self, request: usize, readings: &[Reading]) {
        let AutoBackfill {
            watches, meters, ..
        } = self;
        for watch in watches.iter_mut().filter(|watch| watch.request == request) {
            let of_meter = || {
                readings
                    .iter()
                    .filter(|reading| reading.address == watch.address)
            };
            let answered = of_meter().find(|reading| {
                matches!(
                    reading.status,
                    Status::Ok | Status::Suspect | Status::NotAnswered
                )
            });
            let unreachable = of_meter()
                .any(|reading| matches!(reading.status, Status::Timeout | Status::LineDown));
            if let Some(answer) = answered {
                if let (Some(last_good), true) = (watch.last_good, watch.silent) {
                    watch.recoveries.push(Recovery {
                        last_good,
                        recovered: answer.time,
                        ahead_before: clock_of(meters, watch.address)
                            .and_then(|meter| meter.offset)
                            .map(|offset| offset.ahead),
                    });
                }
                watch.last_good = Some(answer.time);
                watch.silent = false;
                watch.answering = true;
            } else if unreachable {
                watch.silent = true;
                watch.answering = false;
            }
        }
    }

    /// The request (its place in the queue) whose meter the exchange to
    /// make at `now` is with, if there is one: its timeouts are the
    /// exchange's.
    pub fn next_request(&self, state: &SharedState, now: Timestamp) -> Option<usize> {
        let (index, _) = self.next_work(state, now)?;
        self.watches.get(index).map(|watch| watch.request)
    }

    /// Makes the next exchange, if any: the meter's clock or serial number,
    /// or the next page of a gap. Gives the logged readings it read, each
    /// with its key; an `Err` is a failing line.
    pub async fn step<L: Line>(
        &mut self,
        master: &mut Master<L>,
        state: &SharedState,
        clock: &Clock,
    ) -> Result<Vec<(String, Reading)>, TransportError> {
        let now = clock.now();
        let Some((index, work)) = self.next_work(state, now) else {
            return Ok(Vec::new());
        };
        let Some(watch) = self.watches.get(index) else {
            return Ok(Vec::new());
        };
        let address = watch.address;
        master.set_settings(watch.settings.clone());
        record_read(state, &self.zone, address, now);
        match work {
            Work::Clock => self.read_clock(master, address, clock).await?,
            Work::Serial => self.read_serial(master, address).await?,
            Work::Rows => return self.read_rows(master, index).await,
        }
        Ok(Vec::new())
    }

    /// The first watch with an exchange to make, and which.
    fn next_work(&self, state: &SharedState, now: Timestamp) -> Option<(usize, Work)> {
        self.watches.iter().enumerate().find_map(|(index, watch)| {
            if !watch.answering || watch.gave_up {
                return None;
            }
            let meter = clock_of(&self.meters, watch.address)?;
            let clock_old = meter
                .offset
                .is_none_or(|offset| now.duration_since(offset.measured) >= CLOCK_AGE);
            let work = if clock_old || !watch.recoveries.is_empty() {
                Work::Clock
            } else if watch.reading.is_none() && watch.gaps.is_empty() {
                return None;
            } else if meter.serial.is_none() {
                Work::Serial
            } else {
                Work::Rows
            };
            // Last: the budget walks the day's schedules.
            self.may_read(watch.address, state, now)
                .then_some((index, work))
        })
    }

    /// Whether the meter at `address` may be read once more at `now`
    /// without its polls going past its budget on the day.
    fn may_read(&self, address: u8, state: &SharedState, now: Timestamp) -> bool {
        let (budget, used) = {
            let state = state.lock();
            let Some(meter) = state.meters.iter().find(|meter| meter.address == address) else {
                return true;
            };
            let Some(budget) = meter.reads_per_day else {
                return true;
            };
            (budget, reads_on(meter, &self.zone, now))
        };
        // The polls are counted only as far as they could use up the rest.
        let rest = budget.saturating_sub(used);
        self.polls_left_on_the_day(address, now, rest) < rest
    }

    /// The polls of `address` still due on the day of `now`, at most `cap`.
    fn polls_left_on_the_day(&self, address: u8, now: Timestamp, cap: u32) -> u32 {
        let now = now.to_zoned_datetime(self.zone.clone());
        let mut count = 0;
        for (_, schedule) in self
            .schedules
            .iter()
            .filter(|(addresses, _)| addresses.contains(&address))
        {
            let mut after = now.clone();
            while count < cap {
                match schedule.next_after(&after) {
                    Some(next) if next.date() == now.date() && next > after => {
                        count += 1;
                        after = next;
                    }
                    _ => break,
                }
            }
        }
        count
    }

    /// Reads the meter's clock, and places the recoveries waiting for it.
    async fn read_clock<L: Line>(
        &mut self,
        master: &mut Master<L>,
        address: u8,
        clock: &Clock,
    ) -> Result<(), TransportError> {
        let Ok(request) = Request::get_register(&CLOCK_REGISTERS) else {
            self.wait_for_answer(address);
            return Ok(());
        };
        let exchange = master.transact(address, &request).await?;
        let Outcome::Response(Response::Registers(values)) = exchange.outcome else {
            self.wait_for_answer(address);
            return Ok(());
        };
        let measured = clock.now();
        let meter_now = row_time(&values)
            .and_then(civil)
            .and_then(|time| meter_time(time, &self.zone));
        let ahead = match meter_now {
            Some(meter_now) => meter_now.duration_since(measured),
            None => {
                let said = self
                    .meter_mut(address)
                    .map(|meter| std::mem::replace(&mut meter.unreadable_said, true));
                if said == Some(false) {
                    warn!(
                        bus = self.bus.as_str(),
                        address,
                        "the meter's clock (registers 1003, 1002) cannot be read: its gaps are placed by kmplog's clock"
                    );
                }
                SignedDuration::ZERO
            }
        };
        if let Some(meter) = self.meter_mut(address) {
            meter.offset = Some(Offset { ahead, measured });
        }
        for watch in self
            .watches
            .iter_mut()
            .filter(|watch| watch.address == address)
        {
            for recovery in watch.recoveries.drain(..) {
                if let Some(gap) = gap_of(&recovery, ahead, watch.logger, &self.zone) {
                    watch.gaps.push_back(gap);
                }
            }
        }
        Ok(())
    }

    /// Reads the meter's serial number.
    async fn read_serial<L: Line>(
        &mut self,
        master: &mut Master<L>,
        address: u8,
    ) -> Result<(), TransportError> {
        let exchange = master.transact(address, &Request::GetSerialNo).await?;
        match (exchange.outcome, self.meter_mut(address)) {
            (Outcome::Response(Response::SerialNo { serial }), Some(meter)) => {
                meter.serial = Some(serial);
            }
            _ => self.wait_for_answer(address),
        }
        Ok(())
    }

    /// One exchange of watch `index`'s gap: the head when it begins, then
    /// its pages.
    async fn read_rows<L: Line>(
        &mut self,
        master: &mut Master<L>,
        index: usize,
    ) -> Result<Vec<(String, Reading)>, TransportError> {
        let AutoBackfill {
            bus,
            zone,
            watches,
            meters,
            ..
        } = self;
        let Some(watch) = watches.get_mut(index) else {
            return Ok(Vec::new());
        };
        let Some(serial) = clock_of(meters, watch.address).and_then(|meter| meter.serial) else {
            return Ok(Vec::new());
        };
        let (address, logger) = (watch.address, watch.logger);
        let bus = bus.as_str();
        let job = match &mut watch.reading {
            Some(job) => job,
            None => {
                let Some(gap) = watch.gaps.pop_front() else {
                    return Ok(Vec::new());
                };
                info!(bus, address, logger = %logger, from = %gap.from, to = %gap.to, "backfill started");
                let plan = Plan {
                    logger,
                    registers: watch.registers.clone(),
                    span: Span::Time {
                        from: Some(gap.from),
                        to: Some(gap.to),
                    },
                };
                watch.reading.insert(Job {
                    gap,
                    reader: LogReader::new(address, plan),
                    rows: 0,
                    readings: 0,
                })
            }
        };
        let stepped = job.reader.step(master).await;
        match stepped {
            Ok(_) => {
                watch.head_silences = 0;
                let rows = job.reader.take_rows();
                let source = Source {
                    bus,
                    address,
                    serial,
                    logger,
                    model: watch.model,
                };
                let (readings, _) = logged_readings(&source, &rows, zone);
                job.rows += rows.len();
                job.readings += readings.len();
                let unsupported = &job.reader.so_far().unsupported;
                if !unsupported.is_empty() && !watch.unsupported_said {
                    watch.unsupported_said = true;
                    let ids: Vec<String> = unsupported.iter().map(u16::to_string).collect();
                    info!(bus, address, logger = %logger, registers = ids.join(", "), "the logger does not keep these registers of the request");
                }
                if job.reader.is_done() {
                    info!(
                        bus,
                        address,
                        logger = %logger,
                        from = %job.gap.from,
                        to = %job.gap.to,
                        rows = job.rows,
                        readings = job.readings,
                        "backfill finished"
                    );
                    watch.reading = None;
                }
                Ok(readings)
            }
            Err(LogReadError::Line(error)) => Err(error),
            Err(LogReadError::NoLogger { silent: true, .. })
                if watch.head_silences + 1 < HEAD_TRIES =>
            {
                watch.head_silences += 1;
                watch.answering = false;
                Ok(Vec::new())
            }
            Err(error @ LogReadError::Page { .. }) => {
                info!(bus, address, logger = %logger, reason = %error, "backfill paused until the meter answers a poll again");
                watch.answering = false;
                Ok(Vec::new())
            }
            Err(error) => {
                warn!(bus, address, logger = %logger, reason = %error, "backfill given up for this meter; polling goes on");
                watch.gave_up = true;
                watch.reading = None;
                watch.gaps.clear();
                Ok(Vec::new())
            }
        }
    }

    fn meter_mut(&mut self, address: u8) -> Option<&mut MeterClock> {
        self.meters
            .iter_mut()
            .find(|meter| meter.address == address)
    }

    /// The meter did not answer a backfill exchange: nothing more until it
    /// answers a poll again.
    fn wait_for_answer(&mut self, address: u8) {
        for watch in self
            .watches
            .iter_mut()
            .filter(|watch| watch.address == address)
        {
            watch.answering = false;
        }
    }
}

fn clock_of(meters: &[MeterClock], address: u8) -> Option<&MeterClock> {
    meters.iter().find(|meter| meter.address == address)
}

/// The rows a recovery missed, by the meter's clock (now `ahead` of
/// kmplog's): after the last good poll, up to the recovery; none when that
/// is not longer than one interval of `logger`.
fn gap_of(
    recovery: &Recovery,
    ahead: SignedDuration,
    logger: Logger,
    zone: &TimeZone,
) -> Option<Gap> {
    let before = recovery.ahead_before.unwrap_or(ahead);
    let from = recovery.last_good.checked_add(before).ok()?;
    let to = recovery.recovered.checked_add(ahead).ok()?;
    if to.duration_since(from).as_secs() <= interval_seconds(logger) {
        return None;
    }
    // In whole seconds, as a meter's clock shows them; from the second after
    // the last good poll, which saw what the meter had then.
    let second = |time: Timestamp| Timestamp::from_second(time.as_second()).ok();
    Some(Gap {
        from: zone.to_datetime(
            second(from)?
                .checked_add(SignedDuration::from_secs(1))
                .ok()?,
        ),
        to: zone.to_datetime(second(to)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recovery(last_good: &str, recovered: &str, ahead_before: Option<i64>) -> Recovery {
        Recovery {
            last_good: last_good.parse().unwrap(),
            recovered: recovered.parse().unwrap(),
            ahead_before: ahead_before.map(SignedDuration::from_secs),
        }
    }

    #[test]
    fn a_gap_is_placed_on_the_meters_clock_before_and_after_the_outage() {
        let zone = TimeZone::UTC;
        let outage = recovery("2026-11-25T07:30:00Z", "2026-11-25T10:20:00Z", Some(600));
        // The meter was 10 min ahead before, and was set 1 h ahead meanwhile.
        let gap = gap_of(
            &outage,
            SignedDuration::from_hours(1),
            Logger::HOURLY,
            &zone,
        )
        .unwrap();
        assert_eq!(gap.from.to_string(), "2026-11-25T07:40:01");
        assert_eq!(gap.to.to_string(), "2026-11-25T11:20:00");
        // Not read before the outage: the offset after stands for both.
        let unread = recovery("2026-11-25T07:30:00Z", "2026-11-25T10:20:00Z", None);
        let gap = gap_of(&unread, SignedDuration::ZERO, Logger::HOURLY, &zone).unwrap();
        assert_eq!(gap.from.to_string(), "2026-11-25T07:30:01");
        // Within one interval of the logger: nothing to read.
        let short = recovery("2026-11-25T07:30:00Z", "2026-11-25T08:30:00Z", Some(0));
        assert_eq!(
            gap_of(&short, SignedDuration::ZERO, Logger::HOURLY, &zone),
            None
        );
        let day = recovery("2026-11-25T07:30:00Z", "2026-11-25T20:30:00Z", Some(0));
        assert_eq!(
            gap_of(&day, SignedDuration::ZERO, Logger::DAILY, &zone),
            None
        );
    }
}
