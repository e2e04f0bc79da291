//! Cron expressions as SPEC §3 defines them (not Unix cron).
//!
//! Six fields `second minute hour day-of-month month weekday`, or five fields
//! `minute hour day-of-month month weekday` with the second 0, or four fields
//! `minute hour day-of-month month` with the second 0 and any weekday (the
//! seed's own `* 0-11 * *`, "every minute till noon"; [`Cron::lacks_weekday`]
//! lets a checker warn about it). The shorthands `@yearly` (`0 0 1 1 *`),
//! `@monthly` (`0 0 1 * *`), `@weekly` (`0 0 * * 0`), `@daily` (`0 0 * * *`)
//! and `@hourly` (`0 * * * *`) stand alone. Fields are separated by
//! whitespace; inside a field, spaces may follow a comma (`Jan, Feb, Mar`).
//! Each field is a comma-separated list of items:
//!
//! - `*`, a number, a range `1-5`, or a step after `*` or a range (`*/4`,
//!   `0-23/2`, `1-30/3` = 1,4,7,...,28). A step after a single value (`5/2`) is
//!   refused; a step is 1 up to the field's largest value.
//! - Months take `Jan`..`Dec`, weekdays `Sun`..`Sat`, case-insensitive, also as
//!   range bounds (`Mon-Fri`, and `Fri-Sun` where `Sun` ends a range as 7).
//! - Weekday numbers are 0-7, 0 and 7 both Sunday: `1-5` is Monday to Friday.
//! - Day-of-month and weekday must **both** match (unlike Unix cron, which
//!   fires when either does): `0 9 1-7 * 1` is the first Monday of the month.
//! - `?` stands alone in the second, minute, hour, day-of-month or month field
//!   and means "the start time's own value": [`Cron::parse`] keeps it symbolic,
//!   [`Cron::bind`] resolves it against the start time into a [`BoundCron`].
//!
//! **Start-up run.** A request runs at start-up if the start time matches the
//! bound expression ([`Cron::fires_at_start`]), to the second (fractions of a
//! second are ignored): `0 0 * * *` started at 00:00:30 does not run at
//! start-up, its second field being 0. Only an expression with a `?` and no
//! second field, whose `?` asks for the start time at the minute's
//! resolution, matches anywhere in a matching minute: started at 08:25:37,
//! `? ? * * *` runs at start-up and then daily at 08:25:00.
//!
//! **Names its hour.** A bound expression *names its hour* when its hour field
//! does not cover all 24 hours (`2`, `8-17`, `*/2`, a `?` hour). Such a schedule
//! fires once in the autumn's repeated hour, at the first pass; one whose hour
//! field covers every hour (`*`, `0-23`, `*/1`) repeats within the hour and keeps
//! its pace in real time through both passes. See [`crate::walk`] for the
//! daylight-saving rules.

use std::fmt;
use std::str::FromStr;

use jiff::ZonedDateTime;
use jiff::civil::Date;

use crate::error::{CronError, CronErrorKind, CronField};
use crate::walk::{self, WallPattern};

/// The default cron expression: every day at 12:00:00.
pub const DEFAULT_CRON: &str = "0 0 12 * * *";

/// The shorthands and the five-field expressions they stand for.
const SHORTHANDS: [(&str, &str); 5] = [
    ("@yearly", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Bits 0..=23: every hour of the day.
const ALL_HOURS: u64 = (1 << 24) - 1;

/// A field's values: a bit per allowed value, or `?` waiting for the start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Spec {
    /// Bit `v` set for each allowed value `v`.
    Set(u64),
    /// `?`: the start time's own value.
    Start,
}

impl Spec {
    /// The bit set, with `?` replaced by `start_value`.
    fn resolve(self, start_value: i8) -> u64 {
        match self {
            Spec::Set(bits) => bits,
            Spec::Start => u32::try_from(start_value).map_or(0, |v| 1u64 << (v % 64)),
        }
    }
}

/// A parsed cron expression; `?` fields are still symbolic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cron {
    /// The expression as written, without surrounding whitespace.
    text: String,
    seconds: Spec,
    minutes: Spec,
    hours: Spec,
    days: Spec,
    months: Spec,
    /// Bit 0 = Sunday .. bit 6 = Saturday (7 folded into 0); never `?`.
    weekdays: Spec,
    /// No second field (four or five fields, a shorthand): the second is 0.
    minute_resolution: bool,
    /// Four fields: the weekday was left out.
    lacks_weekday: bool,
}

/// A cron expression with every `?` replaced by the start time's value: the
/// set of wall-clock times it fires at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoundCron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    /// Bit 0 = Sunday .. bit 6 = Saturday.
    weekdays: u64,
    /// At start-up, match anywhere in a matching minute: a `?` expression
    /// without a second field.
    start_in_minute: bool,
}

impl Cron {
    /// Parses a four-, five- or six-field cron expression, or a shorthand.
    ///
    /// ```
    /// use kmp_schedule::Cron;
    ///
    /// assert!(Cron::parse("0 9 1-7 * Mon").is_ok());
    /// assert!(Cron::parse("@daily").is_ok());
    /// assert!(Cron::parse("* 0-11 * *").unwrap().lacks_weekday());
    /// let err = Cron::parse("0 61 * * * *").unwrap_err();
    /// assert_eq!(err.to_string(), "minute field: 61 is outside 0-59");
    /// assert_eq!(err.position, 2);
    /// ```
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let trimmed = expr.trim();
        if trimmed.starts_with('@') {
            return Cron::shorthand(expr, trimmed);
        }
        let fields = split_fields(expr);
        let parser = Parser { expr };
        let (second, [minute, hour, day, month], weekday) = match fields.as_slice() {
            [m, h, d, mo] => (None, [m, h, d, mo], None),
            [m, h, d, mo, w] => (None, [m, h, d, mo], Some(w)),
            [s, m, h, d, mo, w] => (Some(s), [m, h, d, mo], Some(w)),
            _ => {
                let (position, len) = match fields.get(6) {
                    Some(extra) => (char_offset(expr, extra.start), extra.text.chars().count()),
                    None => (0, expr.chars().count()),
                };
                return Err(CronError {
                    field: None,
                    position,
                    len,
                    kind: CronErrorKind::FieldCount {
                        found: fields.len(),
                    },
                });
            }
        };
        let seconds = match second {
            Some(field) => parser.field(field, &SECOND)?,
            None => Spec::Set(1),
        };
        let minutes = parser.field(minute, &MINUTE)?;
        let hours = parser.field(hour, &HOUR)?;
        let days = parser.field(day, &DAY_OF_MONTH)?;
        let months = parser.field(month, &MONTH)?;
        let weekdays = match weekday {
            None => Spec::Set(0x7F),
            Some(weekday) => match parser.field(weekday, &WEEKDAY)? {
                // 7 is Sunday too.
                Spec::Set(bits) => Spec::Set((bits | bits >> 7) & 0x7F),
                start => start,
            },
        };
        Ok(Cron {
            text: trimmed.to_owned(),
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            minute_resolution: second.is_none(),
            lacks_weekday: weekday.is_none(),
        })
    }

    /// Parses `@daily` and its kin; `trimmed` is `expr` without surrounding
    /// whitespace.
    fn shorthand(expr: &str, trimmed: &str) -> Result<Cron, CronError> {
        let Some((_, fields)) = SHORTHANDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        else {
            return Err(CronError {
                field: None,
                position: expr.chars().take_while(|c| c.is_whitespace()).count(),
                len: trimmed.chars().count(),
                kind: CronErrorKind::UnknownShorthand {
                    text: trimmed.to_owned(),
                },
            });
        };
        let cron = Cron::parse(fields)?;
        Ok(Cron {
            text: trimmed.to_owned(),
            ..cron
        })
    }

    /// Whether the expression has four fields, leaving out the weekday (it
    /// then fires on any weekday).
    pub fn lacks_weekday(&self) -> bool {
        self.lacks_weekday
    }

    /// Whether any field is `?`.
    fn has_question(&self) -> bool {
        [
            self.seconds,
            self.minutes,
            self.hours,
            self.days,
            self.months,
            self.weekdays,
        ]
        .contains(&Spec::Start)
    }

    /// Resolves every `?` to `start`'s own value of that field (in `start`'s zone).
    pub fn bind(&self, start: &ZonedDateTime) -> BoundCron {
        BoundCron {
            seconds: self.seconds.resolve(start.second()),
            minutes: self.minutes.resolve(start.minute()),
            hours: self.hours.resolve(start.hour()),
            days: self.days.resolve(start.day()),
            months: self.months.resolve(start.month()),
            weekdays: self
                .weekdays
                .resolve(start.weekday().to_sunday_zero_offset()),
            start_in_minute: self.minute_resolution && self.has_question(),
        }
    }

    /// Whether a request with this schedule runs at start-up: the start time
    /// matches the expression bound to it (see the module documentation).
    pub fn fires_at_start(&self, start: &ZonedDateTime) -> bool {
        self.bind(start).fires_at_start(start)
    }

    /// The expression as written (surrounding whitespace removed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<Cron, CronError> {
        Cron::parse(expr)
    }
}

impl BoundCron {
    /// The first instant strictly after `after` at which the expression fires,
    /// in the zone of `after`, by the daylight-saving rules of SPEC §3; `None`
    /// if it does not fire within [`SEARCH_YEARS`](crate::SEARCH_YEARS) years.
    pub fn next_after(&self, after: &ZonedDateTime) -> Option<ZonedDateTime> {
        walk::next_after(self, after)
    }

    /// Whether the wall time of `at` matches every field, to the second
    /// (the fraction of a second is ignored).
    pub fn matches(&self, at: &ZonedDateTime) -> bool {
        WallPattern::matches(self, at.datetime())
    }

    /// Whether a request runs at start-up: like [`BoundCron::matches`], but a
    /// `?` expression without a second field matches anywhere in a matching
    /// minute.
    pub fn fires_at_start(&self, start: &ZonedDateTime) -> bool {
        let wall = start.datetime();
        let wall = if self.start_in_minute {
            wall.with().second(0).build().unwrap_or(wall)
        } else {
            wall
        };
        WallPattern::matches(self, wall)
    }

    /// Whether the expression names its hour (its hour field does not cover
    /// all 24 hours): then it fires once in a repeated autumn hour, at the
    /// first pass; otherwise it fires in both passes.
    pub fn names_its_hour(&self) -> bool {
        self.hours & ALL_HOURS != ALL_HOURS
    }
}

/// The lowest set bit of `mask` in `from..=max`.
fn next_bit(mask: u64, from: u32, max: u32) -> Option<u32> {
    if from > max || from >= 64 {
        return None;
    }
    let bit = (mask >> from).trailing_zeros().checked_add(from)?;
    (bit <= max).then_some(bit)
}

/// Whether bit `value` is set in `mask`.
fn has_bit(mask: u64, value: i8) -> bool {
    u32::try_from(value).is_ok_and(|v| v < 64 && mask >> v & 1 == 1)
}

/// The first day of the month after `date`'s.
fn first_of_next_month(date: Date) -> Option<Date> {
    let (year, month) = match date.month() {
        12 => (date.year().checked_add(1)?, 1),
        m => (date.year(), m + 1),
    };
    Date::new(year, month, 1).ok()
}

impl WallPattern for BoundCron {
    fn next_date(&self, from: Date, last: Date) -> Option<Date> {
        let mut date = from;
        while date <= last {
            if !has_bit(self.months, date.month()) {
                date = first_of_next_month(date)?;
                continue;
            }
            let day = u32::try_from(date.day()).ok()?;
            let month_end = u32::try_from(date.days_in_month()).ok()?;
            let Some(next_day) = next_bit(self.days, day, month_end) else {
                date = first_of_next_month(date)?;
                continue;
            };
            if next_day != day {
                date = date.with().day(i8::try_from(next_day).ok()?).build().ok()?;
                continue;
            }
            if has_bit(self.weekdays, date.weekday().to_sunday_zero_offset()) {
                return Some(date);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    fn next_second(&self, from: u32) -> Option<u32> {
        let (mut hour, mut minute, mut second) = (from / 3600, from / 60 % 60, from % 60);
        loop {
            let h = next_bit(self.hours, hour, 23)?;
            if h != hour {
                (hour, minute, second) = (h, 0, 0);
            }
            let Some(m) = next_bit(self.minutes, minute, 59) else {
                (hour, minute, second) = (hour + 1, 0, 0);
                continue;
            };
            if m != minute {
                (minute, second) = (m, 0);
            }
            match next_bit(self.seconds, second, 59) {
                Some(s) => return Some(hour * 3600 + minute * 60 + s),
                None if minute == 59 => (hour, minute, second) = (hour + 1, 0, 0),
                None => (minute, second) = (minute + 1, 0),
            }
        }
    }

    fn repeats_in_fold(&self) -> bool {
        !self.names_its_hour()
    }
}

/// The rules of one field.
struct FieldRule {
    field: CronField,
    min: u8,
    max: u8,
    /// Names of the values `name_base`, `name_base + 1`, ...
    names: &'static [&'static str],
    name_base: u8,
    question: bool,
}

const SECOND: FieldRule = FieldRule {
    field: CronField::Second,
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
    question: true,
};
const MINUTE: FieldRule = FieldRule {
    field: CronField::Minute,
    ..SECOND
};
const HOUR: FieldRule = FieldRule {
    field: CronField::Hour,
    max: 23,
    ..SECOND
};
const DAY_OF_MONTH: FieldRule = FieldRule {
    field: CronField::DayOfMonth,
    min: 1,
    max: 31,
    ..SECOND
};
const MONTH: FieldRule = FieldRule {
    field: CronField::Month,
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    name_base: 1,
    question: true,
};
const WEEKDAY: FieldRule = FieldRule {
    field: CronField::Weekday,
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    name_base: 0,
    question: false,
};

/// A piece of the expression and its byte offset in it.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    start: usize,
}

impl<'a> Token<'a> {
    /// The sub-token `text[range]`, keeping track of its offset.
    fn slice(&self, from: usize, to: usize) -> Token<'a> {
        Token {
            text: self.text.get(from..to).unwrap_or_default(),
            start: self.start + from,
        }
    }

    /// Splits at the first `sep`: the part before and the part after.
    fn split_once(&self, sep: char) -> Option<(Token<'a>, Token<'a>)> {
        let at = self.text.find(sep)?;
        Some((
            self.slice(0, at),
            self.slice(at + sep.len_utf8(), self.text.len()),
        ))
    }
}

/// The character offset of byte offset `byte` in `expr`.
fn char_offset(expr: &str, byte: usize) -> usize {
    expr.get(..byte).map_or(0, |s| s.chars().count())
}

/// Splits an expression into fields at whitespace, except whitespace after a comma.
fn split_fields(expr: &str) -> Vec<Token<'_>> {
    let mut fields = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    for (i, c) in expr.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start
                && !expr.get(s..end).unwrap_or_default().ends_with(',')
            {
                fields.push(Token {
                    text: expr.get(s..end).unwrap_or_default(),
                    start: s,
                });
                start = None;
            }
        } else {
            start.get_or_insert(i);
            end = i + c.len_utf8();
        }
    }
    if let Some(s) = start {
        fields.push(Token {
            text: expr.get(s..end).unwrap_or_default(),
            start: s,
        });
    }
    fields
}

/// Parses fields, building errors that point into `expr`.
struct Parser<'a> {
    expr: &'a str,
}

impl Parser<'_> {
    /// An error of `rule`'s field at `token`.
    fn error(&self, rule: &FieldRule, token: Token<'_>, kind: CronErrorKind) -> CronError {
        CronError {
            field: Some(rule.field),
            position: char_offset(self.expr, token.start),
            len: token.text.chars().count(),
            kind,
        }
    }

    /// Parses one field: `?` or a list of items.
    fn field(&self, token: &Token<'_>, rule: &FieldRule) -> Result<Spec, CronError> {
        let mut items = Vec::new();
        let mut rest = *token;
        loop {
            match rest.split_once(',') {
                Some((item, tail)) => {
                    items.push(item);
                    rest = tail;
                }
                None => {
                    items.push(rest);
                    break;
                }
            }
        }
        let mut bits = 0u64;
        for item in &items {
            let leading = item.text.len() - item.text.trim_start().len();
            let item = item.slice(leading, item.text.len());
            if item.text.is_empty() {
                return Err(self.error(rule, item, CronErrorKind::EmptyItem));
            }
            if item.text == "?" {
                if !rule.question {
                    return Err(self.error(rule, item, CronErrorKind::QuestionNotAllowed));
                }
                if items.len() > 1 {
                    return Err(self.error(rule, item, CronErrorKind::QuestionNotAlone));
                }
                return Ok(Spec::Start);
            }
            bits |= self.item(item, rule)?;
        }
        Ok(Spec::Set(bits))
    }

    /// Parses one item: `*`, `a`, `a-b`, `*/n` or `a-b/n`, into a bit set.
    fn item(&self, item: Token<'_>, rule: &FieldRule) -> Result<u64, CronError> {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let (low, high) = if base.text == "*" {
            (rule.min, rule.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let low = self.value(a, rule)?;
            let mut high = self.value(b, rule)?;
            if rule.field == CronField::Weekday && high == 0 && low > 0 {
                // `Fri-Sun`: Sunday ends the week as 7.
                high = 7;
            }
            if high < low {
                return Err(self.error(
                    rule,
                    base,
                    CronErrorKind::ReversedRange {
                        start: a.text.to_owned(),
                        end: b.text.to_owned(),
                    },
                ));
            }
            (low, high)
        } else {
            let value = self.value(base, rule)?;
            if step.is_some() {
                return Err(self.error(
                    rule,
                    item,
                    CronErrorKind::StepWithoutRange {
                        text: item.text.to_owned(),
                    },
                ));
            }
            (value, value)
        };
        let step = match step {
            None => 1,
            Some(step) => self.step(step, rule)?,
        };
        Ok((low..=high)
            .step_by(usize::from(step))
            .fold(0u64, |bits, v| bits | 1 << v))
    }

    /// Parses a step: 1 up to the field's largest value.
    fn step(&self, step: Token<'_>, rule: &FieldRule) -> Result<u8, CronError> {
        if step.text.is_empty() || !step.text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(
                rule,
                step,
                CronErrorKind::Malformed {
                    text: step.text.to_owned(),
                },
            ));
        }
        match step.text.parse::<u8>() {
            Ok(n) if (1..=rule.max).contains(&n) => Ok(n),
            _ => Err(self.error(
                rule,
                step,
                CronErrorKind::StepOutOfRange {
                    value: step.text.to_owned(),
                    max: rule.max,
                },
            )),
        }
    }

    /// Parses a number or a name within the field's range.
    fn value(&self, token: Token<'_>, rule: &FieldRule) -> Result<u8, CronError> {
        let text = token.text;
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u8>() {
                Ok(n) if (rule.min..=rule.max).contains(&n) => Ok(n),
                _ => Err(self.error(
                    rule,
                    token,
                    CronErrorKind::OutOfRange {
                        value: text.to_owned(),
                        min: rule.min,
                        max: rule.max,
                    },
                )),
            };
        }
        if !text.is_empty() && text.chars().all(char::is_alphabetic) {
            if rule.names.is_empty() {
                return Err(self.error(
                    rule,
                    token,
                    CronErrorKind::NotANumber {
                        text: text.to_owned(),
                    },
                ));
            }
            let lower = text.to_lowercase();
            return rule
                .names
                .iter()
                .zip(rule.name_base..)
                .find_map(|(name, value)| (*name == lower).then_some(value))
                .ok_or_else(|| {
                    self.error(
                        rule,
                        token,
                        CronErrorKind::UnknownName {
                            name: text.to_owned(),
                        },
                    )
                });
        }
        Err(self.error(
            rule,
            token,
            CronErrorKind::Malformed {
                text: text.to_owned(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |b, v| b | 1 << v)
    }

    fn range(low: u32, high: u32, step: usize) -> u64 {
        (low..=high).step_by(step).fold(0, |b, v| b | 1 << v)
    }

    /// Each case: one field in a six-field expression (as the field at
    /// `index`, others `*`), and the bit set it parses to.
    #[test]
    fn field_syntax() {
        let cases: &[(&str, usize, u64)] = &[
            ("*", 0, range(0, 59, 1)),
            ("7", 0, bits(&[7])),
            ("1,3,7", 1, bits(&[1, 3, 7])),
            ("1, 3,  7", 1, bits(&[1, 3, 7])),
            ("1-5", 2, range(1, 5, 1)),
            ("*/4", 2, range(0, 23, 4)),
            ("0-23/2", 2, range(0, 23, 2)),
            ("1-30/3", 3, bits(&[1, 4, 7, 10, 13, 16, 19, 22, 25, 28])),
            ("Jan, Feb, Mar", 4, bits(&[1, 2, 3])),
            ("jan,FEB,mAr", 4, bits(&[1, 2, 3])),
            ("Jun-Aug", 4, bits(&[6, 7, 8])),
            ("*/5", 4, bits(&[1, 6, 11])),
            ("1-5", 5, range(1, 5, 1)),
            ("Mon-Fri", 5, range(1, 5, 1)),
            ("0", 5, bits(&[0])),
            ("7", 5, bits(&[0])),
            ("Sun", 5, bits(&[0])),
            ("5-7", 5, bits(&[0, 5, 6])),
            ("Fri-Sun", 5, bits(&[0, 5, 6])),
            ("*/2", 5, bits(&[0, 2, 4, 6])),
            ("sat,SUN", 5, bits(&[0, 6])),
        ];
        for &(field, index, expected) in cases {
            let mut fields = ["*"; 6];
            if let Some(slot) = fields.get_mut(index) {
                *slot = field;
            }
            let expr = fields.join(" ");
            let cron = Cron::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let spec = [
                cron.seconds,
                cron.minutes,
                cron.hours,
                cron.days,
                cron.months,
                cron.weekdays,
            ][index];
            assert_eq!(spec, Spec::Set(expected), "{expr}");
            assert_eq!(cron.to_string(), expr);
        }
    }

    /// Each case: expression, message, character position and length of the bad token.
    #[test]
    fn errors() {
        let cases: &[(&str, &str, usize, usize)] = &[
            ("* * *", "expected 4, 5 or 6 fields, found 3", 0, 5),
            ("", "expected 4, 5 or 6 fields, found 0", 0, 0),
            (
                "0 0 0 * * * 2026",
                "expected 4, 5 or 6 fields, found 7",
                12,
                4,
            ),
            (
                " @daly",
                "unknown shorthand '@daly': use @yearly, @monthly, @weekly, @daily or @hourly",
                1,
                5,
            ),
            (
                "@daily 5",
                "unknown shorthand '@daily 5': use @yearly, @monthly, @weekly, @daily or @hourly",
                0,
                8,
            ),
            ("0 61 * * * *", "minute field: 61 is outside 0-59", 2, 2),
            ("61 * * * *", "minute field: 61 is outside 0-59", 0, 2),
            ("60 * * * * *", "second field: 60 is outside 0-59", 0, 2),
            ("0 0 24 * * *", "hour field: 24 is outside 0-23", 4, 2),
            ("0 0 0 0 * *", "day-of-month field: 0 is outside 1-31", 6, 1),
            (
                "0 0 0 32 * *",
                "day-of-month field: 32 is outside 1-31",
                6,
                2,
            ),
            ("0 0 0 * 13 *", "month field: 13 is outside 1-12", 8, 2),
            ("0 0 0 * * 8", "weekday field: 8 is outside 0-7", 10, 1),
            ("0 0 * * Fry", "weekday field: unknown name 'Fry'", 8, 3),
            ("0 0 * Janu *", "month field: unknown name 'Janu'", 6, 4),
            ("0 0 * * Jan", "weekday field: unknown name 'Jan'", 8, 3),
            ("0 Mon * * *", "hour field: 'Mon' is not a number", 2, 3),
            ("1,,3 * * * *", "minute field: empty item in a list", 2, 0),
            ("* * * * 1,", "weekday field: empty item in a list", 10, 0),
            // A space after a comma continues the field: this is 3 fields.
            ("1, * * *", "expected 4, 5 or 6 fields, found 3", 0, 8),
            (
                "5/2 * * * *",
                "minute field: '5/2': a step goes after * or a range, as in */2 or 5-59/2",
                0,
                3,
            ),
            ("*/0 * * * *", "minute field: step 0 is outside 1-59", 2, 1),
            (
                "*/60 * * * *",
                "minute field: step 60 is outside 1-59",
                2,
                2,
            ),
            (
                "*/x * * * *",
                "minute field: cannot read 'x': expected *, a value, a range a-b or a step */n, a-b/n",
                2,
                1,
            ),
            (
                "1-2-3 * * * *",
                "minute field: cannot read '2-3': expected *, a value, a range a-b or a step */n, a-b/n",
                2,
                3,
            ),
            (
                "*-5 * * * *",
                "minute field: cannot read '*': expected *, a value, a range a-b or a step */n, a-b/n",
                0,
                1,
            ),
            (
                "0 9 * * 5-1",
                "weekday field: range 5-1 runs backwards; write the lower bound first",
                8,
                3,
            ),
            (
                "0 0 * * ?",
                "weekday field: '?' is not allowed here (only in the second, minute, hour, day-of-month and month fields)",
                8,
                1,
            ),
            (
                "?,5 * * * *",
                "minute field: '?' must stand alone in its field",
                0,
                1,
            ),
            (
                "0 0 12 * Jan, Fbr *",
                "month field: unknown name 'Fbr'",
                14,
                3,
            ),
            (
                "0 0 12 * * Sat-Sun,Fry",
                "weekday field: unknown name 'Fry'",
                19,
                3,
            ),
            (
                "0 0 12 ä * *",
                "day-of-month field: 'ä' is not a number",
                7,
                1,
            ),
            (
                "0 0 12 ä 99 *",
                "day-of-month field: 'ä' is not a number",
                7,
                1,
            ),
            ("0 0 12 1 ä, 99 *", "month field: unknown name 'ä'", 9, 1),
            ("0 0 12 1 1, 99 *", "month field: 99 is outside 1-12", 12, 2),
            (
                "0 0 99999999999 * * *",
                "hour field: 99999999999 is outside 0-23",
                4,
                11,
            ),
        ];
        for &(expr, message, position, len) in cases {
            let err = Cron::parse(expr).expect_err(expr);
            assert_eq!(err.to_string(), message, "{expr}");
            assert_eq!(
                (err.position, err.len),
                (position, len),
                "{expr}: {message}"
            );
        }
    }

    /// `?` binds to the start's own value; names-its-hour follows the bound hour field.
    #[test]
    fn bind_and_names_its_hour() {
        let start: ZonedDateTime = "2026-05-12T08:25:37[UTC]".parse().unwrap();
        let cases: &[(&str, u64, u64, u64, bool)] = &[
            // expr, seconds, minutes, hours, names its hour
            ("? ? * * *", bits(&[0]), bits(&[25]), bits(&[8]), true),
            ("? ? ? * * *", bits(&[37]), bits(&[25]), bits(&[8]), true),
            ("* ? * * *", bits(&[0]), range(0, 59, 1), bits(&[8]), true),
            (
                "*/15 * * * *",
                bits(&[0]),
                range(0, 59, 15),
                ALL_HOURS,
                false,
            ),
            ("0 30 2 * * *", bits(&[0]), bits(&[30]), bits(&[2]), true),
            (
                "0 0 */2 * * *",
                bits(&[0]),
                bits(&[0]),
                range(0, 23, 2),
                true,
            ),
            ("0 0 0-23 * * *", bits(&[0]), bits(&[0]), ALL_HOURS, false),
            ("0 0 */1 * * *", bits(&[0]), bits(&[0]), ALL_HOURS, false),
        ];
        for &(expr, seconds, minutes, hours, named) in cases {
            let bound = Cron::parse(expr).unwrap().bind(&start);
            assert_eq!(
                (
                    bound.seconds,
                    bound.minutes,
                    bound.hours,
                    bound.names_its_hour()
                ),
                (seconds, minutes, hours, named),
                "{expr}"
            );
        }
    }
}
