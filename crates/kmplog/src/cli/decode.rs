//! `kmplog decode`: decode one KMP frame given in hex, of either direction,
//! and say exactly what is wrong with a bad one.

use std::io::Write as _;

use kmp::frame::{ACK, Frame};
use kmp::message::{Command, Message, Request, Response, cid_name};
use serde_json::json;

use super::output::{RegisterJson, display_value, export_name, json_string, push_number};
use super::{Failure, Outcome};

/// Options of `kmplog decode`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog decode 403F0201234567E9560D\n  kmplog decode '80 3F 10 01 00 3C 38 DA 0D' --json"
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
        println!(
            "{}",
            if args.json {
                json!({ "ack": true }).to_string()
            } else {
                "ACK".to_owned()
            }
        );
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
        println!("{}", String::from_utf8_lossy(&json));
    } else {
        println!("{}", frame_text(&frame, &message));
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
            Message::Request(Request::GetType | Request::GetSerialNo) => {}
        }
        if let Some(ts) = ts {
            out.extend_from_slice(b",\"ts\":");
            json_string(out, ts);
        }
        out.push(b'}');
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
        Message::Request(Request::GetType | Request::GetSerialNo) => head,
    }
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
