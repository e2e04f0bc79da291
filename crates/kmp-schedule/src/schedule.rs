//! A request's method (SPEC §3) and the fire times it gives from a start instant.
//!
//! [`Schedule`] is a [`Method`] fixed to the instant the program (or the
//! request) started: the start is where polling counts its intervals from and
//! what a cron `?` is replaced by. Its fire times are never before the start:
//!
//! | method        | [`first`](Schedule::first)                                   | then                                   |
//! |---------------|--------------------------------------------------------------|----------------------------------------|
//! | once          | the start                                                    | never                                  |
//! | polling       | the start                                                    | start + k × interval, in real time      |
//! | times of day  | the start if it is one of the times (to the second), else the next time | each listed time, every day |
//! | cron          | the start if it [matches](crate::Cron::fires_at_start), else the next match | each match               |
//! | event         | never (events are not timed)                                 | never                                  |
//!
//! On a bus, a request that falls due while the line is busy waits; when the
//! bus gets to it, all the ticks missed meanwhile are merged into one run, never
//! replayed in a burst (SPEC §2): see [`Schedule::merge_missed`].

use jiff::{Timestamp, ZonedDateTime};

use crate::cron::{BoundCron, Cron};
use crate::interval::Interval;
use crate::times::TimesOfDay;

/// How a request is triggered (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Once, at program start-up.
    Once,
    /// Every interval, counted from the start.
    Polling(Interval),
    /// At the given times of day, every day.
    TimesOfDay(TimesOfDay),
    /// When the cron expression matches.
    Cron(Cron),
    /// When the named event arrives; never by time.
    Event(String),
}

impl std::fmt::Display for Method {
    /// As the configuration says it: `once`, `polling 30s`,
    /// `at 11:00:00;11:20:00`, `cron 0 0 12 * * *`, `event morning`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Once => f.write_str("once"),
            Method::Polling(interval) => write!(f, "polling {interval}"),
            Method::TimesOfDay(times) => write!(f, "at {times}"),
            Method::Cron(cron) => write!(f, "cron {cron}"),
            Method::Event(name) => write!(f, "event {name}"),
        }
    }
}

/// A method bound to its start: cron `?` fields resolved, polling anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Once,
    Polling(Interval),
    TimesOfDay(TimesOfDay),
    Cron(BoundCron),
    Event(String),
}

/// The fire times of one request, from its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    start: ZonedDateTime,
    plan: Plan,
}

/// What to do with a request the bus gets to at `now`, possibly late: see
/// [`Schedule::merge_missed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// Run once now: the due tick and every tick missed up to `now`, merged.
    pub run_now: bool,
    /// The next fire time: strictly after `now` when running now, the due time
    /// itself otherwise; `None` if the schedule never fires again.
    pub next: Option<ZonedDateTime>,
}

impl Schedule {
    /// Binds `method` to `start`, the instant the program or request started.
    /// Fire times are given in the zone of `start`.
    pub fn new(method: Method, start: &ZonedDateTime) -> Schedule {
        let plan = match method {
            Method::Once => Plan::Once,
            Method::Polling(interval) => Plan::Polling(interval),
            Method::TimesOfDay(times) => Plan::TimesOfDay(times),
            Method::Cron(cron) => Plan::Cron(cron.bind(start)),
            Method::Event(name) => Plan::Event(name),
        };
        Schedule {
            start: start.clone(),
            plan,
        }
    }

    /// The start instant the schedule was bound to.
    pub fn start(&self) -> &ZonedDateTime {
        &self.start
    }

    /// The event name, for a request triggered by an event.
    pub fn event(&self) -> Option<&str> {
        match &self.plan {
            Plan::Event(name) => Some(name),
            _ => None,
        }
    }

    /// The first fire time: the start itself for once, polling, and a times of
    /// day or cron schedule that matches at start-up; else the first match
    /// after the start. `None` for an event, or a cron that never fires.
    pub fn first(&self) -> Option<ZonedDateTime> {
        let start = &self.start;
        match &self.plan {
            Plan::Once | Plan::Polling(_) => Some(start.clone()),
            Plan::TimesOfDay(times) if times.fires_at_start(start) => Some(start.clone()),
            Plan::TimesOfDay(times) => times.next_after(start),
            Plan::Cron(cron) if cron.fires_at_start(start) => Some(start.clone()),
            Plan::Cron(cron) => cron.next_after(start),
            Plan::Event(_) => None,
        }
    }

    /// The first fire time strictly after `after`, in the zone of `after`
    /// (times of day and cron are wall times of that zone). Before the start,
    /// that is [`first`](Schedule::first). Polling keeps to the grid start +
    /// k × interval, so a late `after` skips to the next multiple: no drift,
    /// no burst.
    pub fn next_after(&self, after: &ZonedDateTime) -> Option<ZonedDateTime> {
        if after.timestamp() < self.start.timestamp() {
            return self
                .first()
                .map(|first| first.with_time_zone(after.time_zone().clone()));
        }
        match &self.plan {
            Plan::Once | Plan::Event(_) => None,
            Plan::Polling(interval) => {
                next_on_grid(self.start.timestamp(), *interval, after.timestamp())
                    .map(|t| t.to_zoned_datetime(after.time_zone().clone()))
            }
            Plan::TimesOfDay(times) => times.next_after(after),
            Plan::Cron(cron) => cron.next_after(after),
        }
    }

    /// The bus gets to this request at `now`; it was due at `due`. If it is
    /// due (`due <= now`) it runs once now, however many fire times passed
    /// since `due` (they are merged, never replayed in a burst), and the next
    /// fire time is the first one strictly after `now`. If not yet due, it
    /// does not run and stays due at `due`.
    ///
    /// ```
    /// use kmp_schedule::{Interval, Method, Schedule};
    /// use jiff::ZonedDateTime;
    ///
    /// let start: ZonedDateTime = "2026-01-05T10:00:00[UTC]".parse()?;
    /// let every_second = Schedule::new(Method::Polling(Interval::parse("1s")?), &start);
    /// // Due at 10:00:01, but the bus was busy until 10:00:10.5: one run now,
    /// // the next at 10:00:11, on the grid.
    /// let due: ZonedDateTime = "2026-01-05T10:00:01[UTC]".parse()?;
    /// let now: ZonedDateTime = "2026-01-05T10:00:10.5[UTC]".parse()?;
    /// let merged = every_second.merge_missed(&due, &now);
    /// assert!(merged.run_now);
    /// assert_eq!(merged.next, Some("2026-01-05T10:00:11[UTC]".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn merge_missed(&self, due: &ZonedDateTime, now: &ZonedDateTime) -> Merged {
        if due > now {
            return Merged {
                run_now: false,
                next: Some(due.clone()),
            };
        }
        Merged {
            run_now: true,
            next: self.next_after(now),
        }
    }
}

/// The first `start + k × interval` (k ≥ 0) strictly after `after`.
fn next_on_grid(start: Timestamp, interval: Interval, after: Timestamp) -> Option<Timestamp> {
    let step = i128::from(interval.as_millis()).checked_mul(1_000_000)?;
    let elapsed = after.as_nanosecond().checked_sub(start.as_nanosecond())?;
    let ticks = if elapsed < 0 {
        0
    } else {
        elapsed.checked_div(step)?.checked_add(1)?
    };
    let at = start
        .as_nanosecond()
        .checked_add(ticks.checked_mul(step)?)?;
    Timestamp::from_nanosecond(at).ok()
}
