//! The HTTP API of a running logger, bound to 127.0.0.1 by default:
//!
//! - `POST /api/events/{name}` fires a named event (what `kmplog trigger`
//!   sends), 404 when no request waits for it; `GET /api/buses` shows every bus with its queue and state;
//! - `GET /api/readings` answers from the SQLite sink's database, with
//!   filters and a cursor ([`readings`]); `GET /api/readings/stream` sends
//!   every reading as it is read, as server-sent events that a client
//!   resumes with `Last-Event-ID` ([`feed`]);
//! - `GET /metrics`: the latest values and the logger's own health in the
//!   Prometheus text format ([`metrics`]);
//! - `GET /api/openapi.json`: the description of all of these, written by
//!   hand in `openapi.json` and checked against the router by a test.
//!
//! With a token every request needs `Authorization: Bearer TOKEN`; without
//! one the API refuses to listen anywhere but on a loopback address
//! ([`check_bind`]), since anyone who reaches it could fire events. Every
//! request passes [`guard`] first (Host, Origin, sizes), and [`server`]
//! bounds connections and header time. Every error is JSON,
//! `{"error": "..."}`, with a 4xx status for a bad request.

pub mod buses;
pub mod config;
pub mod feed;
pub mod guard;
pub mod history;
pub mod metrics;
pub mod readings;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bus::events::EventRouter;
use crate::bus::state::BusList;
use crate::live::Latest;
use crate::outbox::OutboxReader;
use crate::reading::LiveBatch;
use feed::Feed;
use server::Limits;

/// The OpenAPI 3.1 description of every route, served as is.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers reach.
#[derive(Clone)]
pub struct ApiState {
    /// Hands events to the buses that wait for them.
    pub events: EventRouter,
    /// The buses' states (a reload replaces them).
    pub buses: BusList,
    /// The latest reading of every register, for `/metrics`.
    pub latest: Arc<Mutex<Latest>>,
    /// The latest readings and the live clients.
    pub feed: Feed,
    /// The SQLite sink's database, which `/api/readings` reads; `None` when
    /// the SQLite sink is off.
    pub database: Option<PathBuf>,
    /// The outbox, for the depth of each sink in `/metrics`.
    pub outbox: Option<Arc<Mutex<OutboxReader>>>,
    /// The token every request must bear; `None`: no authentication
    /// (allowed on loopback addresses only).
    pub token: Option<Arc<str>>,
    /// Cancelled when the server stops, so that live streams end.
    pub shutdown: CancellationToken,
    /// The address the API listens on, which decides the `Host`s it
    /// answers to ([`guard`]).
    pub bind: SocketAddr,
    /// Further names the API answers to (`--api-name`).
    pub host_names: Vec<String>,
    /// Permits for the readings queries answered at once.
    pub readings_queries: Arc<tokio::sync::Semaphore>,
    /// What the API holds at most.
    pub limits: Limits,
    /// Reloads the running logger's configuration file; `None` when it
    /// runs none (the demo, tests of other parts).
    pub reloader: Option<crate::reload::Reloader>,
    /// What this instance knows of its cluster; `None` without `[cluster]`.
    pub cluster: Option<crate::cluster::ClusterView>,
}

impl ApiState {
    /// A state with no database, no outbox and no token around `events`,
    /// `buses`, `latest` and `live`, bound to 127.0.0.1 with the default
    /// limits. Starts the live feed, so it needs a Tokio runtime.
    pub fn new(
        events: EventRouter,
        buses: impl Into<BusList>,
        latest: Arc<Mutex<Latest>>,
        live: broadcast::Sender<LiveBatch>,
    ) -> Self {
        Self::with_limits(events, buses, latest, live, Limits::default())
    }

    /// [`ApiState::new`] within `limits`.
    pub fn with_limits(
        events: EventRouter,
        buses: impl Into<BusList>,
        latest: Arc<Mutex<Latest>>,
        live: broadcast::Sender<LiveBatch>,
        limits: Limits,
    ) -> Self {
        ApiState {
            events,
            buses: buses.into(),
            latest,
            feed: Feed::start(&live, limits.replay_readings, limits.stream_backlog),
            database: None,
            outbox: None,
            token: None,
            shutdown: CancellationToken::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 7064)),
            host_names: Vec::new(),
            readings_queries: Arc::new(tokio::sync::Semaphore::new(limits.readings_queries)),
            limits,
            reloader: None,
            cluster: None,
        }
    }
}

/// An error answer: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here is a busy or briefly unreadable resource.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Every route: method, path and handler. The router is built from this
/// list, and a test checks it against `openapi.json` both ways.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<ApiState>)> {
    vec![
        (
            Method::POST,
            "/api/events/{name}",
            on(MethodFilter::POST, fire_event),
        ),
        (
            Method::GET,
            "/api/buses",
            on(MethodFilter::GET, buses::list),
        ),
        (Method::GET, "/api/cluster", on(MethodFilter::GET, cluster)),
        (
            Method::POST,
            "/api/reload",
            on(MethodFilter::POST, config::reload),
        ),
        (
            Method::GET,
            "/api/config",
            on(MethodFilter::GET, config::get),
        ),
        (
            Method::PUT,
            "/api/config",
            on(MethodFilter::PUT, config::save),
        ),
        (
            Method::POST,
            "/api/config/check",
            on(MethodFilter::POST, config::check),
        ),
        (
            Method::GET,
            "/api/cron",
            on(MethodFilter::GET, config::cron),
        ),
        (
            Method::GET,
            "/api/registers",
            on(MethodFilter::GET, config::registers),
        ),
        (
            Method::GET,
            "/api/readings",
            on(MethodFilter::GET, readings::list),
        ),
        (
            Method::GET,
            "/api/history",
            on(MethodFilter::GET, history::history),
        ),
        (
            Method::GET,
            "/api/readings/stream",
            on(MethodFilter::GET, feed::stream),
        ),
        (
            Method::GET,
            "/api/openapi.json",
            on(MethodFilter::GET, openapi),
        ),
        (
            Method::GET,
            "/metrics",
            on(MethodFilter::GET, metrics::metrics),
        ),
    ]
}

/// The API's routes, behind [`guard::screen`] and the token check when
/// there is a token.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    // Routes of one path with several methods are merged into one.
    let mut merged: Vec<(&'static str, MethodRouter<ApiState>)> = Vec::new();
    for (_, path, handler) in routes() {
        match merged.iter_mut().find(|(known, _)| *known == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(handler),
            None => merged.push((path, handler)),
        }
    }
    for (path, handler) in merged {
        router = router.route(path, handler);
    }
    router
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // The page without the token (a browser cannot send it for the
        // page itself), but behind the same Host and Origin screen.
        .merge(crate::web::router())
        .layer(middleware::from_fn_with_state(state.clone(), guard::screen))
        .with_state(state)
}

/// Lets a request through when the API has no token or the request bears
/// it: 401 when it bears none, 403 when it bears another.
async fn authenticate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let Some(given) = request.headers().get(header::AUTHORIZATION) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this API needs a token: send the header `Authorization: Bearer TOKEN` (kmplog trigger: --api-token TOKEN or KMPLOG_API_TOKEN)",
        )
        .into_response();
    };
    // RFC 9110: the scheme is case-insensitive, and spaces may follow it.
    let Some(given) = given
        .as_bytes()
        .split_first_chunk::<6>()
        .filter(|(scheme, rest)| {
            scheme.eq_ignore_ascii_case(b"bearer") && rest.first().is_some_and(|c| *c == b' ')
        })
        .map(|(_, rest)| rest)
    else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the Authorization header is not a bearer token: write it as `Authorization: Bearer TOKEN`",
        )
        .into_response();
    };
    if !constant_time_eq(given.trim_ascii(), token.as_bytes()) {
        return ApiError::new(StatusCode::FORBIDDEN, "the token is wrong").into_response();
    }
    next.run(request).await
}

/// Whether `a` equals `b`, in a time that depends on their lengths only, so
/// that timing the answers does not reveal how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for (index, &expected) in b.iter().enumerate() {
        // Past the end of `a` compare with 0; the length already differs.
        let given = a.get(index).copied().unwrap_or(0);
        difference |= given ^ expected;
    }
    difference == 0
}

async fn unknown_path(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such path: {}; the API's paths are listed at /api/openapi.json",
            request.uri().path()
        ),
    )
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; /api/openapi.json lists the methods of each path",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Whether `name` is a valid event name: letters, digits, '-' and '_'.
pub fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn fire_event(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<JsonValue>), ApiError> {
    if !is_event_name(&name) {
        return Err(ApiError::bad_request(format!(
            "'{name}' is not an event name: use letters, digits, '-' and '_', such as morning-read"
        )));
    }
    let buses = state
        .events
        .fire(&name)
        .map_err(|refused| ApiError::new(StatusCode::NOT_FOUND, refused.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event": name, "buses": buses })),
    ))
}

/// `GET /api/cluster`: this instance, the live members, the buses it owns
/// and every bus's owner; without `[cluster]`, that it runs alone.
async fn cluster(State(state): State<ApiState>) -> Json<JsonValue> {
    Json(match &state.cluster {
        Some(cluster) => cluster.snapshot().to_json(),
        None => json!({
            "instance": null,
            "members": [],
            "owned": state.buses.states().iter().map(|bus| bus.lock().name.clone()).collect::<Vec<_>>(),
            "coordinator": "none: no [cluster] in the configuration, this logger polls every bus",
            "buses": [],
        }),
    })
}

/// The shortest token allowed on other than a loopback address.
pub const MIN_PUBLIC_TOKEN: usize = 16;

/// Whether the API may listen on `address`: on a loopback address (also as
/// `::ffff:127.0.0.1`) always, elsewhere only with a token of at least
/// [`MIN_PUBLIC_TOKEN`] characters. The error names the ways out.
pub fn check_bind(address: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if address.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    let port = address.port();
    match token {
        None => Err(format!(
            "refusing to serve the API on {address} without a token: anyone who reaches it could fire events and read the meters; \
             give a token with --api-token TOKEN (or KMPLOG_API_TOKEN), such as the output of `openssl rand -hex 32`, \
             or listen on a loopback address such as --api 127.0.0.1:{port}"
        )),
        Some(token) if token.chars().count() < MIN_PUBLIC_TOKEN => Err(format!(
            "refusing to serve the API on {address} with a token of {} characters: on other than a loopback address it needs \
             at least {MIN_PUBLIC_TOKEN}, since anyone who reaches it can guess a short one; use a long random token such as \
             the output of `openssl rand -hex 32`",
            token.chars().count()
        )),
        Some(_) => Ok(()),
    }
}

/// Binds `address` and serves the API until `shutdown` within
/// `state.limits` ([`server`]); returns the bound address (port 0 picks a
/// free port). Refuses a non-loopback address when `state` has no token or
/// a short one.
pub async fn serve(
    address: SocketAddr,
    mut state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    check_bind(address, state.token.as_deref()).map_err(std::io::Error::other)?;
    state.shutdown = shutdown.clone();
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    state.bind = bound;
    let limits = state.limits;
    tokio::spawn(server::run(listener, router(state), limits, shutdown));
    Ok(bound)
}

#[cfg(test)]
mod tests;
