//! Polling, once, events, and ticks missed while the bus was busy (SPEC §2):
//! merged into one run, never replayed in a burst.

use jiff::{SignedDuration, ZonedDateTime};
use kmp_schedule::{Interval, Merged, Method, Schedule};

use crate::{cph, cron, fire_times, show};

const START: &str = "2026-06-01T10:00:00+02:00";

/// The start plus `millis`.
fn plus(millis: i64) -> ZonedDateTime {
    cph(START)
        .checked_add(SignedDuration::from_millis(millis))
        .unwrap()
}

fn polling(text: &str) -> Method {
    Method::Polling(Interval::parse(text).unwrap())
}

/// Each case: interval, `after` (ms after the start), expected next fire (ms after the start).
#[test]
fn polling_grid() {
    let cases: &[(&str, i64, i64)] = &[
        ("500ms", 0, 500),
        ("500ms", 499, 500),
        ("500ms", 500, 1_000),
        ("500ms", 1_234, 1_500),
        ("30s", 0, 30_000),
        ("30s", 29_999, 30_000),
        ("30s", 95_000, 120_000),
        ("5min", 1, 300_000),
        ("5min", 3_600_000, 3_900_000),
        ("1h", 0, 3_600_000),
        ("1h", 7_200_001, 10_800_000),
        ("1.5s", 4_000, 4_500),
        // Before the start: the start.
        ("30s", -5_000, 0),
    ];
    for &(interval, after, next) in cases {
        let schedule = Schedule::new(polling(interval), &cph(START));
        assert_eq!(schedule.first(), Some(cph(START)), "{interval}");
        assert_eq!(
            schedule.next_after(&plus(after)).map(|at| show(&at)),
            Some(show(&plus(next))),
            "{interval} after {after} ms"
        );
    }
}

/// Each case: method, due and now (ms after the start), expected run-now and next (ms after the start).
#[test]
fn missed_ticks_are_merged() {
    let cases: &[(Method, i64, i64, bool, Option<i64>)] = &[
        // On time: run, next tick.
        (polling("1s"), 1_000, 1_000, true, Some(2_000)),
        // Due at 1 s, bus busy until 10.5 s: nine ticks missed, one run now,
        // next on the grid at 11 s (not 2 s, 3 s, ... in a burst, not 11.5 s).
        (polling("1s"), 1_000, 10_500, true, Some(11_000)),
        (polling("500ms"), 500, 60_250, true, Some(60_500)),
        (polling("5min"), 300_000, 3_600_000, true, Some(3_900_000)),
        // Not due yet: wait.
        (polling("1s"), 2_000, 1_500, false, Some(2_000)),
        // A cron every quarter, due 10:15, reached at 10:50: one run, next 11:00.
        (
            cron("*/15 * * * *"),
            900_000,
            3_000_000,
            true,
            Some(3_600_000),
        ),
        // Once, reached late: run once, never again.
        (Method::Once, 0, 5_000, true, None),
    ];
    for (method, due, now, run_now, next) in cases {
        let schedule = Schedule::new(method.clone(), &cph(START));
        let merged = schedule.merge_missed(&plus(*due), &plus(*now));
        let expected = Merged {
            run_now: *run_now,
            next: next.map(plus),
        };
        assert_eq!(merged, expected, "{method:?} due {due} now {now}");
    }
}

/// A bus loop that is late at every run: the runs never come in a burst and
/// stay on the grid.
#[test]
fn late_bus_never_bursts() {
    let schedule = Schedule::new(polling("1s"), &cph(START));
    let busy_for = SignedDuration::from_millis(2_300);
    let mut due = schedule.first().unwrap();
    let mut runs = Vec::new();
    let mut now = due.clone();
    for _ in 0..4 {
        let merged = schedule.merge_missed(&due, &now);
        assert!(merged.run_now);
        runs.push(now.clone());
        now = now.checked_add(busy_for).unwrap();
        due = merged.next.unwrap();
        if due > now {
            now = due.clone();
        }
    }
    let expected: Vec<ZonedDateTime> = [0, 2_300, 4_600, 6_900].into_iter().map(plus).collect();
    assert_eq!(runs, expected);
}

#[test]
fn once_and_event() {
    assert_eq!(
        fire_times(Method::Once, &cph(START), 3),
        ["2026-06-01T10:00:00+02:00"]
    );
    let once = Schedule::new(Method::Once, &cph(START));
    assert_eq!(once.next_after(&plus(-1)), Some(cph(START)));
    assert_eq!(once.event(), None);

    let event = Schedule::new(Method::Event("leak".to_owned()), &cph(START));
    assert_eq!(event.first(), None);
    assert_eq!(event.next_after(&plus(1_000)), None);
    assert_eq!(event.event(), Some("leak"));
    assert_eq!(event.start(), &cph(START));
}
