//! Polling intervals: `500ms`, `30s`, `5min`, `1h`.
//!
//! The text is a number and a unit, with optional spaces between them. The
//! number may have a decimal fraction (`1.5s`) as long as the result is a whole
//! number of milliseconds. Units, case-insensitive:
//!
//! | unit        | accepted spellings                              |
//! |-------------|-------------------------------------------------|
//! | millisecond | `ms`, `msec`, `millisecond`, `milliseconds`     |
//! | second      | `s`, `sec`, `secs`, `second`, `seconds`         |
//! | minute      | `min`, `mins`, `minute`, `minutes`              |
//! | hour        | `h`, `hr`, `hrs`, `hour`, `hours`               |
//!
//! A bare `m` is refused: it reads as minute to some and as metre or month to
//! others. An interval is at least 1 ms. [`Interval`] displays in the largest
//! unit that divides it exactly (`1.5s` displays as `1500ms`, `90s` as
//! `90s`, `120s` as `2min`), and the display parses back to the same interval.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ScheduleError;

/// Milliseconds per unit, largest first: the order [`Interval`]'s display tries them in.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("min", 60_000), ("s", 1_000), ("ms", 1)];

/// A polling interval: how long from one planned run to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// Always at least 1 and at most `i64::MAX`.
    millis: u64,
}

impl Interval {
    /// Parses an interval such as `500ms`, `30s`, `2 min`, `1.5s` or `1h`.
    ///
    /// ```
    /// use kmp_schedule::Interval;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Interval::parse("2 min")?.duration(), Duration::from_secs(120));
    /// assert_eq!(Interval::parse("1.5s")?.to_string(), "1500ms");
    /// assert!(Interval::parse("0s").is_err());
    /// # Ok::<(), kmp_schedule::ScheduleError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Interval, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::EmptyInterval);
        }
        let owned = || trimmed.to_owned();
        let number_end = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, rest) = trimmed.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty()
            || fraction.contains('.')
            || number.ends_with('.')
        {
            return Err(ScheduleError::IntervalNumber { text: owned() });
        }
        let unit = rest.trim_start();
        let unit_millis = unit_millis(unit).ok_or_else(|| ScheduleError::IntervalUnit {
            text: owned(),
            unit: unit.to_owned(),
        })?;
        let too_long = || ScheduleError::IntervalTooLong { text: owned() };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let fraction = fraction.trim_end_matches('0');
        let mut millis = whole
            .checked_mul(u128::from(unit_millis))
            .ok_or_else(too_long)?;
        if !fraction.is_empty() {
            let digits = u32::try_from(fraction.len()).map_err(|_| too_long())?;
            let scale = 10u128
                .checked_pow(digits)
                .ok_or(ScheduleError::IntervalFraction { text: owned() })?;
            let numerator: u128 = fraction
                .parse::<u128>()
                .ok()
                .and_then(|f| f.checked_mul(u128::from(unit_millis)))
                .ok_or(ScheduleError::IntervalFraction { text: owned() })?;
            if !numerator.is_multiple_of(scale) {
                return Err(ScheduleError::IntervalFraction { text: owned() });
            }
            millis = millis.checked_add(numerator / scale).ok_or_else(too_long)?;
        }
        if millis == 0 {
            return Err(ScheduleError::ZeroInterval { text: owned() });
        }
        match u64::try_from(millis) {
            Ok(millis) if i64::try_from(millis).is_ok() => Ok(Interval { millis }),
            _ => Err(too_long()),
        }
    }

    /// The interval as a [`Duration`].
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.millis)
    }

    /// The interval in milliseconds (at least 1, at most `i64::MAX`).
    pub fn as_millis(&self) -> u64 {
        self.millis
    }
}

/// Milliseconds per one of `unit`, or `None` for an unknown unit.
fn unit_millis(unit: &str) -> Option<u64> {
    let millis = match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        _ => return None,
    };
    Some(millis)
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, per) = UNITS
            .iter()
            .copied()
            .find(|&(_, per)| self.millis.is_multiple_of(per))
            .unwrap_or(("ms", 1));
        write!(f, "{}{unit}", self.millis / per)
    }
}

impl FromStr for Interval {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Interval, ScheduleError> {
        Interval::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: text, expected milliseconds or the expected error message, expected display.
    #[test]
    fn parse_table() {
        let ok: &[(&str, u64, &str)] = &[
            ("500ms", 500, "500ms"),
            ("30s", 30_000, "30s"),
            ("5min", 300_000, "5min"),
            ("1h", 3_600_000, "1h"),
            ("2 min", 120_000, "2min"),
            ("  45 sec ", 45_000, "45s"),
            ("1.5s", 1_500, "1500ms"),
            ("1.50s", 1_500, "1500ms"),
            (".5h", 1_800_000, "30min"),
            ("0.25min", 15_000, "15s"),
            ("90s", 90_000, "90s"),
            ("120s", 120_000, "2min"),
            ("3600000ms", 3_600_000, "1h"),
            ("2Hours", 7_200_000, "2h"),
            ("1 MS", 1, "1ms"),
            ("10 minutes", 600_000, "10min"),
        ];
        for &(text, millis, shown) in ok {
            let interval = Interval::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(interval.as_millis(), millis, "{text}");
            assert_eq!(interval.duration(), Duration::from_millis(millis), "{text}");
            assert_eq!(interval.to_string(), shown, "{text}");
            assert_eq!(Interval::parse(shown), Ok(interval), "{text} round trip");
        }
        let bad: &[(&str, &str)] = &[
            (
                "",
                "empty interval: write a number and a unit, e.g. '30s' (units: ms, s, min, h)",
            ),
            (
                "0s",
                "interval '0s' is zero; a polling interval must be longer than 0 ms",
            ),
            (
                "0.0ms",
                "interval '0.0ms' is zero; a polling interval must be longer than 0 ms",
            ),
            ("5", "interval '5': unknown unit ''; use ms, s, min or h"),
            ("5m", "interval '5m': unknown unit 'm'; use ms, s, min or h"),
            (
                "5 days",
                "interval '5 days': unknown unit 'days'; use ms, s, min or h",
            ),
            (
                "fast",
                "interval 'fast': expected a number followed by a unit, e.g. '30s' (units: ms, s, min, h)",
            ),
            (
                "-5s",
                "interval '-5s': expected a number followed by a unit, e.g. '30s' (units: ms, s, min, h)",
            ),
            (
                "1.2.3s",
                "interval '1.2.3s': expected a number followed by a unit, e.g. '30s' (units: ms, s, min, h)",
            ),
            (
                "5.s",
                "interval '5.s': expected a number followed by a unit, e.g. '30s' (units: ms, s, min, h)",
            ),
            (
                "0.5ms",
                "interval '0.5ms' is not a whole number of milliseconds",
            ),
            (
                "1.0001s",
                "interval '1.0001s' is not a whole number of milliseconds",
            ),
            (
                "5s5",
                "interval '5s5': unknown unit 's5'; use ms, s, min or h",
            ),
            (
                "99999999999999999999h",
                "interval '99999999999999999999h' is too long",
            ),
        ];
        for &(text, message) in bad {
            let err = Interval::parse(text).expect_err(text);
            assert_eq!(err.to_string(), message, "{text}");
        }
    }
}
