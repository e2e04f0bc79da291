//! `GET /api/readings`: stored readings from the SQLite sink's database,
//! filtered and newest first, a page at a time; the filters are shared with
//! the live stream ([`super::feed`]).
//!
//! The database is opened read-only for each request, on a blocking thread:
//! the sink's writer keeps its own connection, and in WAL mode a reader
//! never waits for it. Rows are written to the answer as they are read, so
//! a page of 10,000 holds a few buffers, not the page; and only
//! [`Limits::readings_queries`](super::server::Limits) answers are written at
//! once, the others get 503 with `Retry-After`.
//!
//! Each answer ends with `next`, a cursor: the same query with
//! `cursor=NEXT` continues exactly after the page's last row, whatever was
//! stored meanwhile (new readings are newer, so they come before it).
//!
//! Times are stored as RFC 3339 text with as many fraction digits as needed
//! (`08:00:00Z`, `08:00:00.25Z`), which sorts right across seconds but not
//! within one (`.25Z` sorts after `.125Z`, and `00Z` after both). So the
//! filters compare a fixed-width key (nine fraction digits), the order uses
//! the `ts` index, and the rows of each second are gathered and sorted
//! exactly before they are written; the answer is exact and the index
//! still does the work.

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{ApiError, ApiState};
use crate::reading::{Reading, Status};

/// Readings per answer unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most readings one answer holds.
pub const MAX_LIMIT: usize = 10_000;

/// The filters of both endpoints; `from`, `to`, `limit` and `cursor` only
/// for the stored readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    bus: Option<String>,
    address: Option<u8>,
    name: Option<String>,
    status: Option<Status>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    limit: usize,
    cursor: Option<Cursor>,
}

/// Where a page ends: its last row's exact time and id. Written
/// `2026-11-25T08:00:01.125000000_42` (the time's fixed-width key, then
/// the id), which clients pass back as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    time: Timestamp,
    id: i64,
}

impl Cursor {
    fn parse(text: &str) -> Option<Cursor> {
        let (key, id) = text.rsplit_once('_')?;
        let time: Timestamp = format!("{key}Z").parse().ok()?;
        (time_key(time) == key).then_some(())?;
        Some(Cursor {
            time,
            id: id.parse().ok()?,
        })
    }

    fn text(&self) -> String {
        format!("{}_{}", time_key(self.time), self.id)
    }
}

/// Which endpoint a filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Stored,
    Live,
}

impl Kind {
    fn keys(self) -> &'static str {
        match self {
            Kind::Stored => "bus, address, name, status, from, to, limit, cursor",
            Kind::Live => "bus, address, name, status",
        }
    }
}

/// A time parameter of a query (`from`, `to`), in RFC 3339.
pub(super) fn time(key: &str, value: &str) -> Result<Timestamp, ApiError> {
    value.parse::<Timestamp>().map_err(|_| {
        ApiError::bad_request(format!(
            "{key}={value} is not an RFC 3339 time; write it like 2026-11-25T08:00:00Z or 2026-11-25T09:00:00+01:00"
        ))
    })
}

/// The `address` parameter of a query: a meter address.
pub(super) fn address(value: &str) -> Result<u8, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "address={value} is not a meter address; give a number from 1 to 255, such as address=63"
        ))
    })
}

impl Filter {
    pub(super) fn parse(
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
            cursor: None,
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return Err(ApiError::bad_request(format!(
                    "filter '{key}' is given twice; give each filter once"
                )));
            }
            match (key.as_str(), kind) {
                ("bus", _) => filter.bus = Some(value),
                ("name", _) => filter.name = Some(value),
                ("address", _) => filter.address = Some(address(&value)?),
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
                ("from", Kind::Stored) => filter.from = Some(time(&key, &value)?),
                ("to", Kind::Stored) => filter.to = Some(time(&key, &value)?),
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
                ("cursor", Kind::Stored) => {
                    filter.cursor = Some(Cursor::parse(&value).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "cursor={value} is not a cursor of /api/readings; pass the `next` of the previous answer as it is, with the same filters"
                        ))
                    })?);
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
    pub(super) fn matches(&self, reading: &Reading) -> bool {
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

/// One row of the SQLite sink's table, with its exact time for the sort
/// within its second.
struct Row {
    time: Timestamp,
    id: i64,
    json: serde_json::Value,
}

/// The bytes of an answer are sent in pieces of about this size.
const CHUNK_BYTES: usize = 32 * 1024;

/// Pieces of an answer that may wait for a slow client.
const CHUNKS_WAITING: usize = 4;

/// The answer as it is written, in pieces, to the response body.
struct Chunks {
    buffer: Vec<u8>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Chunks {
    /// Appends `bytes`; false once the client has gone.
    fn push(&mut self, bytes: &[u8]) -> bool {
        self.buffer.extend_from_slice(bytes);
        self.buffer.len() < CHUNK_BYTES || self.flush()
    }

    fn flush(&mut self) -> bool {
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender.blocking_send(Ok(chunk)).is_ok()
    }

    /// Ends the answer with an error, which aborts the response: a client
    /// must not take a cut-off page for a whole one.
    fn fail(self, error: String) {
        let _ = self.sender.blocking_send(Err(std::io::Error::other(error)));
    }
}

/// Writes the page of stored readings that pass `filter`, newest first, as
/// JSON: `{"readings": [...], "limit": N, "next": CURSOR}`. `ready` learns
/// whether the query could start, before the first byte.
fn write_page(
    database: &Path,
    filter: &Filter,
    ready: oneshot::Sender<Result<(), String>>,
    mut chunks: Chunks,
) {
    let connection = match open(database) {
        Ok(connection) => connection,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let (sql, values) = select(filter);
    let mut statement = match connection.prepare(&sql) {
        Ok(statement) => statement,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let mut rows = match statement.query(params_from_iter(values.iter())) {
        Ok(rows) => rows,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut page = Page {
        limit: filter.limit,
        written: 0,
        last: None,
        more: false,
    };
    let mut second: Vec<Row> = Vec::new();
    let mut open_client = chunks.push(b"{\"readings\":[");
    while open_client && !page.more {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(error) => return chunks.fail(error.to_string()),
        };
        let row = match row_of(row) {
            Ok(row) => row,
            Err(error) => return chunks.fail(error.to_string()),
        };
        if second
            .first()
            .is_some_and(|first| second_of(first.time) != second_of(row.time))
        {
            open_client = page.write(&mut second, &mut chunks);
            if page.written == page.limit {
                page.more = true;
            }
        }
        second.push(row);
    }
    if open_client && !page.more {
        open_client = page.write(&mut second, &mut chunks);
    }
    if !open_client {
        return;
    }
    let next = match (&page.last, page.more) {
        (Some(last), true) => json!(last.text()),
        _ => serde_json::Value::Null,
    };
    let end = format!("],\"limit\":{},\"next\":{next}}}", page.limit);
    if chunks.push(end.as_bytes()) {
        chunks.flush();
    }
}

/// How far a page has got.
struct Page {
    limit: usize,
    written: usize,
    last: Option<Cursor>,
    /// Whether a row past the page exists.
    more: bool,
}

impl Page {
    /// Writes the rows of one second in their exact order, as many as the
    /// page still takes; false once the client has gone.
    fn write(&mut self, second: &mut Vec<Row>, chunks: &mut Chunks) -> bool {
        second.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
        for row in second.drain(..) {
            if self.written == self.limit {
                self.more = true;
                break;
            }
            let separator: &[u8] = if self.written == 0 { b"" } else { b"," };
            let json = row.json.to_string();
            if !chunks.push(separator) || !chunks.push(json.as_bytes()) {
                return false;
            }
            self.written += 1;
            self.last = Some(Cursor {
                time: row.time,
                id: row.id,
            });
        }
        second.clear();
        true
    }
}

/// The SQLite sink's database, read only, waiting for the writer up to 5 s.
pub(super) fn open(database: &Path) -> Result<Connection, String> {
    let connection = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| error.to_string())?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|error| error.to_string())?;
    Ok(connection)
}

/// The query of `filter`'s rows in text order of time (exact across
/// seconds), and its parameters.
fn select(filter: &Filter) -> (String, Vec<SqlValue>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let mut condition = |sql: &str, value: SqlValue| {
        values.push(value);
        conditions.push(sql.replace('?', &format!("?{}", values.len())));
    };
    if let Some(bus) = &filter.bus {
        condition("bus = ?", SqlValue::Text(bus.clone()));
    }
    if let Some(address) = filter.address {
        condition("address = ?", SqlValue::Integer(address.into()));
    }
    if let Some(name) = &filter.name {
        condition("name = ?", SqlValue::Text(name.clone()));
    }
    if let Some(status) = filter.status {
        condition("status = ?", SqlValue::Text(status.as_str().to_owned()));
    }
    // Of each pair of conditions on time, the first lets SQLite use the
    // index, the second is exact.
    if let Some(from) = filter.from {
        condition("ts >= ?", SqlValue::Text(second_of(from)));
        condition(&format!("{TS_KEY} >= ?"), SqlValue::Text(time_key(from)));
    }
    let before = |time: Timestamp| {
        let next_second = time
            .checked_add(SignedDuration::from_secs(1))
            .unwrap_or(time);
        SqlValue::Text(second_of(next_second))
    };
    if let Some(to) = filter.to {
        condition("ts < ?", before(to));
        condition(&format!("{TS_KEY} <= ?"), SqlValue::Text(time_key(to)));
    }
    if let Some(cursor) = &filter.cursor {
        condition("ts < ?", before(cursor.time));
        values.push(SqlValue::Text(time_key(cursor.time)));
        values.push(SqlValue::Integer(cursor.id));
        conditions.push(format!(
            "({TS_KEY}, id) < (?{}, ?{})",
            values.len() - 1,
            values.len()
        ));
    }
    let mut sql = "SELECT id, ts, bus, address, request, register, name, value, unit, unit_code, status, key, instance FROM readings"
        .to_owned();
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY ts DESC, id DESC");
    (sql, values)
}

fn row_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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
            "instance": row.get::<_, Option<String>>(12)?,
        }),
    })
}

/// `GET /api/readings`.
pub async fn list(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let filter = Filter::parse(query, Kind::Stored)?;
    let Some(database) = state.database.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no readings are stored here: the SQLite sink is off; turn it on with sqlite = \"kmplog.db\" under [sinks] \
             or --sink sqlite:kmplog.db (GET /api/readings/stream shows live readings without it)",
        ));
    };
    let Ok(permit) = std::sync::Arc::clone(&state.readings_queries).try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "as many readings queries are being answered as this API allows at once; try again in a moment",
        ));
    };
    let (sender, receiver) = mpsc::channel(CHUNKS_WAITING);
    let (ready, started) = oneshot::channel();
    let path = database.clone();
    tokio::task::spawn_blocking(move || {
        // Held until the whole answer is written or the client has gone.
        let _permit = permit;
        write_page(
            &path,
            &filter,
            ready,
            Chunks {
                buffer: Vec::with_capacity(CHUNK_BYTES),
                sender,
            },
        );
    });
    match started.await {
        Ok(Ok(())) => {
            let body = Body::from_stream(body_stream(receiver));
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        Ok(Err(error)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the SQLite database {} cannot be read now: {error}",
                database.display()
            ),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the database stopped before it began",
        )),
    }
}

/// The pieces `receiver` brings, as a stream for the response body.
fn body_stream(
    mut receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
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
