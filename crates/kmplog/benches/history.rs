//! How long `GET /api/history` takes, over HTTP, for the last hour, day,
//! week and year of 1 s readings of one value (a year is 31.5 million rows)
//! at the default 2,000 points.
//!
//! The file has the SQLite sink's schema (`SqliteSink::open`); its readings
//! are written by one `INSERT ... WITH RECURSIVE` (the quickest way to
//! millions of rows): `T1` of one meter every second, with an hour missing
//! every 30 days, a timeout every 7,919 readings and a `suspect` one every
//! 10,007. Opening the sink again then sums them up per minute and per hour
//! as it does for any database from before its summaries; both times are
//! printed. The API is served on a loopback port (`kmplog::api::serve`),
//! and each range is asked for 5 times, one after the other, with `ureq`:
//! the median, fastest and slowest are printed with the points and bytes of
//! the answer.
//!
//! `cargo bench -p kmplog --bench history` (a year; about 7 GB of disk for
//! a few minutes); `-- --days 7` for a week; `-- --keep PATH` keeps the
//! file at PATH, and uses it again when it is there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use kmplog::api::{ApiState, serve};
use kmplog::sink::sqlite::{SqliteSink, rollup};
use rusqlite::Connection;

const RUNS: usize = 5;
/// When the readings end: the "now" of every range.
const END: &str = "2026-12-01T00:00:00Z";

fn main() {
    // `cargo test --benches` runs bench targets too: only `cargo bench`
    // (which passes --bench) measures.
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if !arguments.iter().any(|argument| argument == "--bench") {
        return;
    }
    let option = |name: &str| {
        arguments
            .iter()
            .position(|argument| argument == name)
            .and_then(|at| arguments.get(at + 1))
    };
    let days: i64 = option("--days").map_or(365, |days| {
        days.parse()
            .expect("--days takes a number of days, such as 7")
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = option("--keep").map_or_else(|| dir.path().join("kmplog.db"), PathBuf::from);
    if path.exists() {
        println!("history: using {}", path.display());
    } else {
        fill(&path, days * 86_400);
    }
    let summing = Instant::now();
    drop(SqliteSink::open(&path).expect("the sink opens the file"));
    println!(
        "history: the sink opened the file (and summed up what was not) in {:.1} s",
        summing.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let address = runtime.block_on(start_api(&path));
    let end: Timestamp = END.parse().expect("a time");
    for (range, seconds) in [
        ("hour", 3_600),
        ("day", 86_400),
        ("week", 7 * 86_400),
        ("year", 365 * 86_400),
    ] {
        let from = end
            .checked_sub(SignedDuration::from_secs(seconds))
            .expect("a time");
        let url = format!(
            "http://{address}/api/history?bus=heat&address=63&name=T1&from={from}&to={end}"
        );
        let mut times = Vec::new();
        let mut answer = String::new();
        for _ in 0..RUNS {
            let began = Instant::now();
            answer = ureq::get(&url)
                .call()
                .expect("an answer")
                .body_mut()
                .read_to_string()
                .expect("its body");
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
        let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        let points = json["time"].as_array().map_or(0, Vec::len);
        times.sort_by(f64::total_cmp);
        println!(
            "history: last {range}: {points} points of {} s, {} bytes: median {:.1} ms (fastest {:.1}, slowest {:.1}, {RUNS} runs)",
            json["bucket_ms"].as_i64().unwrap_or(0) / 1000,
            answer.len(),
            times[RUNS / 2],
            times[0],
            times[RUNS - 1],
        );
    }
}

/// Writes `seconds` of 1 s readings ending at [`END`] into a new file.
fn fill(path: &Path, seconds: i64) {
    drop(SqliteSink::open(path).expect("the sink's schema"));
    let connection = Connection::open(path).expect("the database");
    // The sink's summaries are made again from the readings afterwards.
    for level in &rollup::LEVELS {
        connection
            .execute_batch(&format!("DROP TABLE {}", level.table))
            .expect("the summaries dropped");
    }
    connection
        .execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
        .expect("the file made ready");
    let start = END.parse::<Timestamp>().expect("a time").as_second() - seconds;
    let filling = Instant::now();
    let rows = connection
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
             INSERT INTO readings (ts, bus, address, request, register, name, value, unit, unit_code, status, key)
             SELECT strftime('%Y-%m-%dT%H:%M:%SZ', ?1 + i, 'unixepoch'), 'heat', 63, 'Main', 86, 'T1',
                    CASE WHEN i % 7919 = 7918 THEN NULL ELSE printf('%d.%02d', 40 + i % 30, i % 100) END,
                    CASE WHEN i % 7919 = 7918 THEN NULL ELSE '°C' END,
                    CASE WHEN i % 7919 = 7918 THEN NULL ELSE 37 END,
                    CASE WHEN i % 7919 = 7918 THEN 'timeout' WHEN i % 10007 = 10006 THEN 'suspect' ELSE 'ok' END,
                    printf('k-%012d', i)
             FROM n WHERE i % 2592000 >= 3600",
            rusqlite::params![start, seconds],
        )
        .expect("the readings");
    println!(
        "history: {rows} rows of one value written in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
}

/// Serves the API on the database, on a free loopback port.
async fn start_api(database: &Path) -> SocketAddr {
    let (live, _) = tokio::sync::broadcast::channel(1);
    let mut state = ApiState::new(
        kmplog::bus::events::EventRouter::from_routes([]),
        Vec::new(),
        std::sync::Arc::default(),
        live,
    );
    state.database = Some(database.to_owned());
    serve(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        state,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("the API listens")
}
