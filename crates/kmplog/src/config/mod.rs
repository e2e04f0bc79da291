//! The configuration file: buses, their request queues and the sinks, read
//! from TOML in two stages. [`raw`] parses the text into a tree that keeps
//! the span of every key and value; [`validate`] turns that tree into a
//! [`Config`] whose values are all checked, or into [`Diagnostics`] listing
//! every mistake with its line and column. [`edit`] changes the request queue
//! of a file in place, keeping its comments and layout.
//!
//! `examples/kmplog.toml` at the top of the repository documents every key.

mod diagnostic;
pub mod edit;
mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kmp::Value;
use kmp::catalogue::{Model, ModelTable};
use kmp_schedule::Method;
use toml::de::DeTable;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};

use crate::bus::EchoMode;
use crate::transport::{SerialSettings, TcpSettings};

/// The SQLite database written when the file says nothing about it.
pub const DEFAULT_SQLITE: &str = "kmplog.db";
/// The outbox file when the configuration names none.
pub const DEFAULT_OUTBOX: &str = "kmplog-outbox.db";
/// How many undelivered readings the outbox holds at most by default.
pub const DEFAULT_OUTBOX_MAX_ROWS: u64 = crate::outbox::DEFAULT_MAX_ROWS;
/// How many bytes the outbox's readings take at most by default.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = crate::outbox::DEFAULT_MAX_BYTES;

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// IANA name of the time zone of all schedules; `None` for the system's.
    pub time_zone: Option<String>,
    /// The user's meter type codes (`[models]`), with the catalogue's.
    pub models: ModelTable,
    /// Where readings go.
    pub sinks: SinksConfig,
    /// The lines of meters, in the order of the file.
    pub buses: Vec<BusConfig>,
    /// Several instances sharing the buses (`[cluster]`); `None`: this
    /// instance polls every bus.
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: the instances that read this file share its buses, each bus
/// polled by one of them at a time, through a coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The coordinator: a PostgreSQL URL, as the sink's (`table=` names the
    /// lease table, default [`crate::cluster::coordinator::DEFAULT_TABLE`]).
    pub coordinator: String,
    /// How long a bus stays an instance's without a renewal.
    pub lease: Duration,
}

impl Config {
    /// How many requests all buses hold together.
    pub fn request_count(&self) -> usize {
        self.buses.iter().map(|bus| bus.requests.len()).sum()
    }
}

/// Where readings go. Relative paths are taken from the directory kmplog
/// runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinksConfig {
    /// The SQLite database file; `None` when disabled.
    pub sqlite: Option<PathBuf>,
    /// Directory of the daily CSV files; `None` when off.
    pub csv: Option<PathBuf>,
    /// Directory of the daily JSON-lines files; `None` when off.
    pub jsonl: Option<PathBuf>,
    /// What goes to the terminal.
    pub terminal: TerminalMode,
    /// The outbox file every reading passes through.
    pub outbox: PathBuf,
    /// How many undelivered readings the outbox holds at most.
    pub outbox_max_rows: u64,
    /// How many bytes the outbox's readings take at most.
    pub outbox_max_bytes: u64,
    /// More sinks, named by URL (`postgres://...`, `mqtt://...`).
    pub urls: Vec<crate::sink::url::SinkUrl>,
}

impl Default for SinksConfig {
    /// SQLite in [`DEFAULT_SQLITE`], no files, the terminal in auto mode,
    /// the outbox in [`DEFAULT_OUTBOX`].
    fn default() -> Self {
        SinksConfig {
            sqlite: Some(PathBuf::from(DEFAULT_SQLITE)),
            csv: None,
            jsonl: None,
            terminal: TerminalMode::Auto,
            outbox: PathBuf::from(DEFAULT_OUTBOX),
            outbox_max_rows: DEFAULT_OUTBOX_MAX_ROWS,
            outbox_max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
            urls: Vec::new(),
        }
    }
}

/// What the logger prints on its standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminalMode {
    /// A live table on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    /// Always the live table.
    Table,
    /// Always JSON lines.
    Json,
    /// Nothing.
    Off,
}

/// One line of meters and its request queue.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    /// Unique name: letters, digits, `-` and `_`.
    pub name: String,
    /// How to reach the line.
    pub endpoint: BusEndpoint,
    /// Echo handling.
    pub echo: EchoMode,
    /// Pause before a retry (it wakes a sleeping optical port).
    pub retry_pause: Duration,
    /// The queue, in order.
    pub requests: Vec<RequestConfig>,
}

/// How a bus reaches its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEndpoint {
    /// A local serial port.
    Serial(SerialSettings),
    /// A TCP serial-to-Ethernet gateway.
    Tcp(TcpSettings),
    /// A gateway that carries one frame per UDP datagram.
    Udp {
        /// `host:port` of the gateway.
        address: String,
    },
}

impl fmt::Display for BusEndpoint {
    /// `serial /dev/ttyUSB0 1200 8N2`, `tcp 10.0.0.5:4001`, `udp 10.0.0.6:4001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusEndpoint::Serial(settings) => write!(f, "serial {settings}"),
            BusEndpoint::Tcp(settings) => write!(f, "tcp {}", settings.address),
            BusEndpoint::Udp { address } => write!(f, "udp {address}"),
        }
    }
}

/// One request of a bus queue.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestConfig {
    /// Free text, unique within the bus.
    pub description: String,
    /// `true`: kmplog sends the request; `false`: it only listens to another
    /// master's traffic and exports the matching values.
    pub send: bool,
    /// Meter addresses, polled one after another.
    pub addresses: Vec<u8>,
    /// The model whose catalogue resolved item names; `None` for any.
    pub model: Option<Model>,
    /// How long to wait for a reply to start.
    pub timeout: Duration,
    /// Further attempts after a silent or corrupt reply.
    pub retries: u32,
    /// The registers read, 1 to 8.
    pub items: Vec<Item>,
    /// When the request runs; `None` for a listening request (`send =
    /// false`), which runs whenever another master reads its meters.
    pub method: Option<Method>,
    /// Event fired after a run in which every address answered.
    pub on_complete: Option<String>,
    /// Event fired after a run in which some address failed.
    pub on_failure: Option<String>,
    /// Event fired when a meter's info code raises a flag it did not have
    /// (battery low, leak, sensor fault); the request must read the info code.
    pub on_info_flag: Option<String>,
    /// Event fired once when a meter of the request has given no data for
    /// the duration, and again only after it has given data.
    pub on_no_data: Option<(String, Duration)>,
    /// Events fired when a value crosses a limit.
    pub thresholds: Vec<Threshold>,
    /// Reads per meter per day that the schedule should stay within.
    pub reads_per_day: Option<u32>,
    /// The meter's own logger (hourly or daily) to read what an outage of
    /// the meter made the request miss, once the meter answers again.
    pub backfill: Option<kmp::logger::Logger>,
}

/// A register read by a request, with the name its values are exported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The register ID, 1 to 65535.
    pub register: u16,
    /// Latin letters and digits, unique within the request.
    pub export_name: String,
}

/// An event fired when a value goes above or below a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The export name of the watched item.
    pub export_name: String,
    /// Fire when the value goes above this.
    pub above: Option<Value>,
    /// Fire when the value goes below this.
    pub below: Option<Value>,
    /// The event fired.
    pub event: String,
}

/// Reads and validates the configuration file at `path`: the configuration
/// with its warnings and notes (an empty list when there are none), or every
/// mistake found.
pub fn load(path: &Path) -> Result<(Config, Diagnostics), Diagnostics> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            location: None,
            message: format!("cannot read {file_name}: {error}"),
            hint: "give the path of a kmplog configuration file, such as examples/kmplog.toml"
                .to_owned(),
        };
        Diagnostics::new(file_name.as_str(), "", vec![diagnostic])
    })?;
    let (config, remarks) = parse(&text, &file_name)?;
    Ok((config, Diagnostics::new(file_name.as_str(), text, remarks)))
}

/// Validates the configuration in `text` (read from `file_name`, for
/// messages): the configuration and its warnings and notes, or every
/// mistake found.
pub fn parse(text: &str, file_name: &str) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let mut syntax = raw::Context::new(text);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    for error in syntax_errors {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().replace('\n', "; ");
        syntax.error(
            span,
            format!("TOML syntax: {message}"),
            "write `key = value`, strings in quotes, tables as [sinks] and [[bus]], for example: name = \"boiler-room\"",
        );
    }
    let mut found = syntax.into_diagnostics();
    let mut validation = raw::Context::new(text);
    let config = validate::config(&mut validation, &document);
    let validated = validation.into_diagnostics();
    if found.is_empty() {
        return match config {
            Some(config) if !has_errors(&validated) => Ok((config, validated)),
            _ => Err(Diagnostics::new(file_name, text, validated)),
        };
    }
    // The rest of the file is validated too, so that one run shows every
    // mistake. Where the parser had to recover, its tree is a guess: what
    // validation says on a broken line, or about a broken table as a whole
    // (a key it lacks), may not be so; nor are warnings worth reading in a
    // file that cannot be used yet.
    let broken: Vec<(usize, usize)> = found
        .iter()
        .filter_map(|diagnostic| diagnostic.location.as_ref())
        .map(|at| (at.line, section_of(text, at.span.start)))
        .collect();
    found.extend(validated.into_iter().filter(|diagnostic| {
        let Some(at) = &diagnostic.location else {
            return false;
        };
        let section = section_of(text, at.span.start);
        let on_header = is_header(text, at.span.start);
        diagnostic.severity == Severity::Error
            && !broken.iter().any(|&(line, broken_section)| {
                line == at.line || (on_header && section == broken_section)
            })
    }));
    found.sort_by_key(|diagnostic| {
        (
            diagnostic.location.as_ref().map(|at| at.span.start),
            diagnostic.severity,
        )
    });
    Err(Diagnostics::new(file_name, text, found))
}

/// Which table of `text` the byte `offset` lies in: 0 for the top level
/// before the first header, then one more for each `[table]` or `[[table]]`
/// header line, the line of `offset` included.
fn section_of(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let line_end = line_bounds(bytes, offset).end;
    bytes[..line_end]
        .split(|&byte| byte == b'\n')
        .filter(|line| line.trim_ascii_start().starts_with(b"["))
        .count()
}

/// Whether the line of byte `offset` is a table header.
fn is_header(text: &str, offset: usize) -> bool {
    let bytes = text.as_bytes();
    bytes[line_bounds(bytes, offset)]
        .trim_ascii_start()
        .starts_with(b"[")
}

/// The byte range of the line that holds `offset`, without its newline.
fn line_bounds(bytes: &[u8], offset: usize) -> std::ops::Range<usize> {
    let offset = offset.min(bytes.len());
    let start = bytes[..offset]
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    let end = bytes[offset..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(bytes.len(), |newline| offset + newline);
    start..end
}

fn has_errors(found: &[Diagnostic]) -> bool {
    found
        .iter()
        .any(|diagnostic| diagnostic.severity == Severity::Error)
}

#[cfg(test)]
mod tests;
