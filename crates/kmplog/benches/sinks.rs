//! Throughput of every sink kind through the real outbox and dispatcher
//! (`Outbox::append`, `Sinks::start`), two figures each:
//!
//! - catch-up: a backlog of readings waits in the outbox behind the sink's
//!   cursor (the destination was down); the sink starts and delivers it:
//!   readings per second until the outbox is empty for it;
//! - sustained: the collector appends a transaction of 8 readings at a time
//!   as fast as the outbox takes them, for 10 s, while the sink delivers:
//!   readings per second that the sink acknowledged, and its lag (readings
//!   still waiting) at the end.
//!
//! The sinks: `sqlite:`, `csv:` and `jsonl:` in temporary directories;
//! `influx+http://` against a small HTTP server of the bench's own on
//! 127.0.0.1 that answers 204 to every write and counts the lines, to check
//! that what was acknowledged arrived; `postgres://` (`KMPLOG_BENCH_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own
//! that is dropped after; `mqtt://` (`KMPLOG_BENCH_MQTT`, default
//! `mqtt://127.0.0.1:1883`), under a topic prefix of its own whose retained
//! topics are cleared after. A network sink that cannot be reached is skipped
//! with a message.
//!
//! `cargo bench -p kmplog --bench sinks` runs all of them;
//! `cargo bench -p kmplog --bench sinks -- sqlite postgres` runs those named
//! (`sqlite`, `csv`, `jsonl`, `influx`, `postgres`, `mqtt`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kmplog::outbox::Outbox;
use kmplog::reading::{Reading, Status};
use kmplog::sink::files::{DailyFiles, Format};
use kmplog::sink::influx::InfluxSink;
use kmplog::sink::mqtt::MqttSink;
use kmplog::sink::postgres::PostgresSink;
use kmplog::sink::sqlite::SqliteSink;
use kmplog::sink::{Sink, Sinks};
use tokio::sync::watch;

/// Readings waiting in the outbox for the catch-up figure.
const BACKLOG: u64 = 100_000;
const SUSTAINED_FOR: Duration = Duration::from_secs(10);
const PER_TRANSACTION: u16 = 8;
/// Longest a catch-up may take before the sink counts as stalled.
const STALLED: Duration = Duration::from_secs(300);
const KINDS: [&str; 6] = ["sqlite", "csv", "jsonl", "influx", "postgres", "mqtt"];

/// One transaction: 8 registers of one meter (of 100) with one time stamp.
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

/// What one sink kind measured.
struct Figures {
    backlog: u64,
    catch_up: f64,
    offered: f64,
    delivered: f64,
    lag_max: u64,
    lag_at_end: u64,
}

/// Measures both figures for the sinks `open` makes (a fresh one per phase,
/// `"catch_up"` or `"sustained"`); `arrived`, when given, says how many
/// readings the destination holds since the phase began, to be compared
/// with what the outbox saw acknowledged.
fn measure(
    kind: &str,
    backlog: u64,
    open: &mut dyn FnMut(&str) -> Box<dyn Sink>,
    arrived: Option<&dyn Fn() -> u64>,
) -> Figures {
    let check = |phase: &str, acknowledged: u64| {
        if let Some(arrived) = arrived {
            let arrived = arrived();
            assert_eq!(
                arrived, acknowledged,
                "{kind} {phase}: the destination got {arrived} readings, the outbox saw {acknowledged} acknowledged"
            );
            println!("{kind}: {phase}: the destination holds all {arrived} acknowledged readings");
        }
    };

    // Catch-up.
    let dir = tempfile::tempdir().expect("a directory");
    let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10 * backlog).expect("outbox");
    let sink = open("catch_up");
    let name = sink.name();
    // The sink's cursor exists before the backlog, as after an outage.
    outbox.register(&name, sink.durable()).expect("register");
    let mut n = 0;
    while outbox.last_seq().expect("seq") < backlog {
        outbox.append(&transaction(n)).expect("append");
        n += 1;
    }
    let waiting = outbox.last_seq().expect("seq");
    let reader = outbox.reader().expect("reader");
    let (_appended, receiver) = watch::channel(waiting);
    let start = Instant::now();
    let sinks = Sinks::start(&mut outbox, vec![sink], &receiver).expect("start");
    while reader.depth(&name).expect("depth") > 0 {
        assert!(start.elapsed() < STALLED, "{kind}: the sink stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed().as_secs_f64();
    sinks.stop(Duration::from_secs(5));
    let catch_up = waiting as f64 / elapsed;
    println!("{kind}: catch-up: {waiting} readings in {elapsed:.2} s = {catch_up:.0} readings/s");
    check("catch-up", waiting);
    drop((reader, outbox, dir));

    // Sustained.
    let dir = tempfile::tempdir().expect("a directory");
    let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10_000_000).expect("outbox");
    let sink = open("sustained");
    let name = sink.name();
    let (appended, receiver) = watch::channel(0);
    let sinks = Sinks::start(&mut outbox, vec![sink], &receiver).expect("start");
    let reader = outbox.reader().expect("reader");
    let start = Instant::now();
    let (mut n, mut lag_max) = (0, 0);
    while start.elapsed() < SUSTAINED_FOR {
        appended.send_replace(outbox.append(&transaction(n)).expect("append"));
        n += 1;
        if n % 100 == 0 {
            lag_max = lag_max.max(reader.depth(&name).expect("depth"));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let offered = outbox.last_seq().expect("seq");
    let lag_at_end = reader.depth(&name).expect("depth");
    let lag_max = lag_max.max(lag_at_end);
    let delivered = offered - lag_at_end;
    sinks.stop(Duration::from_secs(5));
    println!(
        "{kind}: sustained: offered {offered} readings in {elapsed:.1} s ({:.0}/s, {n} appends of {PER_TRANSACTION}); \
         delivered {delivered} ({:.0} readings/s); lag at most {lag_max}, at the end {lag_at_end}",
        offered as f64 / elapsed,
        delivered as f64 / elapsed
    );
    // The sink may have finished a batch or two while stopping.
    check("sustained", offered - reader.depth(&name).expect("depth"));
    Figures {
        backlog: waiting,
        catch_up,
        offered: offered as f64 / elapsed,
        delivered: delivered as f64 / elapsed,
        lag_max,
        lag_at_end,
    }
}

fn files(kind: &str, format: Format) -> Figures {
    let dir = tempfile::tempdir().expect("a directory");
    measure(
        kind,
        BACKLOG,
        &mut |phase| {
            Box::new(
                DailyFiles::open(&dir.path().join(phase), format, jiff::tz::TimeZone::UTC)
                    .expect("open the sink"),
            )
        },
        None,
    )
}

fn sqlite() -> Figures {
    let dir = tempfile::tempdir().expect("a directory");
    measure(
        "sqlite",
        BACKLOG,
        &mut |phase| {
            Box::new(
                SqliteSink::open(&dir.path().join(format!("{phase}.db"))).expect("open the sink"),
            )
        },
        None,
    )
}

/// Answers 204 to every `POST /api/v2/write` on keep-alive connections and
/// counts the lines of the bodies.
fn influx_server(lines: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || serve(stream, &lines));
        }
    });
    address
}

fn serve(stream: TcpStream, lines: &AtomicU64) {
    let mut writer = stream.try_clone().expect("a second handle");
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim_end().is_empty() {
                break;
            }
            if let Some((key, value)) = header.split_once(':')
                && key.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("a length");
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer: &[u8] = if request_line.starts_with("POST /api/v2/write") {
            let count = body.iter().filter(|&&byte| byte == b'\n').count();
            lines.fetch_add(count as u64, Ordering::SeqCst);
            b"HTTP/1.1 204 No Content\r\n\r\n"
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        };
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

fn influx() -> Figures {
    let lines = Arc::new(AtomicU64::new(0));
    let address = influx_server(Arc::clone(&lines));
    let url = format!("influx+http://{address}/api/v2/write?org=bench&bucket=bench");
    measure(
        "influx",
        BACKLOG,
        &mut |_phase| {
            lines.store(0, Ordering::SeqCst);
            Box::new(InfluxSink::open(&url).expect("open the sink"))
        },
        Some(&|| lines.load(Ordering::SeqCst)),
    )
}

fn postgres() -> Option<Figures> {
    let url = std::env::var("KMPLOG_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let connected = runtime.block_on(async {
        let (client, connection) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| "no answer in 5 s".to_owned())?
        .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        Ok::<_, String>(client)
    });
    let client = match connected {
        Ok(client) => client,
        Err(error) => {
            println!("postgres: SKIPPED: PostgreSQL at {url} is unreachable: {error}");
            return None;
        }
    };
    let schema = format!("kmplog_bench_{}", std::process::id());
    let execute = |sql: String| {
        runtime
            .block_on(client.batch_execute(&sql))
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    };
    execute(format!("CREATE SCHEMA {schema}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    let figures = measure(
        "postgres",
        BACKLOG,
        &mut |phase| {
            Box::new(
                PostgresSink::open(&format!(
                    "{url}{separator}table={schema}.{phase}&sslmode=disable"
                ))
                .expect("open the sink"),
            )
        },
        None,
    );
    execute(format!("DROP SCHEMA {schema} CASCADE"));
    Some(figures)
}

/// `host:port` of an `mqtt://` URL, for a reachability check.
fn mqtt_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.ends_with(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:1883")
    }
}

fn mqtt() -> Option<Figures> {
    let broker =
        std::env::var("KMPLOG_BENCH_MQTT").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_owned());
    let address = mqtt_address(&broker);
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .map(|socket| TcpStream::connect_timeout(&socket, Duration::from_secs(5)));
    if !matches!(reachable, Some(Ok(_))) {
        println!("mqtt: SKIPPED: the broker at {broker} is unreachable ({address})");
        return None;
    }
    let prefix = format!("kmplog-bench-{}", std::process::id());
    let discovery = format!("{prefix}-ha");
    let separator = if broker.contains('?') { '&' } else { '?' };
    let events = kmplog::bus::events::EventRouter::default();
    let figures = measure(
        "mqtt",
        BACKLOG,
        &mut |phase| {
            Box::new(
                MqttSink::open(
                    &format!("{broker}{separator}prefix={prefix}/{phase}&discovery={discovery}"),
                    events.clone(),
                )
                .expect("open the sink"),
            )
        },
        None,
    );
    clear_retained(&address, &[&prefix, &discovery]);
    Some(figures)
}

/// Publishes an empty retained message to every retained topic under the
/// prefixes, which deletes them.
fn clear_retained(address: &str, prefixes: &[&str]) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cleared = runtime.block_on(async {
        let options = MqttOptions::new(
            format!("kmplog-bench-clear-{}", std::process::id()),
            host,
            port.parse().expect("a port"),
        );
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        // The event loop runs on its own task: publishing waits for it.
        let (found, mut topics_found) = tokio::sync::mpsc::unbounded_channel();
        let polling = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(Packet::Publish(publish)) = event
                    && publish.retain
                    && !publish.payload.is_empty()
                {
                    let _ = found.send(publish.topic);
                }
            }
        });
        // The broker sends a subscriber only so many retained messages at
        // once (Mosquitto: max_queued_messages), so clear in rounds until a
        // round finds none; it handles a connection's packets in order, so
        // a round sees the clearing of the one before.
        let mut cleared = 0;
        loop {
            for prefix in prefixes {
                client
                    .subscribe(format!("{prefix}/#"), QoS::AtMostOnce)
                    .await
                    .expect("subscribe");
            }
            let mut topics = std::collections::BTreeSet::new();
            // Retained messages come right after the subscription; a second
            // of silence means they are all in.
            while let Ok(Some(topic)) =
                tokio::time::timeout(Duration::from_secs(1), topics_found.recv()).await
            {
                topics.insert(topic);
            }
            for prefix in prefixes {
                client
                    .unsubscribe(format!("{prefix}/#"))
                    .await
                    .expect("unsubscribe");
            }
            if topics.is_empty() {
                break;
            }
            cleared += topics.len();
            for topic in topics {
                client
                    .publish(topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
                    .await
                    .expect("publish");
            }
        }
        client.disconnect().await.expect("disconnect");
        // The event loop ends when the disconnect has gone out, after the
        // publications queued before it.
        let _ = tokio::time::timeout(Duration::from_secs(10), polling).await;
        cleared
    });
    println!("mqtt: cleared {cleared} retained topics under {prefixes:?}");
}

fn main() {
    // `cargo test --benches` runs bench targets too: only `cargo bench`
    // (which passes --bench) measures.
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if !arguments.iter().any(|argument| argument == "--bench") {
        return;
    }
    let mut chosen: Vec<&str> = Vec::new();
    for argument in arguments
        .iter()
        .filter(|argument| !argument.starts_with('-'))
    {
        let Some(kind) = KINDS.iter().find(|kind| **kind == argument.as_str()) else {
            eprintln!("sinks bench: '{argument}' is not a sink kind; use any of {KINDS:?}");
            std::process::exit(2);
        };
        chosen.push(kind);
    }
    if chosen.is_empty() {
        chosen = KINDS.to_vec();
    }
    let mut table = Vec::new();
    for kind in chosen {
        let figures = match kind {
            "sqlite" => Some(sqlite()),
            "csv" => Some(files(kind, Format::Csv)),
            "jsonl" => Some(files(kind, Format::JsonLines)),
            "influx" => Some(influx()),
            "postgres" => postgres(),
            "mqtt" => mqtt(),
            _ => unreachable!("checked above"),
        };
        if let Some(figures) = figures {
            table.push((kind, figures));
        }
    }
    println!();
    println!(
        "| sink | catch-up readings/s (backlog) | sustained offered/s | sustained delivered/s | lag max / at the end |"
    );
    println!("|---|---|---|---|---|");
    for (kind, figures) in table {
        println!(
            "| {kind} | {:.0} ({}) | {:.0} | {:.0} | {} / {} |",
            figures.catch_up,
            figures.backlog,
            figures.offered,
            figures.delivered,
            figures.lag_max,
            figures.lag_at_end
        );
    }
}
