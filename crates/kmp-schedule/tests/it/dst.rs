//! Daylight saving in Europe/Copenhagen, 2026: on 29 March the clock jumps
//! from 02:00 (+01:00) to 03:00 (+02:00); on 25 October it falls back from
//! 03:00 (+02:00) to 02:00 (+01:00), so 02:00-02:59 happens twice.

use kmp_schedule::{Interval, Method, TimesOfDay};

use crate::{cph, cron, fire_times};

/// Each case: method, start, expected fire times (`first()` included).
fn check(cases: &[(Method, &str, &[&str])]) {
    for (method, start, expected) in cases {
        let got = fire_times(method.clone(), &cph(start), expected.len());
        assert_eq!(got, *expected, "{method:?} started at {start}");
    }
}

fn times(text: &str) -> Method {
    Method::TimesOfDay(TimesOfDay::parse(text).unwrap())
}

/// A wall time the spring jump skips fires once, at the first instant after
/// the jump (03:00:00 +02:00).
#[test]
fn spring_gap() {
    check(&[
        (
            cron("0 30 2 * * *"),
            "2026-03-28T12:00+01:00",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        (
            cron("0 0 2 * * *"),
            "2026-03-28T12:00+01:00",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        ),
        // Every skipped quarter fires once, together, at 03:00 (which also matches).
        (
            cron("*/15 * * * *"),
            "2026-03-29T01:30+01:00",
            &[
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T01:45:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:15:00+02:00",
            ],
        ),
        (
            cron("0 10 2 * * *"),
            "2026-03-29T01:59:59+01:00",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:10:00+02:00"],
        ),
        // Not fooled by 03:00 itself: a wall time after the gap fires as usual.
        (
            cron("0 0 3 * * *"),
            "2026-03-29T00:00+01:00",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"],
        ),
        (
            times("02:30:00;12:00:00"),
            "2026-03-29T00:00+01:00",
            &[
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T12:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
            ],
        ),
        // Two skipped times and the first time after the jump: one run.
        (
            times("02:00:00;02:30:00;03:00:00"),
            "2026-03-29T00:00+01:00",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        ),
    ]);
}

/// In the repeated hour, a schedule that names its hour fires once, at the
/// first pass; one that repeats within the hour keeps its real-time pace
/// through both passes.
#[test]
fn autumn_fold() {
    check(&[
        (
            cron("0 30 2 * * *"),
            "2026-10-24T12:00+02:00",
            &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        (
            cron("0 */15 * * * *"),
            "2026-10-25T01:50+02:00",
            &[
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:15:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:45:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:15:00+01:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T02:45:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
        // Five fields, the SPEC's own example.
        (
            cron("*/15 * * * *"),
            "2026-10-25T02:40+02:00",
            &[
                "2026-10-25T02:45:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:15:00+01:00",
            ],
        ),
        // Hourly at :30 covers every hour: both passes, an hour apart in real time.
        (
            cron("30 * * * *"),
            "2026-10-25T01:00+02:00",
            &[
                "2026-10-25T01:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:30:00+01:00",
            ],
        ),
        // Every two hours names its hours (0, 2, 4, ...): 02:00 once.
        (
            cron("0 */2 * * *"),
            "2026-10-25T01:00+02:00",
            &["2026-10-25T02:00:00+02:00", "2026-10-25T04:00:00+01:00"],
        ),
        // Started in the first pass, after the named time: not again in the second pass.
        (
            cron("0 20 2 * * *"),
            "2026-10-25T02:40+02:00",
            &["2026-10-26T02:20:00+01:00"],
        ),
        // Started in the first pass, before it: first pass only.
        (
            cron("0 50 2 * * *"),
            "2026-10-25T02:40+02:00",
            &["2026-10-25T02:50:00+02:00", "2026-10-26T02:50:00+01:00"],
        ),
        // Started in the second pass: the named hour has had its run.
        (
            cron("0 50 2 * * *"),
            "2026-10-25T02:10+01:00",
            &["2026-10-26T02:50:00+01:00"],
        ),
        // A `?` hour names its hour.
        (
            cron("0 ? * * *"),
            "2026-10-24T02:30+02:00",
            &["2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00"],
        ),
        (
            times("02:30:00;12:00:00"),
            "2026-10-25T00:00+02:00",
            &[
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T12:00:00+01:00",
                "2026-10-26T02:30:00+01:00",
            ],
        ),
        (
            times("02:30:00"),
            "2026-10-25T02:00+01:00",
            &["2026-10-26T02:30:00+01:00"],
        ),
        // Polling is real time: an hour apart through the fold.
        (
            Method::Polling(Interval::parse("1h").unwrap()),
            "2026-10-25T01:00+02:00",
            &[
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
    ]);
}
