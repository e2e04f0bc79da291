//! `kmplog registers`: the built-in register catalogue, per meter model.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use kmp::catalogue::Model;
use serde_json::json;

use super::Outcome;
use super::output::print_line;
use super::read::parse_model;

/// Options of `kmplog registers`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kmplog registers --model 603")]
pub struct Args {
    /// Only this model (601, 602, 603, 801, 302, 403, 382).
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    model: Option<Model>,
    /// Print one JSON object per register per line.
    #[arg(long)]
    json: bool,
}

/// Runs `kmplog registers`.
pub fn run(args: Args) -> Outcome {
    let models = match args.model {
        Some(model) => vec![model],
        None => Model::ALL.to_vec(),
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Model",
        "Register",
        "Hex",
        "Export name",
        "Description",
    ]);
    for model in models {
        for info in model.registers() {
            if args.json {
                let line = json!({
                    "model": model.name(),
                    "register": info.id,
                    "export_name": info.export_name,
                    "name": info.name,
                    "source": info.source,
                });
                print_line(&line);
            } else {
                table.add_row([
                    model.short_name().to_owned(),
                    info.id.to_string(),
                    format!("0x{:04X}", info.id),
                    info.export_name.to_owned(),
                    info.name.to_owned(),
                ]);
            }
        }
    }
    if !args.json {
        print_line(&table);
    }
    Ok(())
}
