//! Shared output: stdout itself ([`print_line`]), register names from the
//! catalogue and the JSON form of a register value and of a logger's rows,
//! so every command prints values the same way.
//!
//! The JSON form of a register is written by hand, straight from the decoded
//! value into a byte buffer ([`RegisterJson::write`]), so that `sniff` prints
//! a recording at the speed of the codec: the names, symbols and numbers it
//! is made of need no escaping (tests check every table entry), and only
//! free text (an ASCII register) goes through serde_json's string escaping.
//! [`register_json`] makes a `serde_json::Value` of it for commands that
//! build bigger objects.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use kmp::catalogue::info::register_flags;
use kmp::catalogue::{ExportName, Model};
use kmp::logger::{DATE_REGISTER, DATE_TIME_REGISTER, TIME_REGISTER, row_time};
use kmp::value::RegisterValue;
use serde_json::{Value as Json, json};

pub use kmp::catalogue::export_name;

/// Prints `text` and a newline on stdout: every command's output goes
/// through here.
///
/// A reader that has gone (`kmplog registers | head -1`) wants no more: the
/// command ends at once, quietly and successfully, as `yes | head` does,
/// instead of panicking as `println!` would. Any other failure to write (a
/// full disk behind a redirect) ends it with a message and status 1.
pub fn print_line(text: impl Display) {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("kmplog: cannot write to stdout: {error}");
            std::process::exit(i32::from(super::EXIT_FAILURE));
        }
    }
}

/// What register `id` holds, in words; empty when no catalogue has it.
pub fn description(model: Option<Model>, id: u16) -> &'static str {
    kmp::catalogue::lookup(model, id).map_or("", |info| info.name)
}

/// `{"register":60,"name":"E1","value":"1234.567","unit_code":8,"unit":"GJ"}`,
/// plus `"text"` with the natural form of dates, times, text and flags, and
/// for the info code (register 99) `"flags"`: the names of the bits set, as
/// the model's table names them (`[]` for 0).
pub fn register_json(model: Option<Model>, entry: &RegisterValue) -> Json {
    let mut out = Vec::new();
    RegisterJson { model, entry }.write(&mut out);
    // What `write` makes is JSON by construction.
    serde_json::from_slice(&out).unwrap_or_default()
}

/// One logger row: `{"log_id":1460,"time":"2026-12-01T10:00:00","registers":[...]}`,
/// `time` by the meter's clock (`null` when the row has no time stamp), each
/// register as [`register_json`] has it.
pub fn log_row_json(
    model: Option<Model>,
    log_id: u32,
    time: Option<String>,
    row: &[RegisterValue],
) -> Json {
    json!({
        "log_id": log_id,
        "time": time,
        "registers": row.iter().map(|cell| register_json(model, cell)).collect::<Vec<_>>(),
    })
}

/// Logger rows (log id, time, values) as a table: log id, time, then a
/// column per register (the time-stamp registers left out, the time column
/// shows them).
pub fn log_table<'a>(
    model: Option<Model>,
    rows: impl IntoIterator<Item = (u32, Option<String>, &'a [RegisterValue])>,
) -> String {
    let rows: Vec<(u32, Option<String>, &[RegisterValue])> = rows.into_iter().collect();
    let mut columns: Vec<(u16, String)> = Vec::new();
    for (_, _, row) in &rows {
        for cell in row.iter().filter(|cell| !is_time_stamp(cell.register)) {
            if !columns.iter().any(|(id, _)| *id == cell.register) {
                let unit = cell.unit.to_string();
                let name = export_name(model, cell.register);
                let header = if unit.is_empty() || cell.natural().is_some() {
                    name
                } else {
                    format!("{name} ({unit})")
                };
                columns.push((cell.register, header));
            }
        }
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["log id".to_owned(), "time".to_owned()];
    header.extend(columns.iter().map(|(_, name)| name.clone()));
    table.set_header(header);
    for (log_id, time, row) in rows {
        let mut line = vec![log_id.to_string(), time.unwrap_or_else(|| "-".to_owned())];
        line.extend(columns.iter().map(|(id, _)| {
            row.iter()
                .find(|cell| cell.register == *id)
                .map_or_else(|| "-".to_owned(), |cell| display_value(model, cell))
        }));
        table.add_row(line);
    }
    table.to_string()
}

fn is_time_stamp(register: u16) -> bool {
    [DATE_TIME_REGISTER, DATE_REGISTER, TIME_REGISTER].contains(&register)
}

/// A logger row's time by the meter's clock, as the row's own registers say.
pub fn row_time_text(row: &[RegisterValue]) -> Option<String> {
    row_time(row).map(|time| time.to_string())
}

/// One register value in its JSON form (see [`register_json`]).
#[derive(Debug, Clone, Copy)]
pub struct RegisterJson<'a> {
    /// The meter's model, for the export name and the info code's flags.
    pub model: Option<Model>,
    /// The value.
    pub entry: &'a RegisterValue,
}

impl RegisterJson<'_> {
    /// Appends the JSON object to `out`. Writing into a `Vec` cannot fail.
    pub fn write(&self, out: &mut Vec<u8>) {
        let RegisterJson { model, entry } = *self;
        out.extend_from_slice(b"{\"register\":");
        push_number(out, entry.register.into());
        out.extend_from_slice(b",\"name\":\"");
        match kmp::catalogue::lookup(model, entry.register) {
            Some(info) => out.extend_from_slice(info.export_name.as_bytes()),
            None => {
                let _ = write!(out, "{}", ExportName::new(model, entry.register));
            }
        }
        out.extend_from_slice(b"\",\"value\":\"");
        out.extend_from_slice(entry.value.decimal().as_bytes());
        out.extend_from_slice(b"\",\"unit_code\":");
        push_number(out, entry.unit.code().into());
        out.extend_from_slice(b",\"unit\":\"");
        match entry.unit.symbol() {
            Some(symbol) => out.extend_from_slice(symbol.as_bytes()),
            None => {
                let _ = write!(out, "{}", entry.unit);
            }
        }
        out.push(b'"');
        if let Some(text) = entry.natural_form() {
            out.extend_from_slice(b",\"text\":\"");
            // Written as it is, then escaped where it has to be (only text
            // registers can hold a quote or a backslash).
            let start = out.len();
            let _ = write!(out, "{text}");
            if let Some(written) = out.get(start..)
                && needs_escaping(written)
            {
                let written = out.split_off(start);
                let _ = std::fmt::Write::write_str(
                    &mut JsonStringContents(out),
                    &String::from_utf8_lossy(&written),
                );
            }
            out.push(b'"');
        }
        if let Some(flags) = register_flags(model, entry) {
            out.extend_from_slice(b",\"flags\":[");
            for (index, flag) in flags.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(flag.name.as_bytes());
                out.push(b'"');
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

/// Appends the decimal digits of `number`, without `core::fmt`'s machinery
/// (most of what `sniff` writes is small numbers).
pub fn push_number(out: &mut Vec<u8>, number: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    let mut rest = number;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        start -= 1;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it.
pub fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let _ = std::fmt::Write::write_str(&mut JsonStringContents(out), text);
    out.push(b'"');
}

/// Whether serde_json escapes any byte of `text` in a string: a quote, a
/// backslash or a control character.
fn needs_escaping(text: &[u8]) -> bool {
    // Without an early exit, so that the check runs on whole vectors.
    text.iter().fold(false, |escape, &byte| {
        escape | (byte == b'"' || byte == b'\\' || byte < 0x20)
    })
}

/// Text written between the quotes of a JSON string, escaped as serde_json
/// escapes it: what needs no escaping (nearly everything `sniff` writes) is
/// copied as it is.
pub struct JsonStringContents<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for JsonStringContents<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if !needs_escaping(text.as_bytes()) {
            self.0.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let quoted = serde_json::to_vec(text).map_err(|_| std::fmt::Error)?;
        let contents = quoted.get(1..quoted.len().saturating_sub(1));
        self.0.extend_from_slice(contents.unwrap_or_default());
        Ok(())
    }
}

/// The value as a person reads it: the natural form where there is one, and
/// for a non-zero info code the number with its flags, `8 (t1_sensor_fault)`.
pub fn display_value(model: Option<Model>, entry: &RegisterValue) -> String {
    let text = entry.natural().unwrap_or_else(|| entry.value.to_string());
    match register_flags(model, entry) {
        Some(flags) if !flags.is_empty() => {
            let names: Vec<&str> = flags.iter().map(|flag| flag.name).collect();
            format!("{text} ({})", names.join(", "))
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use kmp::{Unit, Value};

    use serde_json::json;

    use super::*;

    fn entry(register: u16, mantissa: i128) -> RegisterValue {
        RegisterValue {
            register,
            unit: Unit(0),
            value: Value::new(mantissa, 0).unwrap(),
        }
    }

    #[test]
    fn info_code_has_its_flags() {
        let json = register_json(Some(Model::Multical602), &entry(99, 8 + 256));
        assert_eq!(json["name"], "INFO");
        assert_eq!(json["value"], "264");
        assert_eq!(
            json["flags"],
            json!(["t1_sensor_fault", "leak_heating_system"])
        );
        // Without a model, the MULTICAL 603 table.
        let json = register_json(None, &entry(99, 2));
        assert_eq!(json["flags"], json!(["low_battery"]));
        assert_eq!(register_json(None, &entry(99, 0))["flags"], json!([]));
        // Other registers, and the info-event counter, have none.
        for other in [entry(113, 8), entry(60, 8)] {
            assert!(register_json(None, &other).get("flags").is_none());
        }
    }

    #[test]
    fn names_symbols_and_flags_need_no_escaping() {
        for code in 0..=u8::MAX {
            let symbol = kmp::Unit(code).to_string();
            assert!(!needs_escaping(symbol.as_bytes()), "{symbol:?}");
        }
        for model in Model::ALL {
            for info in model.registers() {
                assert!(!needs_escaping(info.export_name.as_bytes()), "{info:?}");
            }
            for bit in kmp::catalogue::info::info_flags(Some(model), u32::MAX) {
                assert!(!needs_escaping(bit.name.as_bytes()), "{bit:?}");
            }
        }
    }

    #[test]
    fn numbers_are_their_decimal_digits() {
        for number in [0, 7, 10, 99, 1003, 65_535, 4_294_967_295] {
            let mut out = b"x".to_vec();
            push_number(&mut out, number);
            assert_eq!(out, format!("x{number}").into_bytes());
        }
    }

    #[test]
    fn free_text_is_escaped() {
        let mut out = Vec::new();
        json_string(&mut out, "a\"b\\c");
        assert_eq!(out, br#""a\"b\\c""#);
    }

    #[test]
    fn info_code_is_shown_with_its_flags() {
        let model = Some(Model::Multical602);
        assert_eq!(display_value(model, &entry(99, 8)), "8 (t1_sensor_fault)");
        assert_eq!(
            display_value(None, &entry(99, 3)),
            "3 (supply_voltage_interrupted, low_battery)"
        );
        assert_eq!(display_value(model, &entry(99, 0)), "0");
        assert_eq!(display_value(model, &entry(60, 8)), "8");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "GetRegister",
            "",
            "a\"b",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "°C ünï",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            json_string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn a_text_register_with_a_quote_and_a_backslash_stays_json() {
        // `A"\B` in unit 0x36 (ASCII).
        let entry = RegisterValue {
            register: 1,
            unit: Unit(0x36),
            value: Value::from_parts(false, 0x4122_5C42, 0, 4).unwrap(),
        };
        let mut out = Vec::new();
        RegisterJson {
            model: None,
            entry: &entry,
        }
        .write(&mut out);
        let json: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["text"], "A\"\\B");
    }
}
