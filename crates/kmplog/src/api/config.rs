//! The configuration as the web console's editor reads and saves it, and
//! the reload:
//!
//! - `GET /api/config`: every bus with its line and every request with
//!   every field the editor shows, and the file's version (a hash of its
//!   bytes);
//! - `PUT /api/config`: a list of edits made against that version (add,
//!   rename, remove, move, set keys of a request, add or remove a bus),
//!   written through the code `kmplog queue` uses ([`crate::config::edit`]:
//!   comments and layout kept), then reloaded. 409 when the file changed
//!   since the version (edited by hand), 422 with each mistake at its field,
//!   in the words of `kmplog check`, when the edits leave mistakes: then
//!   nothing is written;
//! - `POST /api/config/check`: the same check without saving, for the
//!   mistakes as the user types;
//! - `POST /api/reload`: reload the file as it is (SIGHUP, `kmplog reload`);
//! - `GET /api/cron?expression=`: the next five fire times, in the logger's
//!   time zone; `GET /api/registers?model=`: a model's catalogue.
//!
//! Every save is logged with its edits; what the reload changed is logged
//! by [`crate::reload`].

use std::hash::{Hash, Hasher};
use std::path::Path;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kmp::catalogue::{self, Model};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use toml_edit::{Array, InlineTable, Value};
use tracing::info;

use super::{ApiError, ApiState};
use crate::bus::EchoMode;
use crate::config::edit::{
    self, Direction, EditError, NewBus, NewRequest, NewThreshold, QueueFile, RequestRef,
};
use crate::config::{self, BusConfig, BusEndpoint, Diagnostics, RequestConfig, Severity};
use crate::reload::{PortRefused, Refused, Reloader};

/// The version of a file's text: it changes when any byte does.
pub fn version_of(text: &str) -> String {
    // SipHash with fixed keys: the same text gives the same version for
    // the life of the logger, which is all a save compares.
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn reloader(state: &ApiState) -> Result<&Reloader, ApiError> {
    state.reloader.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this logger runs no configuration file (kmplog demo), so there is nothing to edit or reload; start one with `kmplog run FILE`",
        )
    })
}

fn read(file: &Path) -> Result<String, ApiError> {
    std::fs::read_to_string(file).map_err(|error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read {}: {error}", file.display()),
        )
    })
}

/// `POST /api/reload`.
pub async fn reload(State(state): State<ApiState>) -> Response {
    let reloader = match reloader(&state) {
        Ok(reloader) => reloader,
        Err(error) => return error.into_response(),
    };
    let file_name = reloader.file.display().to_string();
    let text = std::fs::read_to_string(&reloader.file).unwrap_or_default();
    reloaded(reloader.reload("POST /api/reload").await, &file_name, &text)
}

/// The answer to a reload: what it did, or 422 with the mistakes.
fn reloaded(
    outcome: Result<crate::reload::Reloaded, Refused>,
    file_name: &str,
    text: &str,
) -> Response {
    match outcome {
        Ok(reloaded) => Json(json!({ "reload": reloaded.to_json() })).into_response(),
        Err(Refused::Invalid(diagnostics)) => invalid(
            &diagnostics,
            file_name,
            text,
            &format!(
                "{file_name} has {}, so nothing was reloaded",
                mistakes(&diagnostics)
            ),
        ),
        Err(Refused::Unavailable(why)) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response()
        }
        Err(Refused::Port(port)) => port_refused(&port, file_name, text),
    }
}

/// 422 for a serial port the reload could not open, the mistake at the
/// bus's `serial` field.
fn port_refused(port: &PortRefused, file_name: &str, text: &str) -> Response {
    let at = serial_line_of(text, port.index).map_or_else(
        || file_name.to_owned(),
        |line| format!("{file_name}:{line}"),
    );
    let body = json!({
        "error": port.to_string(),
        "diagnostics": [{
            "severity": "error",
            "at": at,
            "message": format!("bus {}: {}", port.bus, port.error),
            "hint": "connect the device or free the port, or give another one; the bus runs on its old line until then",
            "bus": port.index,
            "request": null,
            "field": "serial",
        }],
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// `line:column` of the `serial` value of bus `index` in `text`.
fn serial_line_of(text: &str, index: usize) -> Option<String> {
    let document = toml_edit::Document::parse(text).ok()?;
    let bus = document.get("bus")?.as_array_of_tables()?.get(index)?;
    let start = bus.get("serial")?.span()?.start;
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    Some(format!("{line}:{column}"))
}

/// `1 mistake`, `2 mistakes`.
fn mistakes(diagnostics: &Diagnostics) -> String {
    match diagnostics.count(Severity::Error) {
        1 => "1 mistake".to_owned(),
        count => format!("{count} mistakes"),
    }
}

/// 422 with every mistake: `{"error": summary, "diagnostics": [...]}`.
fn invalid(diagnostics: &Diagnostics, file_name: &str, text: &str, summary: &str) -> Response {
    let body = json!({
        "error": summary,
        "diagnostics": diagnostics_json(diagnostics, file_name, text),
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// Each diagnostic with its place (`kmplog.toml:8:11`) and its field:
/// bus and request by 0-based index, and the key.
fn diagnostics_json(diagnostics: &Diagnostics, file_name: &str, text: &str) -> Vec<JsonValue> {
    diagnostics
        .list()
        .iter()
        .map(|diagnostic| {
            let (at, field) = match &diagnostic.location {
                Some(location) => (
                    format!("{file_name}:{}:{}", location.line, location.column),
                    edit::field_at(text, location.span.start),
                ),
                None => (file_name.to_owned(), None),
            };
            json!({
                "severity": diagnostic.severity.to_string(),
                "at": at,
                "message": diagnostic.message,
                "hint": diagnostic.hint,
                "bus": field.as_ref().map(|field| field.bus),
                "request": field.as_ref().and_then(|field| field.request),
                "field": field.and_then(|field| field.key),
            })
        })
        .collect()
}

/// `GET /api/config`.
pub async fn get(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let reloader = reloader(&state)?;
    let file_name = reloader.file.display().to_string();
    let text = read(&reloader.file)?;
    let version = version_of(&text);
    match config::parse(&text, &file_name) {
        Ok((config, _)) => Ok(Json(json!({
            "file": file_name,
            "version": version,
            "time_zone": config.time_zone,
            // For the editor's model picker.
            "models": Model::ALL
                .iter()
                .map(|model| json!({ "model": model.short_name(), "name": model.name() }))
                .collect::<Vec<_>>(),
            "buses": config.buses.iter().map(bus_json).collect::<Vec<_>>(),
        }))
        .into_response()),
        Err(diagnostics) => {
            let summary = format!(
                "{file_name} has {}; `kmplog check {file_name}` shows them",
                mistakes(&diagnostics)
            );
            Ok(invalid(&diagnostics, &file_name, &text, &summary))
        }
    }
}

fn bus_json(bus: &BusConfig) -> JsonValue {
    let line = match &bus.endpoint {
        BusEndpoint::Serial(settings) => json!({
            "kind": "serial",
            "address": settings.path.display().to_string(),
            "baud": settings.baud,
            // `/dev/ttyUSB0 1200 8N2`: its last word.
            "framing": settings.to_string().rsplit(' ').next().unwrap_or_default().to_owned(),
        }),
        BusEndpoint::Tcp(settings) => json!({
            "kind": "tcp",
            "address": settings.address,
            "connect_timeout_ms": u64::try_from(settings.connect_timeout.as_millis()).unwrap_or(u64::MAX),
        }),
        BusEndpoint::Udp { address } => json!({ "kind": "udp", "address": address }),
    };
    let echo = match bus.echo {
        EchoMode::Auto => "auto",
        EchoMode::On => "on",
        EchoMode::Off => "off",
    };
    json!({
        "name": bus.name,
        "line": line,
        "echo": echo,
        "retry_pause_ms": u64::try_from(bus.retry_pause.as_millis()).unwrap_or(u64::MAX),
        "requests": bus.requests.iter().map(request_json).collect::<Vec<_>>(),
    })
}

fn request_json(request: &RequestConfig) -> JsonValue {
    use kmp_schedule::Method;
    let items: Vec<JsonValue> = request
        .items
        .iter()
        .map(|item| {
            let named = catalogue::lookup(request.model, item.register)
                .filter(|info| info.export_name == item.export_name);
            json!({
                "register": named.map_or_else(|| item.register.to_string(), |info| info.export_name.to_owned()),
                "export_name": item.export_name,
            })
        })
        .collect();
    let method = match &request.method {
        None => json!({ "kind": "listen" }),
        Some(Method::Once) => json!({ "kind": "once" }),
        Some(Method::Polling(interval)) => {
            json!({ "kind": "polling", "value": interval.to_string() })
        }
        Some(Method::TimesOfDay(times)) => json!({ "kind": "at", "value": times.to_string() }),
        Some(Method::Cron(cron)) => json!({ "kind": "cron", "value": cron.to_string() }),
        Some(Method::Event(name)) => json!({ "kind": "event", "value": name }),
    };
    let addresses: Vec<String> = request.addresses.iter().map(u8::to_string).collect();
    let thresholds: Vec<JsonValue> = request
        .thresholds
        .iter()
        .map(|threshold| {
            let limit = |value: &Option<kmp::Value>| value.map(|value| value.to_string());
            json!({
                "item": threshold.export_name,
                "above": limit(&threshold.above),
                "below": limit(&threshold.below),
                "event": threshold.event,
            })
        })
        .collect();
    let (on_no_data, no_data_after) = match &request.on_no_data {
        Some((event, after)) => (
            Some(event.clone()),
            // `1h` rather than `3600000ms`: the interval's own shortest form.
            Some({
                let millis = format!("{}ms", after.as_millis());
                kmp_schedule::Interval::parse(&millis)
                    .map_or(millis, |interval| interval.to_string())
            }),
        ),
        None => (None, None),
    };
    json!({
        "description": request.description,
        "send": request.send,
        "addresses": addresses.join(";"),
        "model": request.model.map(Model::short_name),
        "timeout_ms": u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
        "retries": request.retries,
        "items": items,
        "method": method,
        "on_complete": request.on_complete,
        "on_failure": request.on_failure,
        "on_info_flag": request.on_info_flag,
        "on_no_data": on_no_data,
        "no_data_after": no_data_after,
        "reads_per_day": request.reads_per_day,
        "backfill": request.backfill.and_then(kmp::logger::Logger::name),
        "thresholds": thresholds,
    })
}

/// A save or a check: edits made against the file at `version`.
#[derive(Debug, Deserialize)]
pub struct Edits {
    /// The version the editor loaded.
    version: String,
    /// In the order they were made.
    #[serde(default)]
    edits: Vec<Edit>,
}

/// One edit, as the editor sends it; requests by 1-based position.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Edit {
    Add {
        bus: String,
        description: String,
    },
    Rename {
        bus: String,
        request: usize,
        description: String,
    },
    Remove {
        bus: String,
        request: usize,
    },
    Move {
        bus: String,
        request: usize,
        up: bool,
    },
    Set {
        bus: String,
        request: usize,
        fields: Box<RequestFields>,
    },
    AddBus {
        bus: String,
        kind: LineKind,
        address: String,
        #[serde(default)]
        baud: Option<u32>,
        #[serde(default)]
        framing: Option<String>,
        #[serde(default)]
        connect_timeout_ms: Option<u64>,
    },
    RemoveBus {
        bus: String,
    },
    SetBus {
        bus: String,
        fields: BusFields,
    },
}

/// The keys of a bus that an edit sets; those left out stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusFields {
    /// With `address`: the line; the keys of other kinds of line go.
    kind: Option<LineKind>,
    address: Option<String>,
    baud: Option<i64>,
    /// `""` removes it (8N2).
    framing: Option<String>,
    connect_timeout_ms: Option<i64>,
    /// `""` removes it (auto).
    echo: Option<String>,
    retry_pause_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineKind {
    Serial,
    Tcp,
    Udp,
}

/// The fields of a request that an edit sets; those left out stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFields {
    send: Option<bool>,
    addresses: Option<String>,
    /// `""` removes the model.
    model: Option<String>,
    timeout_ms: Option<i64>,
    retries: Option<i64>,
    items: Option<Vec<ItemField>>,
    method: Option<MethodField>,
    /// Event names; `""` removes the key.
    on_complete: Option<String>,
    on_failure: Option<String>,
    on_info_flag: Option<String>,
    on_no_data: Option<String>,
    /// `"1h"`; `""` removes it.
    no_data_after: Option<String>,
    /// A number as typed; `""` removes it.
    reads_per_day: Option<String>,
    /// The logger to backfill from (`"hourly"`, `"daily"`); `""` removes it.
    backfill: Option<String>,
    /// Replaces every threshold.
    thresholds: Option<Vec<ThresholdField>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdField {
    item: String,
    #[serde(default)]
    above: String,
    #[serde(default)]
    below: String,
    event: String,
}

#[derive(Debug, Deserialize)]
struct ItemField {
    /// A catalogue name (`E1`) or a number (`5000`), as typed.
    register: String,
    /// Empty: the catalogue's name.
    #[serde(default)]
    export_name: String,
}

#[derive(Debug, Deserialize)]
struct MethodField {
    /// `once`, `polling`, `at`, `cron`, `event`.
    kind: String,
    #[serde(default)]
    value: String,
}

/// The keys of the methods, of which a request has one.
const METHOD_KEYS: [&str; 5] = ["once", "polling", "at", "cron", "event"];

impl Edit {
    fn describe(&self) -> String {
        match self {
            Edit::Add { bus, description } => format!("bus '{bus}': request '{description}' added"),
            Edit::Rename {
                bus,
                request,
                description,
            } => format!("bus '{bus}': request {request} renamed to '{description}'"),
            Edit::Remove { bus, request } => format!("bus '{bus}': request {request} removed"),
            Edit::Move { bus, request, up } => format!(
                "bus '{bus}': request {request} moved {}",
                if *up { "up" } else { "down" }
            ),
            Edit::Set {
                bus,
                request,
                fields,
            } => {
                format!(
                    "bus '{bus}': request {request} edited: {}",
                    set_in_words(fields.keys(), fields.thresholds.as_ref().map(|t| t.len()))
                )
            }
            Edit::AddBus { bus, .. } => format!("bus '{bus}' added"),
            Edit::RemoveBus { bus } => format!("bus '{bus}' removed"),
            Edit::SetBus { bus, fields } => {
                format!("bus '{bus}' edited: {}", set_in_words(fields.keys(), None))
            }
        }
    }

    /// `text` with this edit made, not validated.
    fn apply(&self, text: &str, file_name: &str) -> Result<String, EditError> {
        let file = QueueFile::lenient(text, file_name)?;
        match self {
            Edit::Add { bus, description } => file.add(
                bus,
                &NewRequest {
                    description: description.clone(),
                    addresses: "1".to_owned(),
                    items: vec!["1001".to_owned()],
                    method: ("once", String::new()),
                },
                None,
            ),
            Edit::Rename {
                bus,
                request,
                description,
            } => file.rename(bus, &RequestRef::Position(*request), description),
            Edit::Remove { bus, request } => file.remove(bus, &RequestRef::Position(*request)),
            Edit::Move { bus, request, up } => file.move_request(
                bus,
                &RequestRef::Position(*request),
                if *up { Direction::Up } else { Direction::Down },
            ),
            Edit::Set {
                bus,
                request,
                fields,
            } => {
                let which = RequestRef::Position(*request);
                let text = file.set(bus, &which, &fields.keys())?;
                match &fields.thresholds {
                    None => Ok(text),
                    Some(thresholds) => {
                        let thresholds: Vec<NewThreshold> = thresholds
                            .iter()
                            .map(|threshold| NewThreshold {
                                item: threshold.item.trim().to_owned(),
                                above: threshold.above.clone(),
                                below: threshold.below.clone(),
                                event: threshold.event.trim().to_owned(),
                            })
                            .collect();
                        QueueFile::lenient(&text, file_name)?.set_thresholds(
                            bus,
                            &which,
                            &thresholds,
                        )
                    }
                }
            }
            Edit::SetBus { bus, fields } => file.set_bus(bus, &fields.keys()),
            Edit::AddBus {
                bus,
                kind,
                address,
                baud,
                framing,
                connect_timeout_ms,
            } => {
                let mut options: Vec<(String, Value)> = Vec::new();
                if let (LineKind::Serial, Some(baud)) = (kind, baud) {
                    options.push(("baud".to_owned(), Value::from(i64::from(*baud))));
                }
                if let (LineKind::Serial, Some(framing)) = (kind, framing) {
                    options.push(("framing".to_owned(), Value::from(framing.as_str())));
                }
                if let (LineKind::Tcp, Some(timeout)) = (kind, connect_timeout_ms) {
                    let timeout = i64::try_from(*timeout).unwrap_or(i64::MAX);
                    options.push(("connect_timeout_ms".to_owned(), Value::from(timeout)));
                }
                file.add_bus(&NewBus {
                    name: bus.clone(),
                    line: (kind.key(), address.clone()),
                    options,
                })
            }
            Edit::RemoveBus { bus } => file.remove_bus(bus),
        }
    }
}

/// The keys an edit sets and removes, for the log: `model = "403",
/// on_failure removed, 2 thresholds`.
fn set_in_words(keys: Vec<(String, Option<Value>)>, thresholds: Option<usize>) -> String {
    let mut words: Vec<String> = keys
        .into_iter()
        .map(|(key, value)| match value {
            Some(value) => format!("{key} = {}", value.to_string().trim()),
            None => format!("{key} removed"),
        })
        .collect();
    match thresholds {
        Some(1) => words.push("1 threshold".to_owned()),
        Some(count) => words.push(format!("{count} thresholds")),
        None => {}
    }
    if words.is_empty() {
        "nothing".to_owned()
    } else {
        words.join(", ")
    }
}

/// A key set to `text`, or removed when `text` is empty.
fn text_or_removed(key: &str, text: &str) -> (String, Option<Value>) {
    let text = text.trim();
    (
        key.to_owned(),
        (!text.is_empty()).then(|| Value::from(text)),
    )
}

impl BusFields {
    /// The keys to set (`Some`) and remove (`None`).
    fn keys(&self) -> Vec<(String, Option<Value>)> {
        let mut keys: Vec<(String, Option<Value>)> = Vec::new();
        if let (Some(kind), Some(address)) = (self.kind, &self.address) {
            let key = kind.key();
            for other in ["serial", "tcp", "udp"] {
                if other != key {
                    keys.push((other.to_owned(), None));
                }
            }
            keys.push((key.to_owned(), Some(Value::from(address.trim()))));
            // Options of another kind of line would be mistakes.
            if !matches!(kind, LineKind::Serial) {
                keys.push(("baud".to_owned(), None));
                keys.push(("framing".to_owned(), None));
            }
            if !matches!(kind, LineKind::Tcp) {
                keys.push(("connect_timeout_ms".to_owned(), None));
            }
        }
        for (key, number) in [
            ("baud", self.baud),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("retry_pause_ms", self.retry_pause_ms),
        ] {
            if let Some(number) = number {
                keys.retain(|(other, _)| other != key);
                keys.push((key.to_owned(), Some(Value::from(number))));
            }
        }
        for (key, text) in [("framing", &self.framing), ("echo", &self.echo)] {
            if let Some(text) = text {
                keys.retain(|(other, _)| other != key);
                keys.push(text_or_removed(key, text));
            }
        }
        keys
    }
}

impl LineKind {
    /// The bus key that holds a line of this kind.
    fn key(self) -> &'static str {
        match self {
            LineKind::Serial => "serial",
            LineKind::Tcp => "tcp",
            LineKind::Udp => "udp",
        }
    }
}

impl RequestFields {
    /// The keys to set (`Some`) and remove (`None`); thresholds, which are
    /// tables of their own, apart.
    fn keys(&self) -> Vec<(String, Option<Value>)> {
        let mut keys: Vec<(String, Option<Value>)> = Vec::new();
        for (key, text) in [
            ("on_complete", &self.on_complete),
            ("on_failure", &self.on_failure),
            ("on_info_flag", &self.on_info_flag),
            ("on_no_data", &self.on_no_data),
            ("no_data_after", &self.no_data_after),
            ("backfill", &self.backfill),
        ] {
            if let Some(text) = text {
                keys.push(text_or_removed(key, text));
            }
        }
        if let Some(reads) = &self.reads_per_day {
            let (key, value) = text_or_removed("reads_per_day", reads);
            // A number stays a number; anything else is written as typed, for
            // the check to say what is wrong with it.
            let value = value.map(|value| match reads.trim().parse::<i64>() {
                Ok(number) => Value::from(number),
                Err(_) => value,
            });
            keys.push((key, value));
        }
        let mut set = |key: &str, value: Option<Value>| keys.push((key.to_owned(), value));
        if let Some(send) = self.send {
            set("send", Some(Value::from(send)));
        }
        if let Some(addresses) = &self.addresses {
            set("addresses", Some(Value::from(addresses.as_str())));
        }
        if let Some(model) = &self.model {
            set(
                "model",
                (!model.is_empty()).then(|| Value::from(model.as_str())),
            );
        }
        if let Some(timeout) = self.timeout_ms {
            set("timeout_ms", Some(Value::from(timeout)));
        }
        if let Some(retries) = self.retries {
            set("retries", Some(Value::from(retries)));
        }
        if let Some(items) = &self.items {
            let mut array = Array::new();
            for item in items {
                array.push(item.to_value());
            }
            set("items", Some(Value::Array(array)));
        }
        if let Some(method) = &self.method {
            for key in METHOD_KEYS {
                if key != method.kind {
                    set(key, None);
                }
            }
            match method.kind.as_str() {
                "once" => set("once", Some(Value::from(true))),
                kind if METHOD_KEYS.contains(&kind) => {
                    set(kind, Some(Value::from(method.value.as_str())));
                }
                // A listening request has no method.
                _ => {}
            }
        }
        keys
    }
}

impl ItemField {
    /// `"E1"`, `5000`, or `{ register = 5000, name = "CUSTOM1" }`: the
    /// shortest form that says it.
    fn to_value(&self) -> Value {
        let register = self.register.trim();
        let export_name = self.export_name.trim();
        let register_value = match register.parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::from(register),
        };
        if export_name.is_empty() || export_name == register {
            return register_value;
        }
        let mut table = InlineTable::new();
        table.insert("register", register_value);
        table.insert("name", Value::from(export_name));
        Value::InlineTable(table)
    }
}

/// What edits against the file would give: the new text, or why they
/// cannot be made (409 for another version, 400 for an edit that names
/// what is not there).
fn edited(file: &Path, edits: &Edits) -> Result<String, ApiError> {
    edited_from(&read(file)?, file, edits)
}

/// What edits against `text`, the file `file` now, would give.
fn edited_from(text: &str, file: &Path, edits: &Edits) -> Result<String, ApiError> {
    if version_of(text) != edits.version {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} changed since the editor loaded it (edited by hand?); nothing was saved: load it again and redo the changes",
                file.display()
            ),
        ));
    }
    let file_name = file.display().to_string();
    let mut text = text.to_owned();
    for edit in &edits.edits {
        text = edit
            .apply(&text, &file_name)
            .map_err(|error| ApiError::bad_request(format!("{}: {error}", edit.describe())))?;
    }
    Ok(text)
}

/// `POST /api/config/check`: the mistakes the edits would leave.
pub async fn check(
    State(state): State<ApiState>,
    Json(edits): Json<Edits>,
) -> Result<Json<JsonValue>, ApiError> {
    let reloader = reloader(&state)?;
    let file_name = reloader.file.display().to_string();
    let text = edited(&reloader.file, &edits)?;
    let diagnostics = match config::parse(&text, &file_name) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics_json(&diagnostics, &file_name, &text),
    };
    Ok(Json(json!({ "diagnostics": diagnostics })))
}

/// `PUT /api/config`: writes the edits and reloads.
pub async fn save(
    State(state): State<ApiState>,
    Json(edits): Json<Edits>,
) -> Result<Response, ApiError> {
    let reloader = reloader(&state)?;
    let file_name = reloader.file.display().to_string();
    let before = read(&reloader.file)?;
    let text = edited_from(&before, &reloader.file, &edits)?;
    if let Err(diagnostics) = config::parse(&text, &file_name) {
        let summary = format!(
            "the edits leave {} in {file_name}, so nothing was saved",
            mistakes(&diagnostics)
        );
        return Ok(invalid(&diagnostics, &file_name, &text, &summary));
    }
    edit::replace(&reloader.file, &text).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write {file_name}: {error}"),
        )
    })?;
    for edit in &edits.edits {
        info!(file = %file_name, change = %edit.describe(), "configuration edited in the web console");
    }
    match reloader.reload("PUT /api/config").await {
        Ok(reloaded) => Ok(Json(json!({
            "version": version_of(&text),
            "reload": reloaded.to_json(),
        }))
        .into_response()),
        Err(Refused::Port(port)) => {
            // The logger runs the file as it was: so the file stays as it
            // was, and the page keeps its edits to fix the port and save again.
            edit::replace(&reloader.file, &before).map_err(|error| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{port}; and {file_name} now holds the edits, because it cannot be written back: {error}"),
                )
            })?;
            info!(file = %file_name, reason = %port, "the file is as it was again: the reload was refused");
            Ok(port_refused(&port, &file_name, &text))
        }
        refused => Ok(reloaded(refused, &file_name, &text)),
    }
}

/// `GET /api/cron?expression=` query.
#[derive(Debug, Deserialize)]
pub struct CronQuery {
    expression: String,
}

/// `GET /api/cron`: the next five fire times in the logger's time zone.
pub async fn cron(
    State(state): State<ApiState>,
    Query(query): Query<CronQuery>,
) -> Result<Json<JsonValue>, ApiError> {
    let cron = kmp_schedule::Cron::parse(&query.expression)
        .map_err(|error| ApiError::bad_request(format!("invalid cron expression: {error}")))?;
    let zone = state
        .buses
        .snapshots()
        .into_iter()
        .find_map(|bus| bus.time_zone)
        .and_then(|name| jiff::tz::TimeZone::get(&name).ok())
        .unwrap_or_else(jiff::tz::TimeZone::system);
    let start = jiff::Timestamp::now().to_zoned_datetime(zone);
    let times: Vec<String> = crate::cli::cron::fire_times(cron, &start, 5)
        .iter()
        .map(|fire| fire.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .collect();
    Ok(Json(json!({ "times": times })))
}

/// `GET /api/registers?model=` query.
#[derive(Debug, Deserialize)]
pub struct RegistersQuery {
    model: String,
}

/// `GET /api/registers`: a model's catalogue, for the editor's register
/// picker.
pub async fn registers(Query(query): Query<RegistersQuery>) -> Result<Json<JsonValue>, ApiError> {
    let model = Model::from_name(&query.model).ok_or_else(|| {
        let known: Vec<&str> = Model::ALL.iter().map(|model| model.short_name()).collect();
        ApiError::bad_request(format!(
            "no meter model '{}'; models: {}",
            query.model,
            known.join(", ")
        ))
    })?;
    let registers: Vec<JsonValue> = model
        .registers()
        .iter()
        .map(|info| json!({ "id": info.id, "name": info.name, "export_name": info.export_name }))
        .collect();
    Ok(Json(
        json!({ "model": model.short_name(), "registers": registers }),
    ))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
