//! `GET /api/readings`: stored readings from the SQLite sink's database,
//! filtered and newest first; `GET /api/readings/stream`: readings as they
//! are read, as server-sent events.
//!
//! The database is opened read-only for each request, on a blocking thread:
//! the sink's writer keeps its own connection, and in WAL mode a reader
//! never waits for it.
//!
//! Times are stored as RFC 3339 text with as many fraction digits as needed
//! (`08:00:00Z`, `08:00:00.25Z`), which sorts right across seconds but not
//! within one (`.25Z` sorts after `.125Z`, and `00Z` after both). So the
//! filters compare a fixed-width key (nine fraction digits), the order uses
//! the `ts` index, and the rows of the last second of a page are read whole
//! and sorted exactly; the answer is exact and the index still does the
//! work.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use jiff::{SignedDuration, Timestamp};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde_json::{Value as JsonValue, json};
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, ApiState};
use crate::reading::{Reading, Status};

/// Readings per answer unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most readings one answer holds.
pub const MAX_LIMIT: usize = 10_000;

/// The filters of both endpoints; `from`, `to` and `limit` only for the
/// stored readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    bus: Option<String>,
    address: Option<u8>,
    name: Option<String>,
    status: Option<Status>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
}

/// Which endpoint a filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stored,
    Live,
}

impl Kind {
    fn keys(self) -> &'static str {
        match self {
            Kind::Stored => "bus, address, name, status, from, to, limit",
            Kind::Live => "bus, address, name, status",
        }
    }
}

impl Filter {
    fn parse(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        kind: Kind,
    ) -> Result<Filter, ApiError> {
        let Query(pairs) = query.map_err(|rejection| {
            ApiError::bad_request(format!("the query string cannot be read: {rejection}"))
        })?;
        let mut filter = Filter {
            bus: None,
            address: None,
            name: None,
            status: None,
            from: None,
            to: None,
            limit: DEFAULT_LIMIT,
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return Err(ApiError::bad_request(format!(
                    "filter '{key}' is given twice; give each filter once"
                )));
            }
            let time = |value: &str| {
                value.parse::<Timestamp>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{key}={value} is not an RFC 3339 time; write it like 2026-11-25T08:00:00Z or 2026-11-25T09:00:00+01:00"
                    ))
                })
            };
            match (key.as_str(), kind) {
                ("bus", _) => filter.bus = Some(value),
                ("name", _) => filter.name = Some(value),
                ("address", _) => {
                    filter.address = Some(value.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "address={value} is not a meter address; give a number from 1 to 255, such as address=63"
                        ))
                    })?);
                }
                ("status", _) => {
                    filter.status = Some(Status::parse(&value).ok_or_else(|| {
                        let all: Vec<&str> =
                            Status::ALL.iter().map(|status| status.as_str()).collect();
                        ApiError::bad_request(format!(
                            "status={value} is not a status; use one of {}",
                            all.join(", ")
                        ))
                    })?);
                }
                ("from", Kind::Stored) => filter.from = Some(time(&value)?),
                ("to", Kind::Stored) => filter.to = Some(time(&value)?),
                ("limit", Kind::Stored) => {
                    filter.limit = value
                        .parse()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "limit={value} is not a number of readings from 1 to {MAX_LIMIT}, such as limit=500"
                            ))
                        })?;
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "'{key}' is not a filter here; the filters are {}",
                        kind.keys()
                    )));
                }
            }
            seen.push(key);
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(ApiError::bad_request(format!(
                "from={from} is after to={to}; the range would be empty"
            )));
        }
        Ok(filter)
    }

    /// Whether a live reading passes the filters (times and limit aside).
    fn matches(&self, reading: &Reading) -> bool {
        self.bus.as_ref().is_none_or(|bus| *bus == reading.bus)
            && self
                .address
                .is_none_or(|address| address == reading.address)
            && self.name.as_ref().is_none_or(|name| *name == reading.name)
            && self.status.is_none_or(|status| status == reading.status)
    }
}

/// The fixed-width key of a stored time `ts`, as SQL: the seconds, a dot
/// and nine fraction digits, which sorts as the times do.
const TS_KEY: &str =
    "(substr(ts, 1, 19) || '.' || substr(rtrim(substr(ts, 21), 'Z') || '000000000', 1, 9))";

/// The same key of `time`.
fn time_key(time: Timestamp) -> String {
    format!(
        "{}.{:09}",
        second_of(time),
        time.subsec_nanosecond().unsigned_abs()
    )
}

/// `time`'s whole second as stored text starts: `2026-11-25T08:00:00`.
fn second_of(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// One row of the SQLite sink's table, as JSON, with its exact time for the
/// final sort.
struct Row {
    time: Timestamp,
    id: i64,
    json: JsonValue,
}

/// The stored readings that pass `filter`, newest first.
pub fn stored(database: &Path, filter: &Filter) -> Result<Vec<JsonValue>, String> {
    let connection = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| error.to_string())?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|error| error.to_string())?;
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let mut condition = |sql: &str, value: SqlValue| {
        values.push(value);
        conditions.push(format!("{sql} ?{}", values.len()));
    };
    if let Some(bus) = &filter.bus {
        condition("bus =", SqlValue::Text(bus.clone()));
    }
    if let Some(address) = filter.address {
        condition("address =", SqlValue::Integer(address.into()));
    }
    if let Some(name) = &filter.name {
        condition("name =", SqlValue::Text(name.clone()));
    }
    if let Some(status) = filter.status {
        condition("status =", SqlValue::Text(status.as_str().to_owned()));
    }
    if let Some(from) = filter.from {
        // The first condition lets SQLite use the index; the second is exact.
        condition("ts >=", SqlValue::Text(second_of(from)));
        condition(&format!("{TS_KEY} >="), SqlValue::Text(time_key(from)));
    }
    if let Some(to) = filter.to {
        let next_second = to.checked_add(SignedDuration::from_secs(1)).unwrap_or(to);
        condition("ts <", SqlValue::Text(second_of(next_second)));
        condition(&format!("{TS_KEY} <="), SqlValue::Text(time_key(to)));
    }
    let select = |extra: &[String], limit: Option<usize>| -> Result<Vec<Row>, String> {
        let all: Vec<&String> = conditions.iter().chain(extra).collect();
        let mut sql = "SELECT id, ts, bus, address, request, register, name, value, unit, unit_code, status, key FROM readings"
            .to_owned();
        if !all.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(
                &all.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" AND "),
            );
        }
        sql.push_str(" ORDER BY ts DESC, id DESC");
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut statement = connection
            .prepare(&sql)
            .map_err(|error| error.to_string())?;
        let rows = statement
            .query_map(params_from_iter(values.iter()), |row| {
                let ts: String = row.get(1)?;
                Ok(Row {
                    time: ts.parse().unwrap_or(Timestamp::MIN),
                    id: row.get(0)?,
                    json: json!({
                        "ts": ts,
                        "bus": row.get::<_, String>(2)?,
                        "address": row.get::<_, i64>(3)?,
                        "request": row.get::<_, String>(4)?,
                        "register": row.get::<_, i64>(5)?,
                        "name": row.get::<_, String>(6)?,
                        "value": row.get::<_, Option<String>>(7)?,
                        "unit": row.get::<_, Option<String>>(8)?,
                        "unit_code": row.get::<_, Option<i64>>(9)?,
                        "status": row.get::<_, String>(10)?,
                        "key": row.get::<_, Option<String>>(11)?,
                    }),
                })
            })
            .map_err(|error| error.to_string())?;
        rows.collect::<Result<_, _>>()
            .map_err(|error| error.to_string())
    };
    let page = select(&[], Some(filter.limit))?;
    let mut rows: BTreeMap<i64, Row> = BTreeMap::new();
    let full = page.len() == filter.limit;
    let last_second = page.last().map(|row| second_of(row.time));
    for row in page {
        rows.insert(row.id, row);
    }
    if full && let Some(second) = last_second {
        // The text order is exact across seconds, not within one: read the
        // whole last second, so that the newest of it make the page.
        let (from, to) = (format!("ts >= '{second}'"), format!("ts < '{second}~'"));
        for row in select(&[from, to], None)? {
            rows.insert(row.id, row);
        }
    }
    let mut rows: Vec<Row> = rows.into_values().collect();
    rows.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    rows.truncate(filter.limit);
    Ok(rows.into_iter().map(|row| row.json).collect())
}

/// `GET /api/readings`.
pub async fn list(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<JsonValue>, ApiError> {
    let filter = Filter::parse(query, Kind::Stored)?;
    let Some(database) = state.database.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no readings are stored here: the SQLite sink is off; turn it on with sqlite = \"kmplog.db\" under [sinks] \
             or --sink sqlite:kmplog.db (GET /api/readings/stream shows live readings without it)",
        ));
    };
    let limit = filter.limit;
    let answer = tokio::task::spawn_blocking(move || {
        stored(&database, &filter).map_err(|error| (database, error))
    })
    .await
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the database: {error}"),
        )
    })?;
    match answer {
        Ok(readings) => Ok(Json(json!({ "readings": readings, "limit": limit }))),
        Err((database, error)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the SQLite database {} cannot be read now: {error}",
                database.display()
            ),
        )),
    }
}

/// `GET /api/readings/stream`: each reading that passes the filters as an
/// event whose data is the reading's JSON (as `--json` prints it); an
/// event `lagged` says how many batches a slow client missed.
pub async fn stream(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Filter::parse(query, Kind::Live)?;
    let receiver = state.live.subscribe();
    let events =
        futures_util::stream::unfold(
            (receiver, VecDeque::new(), filter),
            |(mut receiver, mut pending, filter)| async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((Ok(event), (receiver, pending, filter)));
                    }
                    match receiver.recv().await {
                        Ok(batch) => {
                            let batch: Arc<[Reading]> = batch;
                            pending.extend(
                                batch.iter().filter(|reading| filter.matches(reading)).map(
                                    |reading| Event::default().data(reading.to_json().to_string()),
                                ),
                            );
                        }
                        Err(RecvError::Lagged(missed)) => {
                            pending.push_back(
                                Event::default()
                                    .event("lagged")
                                    .data(json!({ "missed_batches": missed }).to_string()),
                            );
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        );
    // The server's graceful shutdown waits for open responses: end streams.
    let events = events.take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_as_the_times_do_whatever_their_fraction() {
        let times: Vec<Timestamp> = [
            "2026-11-25T08:00:00Z",
            "2026-11-25T08:00:00.125Z",
            "2026-11-25T08:00:00.25Z",
            "2026-11-25T08:00:01Z",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        // The stored text itself does not sort right within a second.
        assert!(
            times[0].to_string() > times[2].to_string(),
            "08:00:00Z sorts after 08:00:00.25Z as text"
        );
        let keys: Vec<String> = times.iter().map(|time| time_key(*time)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys[2], "2026-11-25T08:00:00.250000000");
        // The SQL key of the stored text is the same as the Rust key.
        let connection = Connection::open_in_memory().unwrap();
        for time in &times {
            let key: String = connection
                .query_row(
                    &format!("SELECT {TS_KEY} FROM (SELECT ?1 AS ts)"),
                    [time.to_string()],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(key, time_key(*time), "{time}");
        }
    }
}
