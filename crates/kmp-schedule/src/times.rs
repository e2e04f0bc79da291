//! Times of day: `11:00:00;11:20:00;11:40:00`.
//!
//! Items are 24-hour `hh:mm:ss` (the hour may have one digit, minutes and
//! seconds have two), separated by `;`, with spaces allowed around them. The
//! order does not matter and duplicates count once. `24:00:00` is not a time
//! of day: write `00:00:00`.
//!
//! A time of day names its hour, so on daylight-saving days it fires once: a
//! time the spring jump skips fires right after the jump, a time the autumn
//! repeats fires at the first pass (see [`crate::walk`]).

use std::fmt;
use std::str::FromStr;

use jiff::ZonedDateTime;
use jiff::civil::Date;

use crate::error::{ScheduleError, TimeProblem};
use crate::walk::{self, WallPattern};

/// A list of times of day at which a request fires, every day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimesOfDay {
    /// Seconds of the day, sorted, without duplicates, never empty.
    seconds: Vec<u32>,
}

impl TimesOfDay {
    /// Parses `hh:mm:ss` items separated by `;`.
    ///
    /// ```
    /// use kmp_schedule::TimesOfDay;
    ///
    /// let times = TimesOfDay::parse("11:40:00; 11:00:00;11:20:00")?;
    /// assert_eq!(times.to_string(), "11:00:00;11:20:00;11:40:00");
    /// let err = TimesOfDay::parse("11:00:00;24:00:00").unwrap_err();
    /// assert_eq!(err.to_string(), "times of day: '24:00:00' (at character 9) has hour 24, outside 00-23");
    /// # Ok::<(), kmp_schedule::ScheduleError>(())
    /// ```
    pub fn parse(text: &str) -> Result<TimesOfDay, ScheduleError> {
        if text.trim().is_empty() {
            return Err(ScheduleError::NoTimes);
        }
        let mut seconds = Vec::new();
        let mut offset = 0;
        for (index, raw) in text.split(';').enumerate() {
            let leading = raw.len() - raw.trim_start().len();
            let item = raw.trim();
            let position = text
                .get(..offset + leading)
                .map_or(0, |s| s.chars().count());
            offset += raw.len() + 1;
            if item.is_empty() {
                return Err(ScheduleError::EmptyTime {
                    item: index + 1,
                    position,
                });
            }
            let second = parse_time(item).map_err(|reason| ScheduleError::BadTime {
                text: item.to_owned(),
                position,
                reason,
            })?;
            seconds.push(second);
        }
        seconds.sort_unstable();
        seconds.dedup();
        Ok(TimesOfDay { seconds })
    }

    /// The first instant strictly after `after` at one of the times, in the
    /// zone of `after`. `None` only at the end of jiff's supported range.
    pub fn next_after(&self, after: &ZonedDateTime) -> Option<ZonedDateTime> {
        walk::next_after(self, after)
    }

    /// Whether `start`'s wall time, to the second, is one of the times: then a
    /// request runs at start-up.
    pub fn fires_at_start(&self, start: &ZonedDateTime) -> bool {
        self.matches(start.datetime())
    }
}

/// Parses one `hh:mm:ss` into a second of the day.
fn parse_time(item: &str) -> Result<u32, TimeProblem> {
    let mut parts = item.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TimeProblem::Format);
    };
    let number = |part: &str, widths: std::ops::RangeInclusive<usize>| {
        if widths.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse::<u32>().map_err(|_| TimeProblem::Format)
        } else {
            Err(TimeProblem::Format)
        }
    };
    let (h, m, s) = (number(h, 1..=2)?, number(m, 2..=2)?, number(s, 2..=2)?);
    if h > 23 {
        return Err(TimeProblem::Hour(h));
    }
    if m > 59 {
        return Err(TimeProblem::Minute(m));
    }
    if s > 59 {
        return Err(TimeProblem::Second(s));
    }
    Ok(h * 3600 + m * 60 + s)
}

impl WallPattern for TimesOfDay {
    fn next_date(&self, from: Date, last: Date) -> Option<Date> {
        (from <= last).then_some(from)
    }

    fn next_second(&self, from: u32) -> Option<u32> {
        let index = self.seconds.partition_point(|&s| s < from);
        self.seconds.get(index).copied()
    }

    fn repeats_in_fold(&self) -> bool {
        false
    }
}

impl fmt::Display for TimesOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.seconds.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)?;
        }
        Ok(())
    }
}

impl FromStr for TimesOfDay {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<TimesOfDay, ScheduleError> {
        TimesOfDay::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: text, and its display (sorted, deduplicated) or the error message.
    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "11:00:00;11:20:00;11:40:00",
                Ok("11:00:00;11:20:00;11:40:00"),
            ),
            (
                " 11:40:00 ; 11:00:00;11:20:00 ",
                Ok("11:00:00;11:20:00;11:40:00"),
            ),
            ("9:05:00", Ok("09:05:00")),
            ("00:00:00;23:59:59;00:00:00", Ok("00:00:00;23:59:59")),
            (
                "",
                Err("no times of day given: write hh:mm:ss, several separated by ';'"),
            ),
            (
                "   ",
                Err("no times of day given: write hh:mm:ss, several separated by ';'"),
            ),
            (
                "11:00:00;24:00:00",
                Err("times of day: '24:00:00' (at character 9) has hour 24, outside 00-23"),
            ),
            (
                "11:60:00",
                Err("times of day: '11:60:00' (at character 0) has minute 60, outside 00-59"),
            ),
            (
                "11:00:60",
                Err("times of day: '11:00:60' (at character 0) has second 60, outside 00-59"),
            ),
            (
                "11:00:00;;12:00:00",
                Err("times of day: item 2 (at character 9) is empty"),
            ),
            (
                "11:00:00;",
                Err("times of day: item 2 (at character 9) is empty"),
            ),
            (
                "11:00",
                Err(
                    "times of day: '11:00' (at character 0) is not a time of day in 24-hour hh:mm:ss",
                ),
            ),
            (
                "11:00:00:00",
                Err(
                    "times of day: '11:00:00:00' (at character 0) is not a time of day in 24-hour hh:mm:ss",
                ),
            ),
            (
                "11:0:00",
                Err(
                    "times of day: '11:0:00' (at character 0) is not a time of day in 24-hour hh:mm:ss",
                ),
            ),
            (
                "ä;11:00 am",
                Err("times of day: 'ä' (at character 0) is not a time of day in 24-hour hh:mm:ss"),
            ),
            (
                "12:00:00; 11:00 am",
                Err(
                    "times of day: '11:00 am' (at character 10) is not a time of day in 24-hour hh:mm:ss",
                ),
            ),
            (
                "12:00:00;ä;+1:00:00",
                Err("times of day: 'ä' (at character 9) is not a time of day in 24-hour hh:mm:ss"),
            ),
            (
                "12:00:00; -1:00:00",
                Err(
                    "times of day: '-1:00:00' (at character 10) is not a time of day in 24-hour hh:mm:ss",
                ),
            ),
        ];
        for &(text, expected) in cases {
            let got = TimesOfDay::parse(text)
                .map(|t| t.to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                expected.map(str::to_owned).map_err(str::to_owned),
                "{text}"
            );
            if let Ok(shown) = expected {
                assert_eq!(
                    TimesOfDay::parse(shown).map(|t| t.to_string()).as_deref(),
                    Ok(shown)
                );
            }
        }
    }
}
