//! Integration tests of kmp-schedule: the SPEC's examples, daylight saving in
//! a real zone, polling and merged ticks, and properties of the search.
//!
//! Zones come from jiff's bundled tz database, so the results do not depend on
//! the machine's /usr/share/zoneinfo.

mod dst;
mod polling;
mod props;
mod spec;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{Timestamp, ZonedDateTime};
use kmp_schedule::{Cron, Method, Schedule};

/// A zone from the bundled database.
fn zone(name: &str) -> TimeZone {
    TimeZoneDatabase::bundled()
        .get(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An instant given with its UTC offset (`2026-10-25T02:30+02:00`), in `zone`.
fn instant_in(zone_name: &str, text: &str) -> ZonedDateTime {
    let ts: Timestamp = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    ts.to_zoned_datetime(zone(zone_name))
}

/// An instant in Europe/Copenhagen.
fn cph(text: &str) -> ZonedDateTime {
    instant_in("Europe/Copenhagen", text)
}

/// Wall time with its offset, to the second: `2026-10-25T02:30:00+02:00`.
fn show(at: &ZonedDateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The first `n` fire times of `method` started at `start`: `first()`, then `next_after`.
fn fire_times(method: Method, start: &ZonedDateTime, n: usize) -> Vec<String> {
    let schedule = Schedule::new(method, start);
    let mut out = Vec::new();
    let mut next = schedule.first();
    while let Some(at) = next {
        if out.len() == n {
            break;
        }
        out.push(show(&at));
        next = schedule.next_after(&at);
    }
    out
}

/// A cron method, parsed.
fn cron(expr: &str) -> Method {
    Method::Cron(Cron::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")))
}
