//! `kmplog type` and `kmplog serial`: the meter type with its software
//! revision, and the serial number.

use std::cell::Cell;

use kmp::catalogue::Model;
use kmp::message::{Request, Response};
use serde_json::json;

use super::line::MeterArgs;
use super::output::print_line;
use super::read::parse_address;
use super::{Failure, Outcome};
use crate::bus::Outcome as MeterOutcome;

/// Options of `kmplog type` and `kmplog serial` (each names its own
/// example, in [`super::Command`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// Meter address 1 to 255; repeat it or separate with ';' for several.
    #[arg(long, short, value_name = "A", default_value = "63", value_delimiter = ';', value_parser = parse_address)]
    address: Vec<u8>,
    /// Print one JSON object per meter per line.
    #[arg(long)]
    json: bool,
}

/// Runs `kmplog type`.
pub async fn run_type(args: Args) -> Outcome {
    let unknown_model = Cell::new(false);
    let outcome = query(&args, Request::GetType, |address, response| match response {
        Response::Type { meter_type, revision } => {
            let model = Model::from_meter_type(*meter_type);
            unknown_model.set(unknown_model.get() || model.is_none());
            Some(if args.json {
                json!({
                    "address": address,
                    "meter_type": format!("0x{meter_type:04X}"),
                    "model": model.map(Model::name),
                    "software_revision": revision.to_string(),
                })
                .to_string()
            } else {
                let model = model.map_or_else(String::new, |model| format!(" ({model})"));
                format!("meter {address}: type code 0x{meter_type:04X}{model}, software revision {revision}")
            })
        }
        _ => None,
    })
    .await;
    if unknown_model.get() && !args.json {
        eprintln!(
            "note: kmplog has no table from type codes to models yet; name the model yourself: model = \"603\" in the configuration, --model 603 for `kmplog read`"
        );
    }
    outcome
}

/// Runs `kmplog serial`.
pub async fn run_serial(args: Args) -> Outcome {
    query(
        &args,
        Request::GetSerialNo,
        |address, response| match response {
            Response::SerialNo { serial } => Some(if args.json {
                json!({ "address": address, "serial": serial }).to_string()
            } else {
                format!("meter {address}: serial number {serial}")
            }),
            _ => None,
        },
    )
    .await
}

/// Sends `request` to each address and prints what `show` makes of the
/// reply; fails after all addresses if any gave no usable reply.
async fn query(
    args: &Args,
    request: Request,
    show: impl Fn(u8, &Response) -> Option<String>,
) -> Outcome {
    let mut line = args.line.connect().await?;
    let mut errors = Vec::new();
    for &address in &args.address {
        let exchange = line.transact(address, &request).await?;
        match &exchange.outcome {
            MeterOutcome::Response(response) => match show(address, response) {
                Some(text) => print_line(&text),
                None => errors.push(format!("meter {address}: unexpected reply {response:?}")),
            },
            _ => errors.push(line.explain(address, &exchange)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("\nkmplog: ")))
    }
}
