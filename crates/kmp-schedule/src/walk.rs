//! From wall-clock patterns to instants, with the daylight-saving rules of SPEC §3.
//!
//! Cron expressions and times of day describe wall-clock times (civil date and
//! time in a zone). This module turns such a pattern into the next instant,
//! walking the zone's offset periods one by one (between two transitions the
//! offset is constant, so wall time and real time run together) and searching
//! each one field by field, never second by second:
//!
//! - **Gap** (spring: wall times the clock jumps over): if any matching wall
//!   time lies in the gap, the pattern fires once, at the first instant after
//!   the jump (the transition itself, e.g. 03:00:00 when 02:00 jumps to 03:00).
//!   This is *not* jiff's `Compatible` disambiguation, which would move 02:30 to
//!   03:30 and fire every skipped time separately.
//! - **Fold** (autumn: wall times that happen twice): a pattern that matches
//!   every hour of the day (a cron whose hour field covers 0-23, see
//!   [`BoundCron::names_its_hour`](crate::BoundCron::names_its_hour)) fires at
//!   its matching wall times in both passes, keeping its pace in real time; any
//!   other pattern (a cron that names its hour, every times-of-day list) fires
//!   at the first pass only (jiff's `Earlier`).
//!
//! The search gives up [`SEARCH_YEARS`] years after the starting point.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};

/// How far ahead the search for the next fire time goes (from the start of the
/// year of `after`, in years) before concluding that a pattern never fires.
pub const SEARCH_YEARS: i16 = 30;

/// Seconds in a civil day.
const DAY_SECONDS: u32 = 86_400;

/// A set of wall-clock times: dates times seconds of the day.
pub(crate) trait WallPattern {
    /// The first matching date on or after `from` and on or before `last`.
    fn next_date(&self, from: Date, last: Date) -> Option<Date>;

    /// The first matching second of the day (`0..86_400`) at or after `from`.
    fn next_second(&self, from: u32) -> Option<u32>;

    /// Whether the pattern fires in both passes of a repeated (autumn) hour:
    /// true when it matches every hour of the day, so it paces in real time.
    fn repeats_in_fold(&self) -> bool;

    /// Whether `wall` (to the second; the fraction is ignored) matches.
    fn matches(&self, wall: DateTime) -> bool {
        let date = wall.date();
        self.next_date(date, date) == Some(date)
            && self.next_second(second_of_day(wall.time())) == Some(second_of_day(wall.time()))
    }
}

/// The second of the day of `time`, `0..86_400`, ignoring the fraction.
pub(crate) fn second_of_day(time: Time) -> u32 {
    let part = |v: i8| u32::try_from(v).unwrap_or(0);
    part(time.hour()) * 3600 + part(time.minute()) * 60 + part(time.second())
}

/// The time of day at `second` (`0..86_400`).
pub(crate) fn time_at(second: u32) -> Option<Time> {
    let part = |v: u32| i8::try_from(v).ok();
    Time::new(
        part(second / 3600)?,
        part(second / 60 % 60)?,
        part(second % 60)?,
        0,
    )
    .ok()
}

/// The first wall time matching `pattern` after `from` (or at it, when
/// `inclusive`) and strictly before `until`. Whole seconds only.
fn next_wall<P: WallPattern + ?Sized>(
    pattern: &P,
    from: DateTime,
    inclusive: bool,
    until: DateTime,
) -> Option<DateTime> {
    let exact = inclusive && from.subsec_nanosecond() == 0;
    let second = second_of_day(from.time()) + u32::from(!exact);
    let last = until.date();
    let mut date = from.date();
    let found = if second < DAY_SECONDS
        && pattern.next_date(date, date) == Some(date)
        && let Some(s) = pattern.next_second(second)
    {
        date.to_datetime(time_at(s)?)
    } else {
        date = pattern.next_date(date.tomorrow().ok()?, last)?;
        date.to_datetime(time_at(pattern.next_second(0)?)?)
    };
    (found < until).then_some(found)
}

/// The instant one nanosecond before `t`.
fn just_before(t: Timestamp) -> Option<Timestamp> {
    t.checked_sub(SignedDuration::from_nanos(1)).ok()
}

/// If `at` is in the second pass of a fold, the wall time at which that pass
/// stops repeating (the wall time the first pass ended at).
fn second_pass_end(tz: &TimeZone, at: Timestamp, offset: Offset) -> Option<DateTime> {
    let after_at = at.checked_add(SignedDuration::from_nanos(1)).ok()?;
    let transition = tz.preceding(after_at).next()?.timestamp();
    let before = tz.to_offset(just_before(transition)?);
    (before > offset).then(|| before.to_datetime(transition))
}

/// The first instant strictly after `after` at which `pattern` fires in the
/// zone of `after`, by the DST rules in the module documentation; `None` if
/// there is none within [`SEARCH_YEARS`] years.
pub(crate) fn next_after<P: WallPattern + ?Sized>(
    pattern: &P,
    after: &ZonedDateTime,
) -> Option<ZonedDateTime> {
    let tz = after.time_zone();
    let start = after.datetime();
    let horizon = Date::new(start.year().checked_add(SEARCH_YEARS)?, 1, 1)
        .ok()?
        .to_datetime(Time::midnight());
    let mut cur = after.timestamp();
    let mut inclusive = false;
    loop {
        let offset = tz.to_offset(cur);
        let mut from = offset.to_datetime(cur);
        if from >= horizon {
            return None;
        }
        if !pattern.repeats_in_fold()
            && let Some(end) = second_pass_end(tz, cur, offset)
            && from < end
        {
            from = end;
            inclusive = true;
        }
        let transition = tz
            .following(cur)
            .next()
            .map(|t| (t.timestamp(), t.offset()));
        let period_end = transition.map_or(horizon, |(t, _)| offset.to_datetime(t).min(horizon));
        if let Some(wall) = next_wall(pattern, from, inclusive, period_end) {
            let instant = offset.to_timestamp(wall).ok()?;
            return Some(instant.to_zoned_datetime(tz.clone()));
        }
        let (t, new_offset) = transition?;
        if new_offset > offset {
            // A gap: the wall times [before the jump, after the jump) never happen.
            let gap_start = offset.to_datetime(t);
            let gap_end = new_offset.to_datetime(t);
            if next_wall(pattern, gap_start, true, gap_end).is_some() {
                return Some(t.to_zoned_datetime(tz.clone()));
            }
        }
        cur = t;
        inclusive = true;
    }
}
