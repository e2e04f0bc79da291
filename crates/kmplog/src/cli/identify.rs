//! `kmplog identify`: what meter answers at an address. It reads the type
//! code and software revision (GetType), the serial number and the registers
//! that identify a meter where it has them (1005, 404, 254, 640, 1126, in one
//! GetRegister), and names the model where a table knows the type code: the
//! catalogue's sourced table, extended by `[models]` of a configuration.
//!
//! A command of its own rather than more output of `type`: it sends three
//! requests where `type` sends one (each read costs a battery meter's
//! battery), and `type`'s one-line output is kept for scripts. The raw
//! GetType bytes are printed so that a user can report an unknown code.
//!
//! [`probe`] (GetType and GetSerialNo of one address) is shared with
//! `kmplog scan`.

use std::path::{Path, PathBuf};

use kmp::catalogue::{IDENTIFYING_REGISTERS, Model, ModelOrigin, ModelTable};
use kmp::message::{Request, Response, SoftwareRevision};
use kmp::value::RegisterValue;
use serde_json::json;

use super::decode::hex;
use super::line::{MeterArgs, MeterLine};
use super::output::{display_value, register_json};
use super::read::parse_address;
use super::{Failure, Outcome};
use crate::bus::Outcome as MeterOutcome;
use crate::config;

/// Options of `kmplog identify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A configuration's [models] table names the model of a type code:\n  [models]\n  \"0x0603\" = \"603\"\n\nExamples:\n  kmplog identify --tcp 127.0.0.1:7063 --address 63\n  kmplog identify --tcp 127.0.0.1:7063 --address 63 --json"
)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// Meter address 1 to 255; repeat it or separate with ';' for several.
    #[arg(long, short, value_name = "A", default_value = "63", value_delimiter = ';', value_parser = parse_address)]
    address: Vec<u8>,
    /// A configuration whose `[models]` table names the models of type codes
    /// (`"0x0603" = "603"`), besides kmplog's own table.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print one JSON object per meter per line.
    #[arg(long)]
    json: bool,
}

/// What GetType and GetSerialNo tell about one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The address it answered at.
    pub address: u8,
    /// The type code of its GetType answer.
    pub meter_type: u16,
    /// The software revision of its GetType answer.
    pub revision: SoftwareRevision,
    /// Its serial number, if it answered GetSerialNo.
    pub serial: Option<u32>,
    /// The model, where a table knows the type code.
    pub model: Option<(Model, ModelOrigin)>,
}

impl Identity {
    /// The four data bytes of the GetType answer, in hex, as a user reports
    /// them (`06030101`).
    pub fn type_data(&self) -> String {
        let [high, low] = self.meter_type.to_be_bytes();
        hex(&[high, low, self.revision.letter, self.revision.number])
    }

    /// The fields every command prints, as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "address": self.address,
            "meter_type": format!("0x{:04X}", self.meter_type),
            "software_revision": self.revision.to_string(),
            "type_data": self.type_data(),
            "serial": self.serial,
            "model": self.model.map(|(model, _)| model.name()),
            "model_from": self.model.map(|(_, origin)| match origin {
                ModelOrigin::User => "configuration".to_owned(),
                ModelOrigin::Catalogue(source) => format!("catalogue: {source}"),
            }),
        })
    }

    /// `type 0x0603, software revision A1, serial number 70224973`.
    pub fn summary(&self) -> String {
        let serial = self.serial.map_or_else(
            || "no serial number".to_owned(),
            |serial| format!("serial number {serial}"),
        );
        format!(
            "type 0x{:04X}, software revision {}, {serial}",
            self.meter_type, self.revision
        )
    }
}

/// The models of type codes: kmplog's own table, with `[models]` of the
/// configuration at `path` when one is given.
pub fn model_table(path: Option<&Path>) -> Result<ModelTable, Failure> {
    match path {
        None => Ok(ModelTable::default()),
        Some(path) => config::load(path)
            .map(|(config, _)| config.models)
            .map_err(|diagnostics| Failure::failed(diagnostics.to_string())),
    }
}

/// Why an address gave no identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Nothing answered at all (the usual case of a scanned address).
    pub silent: bool,
    /// What happened, for a person.
    pub reason: String,
}

/// Asks the meter at `address` for its type and, if it answers, its serial
/// number; a [`Refusal`] when it gives no usable GetType answer.
pub async fn probe(
    line: &mut MeterLine,
    address: u8,
    models: &ModelTable,
) -> Result<Result<Identity, Refusal>, Failure> {
    let exchange = line.transact(address, &Request::GetType).await?;
    let (meter_type, revision) = match &exchange.outcome {
        MeterOutcome::Response(Response::Type {
            meter_type,
            revision,
        }) => (*meter_type, *revision),
        MeterOutcome::Response(other) => {
            return Ok(Err(Refusal {
                silent: false,
                reason: format!("meter {address}: unexpected reply {other:?}"),
            }));
        }
        outcome => {
            return Ok(Err(Refusal {
                silent: *outcome == MeterOutcome::NoReply,
                reason: line.explain(address, &exchange),
            }));
        }
    };
    let exchange = line.transact(address, &Request::GetSerialNo).await?;
    let serial = match exchange.outcome {
        MeterOutcome::Response(Response::SerialNo { serial }) => Some(serial),
        _ => None,
    };
    Ok(Ok(Identity {
        address,
        meter_type,
        revision,
        serial,
        model: models.model_of(meter_type),
    }))
}

/// Runs `kmplog identify`.
pub async fn run(args: Args) -> Outcome {
    let models = model_table(args.config.as_deref())?;
    let mut line = args.line.connect().await?;
    let mut errors = Vec::new();
    for &address in &args.address {
        let identity = match probe(&mut line, address, &models).await? {
            Ok(identity) => identity,
            Err(refusal) => {
                errors.push(refusal.reason);
                continue;
            }
        };
        let registers = identifying_registers(&mut line, address).await?;
        if args.json {
            println!("{}", identity_json(&identity, registers.as_deref()));
        } else {
            println!(
                "{}",
                identity_text(&identity, registers.as_deref(), args.config.as_deref())
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("\nkmplog: ")))
    }
}

/// The identifying registers the meter answered, in one GetRegister; `None`
/// when it gave no usable answer at all.
async fn identifying_registers(
    line: &mut MeterLine,
    address: u8,
) -> Result<Option<Vec<RegisterValue>>, Failure> {
    let ids = IDENTIFYING_REGISTERS.map(|register| register.id);
    let request =
        Request::get_register(&ids).map_err(|error| Failure::failed(error.to_string()))?;
    let exchange = line.transact(address, &request).await?;
    Ok(match exchange.outcome {
        MeterOutcome::Response(Response::Registers(values)) => Some(values),
        _ => None,
    })
}

fn identity_json(identity: &Identity, registers: Option<&[RegisterValue]>) -> serde_json::Value {
    let mut object = identity.json();
    if let Some(map) = object.as_object_mut() {
        let answered: Vec<serde_json::Value> = registers
            .unwrap_or_default()
            .iter()
            .map(|value| register_json(identity.model.map(|(model, _)| model), value))
            .collect();
        let not_answered: Vec<u16> = IDENTIFYING_REGISTERS
            .iter()
            .map(|register| register.id)
            .filter(|id| {
                !registers
                    .unwrap_or_default()
                    .iter()
                    .any(|value| value.register == *id)
            })
            .collect();
        map.insert("registers".to_owned(), answered.into());
        map.insert("not_answered".to_owned(), not_answered.into());
    }
    object
}

fn identity_text(
    identity: &Identity,
    registers: Option<&[RegisterValue]>,
    config: Option<&Path>,
) -> String {
    let mut lines = vec![format!(
        "meter {}: {}",
        identity.address,
        identity.summary()
    )];
    lines.push(match identity.model {
        Some((model, ModelOrigin::User)) => {
            let file = config.map_or_else(String::new, |path| format!(" of {}", path.display()));
            format!("  model: {model} (from [models]{file})")
        }
        Some((model, ModelOrigin::Catalogue(source))) => format!("  model: {model} ({source})"),
        None => format!(
            "  model: type 0x{:04X} is in no table; if you know the model, add it to the configuration:\n    [models]\n    \"0x{:04X}\" = \"603\"",
            identity.meter_type, identity.meter_type
        ),
    });
    let model = identity.model.map(|(model, _)| model);
    for register in IDENTIFYING_REGISTERS {
        let value = registers
            .unwrap_or_default()
            .iter()
            .find(|value| value.register == register.id);
        let shown = match (registers, value) {
            (None, _) => "no answer to GetRegister".to_owned(),
            (Some(_), None) => "not answered".to_owned(),
            (Some(_), Some(value)) => format!("{} {}", display_value(model, value), value.unit)
                .trim_end()
                .to_owned(),
        };
        lines.push(format!(
            "  register {} {}: {shown}",
            register.id, register.name
        ));
    }
    lines.push(format!(
        "  GetType data: {} (type and revision, to report with the registers above)",
        identity.type_data()
    ));
    lines.join("\n")
}
