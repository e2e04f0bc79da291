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
use crate::config::edit::{self, Direction, EditError, NewBus, NewRequest, QueueFile, RequestRef};
use crate::config::{self, BusConfig, BusEndpoint, Diagnostics, RequestConfig, Severity};
use crate::reload::{Refused, Reloader};

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
    }
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
    json!({
        "name": bus.name,
        "line": line,
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
    json!({
        "description": request.description,
        "send": request.send,
        "addresses": addresses.join(";"),
        "model": request.model.map(Model::short_name),
        "timeout_ms": u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
        "retries": request.retries,
        "items": items,
        "method": method,
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
        fields: RequestFields,
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
            Edit::Set { bus, request, .. } => format!("bus '{bus}': request {request} edited"),
            Edit::AddBus { bus, .. } => format!("bus '{bus}' added"),
            Edit::RemoveBus { bus } => format!("bus '{bus}' removed"),
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
            } => file.set(bus, &RequestRef::Position(*request), &fields.keys()),
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
                let key = match kind {
                    LineKind::Serial => "serial",
                    LineKind::Tcp => "tcp",
                    LineKind::Udp => "udp",
                };
                file.add_bus(&NewBus {
                    name: bus.clone(),
                    line: (key, address.clone()),
                    options,
                })
            }
            Edit::RemoveBus { bus } => file.remove_bus(bus),
        }
    }
}

impl RequestFields {
    /// The keys to set (`Some`) and remove (`None`).
    fn keys(&self) -> Vec<(String, Option<Value>)> {
        let mut keys: Vec<(String, Option<Value>)> = Vec::new();
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
    let text = read(file)?;
    if version_of(&text) != edits.version {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} changed since the editor loaded it (edited by hand?); nothing was saved: load it again and redo the changes",
                file.display()
            ),
        ));
    }
    let file_name = file.display().to_string();
    let mut text = text;
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
    let text = edited(&reloader.file, &edits)?;
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
