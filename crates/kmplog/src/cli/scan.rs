//! `kmplog scan`: which addresses answer on a line. Each address of the
//! range gets a GetType with a short timeout and the wake-up retry (a
//! sleeping optical port misses the first frame); one that answers also gets
//! a GetSerialNo. The meters found are printed as they are found, with a
//! `[[bus.request]]` that reads them at the end.
//!
//! Time: a silent address costs the timeout, and with the retry a pause and
//! the timeout again; a scan of 1..254 at the defaults (250 ms, 1 retry,
//! 200 ms pause) takes 254 × 0.7 s ≈ 3 min, with `--retries 0` about 1 min.
//! A progress bar on stderr shows how far it is, on a terminal only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kmp::catalogue::Model;

use super::identify::{Identity, model_table, probe};
use super::line::LineArgs;
use super::read::parse_address;
use super::{Failure, Outcome};
use crate::bus::EchoMode;

/// Options of `kmplog scan`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A silent address costs --timeout, and with the wake-up retry 200 ms and --timeout
again: 1 to 254 takes about 3 minutes at the defaults, 1 minute with --retries 0.
On a 1200-baud line a meter needs about 300 ms to answer: use --timeout 500 there.

Examples:
  kmplog scan --tcp 127.0.0.1:7063 --from 62 --to 64
  kmplog scan --tcp 127.0.0.1:7063 --from 63 --to 63 --timeout 500 --json")]
pub struct Args {
    #[command(flatten)]
    line: LineArgs,
    /// First address to try, 1 to 255.
    #[arg(long, value_name = "A", default_value = "1", value_parser = parse_address)]
    from: u8,
    /// Last address to try, 1 to 255.
    #[arg(long, value_name = "A", default_value = "254", value_parser = parse_address)]
    to: u8,
    /// How long to wait for each address's reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout: u64,
    /// Further attempts when an address is silent: the first wakes a
    /// sleeping optical port.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
    /// Echo of our own request by an optical head: drop it when recognised
    /// (auto), always expect it (on), or never (off).
    #[arg(long, value_enum, default_value_t = EchoMode::Auto)]
    echo: EchoMode,
    /// A configuration whose `[models]` table names the models of type codes.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print one JSON object per meter found, and nothing else.
    #[arg(long)]
    json: bool,
}

/// Runs `kmplog scan`.
pub async fn run(args: Args) -> Outcome {
    if args.from > args.to {
        return Err(Failure::usage(format!(
            "--from {} is above --to {}: give the lower address first, such as --from 1 --to 254",
            args.from, args.to
        )));
    }
    let models = model_table(args.config.as_deref())?;
    let mut line = args
        .line
        .connect(Duration::from_millis(args.timeout), args.retries, args.echo)
        .await?;
    let bar = progress_bar(u64::from(args.to - args.from) + 1);
    let started = Instant::now();
    let mut found = Vec::new();
    for address in args.from..=args.to {
        bar.set_message(format!("address {address}, {} found", found.len()));
        match probe(&mut line, address, &models).await? {
            Ok(identity) => {
                bar.suspend(|| {
                    if args.json {
                        println!("{}", identity.json());
                    } else {
                        println!("address {address}: {}", found_text(&identity));
                    }
                });
                found.push(identity);
            }
            // Something answers there, but not as a meter should: say so.
            Err(refusal) if !refusal.silent => {
                bar.suspend(|| eprintln!("kmplog: {}", refusal.reason))
            }
            Err(_) => {}
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let range = format!("addresses {} to {} of {}", args.from, args.to, line.name());
    if found.is_empty() {
        return Err(Failure::failed(format!(
            "no meter answered at {range} within {} ms; check the line settings and the cabling, or raise --timeout",
            args.timeout
        )));
    }
    if !args.json {
        let addresses: Vec<String> = found
            .iter()
            .map(|meter| meter.address.to_string())
            .collect();
        println!(
            "\nfound {} at {range} in {:.1} s: {}\n\nTo read them, add to the [[bus]] of this line in the configuration:\n\n{}",
            match found.len() {
                1 => "1 meter".to_owned(),
                count => format!("{count} meters"),
            },
            started.elapsed().as_secs_f64(),
            addresses.join(", "),
            request_snippet(&found)
        );
    }
    Ok(())
}

/// The bar on stderr; indicatif draws it only on a terminal.
fn progress_bar(addresses: u64) -> ProgressBar {
    let bar = ProgressBar::new(addresses);
    if let Ok(style) = ProgressStyle::with_template("scanning {bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// `type 0x0603, software revision A1, serial number 70224973, MULTICAL 603`.
fn found_text(identity: &Identity) -> String {
    let model = match identity.model {
        Some((model, _)) => model.name().to_owned(),
        None => "model not known".to_owned(),
    };
    format!("{}, {model}", identity.summary())
}

/// One `[[bus.request]]` per model among `found` (one for those of no known
/// model), each reading registers its catalogue has.
fn request_snippet(found: &[Identity]) -> String {
    let mut groups: Vec<(Option<Model>, Vec<u8>)> = Vec::new();
    for meter in found {
        let model = meter.model.map(|(model, _)| model);
        match groups.iter_mut().find(|(known, _)| *known == model) {
            Some((_, addresses)) => addresses.push(meter.address),
            None => groups.push((model, vec![meter.address])),
        }
    }
    let requests: Vec<String> = groups
        .iter()
        .map(|(model, addresses)| {
            let addresses: Vec<String> = addresses.iter().map(u8::to_string).collect();
            let (description, model_line, items) = match model {
                Some(model) => (
                    format!("{model} meters found by kmplog scan"),
                    format!("model = \"{}\"\n", model.short_name()),
                    items_of(Some(*model)),
                ),
                None => (
                    "Meters found by kmplog scan".to_owned(),
                    String::new(),
                    items_of(None),
                ),
            };
            format!(
                "[[bus.request]]\ndescription = \"{description}\"\naddresses = \"{}\"\n{model_line}polling = \"15min\"\nitems = [{}]",
                addresses.join(";"),
                items
                    .iter()
                    .map(|name| format!("\"{name}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    requests.join("\n\n")
}

/// Registers to start with: energy, volume and the two temperatures of a
/// heat meter; the first four registers of any other model's catalogue.
fn items_of(model: Option<Model>) -> Vec<&'static str> {
    match model {
        Some(model) if !model.is_heat_meter() => model
            .registers()
            .iter()
            .take(4)
            .map(|info| info.export_name)
            .collect(),
        _ => vec!["E1", "V1", "T1", "T2"],
    }
}
