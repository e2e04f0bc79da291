//! `kmplog decode`: decode one KMP frame given in hex, of either direction,
//! and say exactly what is wrong with a bad one. A logger (0xB8) reply shows
//! its rows, each with its log id and time.

use std::io::Write as _;

use kmp::frame::{ACK, Frame};
use kmp::logger::{LoggerRequest, LoggerResponse, subcommand_name};
use kmp::message::{Command, Message, Request, Response, cid_name};
use serde_json::{Value as Json, json};

use super::output::{
    RegisterJson, display_value, export_name, json_string, log_row_json, log_table, print_line,
    push_number, row_time_text,
};
use super::{Failure, Outcome};

/// Options of `kmplog decode`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog decode 403F0201234567E9560D\n  kmplog decode '80 3F 10 01 00 3C B2 5F 0D' --json\n  kmplog decode \\\n      403FB81BF902000201000000020000000200C003EB3004000003F8050003D0F5AA3A0D"
)]
pub struct Args {
    /// The frame's bytes in hex, start and stop bytes included; spaces,
    /// colons and a 0x prefix are allowed.
    #[arg(value_name = "HEX")]
    hex: String,
    /// Print the decoded frame as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `kmplog decode`.
pub fn run(args: Args) -> Outcome {
    let wire = parse_hex(&args.hex).map_err(Failure::usage)?;
    if wire == [ACK] {
        print_line(format_args!(
            "{}",
            if args.json {
                json!({ "ack": true }).to_string()
            } else {
                "ACK".to_owned()
            }
        ));
        return Ok(());
    }
    let frame =
        Frame::decode(&wire).map_err(|error| Failure::failed(format!("invalid frame: {error}")))?;
    let message = Message::decode(&frame).map_err(|error| {
        Failure::failed(format!("invalid {} frame: {error}", cid_name(frame.cid)))
    })?;
    if args.json {
        let mut json = Vec::new();
        FrameJson {
            frame: &frame,
            message: &message,
            ts: None,
        }
        .write(&mut json);
        print_line(String::from_utf8_lossy(&json));
    } else {
        print_line(frame_text(&frame, &message));
    }
    Ok(())
}

/// Parses hex text, tolerating spaces, colons, dashes and `0x` prefixes.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || c == ':' || c == '-' || c == ',') {
        let token = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        digits.extend(token.chars());
    }
    if digits.is_empty() {
        return Err("no hex digits given; example: kmplog decode 403F0201234567E9560D".to_owned());
    }
    if let Some((position, bad)) = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_hexdigit() || " \t:-,xX".contains(c)))
    {
        return Err(format!("'{bad}' at position {position} is not a hex digit"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "odd number of hex digits ({}): every byte takes two",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let byte: String = pair.iter().collect();
            u8::from_str_radix(&byte, 16).map_err(|_| format!("'{byte}' is not a hex byte"))
        })
        .collect()
}

/// A decoded frame in its JSON form: direction, address, CID and command,
/// then what the message carries, then `ts` when given. Written by hand,
/// straight from the frame (see [`super::output`]).
pub(super) struct FrameJson<'a> {
    pub frame: &'a Frame,
    pub message: &'a Message,
    /// When the frame was seen (`sniff`), as the last key.
    pub ts: Option<&'a str>,
}

impl FrameJson<'_> {
    /// Appends the JSON object to `out`. Writing into a `Vec` cannot fail.
    pub fn write(&self, out: &mut Vec<u8>) {
        let FrameJson { frame, message, ts } = *self;
        out.extend_from_slice(b"{\"direction\":\"");
        out.extend_from_slice(frame.direction.as_str().as_bytes());
        out.extend_from_slice(b"\",\"address\":");
        push_number(out, frame.address.into());
        out.extend_from_slice(b",\"cid\":");
        push_number(out, frame.cid.into());
        out.extend_from_slice(b",\"command\":");
        match Command::from_cid(frame.cid) {
            Some(command) => json_string(out, command.name()),
            None => json_string(out, &cid_name(frame.cid)),
        }
        match message {
            Message::Request(Request::GetRegister(registers)) => {
                out.extend_from_slice(b",\"registers\":[");
                for (index, id) in registers.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    push_number(out, (*id).into());
                }
                out.push(b']');
            }
            Message::Response(Response::Registers(values)) => {
                out.extend_from_slice(b",\"registers\":[");
                for (index, entry) in values.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    RegisterJson { model: None, entry }.write(out);
                }
                out.push(b']');
            }
            Message::Response(Response::Type {
                meter_type,
                revision,
            }) => {
                let _ = write!(
                    out,
                    ",\"meter_type\":\"0x{meter_type:04X}\",\"software_revision\":"
                );
                json_string(out, &revision.to_string());
            }
            Message::Response(Response::SerialNo { serial }) => {
                out.extend_from_slice(b",\"serial\":");
                push_number(out, *serial);
            }
            Message::Request(Request::Raw { data, .. })
            | Message::Response(Response::Raw { data, .. }) => {
                let _ = write!(out, ",\"data\":\"{}\"", hex(data));
            }
            Message::Request(Request::Logger(request)) => {
                let mut map = serde_json::Map::new();
                logger_request_json(request, &mut map);
                push_members(out, &map);
            }
            Message::Response(Response::Logger(response)) => {
                let mut map = serde_json::Map::new();
                logger_response_json(response, &mut map);
                push_members(out, &map);
            }
            Message::Request(Request::GetType | Request::GetSerialNo) => {}
        }
        if let Some(ts) = ts {
            out.extend_from_slice(b",\"ts\":");
            json_string(out, ts);
        }
        out.push(b'}');
    }
}

/// Appends `map`'s members, each after a comma, to an object being written:
/// the logger's frames, rare on a line, go through serde_json.
fn push_members(out: &mut Vec<u8>, map: &serde_json::Map<String, Json>) {
    for (key, value) in map {
        out.push(b',');
        json_string(out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

fn logger_request_json(request: &LoggerRequest, map: &mut serde_json::Map<String, Json>) {
    map.insert("subcommand".to_owned(), json!(request.subcommand()));
    map.insert(
        "subcommand_name".to_owned(),
        json!(subcommand_name(request.subcommand())),
    );
    map.insert("logger".to_owned(), json!(request.logger().to_string()));
    map.insert("logger_type".to_owned(), json!(request.logger().0));
    let (entries, registers) = match request {
        LoggerRequest::GetLogIdPastAbs {
            log_id,
            entries,
            registers,
            ..
        } => {
            map.insert("log_id".to_owned(), json!(log_id));
            (entries, registers)
        }
        LoggerRequest::GetLogLastEntryPastAbs {
            offset,
            entries,
            registers,
            ..
        } => {
            map.insert("offset".to_owned(), json!(offset));
            (entries, registers)
        }
        LoggerRequest::GetConfiguration { .. } => return,
        LoggerRequest::Other { data, .. } => {
            map.insert("data".to_owned(), json!(hex(data)));
            return;
        }
    };
    map.insert("entries".to_owned(), json!(entries));
    map.insert("registers".to_owned(), json!(registers.as_ref()));
}

fn logger_response_json(response: &LoggerResponse, map: &mut serde_json::Map<String, Json>) {
    map.insert("subcommand".to_owned(), json!(response.subcommand()));
    map.insert(
        "subcommand_name".to_owned(),
        json!(subcommand_name(response.subcommand())),
    );
    map.insert("logger".to_owned(), json!(response.logger().to_string()));
    map.insert("logger_type".to_owned(), json!(response.logger().0));
    match response {
        LoggerResponse::Entries(entries) => {
            map.insert("first_log_id".to_owned(), json!(entries.first_log_id));
            map.insert("last_log_id".to_owned(), json!(entries.last_log_id));
            map.insert("info".to_owned(), json!(entries.info.0));
            map.insert("info_flags".to_owned(), json!(entries.info.names()));
            let rows: Vec<Json> = entries
                .rows_with_ids()
                .map(|(log_id, row)| log_row_json(None, log_id, row_time_text(row), row))
                .collect();
            map.insert("rows".to_owned(), Json::Array(rows));
        }
        LoggerResponse::Configuration(configuration) => {
            map.insert("depth".to_owned(), json!(configuration.depth));
            map.insert(
                "registers".to_owned(),
                json!(configuration.registers.as_ref()),
            );
            map.insert(
                "formats".to_owned(),
                json!({
                    "date1": [configuration.date1_format, configuration.date1],
                    "date2": [configuration.date2_format, configuration.date2],
                    "max_records": [configuration.max_records_format, configuration.max_records],
                    "interval": [configuration.interval_format, configuration.interval],
                }),
            );
        }
        LoggerResponse::Other { data, .. } => {
            map.insert("data".to_owned(), json!(hex(data)));
        }
    }
}

pub(super) fn frame_text(frame: &Frame, message: &Message) -> String {
    let arrow = match message {
        Message::Request(_) => "to",
        Message::Response(_) => "from",
    };
    let head = format!("{} {arrow} meter {}", cid_name(frame.cid), frame.address);
    match message {
        Message::Request(Request::GetRegister(registers)) => {
            let names: Vec<String> = registers
                .iter()
                .map(|&id| format!("{id} ({})", export_name(None, id)))
                .collect();
            format!("{head}: registers {}", names.join(", "))
        }
        Message::Response(Response::Registers(values)) if values.is_empty() => {
            format!("{head}: no registers")
        }
        Message::Response(Response::Registers(values)) => {
            let lines: Vec<String> = values
                .iter()
                .map(|value| {
                    let name = export_name(None, value.register);
                    format!(
                        "  {} {name} = {} {}",
                        value.register,
                        display_value(None, value),
                        value.unit
                    )
                })
                .collect();
            format!("{head}:\n{}", lines.join("\n"))
        }
        Message::Response(Response::Type {
            meter_type,
            revision,
        }) => {
            format!("{head}: type 0x{meter_type:04X}, software revision {revision}")
        }
        Message::Response(Response::SerialNo { serial }) => {
            format!("{head}: serial number {serial}")
        }
        Message::Request(Request::Raw { data, .. })
        | Message::Response(Response::Raw { data, .. }) => {
            format!(
                "{head}: data {}",
                if data.is_empty() {
                    "(none)".to_owned()
                } else {
                    hex(data)
                }
            )
        }
        Message::Request(Request::Logger(request)) => {
            let what = format!(
                "{head}: {} of the {} logger",
                subcommand_name(request.subcommand()),
                request.logger()
            );
            match request {
                LoggerRequest::GetLogIdPastAbs {
                    log_id,
                    entries,
                    registers,
                    ..
                } => format!(
                    "{what}, {entries} rows from log id {log_id} back, registers {}",
                    register_names(registers)
                ),
                LoggerRequest::GetLogLastEntryPastAbs {
                    offset,
                    entries,
                    registers,
                    ..
                } => format!(
                    "{what}, {entries} rows from offset 0x{offset:04X}, registers {}",
                    register_names(registers)
                ),
                LoggerRequest::GetConfiguration { .. } => what,
                LoggerRequest::Other { data, .. } => format!("{what}, data {}", hex(data)),
            }
        }
        Message::Response(Response::Logger(response)) => {
            let what = format!(
                "{head}: {} of the {} logger",
                subcommand_name(response.subcommand()),
                response.logger()
            );
            match response {
                LoggerResponse::Entries(entries) => format!(
                    "{what}, first log id {}, newest in the meter {}, info {}\n{}",
                    entries.first_log_id,
                    entries.last_log_id,
                    entries.info,
                    log_table(
                        None,
                        entries.rows_with_ids().map(|(log_id, row)| (
                            log_id,
                            row_time_text(row),
                            row
                        ))
                    )
                ),
                LoggerResponse::Configuration(configuration) => format!(
                    "{what}: depth {}, registers {}",
                    configuration.depth,
                    register_names(&configuration.registers)
                ),
                LoggerResponse::Other { data, .. } => format!("{what}, data {}", hex(data)),
            }
        }
        Message::Request(Request::GetType | Request::GetSerialNo) => head,
    }
}

fn register_names(registers: &[u16]) -> String {
    let names: Vec<String> = registers
        .iter()
        .map(|&id| format!("{id} ({})", export_name(None, id)))
        .collect();
    names.join(", ")
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input_forms() {
        assert_eq!(parse_hex("403F0D"), Ok(vec![0x40, 0x3F, 0x0D]));
        assert_eq!(parse_hex("40 3f:0d"), Ok(vec![0x40, 0x3F, 0x0D]));
        assert_eq!(parse_hex("0x40 0x3F"), Ok(vec![0x40, 0x3F]));
        assert_eq!(
            parse_hex("403"),
            Err("odd number of hex digits (3): every byte takes two".to_owned())
        );
        assert_eq!(
            parse_hex("40G3"),
            Err("'G' at position 2 is not a hex digit".to_owned())
        );
        assert!(
            parse_hex("  ")
                .unwrap_err()
                .starts_with("no hex digits given")
        );
    }
}
