//! The second stage: the raw tree of [`super::raw`] turned into a
//! [`Config`], every value checked. Each check reports its mistake through
//! the [`Context`] and the walk goes on, so that one run lists them all; a
//! part with a mistake yields `None`, and so does the whole.
//!
//! Checks that span several tables (unique bus names, unique descriptions
//! within a bus, events that no request fires) run after the tables they
//! compare.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, ZonedDateTime};
use kmp::Value;
use kmp::catalogue::{self, Model, ModelTable};
use kmp::logger::Logger;
use kmp::message::MAX_REGISTERS;
use kmp_schedule::{Cron, Interval, Method, ScheduleError, TimesOfDay};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Severity;
use super::raw::{Context, Field, Node, Table, did_you_mean};
use super::{
    BusConfig, BusEndpoint, ClusterConfig, Config, DEFAULT_OUTBOX, DEFAULT_OUTBOX_MAX_BYTES,
    DEFAULT_OUTBOX_MAX_ROWS, DEFAULT_SQLITE, Item, RequestConfig, SinksConfig, TerminalMode,
    Threshold,
};
use crate::bus::EchoMode;
use crate::sink::url::SinkUrl;
use crate::transport::serial::Framing;
use crate::transport::{SerialSettings, TcpSettings};

const TOP_KEYS: &[&str] = &["time_zone", "models", "sinks", "cluster", "bus"];
const CLUSTER_KEYS: &[&str] = &["coordinator", "lease"];
const CLUSTER_EXAMPLE: &str =
    "[cluster]\ncoordinator = \"postgres://kmplog@db.example.net/meters\"\nlease = \"10s\"";

const MODELS_EXAMPLE: &str = "[models]\n\"0x0603\" = \"603\"";
const SINK_KEYS: &[&str] = &[
    "sqlite",
    "csv",
    "jsonl",
    "terminal",
    "outbox",
    "outbox_max_rows",
    "outbox_max_bytes",
    "urls",
];
const BUS_KEYS: &[&str] = &[
    "name",
    "serial",
    "tcp",
    "udp",
    "baud",
    "framing",
    "echo",
    "connect_timeout_ms",
    "retry_pause_ms",
    "request",
];
const REQUEST_KEYS: &[&str] = &[
    "description",
    "send",
    "addresses",
    "model",
    "timeout_ms",
    "retries",
    "once",
    "polling",
    "at",
    "cron",
    "event",
    "items",
    "on_complete",
    "on_failure",
    "on_info_flag",
    "on_no_data",
    "no_data_after",
    "reads_per_day",
    "backfill",
    "threshold",
];
/// The keys that choose a request's method; a request has exactly one.
const METHOD_KEYS: &[&str] = &["once", "polling", "at", "cron", "event"];
/// The keys that choose a bus's connection; a bus has exactly one.
const ENDPOINT_KEYS: &[&str] = &["serial", "tcp", "udp"];
const THRESHOLD_KEYS: &[&str] = &["item", "above", "below", "event"];
const ITEM_KEYS: &[&str] = &["register", "name"];
/// The loggers a request may backfill from by itself (`backfill = ...`).
const BACKFILL_LOGGERS: &[(&str, Logger)] = &[("hourly", Logger::HOURLY), ("daily", Logger::DAILY)];

const SINKS_EXAMPLE: &str = "[sinks]\nsqlite = \"kmplog.db\"";
const BUS_EXAMPLE: &str = "[[bus]]\nname = \"boiler-room\"\nserial = \"/dev/ttyUSB0\"";
const REQUEST_EXAMPLE: &str = "[[bus.request]]\ndescription = \"Main values\"\naddresses = \"1;2\"\nitems = [\"E1\", \"V1\"]\npolling = \"30s\"";
const THRESHOLD_EXAMPLE: &str =
    "[[bus.request.threshold]]\nitem = \"T1\"\nabove = \"90.00\"\nevent = \"overheat\"";
const ITEM_EXAMPLE: &str = "{ register = 5000, name = \"CUSTOM1\" }";
const METHOD_EXAMPLES: &str = "once = true, polling = \"30s\", at = \"11:00:00;23:00:00\", cron = \"0 0 12 * * *\" or event = \"after-main\"";

/// The events requests fire and the events requests wait for, across the file.
#[derive(Default)]
struct Events {
    fired: Vec<String>,
    awaited: Vec<(String, Range<usize>)>,
}

/// Validates the whole document.
pub(super) fn config(cx: &mut Context<'_>, document: &Spanned<DeTable<'_>>) -> Option<Config> {
    let root = cx.root(document, TOP_KEYS);
    let time_zone = root.get("time_zone").map(|field| time_zone(cx, &field));
    let models = match root.get("models") {
        Some(field) => models(cx, &field),
        None => Some(ModelTable::default()),
    };
    let sinks = match root.get("sinks") {
        Some(field) => sinks(cx, &field),
        None => Some(SinksConfig::default()),
    };
    let mut events = Events::default();
    let mut buses = Vec::new();
    match root.get("bus") {
        Some(field) => {
            let mut names = HashMap::new();
            for (index, table) in cx
                .tables(&field, "[[bus]]", BUS_KEYS, BUS_EXAMPLE)
                .iter()
                .enumerate()
            {
                buses.push(bus(cx, table, &mut events));
                if let Some(name) = buses
                    .last()
                    .and_then(Option::as_ref)
                    .map(|bus| bus.name.clone())
                    && let Some(first) = earlier(&mut names, name.clone(), index)
                    && let Some(field) = table.get("name")
                {
                    cx.error(
                        field.span(),
                        format!("bus name `{name}` is already used by bus {first}"),
                        format!(
                            "give each [[bus]] a name of its own, for example: name = \"{name}-2\""
                        ),
                    );
                }
            }
        }
        None => cx.report(
            Severity::Warning,
            0..0,
            "the file has no [[bus]]: nothing will be read",
            format!("add a bus with its requests, for example:\n{BUS_EXAMPLE}"),
        ),
    }
    let cluster = match root.get("cluster") {
        Some(field) => cluster(cx, &field, &buses).map(Some),
        None => Some(None),
    };
    for (event, span) in &events.awaited {
        if !events.fired.contains(event) {
            cx.report(
                Severity::Note,
                span.clone(),
                format!("no request fires event `{event}`"),
                format!(
                    "the request runs only when `{event}` comes from outside (command line, API); to chain it to another request, add on_complete = \"{event}\" there"
                ),
            );
        }
    }
    Some(Config {
        time_zone: time_zone.flatten(),
        models: models?,
        sinks: sinks?,
        buses: buses.into_iter().collect::<Option<_>>()?,
        cluster: cluster?,
    })
}

/// `[cluster]`: the coordinator's URL and the lease. A lease must leave
/// room for the longest transaction of every bus twice over, since an
/// instance starts a transaction only when it can end before its lease.
fn cluster(
    cx: &mut Context<'_>,
    field: &Field<'_, '_>,
    buses: &[Option<BusConfig>],
) -> Option<ClusterConfig> {
    let table = cx.table(
        field.key,
        field.node,
        "[cluster]",
        CLUSTER_KEYS,
        CLUSTER_EXAMPLE,
    )?;
    let example = "coordinator = \"postgres://kmplog@db.example.net/meters\"";
    let coordinator = required(cx, &table, "coordinator", example).and_then(|field| {
        let url = cx.string(&field, example)?;
        match crate::cluster::coordinator::check_url(url) {
            Ok(()) => Some(url.to_owned()),
            Err(problem) => {
                cx.error(field.span(), problem, format!("for example: {example}"));
                None
            }
        }
    });
    let (lease, span) = match table.get("lease") {
        None => (
            Some(crate::cluster::lease::DEFAULT_LEASE),
            table.span.clone(),
        ),
        Some(field) => (lease(cx, &field), field.span()),
    };
    let lease = lease.filter(|lease| room_for_transactions(cx, span, *lease, buses));
    Some(ClusterConfig {
        coordinator: coordinator?,
        lease: lease?,
    })
}

/// `lease = "10s"`: from 1 s to 10 min.
fn lease(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<Duration> {
    let example = "lease = \"10s\"";
    let text = cx.string(field, example)?;
    let lease = match Interval::parse(text) {
        Ok(interval) => interval.duration(),
        Err(error) => {
            cx.error(
                field.span(),
                format!("`lease` is not a duration: {error}"),
                format!("for example: {example}"),
            );
            return None;
        }
    };
    if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&lease) {
        cx.error(
            field.span(),
            format!("`lease` must be 1s to 10min, not {text}"),
            format!("for example: {example}"),
        );
        return None;
    }
    Some(lease)
}

/// Whether `lease` is at least twice the longest step of any bus: opening
/// its line, or one transaction on the open line (a permit is asked before
/// each on its own); if not, says so at `span` (the lease, or `[cluster]`
/// when it is left out).
fn room_for_transactions(
    cx: &mut Context<'_>,
    span: Range<usize>,
    lease: Duration,
    buses: &[Option<BusConfig>],
) -> bool {
    let longest = buses
        .iter()
        .flatten()
        .flat_map(|bus| {
            bus.requests
                .iter()
                .filter(|request| request.send)
                .map(move |request| {
                    (
                        crate::cluster::lease::longest_step(bus, request),
                        bus,
                        request,
                    )
                })
        })
        .max_by_key(|(longest, _, _)| *longest);
    if let Some((longest, bus, request)) = longest
        && longest * 2 > lease
    {
        let (step, shorten) = if crate::cluster::lease::longest_opening(bus) == longest {
            ("connecting its line", "the bus's connect_timeout_ms")
        } else {
            (
                "its longest transaction",
                "the request's timeout_ms or retries",
            )
        };
        cx.error(
            span,
            format!(
                "lease {}s is too short for request '{}' of bus {}: {step} takes up to {:.1} s, \
                 and a lease must be at least twice that",
                lease.as_secs_f64(),
                request.description,
                bus.name,
                longest.as_secs_f64()
            ),
            format!(
                "lengthen the lease, for example lease = \"{}s\", or shorten {shorten}",
                (longest * 2).as_secs() + 1
            ),
        );
        return false;
    }
    true
}

/// Records `value` as seen at 0-based `index`; the 1-based position of its
/// first sighting if it was seen before.
fn earlier(seen: &mut HashMap<String, usize>, value: String, index: usize) -> Option<usize> {
    match seen.get(&value) {
        Some(first) => Some(first + 1),
        None => {
            seen.insert(value, index);
            None
        }
    }
}

/// The key `key` of `table`, reported as missing when absent.
fn required<'t, 'i>(
    cx: &mut Context<'_>,
    table: &Table<'t, 'i>,
    key: &'t str,
    example: &str,
) -> Option<Field<'t, 'i>> {
    let field = table.get(key);
    if field.is_none() {
        cx.error(
            table.span.clone(),
            format!("{} has no `{key}`", table.name),
            format!("add it, for example: {example}"),
        );
    }
    field
}

/// The integer `key` of `table` in `range`, or `default` when absent.
fn integer_or(
    cx: &mut Context<'_>,
    table: &Table<'_, '_>,
    key: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Option<i64> {
    match table.get(key) {
        Some(field) => cx.integer_field(&field, range, &format!("{key} = {default}")),
        None => Some(default),
    }
}

/// A duration in milliseconds under `key`, or `default_ms` when absent.
fn millis_or(
    cx: &mut Context<'_>,
    table: &Table<'_, '_>,
    key: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default_ms: u64,
) -> Option<Duration> {
    let default = i64::try_from(default_ms).unwrap_or(i64::MAX);
    integer_or(cx, table, key, range, default)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
}

/// A name of letters, digits, `-` and `_` (bus and event names).
fn identifier(
    cx: &mut Context<'_>,
    field: &Field<'_, '_>,
    what: &str,
    example: &str,
) -> Option<String> {
    let text = cx.string(field, example)?;
    if text.is_empty() {
        cx.error(
            field.span(),
            format!("the {what} is empty"),
            format!("for example: {example}"),
        );
        return None;
    }
    if let Some((position, bad)) = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        let at = text[..position].chars().count();
        cx.error(
            cx.string_part(field.node, text, at..at + 1),
            format!(
                "the {what} `{text}` holds {bad:?}: only letters, digits, '-' and '_' are allowed"
            ),
            format!("for example: {example}"),
        );
        return None;
    }
    Some(text.to_owned())
}

/// One of the keywords in `choices`, case-insensitive.
fn keyword<T: Copy>(
    cx: &mut Context<'_>,
    field: &Field<'_, '_>,
    choices: &[(&str, T)],
    example: &str,
) -> Option<T> {
    let text = cx.string(field, example)?;
    if let Some((_, value)) = choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
    {
        return Some(*value);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let suggestion = did_you_mean(text, names.iter().copied())
        .map(|name| format!("did you mean `{name}`? "))
        .unwrap_or_default();
    cx.error(
        field.span(),
        format!(
            "`{}` must be one of {}, not `{text}`",
            field.key,
            names.join(", ")
        ),
        format!("{suggestion}for example: {example}"),
    );
    None
}

fn time_zone(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<String> {
    let example = "time_zone = \"Europe/Copenhagen\"";
    let name = cx.string(field, example)?;
    if TimeZone::get(name).is_ok() {
        return Some(name.to_owned());
    }
    let known: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_owned())
        .collect();
    let suggestion = did_you_mean(name, known.iter().map(String::as_str))
        .map(|name| format!("did you mean `{name}`? "))
        .unwrap_or_default();
    cx.error(
        field.span(),
        format!("unknown time zone `{name}`"),
        format!("{suggestion}give an IANA time zone name, for example: {example}; leave `time_zone` out to use the system's"),
    );
    None
}

fn sinks(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<SinksConfig> {
    let table = cx.table(field.key, field.node, "[sinks]", SINK_KEYS, SINKS_EXAMPLE)?;
    let sqlite = sink_path(
        cx,
        &table,
        "sqlite",
        Some(DEFAULT_SQLITE),
        "sqlite = \"kmplog.db\"",
    );
    let csv = sink_path(cx, &table, "csv", None, "csv = \"readings\"");
    let jsonl = sink_path(cx, &table, "jsonl", None, "jsonl = \"readings\"");
    let modes = [
        ("auto", TerminalMode::Auto),
        ("table", TerminalMode::Table),
        ("json", TerminalMode::Json),
        ("off", TerminalMode::Off),
    ];
    let terminal = match table.get("terminal") {
        Some(field) => keyword(cx, &field, &modes, "terminal = \"auto\""),
        None => Some(TerminalMode::Auto),
    };
    let outbox = match sink_path(
        cx,
        &table,
        "outbox",
        Some(DEFAULT_OUTBOX),
        "outbox = \"kmplog-outbox.db\"",
    ) {
        Some(Some(path)) => Some(path),
        Some(None) => {
            if let Some(field) = table.get("outbox") {
                cx.error(
                    field.span(),
                    "the outbox cannot be turned off: every reading passes through it on its way to the sinks",
                    "name its file, for example: outbox = \"kmplog-outbox.db\"",
                );
            }
            None
        }
        None => None,
    };
    let urls = match table.get("urls") {
        Some(field) => sink_urls(cx, &field),
        None => Some(Vec::new()),
    };
    let outbox_max_rows = integer_or(
        cx,
        &table,
        "outbox_max_rows",
        1_000..=1_000_000_000,
        DEFAULT_OUTBOX_MAX_ROWS as i64,
    );
    let outbox_max_bytes = outbox_max_bytes(cx, &table);
    Some(SinksConfig {
        sqlite: sqlite?,
        csv: csv?,
        jsonl: jsonl?,
        terminal: terminal?,
        outbox: outbox?,
        outbox_max_rows: outbox_max_rows? as u64,
        outbox_max_bytes: outbox_max_bytes?,
        urls: urls?,
    })
}

/// `outbox_max_bytes = 536_870_912`: a size in bytes. A size with a unit,
/// such as "512MB", gets its own explanation rather than "not an integer".
fn outbox_max_bytes(cx: &mut Context<'_>, table: &Table<'_, '_>) -> Option<u64> {
    let example = "outbox_max_bytes = 536_870_912";
    let Some(field) = table.get("outbox_max_bytes") else {
        return Some(DEFAULT_OUTBOX_MAX_BYTES);
    };
    if let DeValue::String(text) = field.node.get_ref() {
        cx.error(
            field.span(),
            format!(
                "`outbox_max_bytes` is a number of bytes, without quotes or unit, not \"{text}\""
            ),
            format!("for example, 512 MiB: {example}"),
        );
        return None;
    }
    cx.integer_field(&field, 1_048_576..=1_099_511_627_776, example)
        .map(|bytes| bytes as u64)
}

/// `urls = ["postgres://...", "mqtt://..."]`: more sinks, by URL.
fn sink_urls(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<Vec<SinkUrl>> {
    let example = "urls = [\"postgres://kmplog@localhost/meters\", \"mqtt://localhost:1883\"]";
    let DeValue::Array(items) = field.node.get_ref() else {
        cx.wrong_type(field.key, field.node, "a list of sink URLs", example);
        return None;
    };
    let mut urls = Vec::new();
    let mut valid = true;
    for item in items {
        match item.get_ref() {
            DeValue::String(text) => match SinkUrl::parse(text) {
                Ok(url) => urls.push(url),
                Err(problem) => {
                    cx.error(item.span(), problem, format!("for example: {example}"));
                    valid = false;
                }
            },
            _ => {
                cx.wrong_type(field.key, item, "a sink URL in quotes", example);
                valid = false;
            }
        }
    }
    valid.then_some(urls)
}

/// A sink's path: a string, or `false` for off; `true` means `default`
/// where the sink has one. The outer `None` is a mistake.
fn sink_path(
    cx: &mut Context<'_>,
    table: &Table<'_, '_>,
    key: &'static str,
    default: Option<&str>,
    example: &str,
) -> Option<Option<PathBuf>> {
    let Some(field) = table.get(key) else {
        return Some(default.map(PathBuf::from));
    };
    match field.node.get_ref() {
        DeValue::Boolean(false) => Some(None),
        DeValue::Boolean(true) => match default {
            Some(path) => Some(Some(PathBuf::from(path))),
            None => {
                cx.error(
                    field.span(),
                    format!("`{key} = true` names no directory"),
                    format!("give the directory, for example: {example}"),
                );
                None
            }
        },
        DeValue::String(path) if path.is_empty() => {
            cx.error(
                field.span(),
                format!("`{key}` is an empty path"),
                format!("for example: {example}, or {key} = false for none"),
            );
            None
        }
        DeValue::String(path) => Some(Some(PathBuf::from(path.as_ref()))),
        _ => {
            cx.wrong_type(key, field.node, "a path or false", example);
            None
        }
    }
}

fn bus(cx: &mut Context<'_>, table: &Table<'_, '_>, events: &mut Events) -> Option<BusConfig> {
    let name = required(cx, table, "name", "name = \"boiler-room\"")
        .and_then(|field| identifier(cx, &field, "bus name", "name = \"boiler-room\""));
    let endpoint = endpoint(cx, table);
    let echoes = [
        ("auto", EchoMode::Auto),
        ("on", EchoMode::On),
        ("off", EchoMode::Off),
    ];
    let echo = match table.get("echo") {
        Some(field) => keyword(cx, &field, &echoes, "echo = \"auto\""),
        None => Some(EchoMode::Auto),
    };
    let retry_pause = millis_or(cx, table, "retry_pause_ms", 0..=60_000, 200);
    let mut requests = Vec::new();
    match table.get("request") {
        Some(field) => {
            let mut descriptions = HashMap::new();
            for (index, request_table) in cx
                .tables(&field, "[[bus.request]]", REQUEST_KEYS, REQUEST_EXAMPLE)
                .iter()
                .enumerate()
            {
                let parsed = request(cx, request_table, events);
                if let Some(description) =
                    parsed.as_ref().map(|request| request.description.clone())
                    && let Some(first) = earlier(&mut descriptions, description.clone(), index)
                    && let Some(field) = request_table.get("description")
                {
                    cx.error(
                        field.span(),
                        format!("description `{description}` is already used by request {first} of this bus"),
                        format!("`kmplog queue` finds requests by description; make it unique, for example: description = \"{description} 2\""),
                    );
                }
                // kmplog is either the master of a line or a listener on it:
                // with its own requests on the line there is no other master
                // to listen to.
                if let Some(this) = &parsed
                    && let Some(other) = requests
                        .iter()
                        .flatten()
                        .find(|other: &&RequestConfig| other.send != this.send)
                {
                    let span = request_table
                        .get("send")
                        .map_or_else(|| request_table.span.clone(), |field| field.span());
                    let (sender, listener) = if this.send {
                        (&this.description, &other.description)
                    } else {
                        (&other.description, &this.description)
                    };
                    cx.error(
                        span,
                        format!("request `{sender}` sends and request `{listener}` only listens, on the same bus"),
                        "a bus either polls its meters or listens to another master; put the listening requests on a bus of their own",
                    );
                }
                requests.push(parsed);
            }
        }
        None => cx.report(
            Severity::Warning,
            table.span.clone(),
            "this bus has no [[bus.request]]: nothing will be read on it",
            format!("add a request after the bus, for example:\n{REQUEST_EXAMPLE}"),
        ),
    }
    Some(BusConfig {
        name: name?,
        endpoint: endpoint?,
        echo: echo?,
        retry_pause: retry_pause?,
        requests: requests.into_iter().collect::<Option<_>>()?,
    })
}

/// The one connection of a bus, with the keys that belong to its kind.
fn endpoint(cx: &mut Context<'_>, table: &Table<'_, '_>) -> Option<BusEndpoint> {
    let mut given: Vec<Field<'_, '_>> = ENDPOINT_KEYS
        .iter()
        .filter_map(|key| table.get(key))
        .collect();
    given.sort_by_key(|field| field.key_span.start);
    let kind = given.first().map(|field| field.key);
    for extra in given.iter().skip(1) {
        cx.error(
            extra.key_span.clone(),
            format!(
                "a bus has one connection, but `{}` and `{}` are both given",
                given.first().map_or("", |field| field.key),
                extra.key
            ),
            "keep one of them; another line needs a [[bus]] of its own",
        );
    }
    if kind.is_none() {
        cx.error(
            table.span.clone(),
            "[[bus]] has no connection: give one of `serial`, `tcp` or `udp`",
            "for example: serial = \"/dev/ttyUSB0\", or tcp = \"192.168.1.50:4001\"",
        );
    }
    // Keys that belong to one kind of connection only.
    for (key, owner, hint) in [
        (
            "baud",
            "serial",
            "remove it: the gateway sets the line's baud rate",
        ),
        (
            "framing",
            "serial",
            "remove it: the gateway sets the line's framing",
        ),
        (
            "connect_timeout_ms",
            "tcp",
            "remove it: only a tcp bus connects",
        ),
    ] {
        if let (Some(field), Some(kind)) = (table.get(key), kind)
            && kind != owner
        {
            cx.error(
                field.key_span.clone(),
                format!("`{key}` applies to {owner} buses only, and this bus uses {kind}"),
                hint,
            );
        }
    }
    let baud = integer_or(cx, table, "baud", 300..=115_200, 1200)
        .and_then(|baud| u32::try_from(baud).ok());
    let framing = match table.get("framing") {
        Some(field) => cx.string(&field, "framing = \"8N2\"").and_then(|text| match text.parse::<Framing>() {
            Ok(framing) => Some(framing),
            Err(message) => {
                cx.error(field.span(), message, "for example: framing = \"8N2\" (data bits 7 or 8, parity N, E or O, stop bits 1 or 2)");
                None
            }
        }),
        None => "8N2".parse().ok(),
    };
    let connect_timeout = millis_or(cx, table, "connect_timeout_ms", 1..=600_000, 5000);
    let field = given.first()?;
    match field.key {
        "serial" => {
            let path = cx.string(field, "serial = \"/dev/ttyUSB0\"")?;
            if path.is_empty() {
                cx.error(
                    field.span(),
                    "the serial port path is empty",
                    "for example: serial = \"/dev/ttyUSB0\"",
                );
                return None;
            }
            let (baud, framing) = (baud?, framing?);
            Some(BusEndpoint::Serial(SerialSettings {
                baud,
                data_bits: framing.data_bits,
                parity: framing.parity,
                stop_bits: framing.stop_bits,
                ..SerialSettings::new(path)
            }))
        }
        "tcp" => {
            let address = host_port(cx, field)?;
            Some(BusEndpoint::Tcp(TcpSettings {
                connect_timeout: connect_timeout?,
                ..TcpSettings::new(address)
            }))
        }
        _ => host_port(cx, field).map(|address| BusEndpoint::Udp { address }),
    }
}

/// A gateway's `host:port`.
fn host_port(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<String> {
    let example = format!("{} = \"192.168.1.50:4001\"", field.key);
    let text = cx.string(field, &example)?;
    let Err(problem) = crate::transport::tcp::check_address(text) else {
        return Some(text.to_owned());
    };
    cx.error(
        field.span(),
        format!("invalid gateway address: {problem}"),
        format!("write HOST:PORT, for example: {example}"),
    );
    None
}

fn request(
    cx: &mut Context<'_>,
    table: &Table<'_, '_>,
    events: &mut Events,
) -> Option<RequestConfig> {
    let description =
        required(cx, table, "description", "description = \"Main values\"").and_then(|field| {
            let text = cx.string(&field, "description = \"Main values\"")?;
            if text.trim().is_empty() {
                cx.error(
                    field.span(),
                    "the description is empty",
                    "describe the request, for example: description = \"Main values\"",
                );
                return None;
            }
            Some(text.to_owned())
        });
    let send = match table.get("send") {
        Some(field) => cx.boolean(&field, "send = false"),
        None => Some(true),
    };
    let addresses = required(cx, table, "addresses", "addresses = \"1;2;17\"")
        .and_then(|field| addresses(cx, &field));
    let model = optional(table, "model", |field| model(cx, field));
    let timeout = millis_or(cx, table, "timeout_ms", 1..=600_000, 1600);
    let retries =
        integer_or(cx, table, "retries", 0..=10, 1).and_then(|retries| u32::try_from(retries).ok());
    // A listening request runs when another master reads the meters: it has
    // no schedule of its own.
    let listening = send == Some(false);
    let given_method = METHOD_KEYS.iter().find_map(|key| table.get(key));
    let method = match (&given_method, listening) {
        (None, true) => None,
        (Some(field), true) => {
            cx.report(
                Severity::Warning,
                field.key_span.clone(),
                format!(
                    "this request only listens (send = false): `{}` is never used",
                    field.key
                ),
                "remove it: the other master on the line decides when the meters are read",
            );
            None
        }
        (_, false) => method(cx, table, events),
    };
    let items = required(cx, table, "items", "items = [\"E1\", \"V1\", 86]")
        .and_then(|field| items(cx, &field, model.flatten()));
    let mut fired = Vec::new();
    let mut event_key = |cx: &mut Context<'_>, key: &'static str| -> Option<Option<String>> {
        let Some(field) = table.get(key) else {
            return Some(None);
        };
        let event = identifier(cx, &field, "event name", &format!("{key} = \"main-done\""))?;
        fired.push((event.clone(), field.span()));
        Some(Some(event))
    };
    let on_complete = event_key(cx, "on_complete");
    let on_failure = event_key(cx, "on_failure");
    let on_info_flag = event_key(cx, "on_info_flag");
    let on_no_data = event_key(cx, "on_no_data");
    let no_data_after = match (table.get("no_data_after"), &on_no_data) {
        (Some(field), _) => {
            let example = "no_data_after = \"1h\"";
            cx.string(&field, example)
                .and_then(|text| match Interval::parse(text) {
                    Ok(interval) => Some(Some(interval.duration())),
                    Err(error) => {
                        cx.error(
                            field.span(),
                            error.to_string(),
                            format!(
                                "a number and a unit (ms, s, min or h), for example: {example}"
                            ),
                        );
                        None
                    }
                })
        }
        (None, Some(Some(_))) => {
            if let Some(field) = table.get("on_no_data") {
                cx.error(
                    field.span(),
                    "`on_no_data` needs `no_data_after`: how long a meter may give no data",
                    "for example: no_data_after = \"1h\"",
                );
            }
            None
        }
        (None, _) => Some(None),
    };
    let mut thresholds = Vec::new();
    if let Some(field) = table.get("threshold") {
        for threshold_table in cx.tables(
            &field,
            "[[bus.request.threshold]]",
            THRESHOLD_KEYS,
            THRESHOLD_EXAMPLE,
        ) {
            let parsed = threshold(cx, &threshold_table, items.as_deref());
            if let (Some(parsed), Some(field)) = (&parsed, threshold_table.get("event")) {
                fired.push((parsed.event.clone(), field.span()));
            }
            thresholds.push(parsed);
        }
    }
    let reads_per_day = optional(table, "reads_per_day", |field| {
        cx.integer_field(field, 1..=i64::from(u32::MAX), "reads_per_day = 96")
            .and_then(|n| u32::try_from(n).ok())
    });
    let backfill = optional(table, "backfill", |field| {
        if listening {
            cx.error(
                field.span(),
                "`backfill` on a request that only listens: another master decides when its meters are read",
                "remove it, or let kmplog poll the meters with send = true",
            );
            return None;
        }
        keyword(cx, field, BACKFILL_LOGGERS, "backfill = \"hourly\"")
    });
    if let Some(Method::Event(awaited)) = &method {
        for (_, span) in fired.iter().filter(|(event, _)| event == awaited) {
            cx.report(
                Severity::Warning,
                span.clone(),
                format!("this request fires `{awaited}`, the event it runs on: it would run again and again"),
                "fire another event, for example: on_complete = \"main-done\"",
            );
        }
    }
    if let (Some(method), Some(Some(budget)), Some(field)) = (
        &method,
        reads_per_day,
        METHOD_KEYS.iter().find_map(|key| table.get(key)),
    ) {
        check_budget(cx, method, budget, &field, table.get("backfill").as_ref());
    }
    events
        .fired
        .extend(fired.into_iter().map(|(event, _)| event));
    Some(RequestConfig {
        description: description?,
        send: send?,
        addresses: addresses?,
        model: model?,
        timeout: timeout?,
        retries: retries?,
        items: items?,
        method: if listening { None } else { Some(method?) },
        on_complete: on_complete?,
        on_failure: on_failure?,
        on_info_flag: on_info_flag?,
        on_no_data: on_no_data?.zip(no_data_after?),
        thresholds: thresholds.into_iter().collect::<Option<_>>()?,
        reads_per_day: reads_per_day?,
        backfill: backfill?,
    })
}

/// Meter addresses: `"1;2;17"`, `[1, 2, 17]` or `63`.
fn addresses(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<Vec<u8>> {
    let example = "addresses = \"1;2;17\"";
    // Each address as written, with its span, before range checks.
    let written: Vec<(String, Range<usize>)> = match field.node.get_ref() {
        DeValue::Integer(_) => vec![(cx.source_of(field.node).replace('_', ""), field.span())],
        DeValue::Array(elements) => {
            let mut written = Vec::new();
            for element in elements.iter() {
                match element.get_ref() {
                    DeValue::Integer(_) => {
                        written.push((cx.source_of(element).replace('_', ""), element.span()))
                    }
                    _ => cx.wrong_type(
                        "addresses",
                        element,
                        "a list of numbers",
                        "addresses = [1, 2, 17]",
                    ),
                }
            }
            written
        }
        DeValue::String(text) if !text.trim().is_empty() => {
            let mut written = Vec::new();
            let mut offset = 0;
            for piece in text.split(';') {
                let leading = piece.len() - piece.trim_start().len();
                let start = text[..offset + leading].chars().count();
                written.push((
                    piece.trim().to_owned(),
                    cx.string_part(
                        field.node,
                        text,
                        start..start + piece.trim().chars().count(),
                    ),
                ));
                offset += piece.len() + 1;
            }
            written
        }
        DeValue::String(_) => Vec::new(),
        _ => {
            cx.wrong_type("addresses", field.node, "a list of addresses", example);
            return None;
        }
    };
    if written.is_empty() {
        cx.error(
            field.span(),
            "no address given",
            format!("give the meter addresses, 1 to 255, for example: {example}"),
        );
        return None;
    }
    let mut addresses = Vec::new();
    let mut valid = true;
    for (text, span) in written {
        let address = match text.parse::<i64>() {
            Ok(number @ 1..=255) => u8::try_from(number).ok(),
            Ok(number) => {
                cx.error(
                    span.clone(),
                    format!("address {number} is out of range: meter addresses are 1 to 255"),
                    format!("for example: {example}"),
                );
                None
            }
            Err(_) if text.is_empty() => {
                cx.error(
                    span.clone(),
                    "empty address in the list",
                    format!("separate addresses with a single ';', for example: {example}"),
                );
                None
            }
            Err(_) => {
                cx.error(
                    span.clone(),
                    format!("`{text}` is not an address"),
                    format!("give numbers 1 to 255 separated by ';', for example: {example}"),
                );
                None
            }
        };
        match address {
            Some(address) if addresses.contains(&address) => {
                cx.error(
                    span,
                    format!("address {address} is listed twice"),
                    format!("list each meter once, for example: {example}"),
                );
                valid = false;
            }
            Some(address) => addresses.push(address),
            None => valid = false,
        }
    }
    valid.then_some(addresses)
}

/// `[models]`: the user's meter type codes, each with its model.
fn models(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<ModelTable> {
    let DeValue::Table(entries) = field.node.get_ref() else {
        cx.wrong_type(
            field.key,
            field.node,
            "a table of meter type codes and models",
            MODELS_EXAMPLE,
        );
        return None;
    };
    let mut table = ModelTable::default();
    let mut seen = HashMap::new();
    let mut valid = true;
    for (index, (key, node)) in entries.iter().enumerate() {
        let written: &str = key.get_ref().as_ref();
        let Some(code) = type_code(written) else {
            cx.error(
                key.span(),
                format!("`{written}` in [models] is not a meter type code"),
                format!("write the type that `kmplog identify` prints, 0x0000 to 0xFFFF, for example:\n{MODELS_EXAMPLE}"),
            );
            valid = false;
            continue;
        };
        if let Some(first) = earlier(&mut seen, format!("0x{code:04X}"), index) {
            cx.error(
                key.span(),
                format!("meter type 0x{code:04X} is given twice in [models] (entry {first} and entry {})", index + 1),
                "keep one model for each type code",
            );
            valid = false;
            continue;
        }
        let entry = Field {
            key: written,
            key_span: key.span(),
            node,
        };
        match model_named(cx, &entry, "\"0x0603\" = \"603\"", "") {
            Some(model) => table.insert(code, model),
            None => valid = false,
        }
    }
    valid.then_some(table)
}

/// A meter type code as `[models]` takes it: `0x0603` (hex, 1 to 4 digits)
/// or a decimal number up to 65535.
fn type_code(text: &str) -> Option<u16> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(digits) if (1..=4).contains(&digits.len()) => u16::from_str_radix(digits, 16).ok(),
        Some(_) => None,
        None if text.bytes().all(|byte| byte.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

fn model(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<Model> {
    model_named(
        cx,
        field,
        "model = \"603\"",
        "; leave `model` out to look names up in every catalogue",
    )
}

/// The model named by the string in `field`; `example` shows the key in
/// use, `advice` ends the hint of an unknown name.
fn model_named(
    cx: &mut Context<'_>,
    field: &Field<'_, '_>,
    example: &str,
    advice: &str,
) -> Option<Model> {
    let text = cx.string(field, example)?;
    let model = Model::from_name(text);
    if model.is_none() {
        let names: Vec<&str> = Model::ALL.iter().map(|model| model.short_name()).collect();
        let suggestion = did_you_mean(text, names.iter().copied())
            .map(|name| format!("did you mean `{name}`? "))
            .unwrap_or_default();
        cx.error(
            field.span(),
            format!("unknown model `{text}`"),
            format!(
                "{suggestion}the models are {}, such as {example}{advice}",
                names.join(", ")
            ),
        );
    }
    model
}

/// The request's one method.
fn method(cx: &mut Context<'_>, table: &Table<'_, '_>, events: &mut Events) -> Option<Method> {
    let mut given: Vec<Field<'_, '_>> = METHOD_KEYS
        .iter()
        .filter_map(|key| table.get(key))
        .collect();
    given.sort_by_key(|field| field.key_span.start);
    if given.is_empty() {
        cx.error(
            table.span.clone(),
            "[[bus.request]] has no method",
            format!("say when it runs with one of: {METHOD_EXAMPLES}"),
        );
    }
    for extra in given.iter().skip(1) {
        cx.error(
            extra.key_span.clone(),
            format!(
                "a request has one method, but `{}` and `{}` are both given",
                given.first().map_or("", |field| field.key),
                extra.key
            ),
            "keep one of them; for two schedules, make two requests",
        );
    }
    let methods: Vec<Option<Method>> = given
        .iter()
        .map(|field| method_of(cx, field, events))
        .collect();
    match methods.as_slice() {
        [method] => method.clone(),
        _ => None,
    }
}

/// The method that `field`, one of [`METHOD_KEYS`], gives.
fn method_of(cx: &mut Context<'_>, field: &Field<'_, '_>, events: &mut Events) -> Option<Method> {
    if field.key == "once" {
        if cx.boolean(field, "once = true")? {
            return Some(Method::Once);
        }
        cx.error(
            field.span(),
            "`once = false` gives the request no method",
            format!("write once = true, or one of: {METHOD_EXAMPLES}"),
        );
        return None;
    }
    if field.key == "event" {
        let event = identifier(cx, field, "event name", "event = \"after-main\"")?;
        events.awaited.push((event.clone(), field.span()));
        return Some(Method::Event(event));
    }
    let hint = match field.key {
        "polling" => "for example: polling = \"30s\" (a number and a unit: ms, s, min or h)",
        "at" => "for example: at = \"11:00:00;11:20:00\" (24-hour hh:mm:ss, separated by ';')",
        _ => {
            "for example: cron = \"0 0 12 * * *\" (second minute hour day-of-month month weekday: every day at 12:00:00)"
        }
    };
    let text = cx.string(field, hint.trim_start_matches("for example: "))?;
    // The characters of the text that the error is about, when it knows.
    let (result, chars) = match field.key {
        "polling" => (
            Interval::parse(text)
                .map(Method::Polling)
                .map_err(|error| error.to_string()),
            None,
        ),
        "at" => match TimesOfDay::parse(text) {
            Ok(times) => (Ok(Method::TimesOfDay(times)), None),
            Err(error) => {
                let chars = match &error {
                    ScheduleError::EmptyTime { position, .. } => Some(*position..position + 1),
                    ScheduleError::BadTime { text, position, .. } => {
                        Some(*position..position + text.chars().count())
                    }
                    _ => None,
                };
                (Err(error.to_string()), chars)
            }
        },
        _ => match Cron::parse(text) {
            Ok(cron) => {
                if cron.lacks_weekday() {
                    cx.report(
                        Severity::Warning,
                        field.span(),
                        format!("`cron = \"{text}\"` has four fields: the weekday is missing, so it fires on any weekday"),
                        format!("write the weekday field to say so: cron = \"{text} *\" (minute hour day-of-month month weekday)"),
                    );
                }
                (Ok(Method::Cron(cron)), None)
            }
            Err(error) => (
                Err(error.to_string()),
                Some(error.position..error.position + error.len.max(1)),
            ),
        },
    };
    result
        .map_err(|message| {
            let span = chars.map_or_else(
                || field.span(),
                |chars| cx.string_part(field.node, text, chars),
            );
            cx.error(span, format!("invalid `{}`: {message}", field.key), hint);
        })
        .ok()
}

/// The registers of a request, 1 to 8, with unique export names.
fn items(cx: &mut Context<'_>, field: &Field<'_, '_>, model: Option<Model>) -> Option<Vec<Item>> {
    let example = "items = [\"E1\", \"V1\", 86]";
    let DeValue::Array(elements) = field.node.get_ref() else {
        cx.wrong_type("items", field.node, "a list of registers", example);
        return None;
    };
    if elements.is_empty() {
        cx.error(
            field.span(),
            "`items` is empty: a request reads 1 to 8 registers",
            format!("for example: {example}"),
        );
        return None;
    }
    if let Some(extra) = elements.get(MAX_REGISTERS) {
        cx.error(
            extra.span(),
            format!("more than {MAX_REGISTERS} items: one request reads at most {MAX_REGISTERS} registers (one KMP frame)"),
            "move the others to another [[bus.request]] with the same addresses",
        );
    }
    let mut names = HashMap::new();
    let mut registers = HashMap::new();
    let mut items = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let item = item(cx, element, model);
        if let Some(item) = &item {
            if let Some(first) = earlier(&mut names, item.export_name.to_ascii_uppercase(), index) {
                cx.error(
                    element.span(),
                    format!("export name `{}` is already used by item {first}", item.export_name),
                    format!("export names are unique within a request; rename one, for example: {{ register = {}, name = \"{}B\" }}", item.register, item.export_name),
                );
            } else if let Some(first) = earlier(&mut registers, item.register.to_string(), index) {
                cx.error(
                    element.span(),
                    format!("register {} is already item {first}", item.register),
                    "read each register once per request",
                );
            }
        }
        items.push(item);
    }
    if elements.len() > MAX_REGISTERS
        || names.len() < elements.len()
        || registers.len() < elements.len()
    {
        return None;
    }
    items.into_iter().collect()
}

/// One item: a catalogue name, a register number or `{ register, name }`.
fn item(cx: &mut Context<'_>, node: &Node<'_>, model: Option<Model>) -> Option<Item> {
    let (register, catalogue_name, name) = match node.get_ref() {
        DeValue::Table(_) => {
            let table = cx.table("items", node, "the item table", ITEM_KEYS, ITEM_EXAMPLE)?;
            let register = required(cx, &table, "register", "register = 5000")
                .and_then(|field| register(cx, field.node, model));
            let name = optional(&table, "name", |field| {
                let name = cx.string(field, "name = \"HEAT1\"")?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    cx.error(
                        field.span(),
                        format!("export name `{name}` may hold only Latin letters and digits"),
                        "for example: name = \"HEAT1\"",
                    );
                    return None;
                }
                Some(name.to_owned())
            });
            let (register, catalogue_name) = register?;
            (register, catalogue_name, name?)
        }
        _ => {
            let (register, catalogue_name) = register(cx, node, model)?;
            (register, catalogue_name, None)
        }
    };
    let export_name = name
        .or_else(|| catalogue_name.map(str::to_owned))
        .unwrap_or_else(|| catalogue::export_name(model, register));
    Some(Item {
        register,
        export_name,
    })
}

/// A register by number or by catalogue name; a name brings its catalogue
/// export name.
fn register(
    cx: &mut Context<'_>,
    node: &Node<'_>,
    model: Option<Model>,
) -> Option<(u16, Option<&'static str>)> {
    let hint = format!(
        "`kmplog registers` lists the names; any other register is read by number: {ITEM_EXAMPLE}"
    );
    match node.get_ref() {
        DeValue::Integer(integer) => match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(number @ 1..=65_535) => u16::try_from(number).ok().map(|id| (id, None)),
            Ok(0) => {
                cx.error(
                    node.span(),
                    "register 0 does not exist: registers are 1 to 65535",
                    hint,
                );
                None
            }
            _ => {
                cx.error(
                    node.span(),
                    format!(
                        "register {} is out of range: registers are 1 to 65535",
                        cx.source_of(node)
                    ),
                    hint,
                );
                None
            }
        },
        DeValue::String(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) => {
            cx.error(
                node.span(),
                format!("register \"{name}\" is a number in quotes"),
                format!("write register numbers without quotes, for example: {name}"),
            );
            None
        }
        DeValue::String(name) => {
            let found = match model {
                Some(model) => model.register_named(name),
                None => catalogue::any_register_named(name),
            };
            if let Some(info) = found {
                return Some((info.id, Some(info.export_name)));
            }
            let models = model.map_or_else(|| Model::ALL.to_vec(), |model| vec![model]);
            let names = models
                .iter()
                .flat_map(|model| model.registers())
                .map(|info| info.export_name);
            let suggestion = did_you_mean(name, names)
                .map(|name| format!("did you mean `{name}`? "))
                .unwrap_or_default();
            let scope = model.map_or_else(
                || "any catalogue".to_owned(),
                |model| format!("the {model} catalogue"),
            );
            cx.error(
                node.span(),
                format!("`{name}` is not in {scope}"),
                format!("{suggestion}{hint}"),
            );
            None
        }
        _ => {
            cx.wrong_type(
                "items",
                node,
                "a catalogue name, a register number or a table",
                "items = [\"E1\", 86, { register = 5000, name = \"CUSTOM1\" }]",
            );
            None
        }
    }
}

/// The value of `key` read by `read`: `Some(None)` when absent, `None` when
/// present and wrong.
fn optional<'t, 'i, T>(
    table: &Table<'t, 'i>,
    key: &'t str,
    read: impl FnOnce(&Field<'t, 'i>) -> Option<T>,
) -> Option<Option<T>> {
    match table.get(key) {
        Some(field) => read(&field).map(Some),
        None => Some(None),
    }
}

fn threshold(
    cx: &mut Context<'_>,
    table: &Table<'_, '_>,
    items: Option<&[Item]>,
) -> Option<Threshold> {
    let export_name = required(cx, table, "item", "item = \"T1\"").and_then(|field| {
        let name = cx.string(&field, "item = \"T1\"")?;
        // Without valid items, their mistakes are reported already.
        let Some(items) = items else {
            return Some(name.to_owned());
        };
        if let Some(item) = items
            .iter()
            .find(|item| item.export_name.eq_ignore_ascii_case(name))
        {
            return Some(item.export_name.clone());
        }
        let names: Vec<&str> = items.iter().map(|item| item.export_name.as_str()).collect();
        cx.error(
            field.span(),
            format!("`{name}` is not an item of this request"),
            format!(
                "watch one of its items ({}), for example: item = \"{}\"",
                names.join(", "),
                names.first().copied().unwrap_or("T1")
            ),
        );
        None
    });
    let above = optional(table, "above", |field| limit(cx, field));
    let below = optional(table, "below", |field| limit(cx, field));
    if table.get("above").is_none() && table.get("below").is_none() {
        cx.error(
            table.span.clone(),
            "[[bus.request.threshold]] has neither `above` nor `below`",
            "give a limit, for example: above = \"90.00\"",
        );
    }
    let event = required(cx, table, "event", "event = \"overheat\"")
        .and_then(|field| identifier(cx, &field, "event name", "event = \"overheat\""));
    let (above, below) = (above?, below?);
    if above.is_none() && below.is_none() {
        return None;
    }
    Some(Threshold {
        export_name: export_name?,
        above,
        below,
        event: event?,
    })
}

/// A limit, exact: a string or a number as written (`90.5` stays 90.5, not
/// the nearest float).
fn limit(cx: &mut Context<'_>, field: &Field<'_, '_>) -> Option<Value> {
    let example = format!("{} = \"90.00\"", field.key);
    let text = match field.node.get_ref() {
        DeValue::String(text) => text.to_string(),
        DeValue::Integer(_) | DeValue::Float(_) => cx.source_of(field.node).replace('_', ""),
        _ => {
            cx.wrong_type(field.key, field.node, "a decimal number", &example);
            return None;
        }
    };
    text.parse::<Value>()
        .map_err(|error| {
            cx.error(
                field.span(),
                format!("invalid `{}`: {error}", field.key),
                format!("for example: {example}"),
            )
        })
        .ok()
}

/// Warns when `method` reads each meter more often a day than `budget`.
/// Warns too when the method takes all of the budget and `backfill` (the
/// request's key, when given) would have no reads left.
fn check_budget(
    cx: &mut Context<'_>,
    method: &Method,
    budget: u32,
    field: &Field<'_, '_>,
    backfill: Option<&Field<'_, '_>>,
) {
    let (runs, what, advice) = match method {
        Method::Polling(interval) => {
            // The shortest whole-second interval within the budget.
            let seconds = 86_400_u32.div_ceil(budget);
            let slower = Interval::parse(&format!("{seconds}s"))
                .map_or_else(|_| format!("{seconds}s"), |interval| interval.to_string());
            (
                86_400_000 / interval.as_millis().max(1),
                format!("polling every {interval}"),
                format!("poll every {slower} or less often"),
            )
        }
        Method::TimesOfDay(times) => (
            fires_per_day(|after| times.next_after(after)),
            "this list of times".to_owned(),
            format!("keep at most {budget} times"),
        ),
        Method::Cron(cron) => {
            let start = day_start();
            let bound = start.as_ref().map(|start| cron.bind(start));
            let runs = bound.map_or(0, |bound| fires_per_day(|after| bound.next_after(after)));
            (
                runs,
                "this cron schedule".to_owned(),
                format!("fire at most {budget} times a day"),
            )
        }
        Method::Once | Method::Event(_) => return,
    };
    if runs > u64::from(budget) {
        cx.report(
            Severity::Warning,
            field.span(),
            format!(
                "{what} reads each meter {runs} times a day, more than reads_per_day = {budget}"
            ),
            format!("{advice}, or raise reads_per_day; every read costs a battery meter's battery"),
        );
    } else if let Some(backfill) = backfill.filter(|_| runs == u64::from(budget)) {
        cx.report(
            Severity::Warning,
            backfill.span(),
            format!(
                "{what} takes all of reads_per_day = {budget}: a backfill would have no reads left"
            ),
            "raise reads_per_day by a few reads per outage (the meter's clock and serial number, then a page per few dozen rows), for example: reads_per_day = ".to_owned()
                + &(budget + 8).to_string(),
        );
    }
}

/// The last second before a day, in UTC, where every day has 24 hours: the
/// first fire strictly after it is the earliest of its day.
fn day_start() -> Option<ZonedDateTime> {
    jiff::civil::date(2024, 12, 31)
        .at(23, 59, 59, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .ok()
}

/// How many times a daily pattern fires on a day it fires on, given its
/// "next fire strictly after" function: the fires in the 24 hours from the
/// earliest of a day hold exactly that day's (schedules repeat the same
/// times on every day they fire).
fn fires_per_day(next_after: impl Fn(&ZonedDateTime) -> Option<ZonedDateTime>) -> u64 {
    let Some(first) = day_start().and_then(|start| next_after(&start)) else {
        return 0;
    };
    let Ok(end) = first
        .timestamp()
        .checked_add(SignedDuration::from_hours(24))
    else {
        return 0;
    };
    let mut count = 1;
    let mut at = first;
    while let Some(next) = next_after(&at).filter(|next| next.timestamp() < end) {
        count += 1;
        at = next;
    }
    count
}
