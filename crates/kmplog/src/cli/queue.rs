//! `kmplog queue`: list and edit the request queues of a configuration
//! file in place (add, rename, remove, move up or down), keeping its comments
//! and layout. An edit that would leave the file invalid is refused, and the
//! file is replaced only once the new text is complete (temporary file, then
//! rename).

use std::fs;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::output::print_line;
use super::{Failure, Outcome};
use crate::config::edit::{Direction, EditError, NewRequest, QueueFile, RequestRef};
use crate::config::{self, BusConfig};

/// Options of `kmplog queue`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog queue list kmplog.toml\n  kmplog queue add kmplog.toml --bus boiler-room --description 'Temperatures' \\\n      --addresses '1;2' --items T1,T2 --polling 5min\n  kmplog queue rename kmplog.toml --bus boiler-room 2 'Daily readout'\n  kmplog queue up kmplog.toml --bus boiler-room 'Daily readout'\n  kmplog queue remove kmplog.toml --bus boiler-room 3\n\nREQUEST is a position in the bus queue (1, 2, ...) or an exact description."
)]
pub struct Args {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// List the requests of every bus, or of one, in queue order.
    List {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Only this bus.
        #[arg(long, value_name = "NAME")]
        bus: Option<String>,
    },
    /// Add a request to a bus (last, or at --position).
    Add(AddArgs),
    /// Give a request a new description.
    Rename {
        #[command(flatten)]
        target: Target,
        /// The new description.
        #[arg(value_name = "NEW_DESCRIPTION")]
        new_description: String,
    },
    /// Remove a request.
    Remove(Target),
    /// Move a request one place up: it runs before the one above it.
    Up(Target),
    /// Move a request one place down.
    Down(Target),
}

/// A request of a bus in a file.
#[derive(Debug, clap::Args)]
struct Target {
    /// The configuration file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The bus.
    #[arg(long, value_name = "NAME")]
    bus: String,
    /// The request: its position (1, 2, ...) or its exact description.
    #[arg(value_name = "REQUEST")]
    request: RequestRef,
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The configuration file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The bus.
    #[arg(long, value_name = "NAME")]
    bus: String,
    /// The description, unique within the bus.
    #[arg(long, value_name = "TEXT")]
    description: String,
    /// Meter addresses 1 to 255, separated by ';', such as '1;2;17'.
    #[arg(long, value_name = "LIST")]
    addresses: String,
    /// Registers, separated by ',': catalogue names or numbers, such as E1,V1,86.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    items: Vec<String>,
    #[command(flatten)]
    method: MethodArgs,
    /// Position in the queue, from 1; by default last.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    position: Option<u64>,
}

/// The method of a new request: exactly one.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct MethodArgs {
    /// Run every interval, such as 500ms, 30s, 5min or 1h.
    #[arg(long, value_name = "INTERVAL")]
    polling: Option<String>,
    /// Run at times of day, such as '11:00:00;23:00:00'.
    #[arg(long, value_name = "TIMES")]
    at: Option<String>,
    /// Run on a cron schedule, such as '0 0 12 * * *'.
    #[arg(long, value_name = "EXPRESSION")]
    cron: Option<String>,
    /// Run once, at start-up.
    #[arg(long)]
    once: bool,
    /// Run when the named event arrives.
    #[arg(long, value_name = "NAME")]
    event: Option<String>,
}

impl MethodArgs {
    /// The method's key in the file and its value.
    fn key_value(self) -> (&'static str, String) {
        match self {
            MethodArgs {
                polling: Some(interval),
                ..
            } => ("polling", interval),
            MethodArgs {
                at: Some(times), ..
            } => ("at", times),
            MethodArgs {
                cron: Some(expression),
                ..
            } => ("cron", expression),
            MethodArgs {
                event: Some(event), ..
            } => ("event", event),
            MethodArgs { .. } => ("once", String::new()),
        }
    }
}

/// Runs `kmplog queue`.
pub fn run(args: Args) -> Outcome {
    match args.command {
        QueueCommand::List { file, bus } => list(&file, bus.as_deref()),
        QueueCommand::Add(add) => {
            let request = NewRequest {
                description: add.description,
                addresses: add.addresses,
                items: add
                    .items
                    .iter()
                    .map(|item| item.trim().to_owned())
                    .collect(),
                method: add.method.key_value(),
            };
            let position = add
                .position
                .and_then(|position| usize::try_from(position).ok());
            edit(&add.file, |queue| queue.add(&add.bus, &request, position))?;
            let at = position.map_or_else(
                || "at the end".to_owned(),
                |position| format!("at position {position}"),
            );
            print_line(format_args!(
                "{}: added '{}' to bus '{}' {at}",
                add.file.display(),
                request.description,
                add.bus
            ));
            Ok(())
        }
        QueueCommand::Rename {
            target,
            new_description,
        } => {
            edit(&target.file, |queue| {
                queue.rename(&target.bus, &target.request, &new_description)
            })?;
            print_line(format_args!(
                "{}: request {} of bus '{}' is now '{new_description}'",
                target.file.display(),
                target.request,
                target.bus
            ));
            Ok(())
        }
        QueueCommand::Remove(target) => {
            edit(&target.file, |queue| {
                queue.remove(&target.bus, &target.request)
            })?;
            print_line(format_args!(
                "{}: removed request {} from bus '{}'",
                target.file.display(),
                target.request,
                target.bus
            ));
            Ok(())
        }
        QueueCommand::Up(target) => move_request(&target, Direction::Up),
        QueueCommand::Down(target) => move_request(&target, Direction::Down),
    }
}

fn move_request(target: &Target, direction: Direction) -> Outcome {
    edit(&target.file, |queue| {
        queue.move_request(&target.bus, &target.request, direction)
    })?;
    let way = if direction == Direction::Up {
        "up"
    } else {
        "down"
    };
    print_line(format_args!(
        "{}: moved request {} of bus '{}' {way}",
        target.file.display(),
        target.request,
        target.bus
    ));
    Ok(())
}

/// Prints the queues as a table.
fn list(file: &Path, bus: Option<&str>) -> Outcome {
    let file_name = file.display().to_string();
    let (config, _) = config::parse(&read(file)?, &file_name).map_err(|diagnostics| {
        Failure::failed(format!("{file_name} is not valid:\n{diagnostics}"))
    })?;
    let buses: Vec<&BusConfig> = config
        .buses
        .iter()
        .filter(|candidate| bus.is_none_or(|name| candidate.name == name))
        .collect();
    if let (Some(name), []) = (bus, buses.as_slice()) {
        let known: Vec<String> = config
            .buses
            .iter()
            .map(|bus| format!("'{}'", bus.name))
            .collect();
        return Err(Failure::usage(format!(
            "no bus '{name}'; buses: {}",
            known.join(", ")
        )));
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Bus",
        "#",
        "Description",
        "Method",
        "Addresses",
        "Items",
    ]);
    for bus in buses {
        for (index, request) in bus.requests.iter().enumerate() {
            let addresses: Vec<String> = request.addresses.iter().map(u8::to_string).collect();
            let items: Vec<&str> = request
                .items
                .iter()
                .map(|item| item.export_name.as_str())
                .collect();
            table.add_row([
                bus.name.clone(),
                (index + 1).to_string(),
                request.description.clone(),
                request
                    .method
                    .as_ref()
                    .map_or_else(|| "listens".to_owned(), ToString::to_string),
                addresses.join(";"),
                items.join(", "),
            ]);
        }
    }
    print_line(&table);
    Ok(())
}

fn read(file: &Path) -> Result<String, Failure> {
    fs::read_to_string(file)
        .map_err(|error| Failure::failed(format!("cannot read {}: {error}", file.display())))
}

/// Applies `operation` to the file's text and writes the result in its place.
fn edit(
    file: &Path,
    operation: impl FnOnce(&QueueFile<'_>) -> Result<String, EditError>,
) -> Outcome {
    let text = read(file)?;
    let file_name = file.display().to_string();
    let new_text = QueueFile::new(&text, &file_name)
        .and_then(|queue| operation(&queue))
        .map_err(|error| match error {
            EditError::NoBus { .. }
            | EditError::NoRequest { .. }
            | EditError::Position { .. }
            | EditError::AtEdge { .. } => Failure::usage(error.to_string()),
            _ => Failure::failed(error.to_string()),
        })?;
    crate::config::edit::replace(file, &new_text)
        .map_err(|error| Failure::failed(format!("cannot write {file_name}: {error}")))
}
