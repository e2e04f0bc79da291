//! The HTTP API of a running logger, bound to 127.0.0.1 by default:
//! `POST /api/events/{name}` fires a named event (what `kmplog trigger`
//! sends), `GET /api/buses` shows every bus with its queue and state.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bus::state::SharedState;

/// What the handlers reach.
#[derive(Clone)]
pub struct ApiState {
    /// The logger's event channel.
    pub events: broadcast::Sender<String>,
    /// The buses' states.
    pub buses: Vec<SharedState>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/events/{name}", post(fire_event))
        .route("/api/buses", get(buses))
        .with_state(state)
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
) -> (StatusCode, Json<JsonValue>) {
    if !is_event_name(&name) {
        let error = format!(
            "'{name}' is not an event name: use letters, digits, '-' and '_', such as morning-read"
        );
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error })));
    }
    // No receiver only means no bus is running; the event is still accepted.
    let _ = state.events.send(name.clone());
    (StatusCode::ACCEPTED, Json(json!({ "event": name })))
}

async fn buses(State(state): State<ApiState>) -> Json<JsonValue> {
    let buses: Vec<JsonValue> = state
        .buses
        .iter()
        .map(|bus| {
            let bus = bus.snapshot();
            let requests: Vec<JsonValue> = bus
                .requests
                .iter()
                .map(|request| {
                    json!({
                        "description": request.description,
                        "method": request.method,
                        "last_run": request.last_run.map(|at| at.to_string()),
                        "next_run": request.next_run.map(|at| at.to_string()),
                        "last_result": request.last_result,
                    })
                })
                .collect();
            json!({
                "name": bus.name,
                "line": bus.endpoint,
                "connected": bus.connected,
                "polls": bus.polls,
                "timeouts": bus.timeouts,
                "faults": bus.faults,
                "reconnects": bus.reconnects,
                "lateness_us": bus.lateness_us,
                "last_error": bus.last_error.map(|(at, error)| json!({ "time": at.to_string(), "error": error })),
                "requests": requests,
            })
        })
        .collect();
    Json(json!({ "buses": buses }))
}

/// Binds `address` and serves the API until `shutdown`; returns the bound
/// address (port 0 picks a free port).
pub async fn serve(
    address: SocketAddr,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let server =
            axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = server.await {
            eprintln!("kmplog: API on {bound}: {error}");
        }
    });
    Ok(bound)
}
