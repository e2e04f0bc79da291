//! The time `GET /api/history` spends in the database for a week of 1 s
//! readings of one value (604,800 rows) cut into 2,000 buckets: the SQL
//! that buckets them over the `(bus, address, name, ts)` index and the
//! assembly of the series with its gap markers, as the endpoint runs them.
//!
//! The file is made by the SQLite sink's own schema (`SqliteSink::open`)
//! and filled in one transaction; the query runs 5 times on it, and the
//! median, fastest and slowest are printed.
//!
//! `cargo bench -p kmplog --bench history`

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use kmplog::api::history::{Buckets, HistoryQuery, MAX_POINTS, assemble, bucket_rows};
use kmplog::sink::sqlite::SqliteSink;
use rusqlite::{Connection, params};

const ROWS: i64 = 7 * 24 * 3600;
const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("kmplog.db");
    drop(SqliteSink::open(&path).expect("the sink's schema"));
    let start: Timestamp = "2026-11-24T00:00:00Z".parse().expect("a time");
    let filling = Instant::now();
    let mut connection = Connection::open(&path).expect("the database");
    let transaction = connection.transaction().expect("a transaction");
    {
        let mut insert = transaction
            .prepare(
                "INSERT INTO readings (ts, bus, address, request, register, name, value, unit, unit_code, status, key)
                 VALUES (?1, 'heat', 63, 'Main', 86, 'T1', ?2, '°C', 37, 'ok', ?3)",
            )
            .expect("the insert");
        for second in 0..ROWS {
            let time = start
                .checked_add(SignedDuration::from_secs(second))
                .expect("a time in range");
            let value = format!("{}.{:02}", 40 + second % 30, second % 100);
            insert
                .execute(params![time.to_string(), value, format!("k-{second}")])
                .expect("a row");
        }
    }
    transaction.commit().expect("the commit");
    println!(
        "history: {ROWS} rows of one value written in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let to = start
        .checked_add(SignedDuration::from_secs(ROWS - 1))
        .expect("a time");
    let query = HistoryQuery {
        bus: "heat".to_owned(),
        address: 63,
        name: "T1".to_owned(),
        from: start,
        to,
        points: MAX_POINTS,
    };
    let buckets = Buckets::new(query.from, query.to, query.points);
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..RUNS {
        let began = Instant::now();
        let (rows, _) = bucket_rows(&path, &query, &buckets).expect("the query");
        let series = assemble(&buckets, &rows);
        times.push(began.elapsed().as_secs_f64() * 1000.0);
        points = series.time.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "history: a week of 1 s data in {points} buckets of {} ms: median {:.0} ms (fastest {:.0} ms, slowest {:.0} ms, {RUNS} runs)",
        buckets.width_ms,
        times[RUNS / 2],
        times[0],
        times[RUNS - 1],
    );
}
