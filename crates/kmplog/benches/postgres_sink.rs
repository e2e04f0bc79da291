//! Throughput of the PostgreSQL sink through the real outbox and dispatcher,
//! against the server of this machine (`KMPLOG_BENCH_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Two figures:
//!
//! - catch-up: 100,000 readings wait in the outbox (the database was down);
//!   the sink starts and delivers them: readings per second until the
//!   outbox is empty;
//! - sustained: the collector appends a transaction of 8 readings at a time
//!   as fast as the outbox takes them, for 10 s, while the sink delivers:
//!   readings per second that reached PostgreSQL, and the sink's lag.
//!
//! `cargo bench -p kmplog --bench postgres_sink`; skipped (with a message)
//! when the server is unreachable. It writes to a schema of its own and
//! drops it.

use std::time::{Duration, Instant};

use kmplog::outbox::Outbox;
use kmplog::reading::{Reading, Status};
use kmplog::sink::postgres::PostgresSink;
use kmplog::sink::{Sink, Sinks};
use tokio::sync::watch;

const BACKLOG: u64 = 100_000;
const SUSTAINED_FOR: Duration = Duration::from_secs(10);
const PER_TRANSACTION: u16 = 8;

/// One transaction: 8 registers of one meter with one time stamp.
fn transaction(n: u64) -> Vec<Reading> {
    let time = jiff::Timestamp::now();
    (0..PER_TRANSACTION)
        .map(|register| Reading {
            time,
            bus: "gateway".to_owned(),
            address: (n % 100) as u8 + 1,
            request: "Main values".to_owned(),
            register: 60 + register,
            name: format!("R{register}"),
            value: Some((
                format!("{}.{:03}", n * 7 + u64::from(register), n % 1000)
                    .parse()
                    .expect("a decimal"),
                kmp::Unit(0x08),
            )),
            status: Status::Ok,
        })
        .collect()
}

fn admin(url: &str) -> Option<(tokio::runtime::Runtime, tokio_postgres::Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok::<_, tokio_postgres::Error>(client)
    });
    match client {
        Ok(client) => Some((runtime, client)),
        Err(error) => {
            eprintln!("postgres_sink bench SKIPPED: PostgreSQL at {url} is unreachable: {error}");
            None
        }
    }
}

fn sink(url: &str, schema: &str, table: &str) -> PostgresSink {
    let separator = if url.contains('?') { '&' } else { '?' };
    PostgresSink::open(&format!(
        "{url}{separator}table={schema}.{table}&sslmode=disable"
    ))
    .expect("open the sink")
}

fn catch_up(url: &str, schema: &str) {
    let dir = tempfile::tempdir().expect("a directory");
    let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10 * BACKLOG).expect("outbox");
    let sink = sink(url, schema, "catch_up");
    let name = sink.name();
    // The sink's cursor exists before the backlog, as after an outage.
    outbox.register(&name, true).expect("register");
    let mut n = 0;
    while outbox.last_seq().expect("seq") < BACKLOG {
        outbox.append(&transaction(n)).expect("append");
        n += 1;
    }
    let backlog = outbox.last_seq().expect("seq");
    let reader = outbox.reader().expect("reader");
    let (_appended, receiver) = watch::channel(backlog);
    let start = Instant::now();
    let sinks = Sinks::start(&mut outbox, vec![Box::new(sink)], &receiver).expect("start");
    while reader.depth(&name).expect("depth") > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    sinks.stop(Duration::from_secs(5));
    println!(
        "catch-up: {backlog} readings in {:.2} s = {:.0} readings/s",
        elapsed.as_secs_f64(),
        backlog as f64 / elapsed.as_secs_f64()
    );
}

fn sustained(url: &str, schema: &str) {
    let dir = tempfile::tempdir().expect("a directory");
    let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000_000).expect("outbox");
    let sink = sink(url, schema, "sustained");
    let name = sink.name();
    let (appended, receiver) = watch::channel(0);
    let sinks = Sinks::start(&mut outbox, vec![Box::new(sink)], &receiver).expect("start");
    let reader = outbox.reader().expect("reader");
    let start = Instant::now();
    let (mut n, mut max_lag) = (0, 0);
    while start.elapsed() < SUSTAINED_FOR {
        appended.send_replace(outbox.append(&transaction(n)).expect("append"));
        n += 1;
        if n % 100 == 0 {
            max_lag = max_lag.max(reader.depth(&name).expect("depth"));
        }
    }
    let offered = outbox.last_seq().expect("seq");
    let lag_at_end = reader.depth(&name).expect("depth");
    let delivered = offered - lag_at_end;
    let elapsed = start.elapsed().as_secs_f64();
    sinks.stop(Duration::from_secs(30));
    println!(
        "sustained: offered {offered} readings in {elapsed:.1} s ({:.0}/s, {n} appends of {PER_TRANSACTION}); \
         delivered {delivered} ({:.0} readings/s); lag at most {max_lag}, at the end {lag_at_end}",
        offered as f64 / elapsed,
        delivered as f64 / elapsed
    );
}

fn main() {
    // `cargo test --benches` runs bench targets too: only `cargo bench`
    // (which passes --bench) measures.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let url = std::env::var("KMPLOG_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let Some((runtime, client)) = admin(&url) else {
        return;
    };
    let schema = format!("kmplog_bench_{}", std::process::id());
    let execute = |sql: String| {
        runtime
            .block_on(client.batch_execute(&sql))
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"))
    };
    execute(format!("CREATE SCHEMA {schema}"));
    catch_up(&url, &schema);
    sustained(&url, &schema);
    execute(format!("DROP SCHEMA {schema} CASCADE"));
}
