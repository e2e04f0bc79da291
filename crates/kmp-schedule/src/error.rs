//! What can be wrong in a schedule's text: an interval, a list of times of day
//! or a cron expression.
//!
//! Every error says what was wrong and where: the offending item is quoted, and
//! the character offset of the bad token (counted in `char`s from the start of
//! the text, 0-based) is kept so that a configuration checker can point at it.

use std::fmt;

/// A polling interval or a list of times of day that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The interval text is empty.
    #[error("empty interval: write a number and a unit, e.g. '30s' (units: ms, s, min, h)")]
    EmptyInterval,
    /// The interval does not start with a number, or the number is malformed.
    #[error(
        "interval '{text}': expected a number followed by a unit, e.g. '30s' (units: ms, s, min, h)"
    )]
    IntervalNumber {
        /// The interval as written.
        text: String,
    },
    /// The unit after the number is missing or unknown.
    #[error("interval '{text}': unknown unit '{unit}'; use ms, s, min or h")]
    IntervalUnit {
        /// The interval as written.
        text: String,
        /// The unit as written (empty when missing).
        unit: String,
    },
    /// The interval is zero.
    #[error("interval '{text}' is zero; a polling interval must be longer than 0 ms")]
    ZeroInterval {
        /// The interval as written.
        text: String,
    },
    /// The interval is not a whole number of milliseconds (`0.5ms`, `1.0001s`).
    #[error("interval '{text}' is not a whole number of milliseconds")]
    IntervalFraction {
        /// The interval as written.
        text: String,
    },
    /// The interval does not fit in a signed 64-bit count of milliseconds.
    #[error("interval '{text}' is too long")]
    IntervalTooLong {
        /// The interval as written.
        text: String,
    },
    /// The list of times of day is empty.
    #[error("no times of day given: write hh:mm:ss, several separated by ';'")]
    NoTimes,
    /// An item of the list of times of day is empty (`11:00:00;;12:00:00`, a trailing `;`).
    #[error("times of day: item {item} (at character {position}) is empty")]
    EmptyTime {
        /// The 1-based number of the item in the list.
        item: usize,
        /// Character offset where the empty item is.
        position: usize,
    },
    /// An item of the list of times of day is not a valid 24-hour `hh:mm:ss`.
    #[error("times of day: '{text}' (at character {position}) {reason}")]
    BadTime {
        /// The item as written.
        text: String,
        /// Character offset of the item.
        position: usize,
        /// What is wrong with it.
        reason: TimeProblem,
    },
}

/// Why an item of a times-of-day list is not a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeProblem {
    /// Not of the form `hh:mm:ss` with digits.
    #[error("is not a time of day in 24-hour hh:mm:ss")]
    Format,
    /// The hour is above 23 (`24:00:00`).
    #[error("has hour {0}, outside 00-23")]
    Hour(u32),
    /// The minute is above 59.
    #[error("has minute {0}, outside 00-59")]
    Minute(u32),
    /// The second is above 59.
    #[error("has second {0}, outside 00-59")]
    Second(u32),
}

/// One of the six fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Seconds, 0-59 (only in six-field expressions).
    Second,
    /// Minutes, 0-59.
    Minute,
    /// Hours, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or `Jan`..`Dec`.
    Month,
    /// Day of the week, 0-7 (0 and 7 = Sunday) or `Sun`..`Sat`.
    Weekday,
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::Weekday => "weekday",
        })
    }
}

/// A cron expression that cannot be used: which field, where, and what is wrong.
///
/// Displays as `"<field> field: <what>"`, e.g. `minute field: 61 is outside
/// 0-59`, or just `<what>` for errors about the whole expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    /// The field the bad token is in; `None` for the whole expression.
    pub field: Option<CronField>,
    /// Character offset (0-based, in `char`s) of the bad token in the expression.
    pub position: usize,
    /// Length of the bad token in `char`s (at least 1 unless the expression is empty).
    pub len: usize,
    /// What is wrong.
    pub kind: CronErrorKind,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.field {
            write!(f, "{field} field: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for CronError {}

/// What is wrong in a cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronErrorKind {
    /// Not four, five or six whitespace-separated fields.
    #[error("expected 4, 5 or 6 fields, found {found}")]
    FieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// An `@` word that is not one of the shorthands, or one with more after it.
    #[error("unknown shorthand '{text}': use @yearly, @monthly, @weekly, @daily or @hourly")]
    UnknownShorthand {
        /// The expression as written.
        text: String,
    },
    /// An empty item in a list (`1,,3`, a trailing comma).
    #[error("empty item in a list")]
    EmptyItem,
    /// A number outside the field's range.
    #[error("{value} is outside {min}-{max}")]
    OutOfRange {
        /// The number as written.
        value: String,
        /// Smallest value of the field.
        min: u8,
        /// Largest value of the field.
        max: u8,
    },
    /// A step outside 1 to the field's largest value.
    #[error("step {value} is outside 1-{max}")]
    StepOutOfRange {
        /// The step as written.
        value: String,
        /// Largest step allowed.
        max: u8,
    },
    /// A word that is not a month or weekday name (month: `Jan`..`Dec`, weekday: `Sun`..`Sat`).
    #[error("unknown name '{name}'")]
    UnknownName {
        /// The word as written.
        name: String,
    },
    /// A word in a field that takes only numbers.
    #[error("'{text}' is not a number")]
    NotANumber {
        /// The word as written.
        text: String,
    },
    /// A token that is none of `*`, `?`, a value, a range or a step.
    #[error("cannot read '{text}': expected *, a value, a range a-b or a step */n, a-b/n")]
    Malformed {
        /// The token as written.
        text: String,
    },
    /// A step after a single value (`5/2`): steps go after `*` or a range.
    #[error("'{text}': a step goes after * or a range, as in */2 or 5-59/2")]
    StepWithoutRange {
        /// The item as written.
        text: String,
    },
    /// A range whose end is below its start (`5-1`).
    #[error("range {start}-{end} runs backwards; write the lower bound first")]
    ReversedRange {
        /// The start as written.
        start: String,
        /// The end as written.
        end: String,
    },
    /// `?` in the weekday field.
    #[error(
        "'?' is not allowed here (only in the second, minute, hour, day-of-month and month fields)"
    )]
    QuestionNotAllowed,
    /// `?` together with other items in one field.
    #[error("'?' must stand alone in its field")]
    QuestionNotAlone,
}
