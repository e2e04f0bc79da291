//! Register values kept exactly: sign, integer mantissa and decimal exponent,
//! as the meter sent them. The exponent is the precision: mantissa 3400 with
//! exponent -2 prints `34.00`, never `34` and never `33.99999`.
//!
//! On the wire a value is `L | sigEx | mantissa (L bytes, big-endian)`, where
//! sigEx bit 7 is the sign of the mantissa, bit 6 the sign of the exponent and
//! bits 0..5 the exponent's magnitude.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::unit::{Quantity, Unit};

/// The widest mantissa accepted, in bytes. Meters send 1 to 8; a wider field
/// is a line fault.
pub const MAX_MANTISSA_LEN: usize = 16;

/// Largest exponent magnitude sigEx can carry.
pub const MAX_EXPONENT: i8 = 63;

/// An exact decimal value: `(-1)^negative × mantissa × 10^exponent`, with the
/// mantissa width it had on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value {
    negative: bool,
    mantissa: u128,
    exponent: i8,
    width: u8,
    /// The exponent's sign bit when the exponent is 0: meters may send
    /// "minus zero", and the value is kept as sent.
    negative_zero_exponent: bool,
}

/// A value field that cannot be decoded or a value that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The length byte is 0.
    #[error("value length is 0; a value needs at least 1 mantissa byte")]
    ZeroLength,
    /// The length byte is larger than any meter sends.
    #[error("value length {len} is larger than {MAX_MANTISSA_LEN} bytes")]
    TooWide {
        /// The length found.
        len: usize,
    },
    /// The field ends before its mantissa does.
    #[error("value field truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the field announces (length and sigEx included).
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The exponent is beyond ±63.
    #[error("exponent {exponent} is outside -63..=63")]
    ExponentOutOfRange {
        /// The exponent asked for.
        exponent: i32,
    },
    /// The mantissa does not fit the width asked for.
    #[error("mantissa {mantissa} does not fit in {width} bytes")]
    MantissaTooLarge {
        /// The mantissa.
        mantissa: u128,
        /// The width asked for.
        width: usize,
    },
}

impl Value {
    /// A value with an explicit mantissa width in bytes (1..=16).
    pub fn from_parts(
        negative: bool,
        mantissa: u128,
        exponent: i8,
        width: usize,
    ) -> Result<Value, ValueError> {
        if width == 0 {
            return Err(ValueError::ZeroLength);
        }
        if width > MAX_MANTISSA_LEN {
            return Err(ValueError::TooWide { len: width });
        }
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
            return Err(ValueError::ExponentOutOfRange {
                exponent: exponent.into(),
            });
        }
        if byte_len(mantissa) > width {
            return Err(ValueError::MantissaTooLarge { mantissa, width });
        }
        let width = u8::try_from(width).map_err(|_| ValueError::TooWide { len: width })?;
        Ok(Value {
            negative,
            mantissa,
            exponent,
            width,
            negative_zero_exponent: false,
        })
    }

    /// `mantissa × 10^exponent` in the 4-byte width meters commonly use, wider
    /// when the mantissa needs it. `Value::new(6344, -2)` is `63.44`.
    pub fn new(mantissa: i128, exponent: i8) -> Result<Value, ValueError> {
        let magnitude = mantissa.unsigned_abs();
        Value::from_parts(
            mantissa < 0,
            magnitude,
            exponent,
            byte_len(magnitude).max(4),
        )
    }

    /// Whether the sign bit is set (a negative zero keeps it).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The mantissa's magnitude.
    pub fn mantissa(&self) -> u128 {
        self.mantissa
    }

    /// The decimal exponent: the value's precision.
    pub fn exponent(&self) -> i8 {
        self.exponent
    }

    /// Mantissa width on the wire, in bytes.
    pub fn width(&self) -> usize {
        usize::from(self.width)
    }

    /// The value as a float, for sinks that can only take floats. Loses the
    /// exactness this type exists for; use [`fmt::Display`] where text will do.
    pub fn to_f64(&self) -> f64 {
        // Going through the exact decimal text gives the float nearest to the
        // true value, which mantissa × powi(10, e) does not.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Decodes a value field `L | sigEx | mantissa` at the start of `field`;
    /// returns the value and the number of bytes it took.
    pub fn decode_field(field: &[u8]) -> Result<(Value, usize), ValueError> {
        let Some((&len, rest)) = field.split_first() else {
            return Err(ValueError::Truncated {
                needed: 2,
                available: 0,
            });
        };
        let len = usize::from(len);
        if len == 0 {
            return Err(ValueError::ZeroLength);
        }
        if len > MAX_MANTISSA_LEN {
            return Err(ValueError::TooWide { len });
        }
        let needed = len + 2;
        let Some((&sig_ex, mantissa_bytes)) = rest.split_first() else {
            return Err(ValueError::Truncated {
                needed,
                available: field.len(),
            });
        };
        let Some(mantissa_bytes) = mantissa_bytes.get(..len) else {
            return Err(ValueError::Truncated {
                needed,
                available: field.len(),
            });
        };
        let mantissa = mantissa_bytes
            .iter()
            .fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
        let magnitude = (sig_ex & 0x3F) as i8;
        let exponent = if sig_ex & 0x40 != 0 {
            -magnitude
        } else {
            magnitude
        };
        let mut value = Value::from_parts(sig_ex & 0x80 != 0, mantissa, exponent, len)?;
        value.negative_zero_exponent = magnitude == 0 && sig_ex & 0x40 != 0;
        Ok((value, needed))
    }

    /// Appends the value field `L | sigEx | mantissa` to `out`.
    pub fn encode_field(&self, out: &mut Vec<u8>) {
        let mut sig_ex = self.exponent.unsigned_abs() & 0x3F;
        if self.exponent < 0 || self.negative_zero_exponent {
            sig_ex |= 0x40;
        }
        if self.negative {
            sig_ex |= 0x80;
        }
        out.extend_from_slice(&[self.width, sig_ex]);
        self.encode_mantissa(out);
    }

    /// Appends the mantissa alone, in its width: how a logger row after the
    /// first carries a value (its length and sigEx are row 1's).
    pub fn encode_mantissa(&self, out: &mut Vec<u8>) {
        let bytes = self.mantissa.to_be_bytes();
        out.extend(bytes.iter().skip(bytes.len().saturating_sub(self.width())));
    }

    /// Whether `other` has this value's width, sign and exponent bits, so that
    /// it can travel as a bare mantissa after this value's header.
    pub fn same_layout(&self, other: &Value) -> bool {
        self.width == other.width
            && self.negative == other.negative
            && self.exponent == other.exponent
            && self.negative_zero_exponent == other.negative_zero_exponent
    }

    /// The value with this one's width, sign and exponent and the mantissa
    /// `bytes` (big-endian, as many as the width).
    pub fn with_mantissa_bytes(&self, bytes: &[u8]) -> Result<Value, ValueError> {
        if bytes.len() != self.width() {
            return Err(ValueError::Truncated {
                needed: self.width(),
                available: bytes.len(),
            });
        }
        let mantissa = bytes
            .iter()
            .fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
        Ok(Value { mantissa, ..*self })
    }

    /// The mantissa's bytes as on the wire (for ASCII and bit-field units).
    fn mantissa_bytes(&self) -> Vec<u8> {
        let bytes = self.mantissa.to_be_bytes();
        bytes
            .iter()
            .skip(bytes.len().saturating_sub(self.width()))
            .copied()
            .collect()
    }
}

impl Value {
    /// Compares two values exactly, whatever their precision: `34.00` equals
    /// `34`, `-0.5` is below `0.01`. Thresholds use this, never floats.
    pub fn compare(&self, other: &Value) -> Ordering {
        let sign = |value: &Value| {
            if value.mantissa == 0 {
                0
            } else if value.negative {
                -1
            } else {
                1
            }
        };
        let (left_sign, right_sign) = (sign(self), sign(other));
        if left_sign != right_sign || left_sign == 0 {
            return left_sign.cmp(&right_sign);
        }
        let magnitudes =
            compare_magnitudes(self.mantissa, self.exponent, other.mantissa, other.exponent);
        if left_sign < 0 {
            magnitudes.reverse()
        } else {
            magnitudes
        }
    }
}

/// Compares `a × 10^ea` with `b × 10^eb` without overflow: bring both to the
/// smaller exponent while the scaled mantissa fits, else compare digit counts.
fn compare_magnitudes(a: u128, ea: i8, b: u128, eb: i8) -> Ordering {
    let (scaled, exact, flip) = if ea >= eb {
        (a, b, false)
    } else {
        (b, a, true)
    };
    let shift = u32::from(ea.abs_diff(eb));
    let ordering = match 10u128
        .checked_pow(shift)
        .and_then(|factor| scaled.checked_mul(factor))
    {
        Some(scaled) => scaled.cmp(&exact),
        // The scaled side has more than 38 digits: larger than any u128,
        // unless it is zero, which `compare` has ruled out.
        None => Ordering::Greater,
    };
    if flip { ordering.reverse() } else { ordering }
}

impl FromStr for Value {
    type Err = ParseValueError;

    /// Parses an exact decimal such as `63.44`, `-0.5` or `1200`; the number of
    /// decimals becomes the exponent, so `34.00` keeps its precision.
    fn from_str(text: &str) -> Result<Value, ParseValueError> {
        let invalid = || ParseValueError {
            text: text.to_owned(),
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .chars()
                .chain(fraction.chars())
                .all(|c| c.is_ascii_digit())
        {
            return Err(invalid());
        }
        let exponent = i8::try_from(fraction.len())
            .ok()
            .filter(|&len| len <= MAX_EXPONENT)
            .ok_or_else(invalid)?;
        let mantissa: u128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| invalid())?;
        let width = byte_len(mantissa).max(4);
        Value::from_parts(negative, mantissa, -exponent, width).map_err(|_| invalid())
    }
}

/// Text that is not an exact decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a decimal number such as 63.44, -0.5 or 1200")]
pub struct ParseValueError {
    text: String,
}

/// Bytes needed to hold `mantissa` (at least 1).
fn byte_len(mantissa: u128) -> usize {
    let bits = 128 - mantissa.leading_zeros() as usize;
    bits.div_ceil(8).max(1)
}

impl fmt::Display for Value {
    /// The exact decimal: `34.00`, `0.251`, `-123.45`, `255000`. A negative
    /// zero prints without its sign.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.decimal().as_str())
    }
}

impl Value {
    /// The exact decimal as [`fmt::Display`] writes it, made on the stack:
    /// for writers that append text without `core::fmt` (`kmplog sniff`
    /// prints every value of a recording).
    ///
    /// ```
    /// let value: kmp::Value = "-0.050".parse().unwrap();
    /// assert_eq!(value.decimal().as_str(), "-0.050");
    /// ```
    pub fn decimal(&self) -> Decimal {
        let mut digits = [0u8; 39];
        let count = if let Ok(small) = u64::try_from(self.mantissa) {
            // Most mantissas fit 64 bits, whose division is far cheaper.
            write_digits(small, &mut digits)
        } else {
            write_digits(self.mantissa, &mut digits)
        };
        let digits = digits.get(digits.len() - count..).unwrap_or_default();
        let mut text = Decimal {
            bytes: [b'0'; DECIMAL_LEN],
            len: 0,
        };
        if self.negative && self.mantissa != 0 {
            text.push(b'-');
        }
        let exponent = usize::from(self.exponent.unsigned_abs());
        if self.exponent >= 0 {
            text.extend(digits);
            if self.mantissa != 0 {
                text.zeros(exponent);
            }
        } else if digits.len() > exponent {
            let (whole, fraction) = digits.split_at(digits.len() - exponent);
            text.extend(whole);
            text.push(b'.');
            text.extend(fraction);
        } else {
            text.extend(b"0.");
            text.zeros(exponent - digits.len());
            text.extend(digits);
        }
        text
    }
}

/// The longest decimal: a sign, 39 digits and 63 zeros, or `-0.` and 63
/// digits.
const DECIMAL_LEN: usize = 104;

/// The text of a [`Value`], from [`Value::decimal`].
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    bytes: [u8; DECIMAL_LEN],
    len: usize,
}

impl Decimal {
    /// The text: `34.00`, `-0.5`, `255000`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes (ASCII), for writers of bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }

    fn zeros(&mut self, count: usize) {
        for _ in 0..count {
            self.push(b'0');
        }
    }
}

/// Writes the decimal digits of `number` at the end of `digits` and says
/// how many.
fn write_digits<N>(mut number: N, digits: &mut [u8]) -> usize
where
    N: Copy + PartialEq + From<u8> + std::ops::Rem<Output = N> + std::ops::DivAssign,
    u8: TryFrom<N>,
{
    let ten = N::from(10);
    let zero = N::from(0);
    let mut count = 0;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + u8::try_from(number % ten).unwrap_or(0);
        number /= ten;
        count += 1;
        if number == zero {
            break;
        }
    }
    count
}

/// A unit-`0x4F` date and time: seven bytes, DST/offset, YY, MM, DD, hh, mm,
/// ss. The first byte's meaning is not public; it is kept as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime7 {
    /// The DST/offset byte, as sent.
    pub offset: u8,
    /// The year, 2000 + YY.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl DateTime7 {
    /// The 7-byte value of this date and time (YY is the year less 2000).
    pub fn to_value(&self) -> Value {
        let bytes = [
            self.offset,
            u8::try_from(self.year.saturating_sub(2000)).unwrap_or(u8::MAX),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ];
        let mantissa = bytes
            .iter()
            .fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
        Value {
            negative: false,
            mantissa,
            exponent: 0,
            width: 7,
            negative_zero_exponent: false,
        }
    }
}

impl fmt::Display for DateTime7 {
    /// `2026-01-01T00:00:00`, with ` (offset byte 0xNN)` when that byte is
    /// not 0, since its meaning is not public.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.offset != 0 {
            write!(f, " (offset byte 0x{:02X})", self.offset)?;
        }
        Ok(())
    }
}

/// One register as a meter reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterValue {
    /// The register ID.
    pub register: u16,
    /// The unit the meter gave.
    pub unit: Unit,
    /// The exact value.
    pub value: Value,
}

impl RegisterValue {
    /// A unit-`0x4F` value's date and time; `None` for another unit, a width
    /// other than 7 or fields out of range.
    pub fn date_time_7(&self) -> Option<DateTime7> {
        if self.unit.code() != 0x4F || self.value.width() != 7 || self.value.exponent != 0 {
            return None;
        }
        let &[offset, yy, month, day, hour, minute, second] =
            self.value.mantissa_bytes().as_slice()
        else {
            return None;
        };
        let stamp = DateTime7 {
            offset,
            year: 2000 + u16::from(yy),
            month,
            day,
            hour,
            minute,
            second,
        };
        let valid = valid_date(stamp.year.into(), month.into(), day.into())
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(stamp)
    }

    /// The value in its natural form where the unit calls for one (a date,
    /// a time, text, flags); `None` for plain quantities, and for a value that
    /// does not fit its unit's form (the exact value then stands alone).
    pub fn natural(&self) -> Option<String> {
        self.natural_form().map(|form| form.to_string())
    }

    /// [`RegisterValue::natural`] without the `String`: checked now, written
    /// by its [`fmt::Display`].
    pub fn natural_form(&self) -> Option<Natural> {
        let whole =
            (self.value.exponent == 0 && !self.value.negative).then_some(self.value.mantissa);
        let form = match (self.unit.code(), self.unit.quantity()) {
            (0x2F, _) => whole.and_then(time_of_day).map(Form::Time),
            (0x30, _) => whole
                .and_then(|yymmdd| date(2000 + yymmdd / 10_000, yymmdd / 100 % 100, yymmdd % 100))
                .map(Form::Date),
            (0x31, _) => whole
                .and_then(|yyyymmdd| date(yyyymmdd / 10_000, yyyymmdd / 100 % 100, yyyymmdd % 100))
                .map(Form::Date),
            (0x32, _) => whole.and_then(|mmdd| {
                let (month, day) = (mmdd / 100, mmdd % 100);
                valid_date(2000, month, day).then(|| Form::MonthDay(small(month), small(day)))
            }),
            (0x40, _) => whole.and_then(|stamp| {
                let (day, time) = (stamp / 1_000_000, stamp % 1_000_000);
                let date = date(2000 + day / 10_000, day / 100 % 100, day % 100)?;
                Some(Form::DateTime(date, time_of_day(time)?))
            }),
            (0x4F, _) => self.date_time_7().map(Form::DateTime7),
            (_, Quantity::Ascii) => {
                let text = self.value.mantissa_bytes();
                let text = text.iter().skip_while(|&&byte| byte == 0);
                text.clone()
                    .all(|&byte| byte.is_ascii_graphic() || byte == b' ')
                    .then_some(Form::Ascii(self.value))
            }
            (_, Quantity::BitField) => whole.map(|bits| Form::Bits {
                bits,
                width: self.value.width() * 8,
            }),
            _ => None,
        };
        form.map(Natural)
    }
}

/// A value's natural form (see [`RegisterValue::natural_form`]); its
/// [`fmt::Display`] is the text of [`RegisterValue::natural`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Natural(Form);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `hh:mm:ss`.
    Time([u8; 3]),
    /// `YYYY-MM-DD`.
    Date((u16, u8, u8)),
    /// `--MM-DD`.
    MonthDay(u8, u8),
    /// `YYYY-MM-DDThh:mm:ss`.
    DateTime((u16, u8, u8), [u8; 3]),
    DateTime7(DateTime7),
    /// The mantissa's bytes as characters, leading NULs left out; checked
    /// to be printable.
    Ascii(Value),
    /// `0b` and the bits, `width` of them.
    Bits {
        bits: u128,
        width: usize,
    },
}

impl fmt::Display for Natural {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Form::Time(time) => write_time(f, time),
            Form::Date(date) => write_date(f, date),
            Form::MonthDay(month, day) => {
                f.write_str("--")?;
                write_padded(f, month.into(), 2)?;
                f.write_str("-")?;
                write_padded(f, day.into(), 2)
            }
            Form::DateTime(date, time) => {
                write_date(f, date)?;
                f.write_str("T")?;
                write_time(f, time)
            }
            Form::DateTime7(stamp) => stamp.fmt(f),
            Form::Ascii(value) => {
                for byte in value
                    .mantissa_bytes()
                    .into_iter()
                    .skip_while(|&byte| byte == 0)
                {
                    fmt::Write::write_char(f, char::from(byte))?;
                }
                Ok(())
            }
            Form::Bits { bits, width } => write!(f, "0b{bits:0width$b}"),
        }
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, [hour, minute, second]: [u8; 3]) -> fmt::Result {
    write_padded(f, hour.into(), 2)?;
    f.write_str(":")?;
    write_padded(f, minute.into(), 2)?;
    f.write_str(":")?;
    write_padded(f, second.into(), 2)
}

fn write_date(f: &mut fmt::Formatter<'_>, (year, month, day): (u16, u8, u8)) -> fmt::Result {
    write_padded(f, year.into(), 4)?;
    f.write_str("-")?;
    write_padded(f, month.into(), 2)?;
    f.write_str("-")?;
    write_padded(f, day.into(), 2)
}

/// `number` with leading zeros to `width` digits, as `{:0width$}` writes
/// it, without `core::fmt`'s integer machinery.
fn write_padded(f: &mut fmt::Formatter<'_>, number: u32, width: usize) -> fmt::Result {
    let mut digits = [b'0'; 10];
    let count = write_digits(number, &mut digits).max(width.min(digits.len()));
    let text = digits.get(digits.len() - count..).unwrap_or_default();
    f.write_str(std::str::from_utf8(text).unwrap_or_default())
}

/// A part of a date or time already checked to be small.
fn small(number: u128) -> u8 {
    u8::try_from(number).unwrap_or(u8::MAX)
}

fn time_of_day(hhmmss: u128) -> Option<[u8; 3]> {
    let (hour, minute, second) = (hhmmss / 10_000, hhmmss / 100 % 100, hhmmss % 100);
    (hour < 24 && minute < 60 && second < 60).then(|| [small(hour), small(minute), small(second)])
}

fn date(year: u128, month: u128, day: u128) -> Option<(u16, u8, u8)> {
    valid_date(year, month, day).then(|| {
        (
            u16::try_from(year).unwrap_or(u16::MAX),
            small(month),
            small(day),
        )
    })
}

fn valid_date(year: u128, month: u128, day: u128) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year <= 9999 && (1..=days_in_month).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_exactly_with_the_meters_precision() {
        for (mantissa, exponent, text) in [
            (3400, -2, "34.00"),
            (251, -3, "0.251"),
            (-12345, -2, "-123.45"),
            (255, 3, "255000"),
            (6344, -2, "63.44"),
            (0, -2, "0.00"),
            (0, 3, "0"),
            (5, -6, "0.000005"),
            (1, 0, "1"),
        ] {
            assert_eq!(
                Value::new(mantissa, exponent).unwrap().to_string(),
                text,
                "{mantissa}e{exponent}"
            );
        }
    }

    #[test]
    fn parses_exact_decimals() {
        for (text, shown) in [
            ("63.44", "63.44"),
            ("-0.5", "-0.5"),
            ("1200", "1200"),
            ("+7", "7"),
            ("34.00", "34.00"),
            (".5", "0.5"),
        ] {
            assert_eq!(text.parse::<Value>().unwrap().to_string(), shown, "{text}");
        }
        for bad in ["", "-", ".", "1.2.3", "1e5", "12a", " 1"] {
            assert!(bad.parse::<Value>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compares_exactly_across_precisions() {
        let value = |text: &str| text.parse::<Value>().unwrap();
        for (left, right, expected) in [
            ("34.00", "34", Ordering::Equal),
            ("-0.5", "0.01", Ordering::Less),
            ("0.00", "-0", Ordering::Equal),
            ("90.01", "90", Ordering::Greater),
            ("-90.01", "-90", Ordering::Less),
            ("0.000001", "0", Ordering::Greater),
        ] {
            assert_eq!(
                value(left).compare(&value(right)),
                expected,
                "{left} vs {right}"
            );
        }
        let huge = Value::new(1, 63).unwrap();
        assert_eq!(
            huge.compare(&Value::new(i128::MAX, 0).unwrap()),
            Ordering::Greater
        );
        assert_eq!(
            Value::new(i128::MAX, 0).unwrap().compare(&huge),
            Ordering::Less
        );
    }

    #[test]
    fn float_conversion_is_the_nearest_float() {
        assert_eq!(Value::new(6344, -2).unwrap().to_f64(), 63.44);
    }

    #[test]
    fn field_round_trip_keeps_width() {
        let (value, used) =
            Value::decode_field(&[0x04, 0x42, 0x00, 0x00, 0x18, 0xC8, 0xEE]).unwrap();
        assert_eq!(
            (value.to_string(), used, value.width()),
            ("63.44".to_owned(), 6, 4)
        );
        let mut out = Vec::new();
        value.encode_field(&mut out);
        assert_eq!(out, [0x04, 0x42, 0x00, 0x00, 0x18, 0xC8]);
    }

    #[test]
    fn a_minus_zero_exponent_is_kept_as_sent() {
        let (value, _) = Value::decode_field(&[0x01, 0x40, 0x05]).unwrap();
        assert_eq!((value.to_string(), value.exponent()), ("5".to_owned(), 0));
        let mut out = Vec::new();
        value.encode_field(&mut out);
        assert_eq!(out, [0x01, 0x40, 0x05]);
        assert_eq!(value.compare(&Value::new(5, 0).unwrap()), Ordering::Equal);
    }

    #[test]
    fn bad_fields_are_errors() {
        assert_eq!(
            Value::decode_field(&[]),
            Err(ValueError::Truncated {
                needed: 2,
                available: 0
            })
        );
        assert_eq!(
            Value::decode_field(&[0x00, 0x00]),
            Err(ValueError::ZeroLength)
        );
        assert_eq!(
            Value::decode_field(&[0x11, 0x00]),
            Err(ValueError::TooWide { len: 17 })
        );
        assert_eq!(
            Value::decode_field(&[0x04, 0x42, 0x00]),
            Err(ValueError::Truncated {
                needed: 6,
                available: 3
            })
        );
        assert_eq!(
            Value::new(1, 64),
            Err(ValueError::ExponentOutOfRange { exponent: 64 })
        );
        assert_eq!(
            Value::from_parts(false, 256, 0, 1),
            Err(ValueError::MantissaTooLarge {
                mantissa: 256,
                width: 1
            })
        );
    }

    #[test]
    fn natural_forms() {
        let check = |unit: u8, mantissa: i128, width: usize, expected: Option<&str>| {
            let value = Value::from_parts(mantissa < 0, mantissa.unsigned_abs(), 0, width).unwrap();
            let register = RegisterValue {
                register: 1,
                unit: Unit(unit),
                value,
            };
            assert_eq!(
                register.natural().as_deref(),
                expected,
                "unit 0x{unit:02X} mantissa {mantissa}"
            );
        };
        check(0x30, 251124, 4, Some("2025-11-24"));
        check(0x30, 251324, 4, None);
        check(0x31, 20240229, 4, Some("2024-02-29"));
        check(0x31, 20230229, 4, None);
        check(0x32, 1124, 4, Some("--11-24"));
        check(0x2F, 235959, 4, Some("23:59:59"));
        check(0x2F, 246000, 4, None);
        check(0x40, 251124153000, 8, Some("2025-11-24T15:30:00"));
        check(0x36, 0x4B414D, 4, Some("KAM"));
        check(0x3B, 0b101, 1, Some("0b00000101"));
        check(0x4F, 0x00_1A_01_01_00_00_00, 7, Some("2026-01-01T00:00:00"));
        check(
            0x4F,
            0x01_19_0C_1F_17_3B_3B,
            7,
            Some("2025-12-31T23:59:59 (offset byte 0x01)"),
        );
        check(0x4F, 0x00_19_0D_01_00_00_00, 7, None);
        check(0x4F, 0x00_1A_01_01_00_00_00, 8, None);
        check(0x08, 1234, 4, None);
    }
}
