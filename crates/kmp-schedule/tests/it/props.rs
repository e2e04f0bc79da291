//! Properties of the search, over random expressions, starts and zones:
//! fire times strictly increase, each one matches (or is the first instant
//! after a spring jump over a match), none is skipped in between, and a match
//! in a spring gap is not lost.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use kmp_schedule::{BoundCron, Cron, TimesOfDay};
use proptest::prelude::*;

use crate::zone;

const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Copenhagen",
    "America/New_York",
    // Half-hour daylight saving: the fold is 01:30-02:00.
    "Australia/Lord_Howe",
];

/// One field item: `*`, a value, a range, a step, within `min..=max`.
fn item(min: u8, max: u8) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        (min..=max).prop_map(|v| v.to_string()),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (1..=max.min(12)).prop_map(|s| format!("*/{s}")),
        (min..=max, min..=max, 1..=max.min(12)).prop_map(|(a, b, s)| format!(
            "{}-{}/{s}",
            a.min(b),
            a.max(b)
        )),
    ]
}

/// A field: one item or a list of two or three.
fn field(min: u8, max: u8) -> impl Strategy<Value = String> {
    prop::collection::vec(item(min, max), 1..=3).prop_map(|items| items.join(","))
}

/// A five- or six-field expression, with `?` now and then.
fn expression() -> impl Strategy<Value = String> {
    let maybe_question = |f: BoxedStrategy<String>| prop_oneof![8 => f, 1 => Just("?".to_owned())];
    (
        prop::option::of(maybe_question(field(0, 59).boxed())),
        maybe_question(field(0, 59).boxed()),
        maybe_question(field(0, 23).boxed()),
        maybe_question(prop_oneof![3 => Just("*".to_owned()), 1 => field(1, 31)].boxed()),
        maybe_question(prop_oneof![3 => Just("*".to_owned()), 1 => field(1, 12)].boxed()),
        prop_oneof![3 => Just("*".to_owned()), 1 => field(0, 7)],
    )
        .prop_map(|(s, m, h, dom, mon, dow)| {
            let five = format!("{m} {h} {dom} {mon} {dow}");
            match s {
                Some(s) => format!("{s} {five}"),
                None => five,
            }
        })
}

/// A start between 2000 and 2040 in one of [`ZONES`]: anywhere, or within
/// four hours of a daylight-saving transition.
fn start() -> impl Strategy<Value = ZonedDateTime> {
    let anywhere = (946_684_800i64..2_208_988_800, 0..ZONES.len()).prop_map(|(second, z)| {
        Timestamp::from_second(second)
            .unwrap()
            .to_zoned_datetime(zone(ZONES[z]))
    });
    let near_transition = (
        946_684_800i64..2_208_988_800,
        -14_400i64..14_400,
        1..ZONES.len(),
    )
        .prop_map(|(second, shift, z)| {
            let tz = zone(ZONES[z]);
            let from = Timestamp::from_second(second).unwrap();
            let transition = tz.following(from).next().unwrap().timestamp();
            (transition + SignedDuration::from_secs(shift)).to_zoned_datetime(tz)
        });
    prop_oneof![anywhere, near_transition]
}

/// Whether `at` is the first instant after a forward jump of the clock.
fn just_after_jump(at: &ZonedDateTime) -> bool {
    let before = at.timestamp() - SignedDuration::from_nanos(1);
    at.time_zone().to_offset(before) < at.offset()
}

/// Whether `at` is in the second pass of a repeated hour.
fn in_second_pass(at: &ZonedDateTime) -> bool {
    match at
        .time_zone()
        .to_ambiguous_timestamp(at.datetime())
        .offset()
    {
        AmbiguousOffset::Fold { after, .. } => at.offset() == after,
        _ => false,
    }
}

/// Checks successive fire times of a pattern: increasing, matching, and for
/// gaps of up to six hours, no skipped match (minute by minute for five-field
/// expressions, where matches are on whole minutes).
fn check_run(
    start: &ZonedDateTime,
    next_after: impl Fn(&ZonedDateTime) -> Option<ZonedDateTime>,
    matches: impl Fn(&ZonedDateTime) -> bool,
    names_its_hour: bool,
    minute_resolution: bool,
) -> Result<(), TestCaseError> {
    let mut prev = start.clone();
    for _ in 0..12 {
        let Some(next) = next_after(&prev) else {
            break;
        };
        prop_assert!(next > prev, "{next} is not after {prev}");
        prop_assert_eq!(next.time_zone(), start.time_zone());
        prop_assert!(
            matches(&next) || just_after_jump(&next),
            "{next} does not match"
        );
        if names_its_hour {
            prop_assert!(!in_second_pass(&next), "{next} fires in the second pass");
        }
        for transition in prev.time_zone().following(prev.timestamp()) {
            let t = transition.timestamp();
            if t >= next.timestamp() {
                break;
            }
            // Wall times in a gap, seen through a fixed zone at the old offset.
            let old = prev
                .time_zone()
                .to_offset(t - SignedDuration::from_nanos(1));
            let gap = transition.offset().duration_since(old);
            let mut at = t.to_zoned_datetime(TimeZone::fixed(old));
            while at.timestamp() < t + gap {
                prop_assert!(!matches(&at), "{at} in the gap at {t} did not fire");
                at = at.checked_add(SignedDuration::from_secs(1)).unwrap();
            }
        }
        if minute_resolution && next.duration_since(&prev) <= SignedDuration::from_hours(6) {
            // The zones' offsets are whole minutes: wall minutes start on UTC minutes.
            let minute = prev.timestamp().as_second().div_euclid(60) * 60;
            let mut at = Timestamp::from_second(minute)
                .unwrap()
                .to_zoned_datetime(prev.time_zone().clone());
            while at < next {
                if at > prev && matches(&at) {
                    prop_assert!(
                        names_its_hour && in_second_pass(&at),
                        "{at} matches but was skipped between {prev} and {next}"
                    );
                }
                at = at.checked_add(SignedDuration::from_mins(1)).unwrap();
            }
        }
        prev = next;
    }
    Ok(())
}

proptest! {
    #[test]
    fn cron_fire_times_increase_and_match(expr in expression(), start in start()) {
        let cron = Cron::parse(&expr).unwrap();
        let bound: BoundCron = cron.bind(&start);
        let five = expr.split_whitespace().count() == 5;
        check_run(
            &start,
            |at| bound.next_after(at),
            |at| bound.matches(at),
            bound.names_its_hour(),
            five,
        )?;
    }

    #[test]
    fn times_of_day_increase_and_match(
        seconds in prop::collection::vec(0u32..86_400, 1..5),
        start in start(),
    ) {
        let text: Vec<String> = seconds
            .iter()
            .map(|s| format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60))
            .collect();
        let times = TimesOfDay::parse(&text.join(";")).unwrap();
        let matches = |at: &ZonedDateTime| {
            text.contains(&at.strftime("%H:%M:%S").to_string())
        };
        check_run(&start, |at| times.next_after(at), matches, true, false)?;
    }
}
