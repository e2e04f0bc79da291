//! `kmplog read`: read registers from one or more meters once and print them
//! as a table or as JSON lines.

use std::collections::BTreeSet;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use kmp::catalogue::{self, Model};
use kmp::message::{MAX_REGISTERS, Request, Response};
use kmp::value::RegisterValue;
use serde_json::json;

use super::line::MeterArgs;
use super::output::{description, display_value, export_name, print_line, register_json};
use super::{Failure, Outcome};
use crate::bus::Outcome as MeterOutcome;

/// Options of `kmplog read`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog read --tcp 127.0.0.1:7063 --address 63 -r E1 -r T1 -r 0x57\n  kmplog read --serial /dev/ttyUSB0 --address '1;2;17' --register 60 --json"
)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// Meter address 1 to 255; repeat it or separate with ';' to read several
    /// meters one after the other.
    #[arg(long, short, value_name = "A", required = true, value_delimiter = ';', value_parser = parse_address)]
    address: Vec<u8>,
    /// Register: a number (60), hex (0x3C) or an export name from the
    /// catalogue (E1). Repeat it; more than 8 are read in several frames.
    #[arg(long, short, value_name = "R", required = true, value_parser = parse_register)]
    register: Vec<RegisterArg>,
    /// Meter model whose catalogue names the registers (603, 403, 382, ...);
    /// by default any catalogue that knows the name.
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    model: Option<Model>,
    /// Print one JSON object per meter per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// A register as given on the command line, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterArg {
    /// A register number.
    Id(u16),
    /// An export name to look up in the catalogue.
    Name(String),
}

/// Parses a meter address, 1 to 255.
pub fn parse_address(text: &str) -> Result<u8, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(address @ 1..=255) => Ok(address as u8),
        Ok(address) => Err(format!(
            "address {address} is out of range: meter addresses are 1 to 255"
        )),
        Err(_) => Err(format!(
            "'{text}' is not an address: give a number 1 to 255, such as 63"
        )),
    }
}

/// Parses a register: decimal, `0x` hex, or a name (resolved later).
pub fn parse_register(text: &str) -> Result<RegisterArg, String> {
    let text = text.trim();
    let number = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
            .map_err(|_| format!("'{text}' is not a hex register number, such as 0x3C"))?
    } else if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.parse::<u64>()
            .map_err(|_| format!("'{text}' is not a register number, such as 60"))?
    } else if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(RegisterArg::Name(text.to_owned()));
    } else {
        return Err(format!(
            "'{text}' is not a register: give a number (60), hex (0x3C) or a name (E1)"
        ));
    };
    match number {
        0 => Err("register 0 does not exist: registers are 1 to 65535".to_owned()),
        1..=65_535 => Ok(RegisterArg::Id(number as u16)),
        _ => Err(format!(
            "register {text} is out of range: registers are 1 to 65535"
        )),
    }
}

/// Parses a model name, listing the valid ones when it is unknown.
pub fn parse_model(text: &str) -> Result<Model, String> {
    Model::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = Model::ALL.iter().map(|model| model.short_name()).collect();
        format!("unknown model '{text}'; known models: {}", known.join(", "))
    })
}

/// The register id `register` names, in `model`'s catalogue or any.
pub fn resolve(model: Option<Model>, register: &RegisterArg) -> Result<u16, Failure> {
    match register {
        RegisterArg::Id(id) => Ok(*id),
        RegisterArg::Name(name) => {
            let info = match model {
                Some(model) => model.register_named(name),
                None => catalogue::any_register_named(name),
            };
            info.map(|info| info.id).ok_or_else(|| {
                let scope = model.map_or_else(|| "any catalogue".to_owned(), |model| format!("the {model} catalogue"));
                Failure::usage(format!(
                    "register name '{name}' is not in {scope}; give a number (60, 0x3C) or a name listed by `kmplog registers`"
                ))
            })
        }
    }
}

/// What one meter answered to all frames of the read.
struct MeterResult {
    address: u8,
    values: Vec<RegisterValue>,
    missing: Vec<u16>,
    error: Option<String>,
}

/// Runs `kmplog read`.
pub async fn run(args: Args) -> Outcome {
    let mut registers = Vec::new();
    for register in &args.register {
        let id = resolve(args.model, register)?;
        if !registers.contains(&id) {
            registers.push(id);
        }
    }
    let mut line = args.line.connect().await?;
    let mut results = Vec::new();
    for &address in &args.address {
        let mut result = MeterResult {
            address,
            values: Vec::new(),
            missing: Vec::new(),
            error: None,
        };
        for chunk in registers.chunks(MAX_REGISTERS) {
            let request =
                Request::get_register(chunk).map_err(|error| Failure::usage(error.to_string()))?;
            let exchange = line.transact(address, &request).await?;
            match exchange.outcome {
                MeterOutcome::Response(Response::Registers(values)) => result.values.extend(values),
                _ => {
                    result.error = Some(line.explain(address, &exchange));
                    break;
                }
            }
        }
        let answered: BTreeSet<u16> = result.values.iter().map(|value| value.register).collect();
        result.missing = registers
            .iter()
            .copied()
            .filter(|id| !answered.contains(id))
            .collect();
        if args.json {
            print_json(args.model, &result);
        }
        results.push(result);
    }
    if !args.json {
        print_table(args.model, &results);
    }
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|result| match result.error {
            Some(error) => Some(error),
            // A reply without one value is no reading: say so, and fail,
            // so that a script does not take it for one.
            None if result.values.is_empty() => Some(format!(
                "meter {} answered, but with none of the registers asked for; `kmplog registers` lists the registers of each model",
                result.address
            )),
            None => None,
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("\nkmplog: ")))
    }
}

fn print_json(model: Option<Model>, result: &MeterResult) {
    let registers: Vec<_> = result
        .values
        .iter()
        .map(|value| register_json(model, value))
        .collect();
    let mut object =
        json!({ "address": result.address, "registers": registers, "missing": result.missing });
    if let (Some(error), Some(map)) = (&result.error, object.as_object_mut()) {
        map.insert("error".to_owned(), json!(error));
    }
    print_line(&object);
}

fn print_table(model: Option<Model>, results: &[MeterResult]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Address",
        "Register",
        "Name",
        "Value",
        "Unit",
        "Description",
    ]);
    for result in results {
        for value in &result.values {
            table.add_row([
                result.address.to_string(),
                value.register.to_string(),
                export_name(model, value.register),
                display_value(model, value),
                value.unit.to_string(),
                description(model, value.register).to_owned(),
            ]);
        }
        for &id in &result.missing {
            let status = if result.error.is_some() {
                "(no reply)"
            } else {
                "(not answered)"
            };
            table.add_row([
                result.address.to_string(),
                id.to_string(),
                export_name(model, id),
                status.to_owned(),
                String::new(),
                description(model, id).to_owned(),
            ]);
        }
    }
    print_line(&table);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(parse_address("63"), Ok(63));
        assert_eq!(parse_address(" 255 "), Ok(255));
        for (text, message) in [
            (
                "0",
                "address 0 is out of range: meter addresses are 1 to 255",
            ),
            (
                "256",
                "address 256 is out of range: meter addresses are 1 to 255",
            ),
            (
                "x",
                "'x' is not an address: give a number 1 to 255, such as 63",
            ),
        ] {
            assert_eq!(parse_address(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn registers_parse_as_number_hex_or_name() {
        assert_eq!(parse_register("60"), Ok(RegisterArg::Id(60)));
        assert_eq!(parse_register("0x3C"), Ok(RegisterArg::Id(60)));
        assert_eq!(parse_register("65535"), Ok(RegisterArg::Id(65_535)));
        assert_eq!(parse_register("E1"), Ok(RegisterArg::Name("E1".to_owned())));
        for (text, message) in [
            ("0", "register 0 does not exist: registers are 1 to 65535"),
            (
                "65536",
                "register 65536 is out of range: registers are 1 to 65535",
            ),
            (
                "0x10000",
                "register 0x10000 is out of range: registers are 1 to 65535",
            ),
            ("0xZZ", "'0xZZ' is not a hex register number, such as 0x3C"),
            ("6x", "'6x' is not a register number, such as 60"),
            (
                "E-1",
                "'E-1' is not a register: give a number (60), hex (0x3C) or a name (E1)",
            ),
        ] {
            assert_eq!(parse_register(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn names_resolve_in_the_catalogue() {
        assert_eq!(
            resolve(None, &RegisterArg::Name("e1".to_owned())).map_err(|f| f.message),
            Ok(60)
        );
        assert_eq!(
            resolve(
                Some(Model::Multical603),
                &RegisterArg::Name("T1".to_owned())
            )
            .map_err(|f| f.message),
            Ok(86)
        );
        let failure = resolve(None, &RegisterArg::Name("NOSUCH".to_owned())).unwrap_err();
        assert!(
            failure.message.contains("'NOSUCH' is not in any catalogue"),
            "{}",
            failure.message
        );
    }
}
