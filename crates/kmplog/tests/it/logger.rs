//! The logger end to end: `kmplog run` and `kmplog demo` as processes, against
//! `kmplog simulate` over TCP and pseudo-terminals, with their JSON lines,
//! `kmplog.db`, CSV and JSON-lines files, the HTTP API and `kmplog trigger`;
//! passive mode on a recorded stream with `kmplog sniff`; `kmplog cron`.
//!
//! Each test has its own work directory, simulators and ports, so that they
//! run in parallel; runs last a few seconds (`--for`). Time is only bounded
//! from below: a slow machine makes a test slower, never red.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kmp::{RegisterValue, Request, Response, Unit};

use crate::harness::{Logger, Row, Run, Simulator, Workdir, free_port, http, run_kmplog};

/// The readings a logger printed as JSON lines, in order.
fn readings(run: &Run) -> Vec<Row> {
    run.json_lines().iter().map(Row::of_json).collect()
}

/// The serial number the simulator gives the meter at `address`: an exact
/// value known in advance (`70_000_000 + address × 3571`).
fn serial_of(address: u64) -> String {
    (70_000_000 + address * 3_571).to_string()
}

/// One transaction as the readings show it: the readings of one address
/// with one time stamp, consecutive in the output.
#[derive(Debug)]
struct Transaction {
    time: Timestamp,
    request: String,
    address: u64,
    rows: Vec<Row>,
}

/// The transactions of `bus`, in the order the logger output them.
fn transactions(rows: &[Row], bus: &str) -> Vec<Transaction> {
    let mut transactions: Vec<Transaction> = Vec::new();
    for row in rows.iter().filter(|row| row.bus == bus) {
        match transactions.last_mut() {
            Some(last)
                if last.time == row.time()
                    && last.address == row.address
                    && last.request == row.request =>
            {
                last.rows.push(row.clone());
            }
            _ => transactions.push(Transaction {
                time: row.time(),
                request: row.request.clone(),
                address: row.address,
                rows: vec![row.clone()],
            }),
        }
    }
    transactions
}

/// Transactions on one bus follow each other: each ends later than the one
/// before by at least `min_gap` (the time the meter's reply alone takes on
/// the line), which overlapping transactions could not guarantee.
fn check_one_at_a_time(transactions: &[Transaction], min_gap: Duration) {
    for pair in transactions.windows(2) {
        let gap = pair[1].time.duration_since(pair[0].time);
        assert!(
            gap >= SignedDuration::try_from(min_gap).unwrap(),
            "transactions {:?} at {} and {:?} at {} are {gap:?} apart, less than {min_gap:?}",
            (&pair[0].request, pair[0].address),
            pair[0].time,
            (&pair[1].request, pair[1].address),
            pair[1].time,
        );
    }
}

/// The names of the readings of one transaction.
fn names(transaction: &Transaction) -> Vec<&str> {
    transaction
        .rows
        .iter()
        .map(|row| row.name.as_str())
        .collect()
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// `12.34`-style text with exactly `decimals` digits after the point.
fn has_decimals(value: &str, decimals: usize) -> bool {
    match value.split_once('.') {
        Some((whole, fraction)) => {
            !whole.is_empty()
                && whole.chars().all(|c| c.is_ascii_digit())
                && fraction.len() == decimals
                && fraction.chars().all(|c| c.is_ascii_digit())
        }
        None => decimals == 0 && !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()),
    }
}

#[test]
fn two_buses_poll_every_address_one_transaction_at_a_time() {
    let gateway = Simulator::tcp(&["--meter", "1", "--meter", "2", "--meter", "3:403"]);
    let serial = Simulator::pty(&["--meter", "10:382", "--meter", "11:602"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
{tcp_bus}

[[bus.request]]
description = "Heat meters"
addresses = "1;2;3"
polling = "1s"
items = ["SERIALNO", "T1", "E1"]

{pty_bus}

[[bus.request]]
description = "Mixed line"
addresses = "10;11"
polling = "1s"
items = ["SERIALNO"]
"#,
            tcp_bus = gateway.bus("gateway"),
            pty_bus = serial.bus("serial"),
        ),
    );
    let run = Logger::run(&workdir, &config, "4s").finish().ok();
    let rows = readings(&run);

    for (bus, addresses, items) in [
        ("gateway", &[1, 2, 3][..], &["SERIALNO", "T1", "E1"][..]),
        ("serial", &[10, 11], &["SERIALNO"]),
    ] {
        let transactions = transactions(&rows, bus);
        // Each run reads the addresses in turn, all items in one frame.
        let runs: Vec<&[Transaction]> = transactions.chunks(addresses.len()).collect();
        assert!(
            runs.len() >= 2,
            "{bus}: fewer than two runs in 4 s: {rows:#?}"
        );
        for run in &runs {
            let order: Vec<u64> = run.iter().map(|transaction| transaction.address).collect();
            if order.len() == addresses.len() {
                assert_eq!(order, addresses, "{bus}: addresses out of turn");
            }
            for transaction in *run {
                assert_eq!(names(transaction), items, "{bus}: {transaction:#?}");
                for row in &transaction.rows {
                    assert_eq!(row.status, "ok", "{row:?}");
                    let value = row.value.as_deref().expect("a value");
                    match row.name.as_str() {
                        "SERIALNO" => {
                            assert_eq!(value, serial_of(row.address), "{row:?}");
                            assert_eq!(row.unit.as_deref(), Some(""), "{row:?}");
                        }
                        "T1" => {
                            assert!(has_decimals(value, 2), "{row:?}");
                            assert_eq!(row.unit.as_deref(), Some("°C"), "{row:?}");
                        }
                        _ => assert!(has_decimals(value, 3) || has_decimals(value, 0), "{row:?}"),
                    }
                }
            }
        }
    }
    // The gateway's meters think 20 ms before each reply; the serial line
    // carries each 15-byte reply at 1200 baud, 11 bits a byte: 137 ms.
    check_one_at_a_time(&transactions(&rows, "gateway"), Duration::from_millis(20));
    check_one_at_a_time(&transactions(&rows, "serial"), Duration::from_millis(137));

    assert_eq!(
        sorted(workdir.db_rows()),
        sorted(rows),
        "kmplog.db holds exactly the readings printed"
    );
}

#[test]
fn a_silent_meter_times_out_and_the_next_address_is_still_read() {
    let gateway = Simulator::tcp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
{tcp_bus}

[[bus.request]]
description = "With a silent meter"
addresses = "1;99;2"
timeout_ms = 300
retries = 0
polling = "1s"
items = ["SERIALNO", "T1"]
"#,
            tcp_bus = gateway.bus("gateway")
        ),
    );
    let run = Logger::run(&workdir, &config, "3s").finish().ok();
    let transactions = transactions(&readings(&run), "gateway");
    let runs: Vec<&[Transaction]> = transactions
        .chunks(3)
        .filter(|run| run.len() == 3)
        .collect();
    assert!(!runs.is_empty(), "no complete run: {run:#?}");
    for run in runs {
        let [first, silent, next] = run else {
            unreachable!()
        };
        assert_eq!(
            [first.address, silent.address, next.address],
            [1, 99, 2],
            "{run:#?}"
        );
        for row in &first.rows {
            assert_eq!(
                (row.status.as_str(), row.value.is_some()),
                ("ok", true),
                "{row:?}"
            );
        }
        for row in &silent.rows {
            assert_eq!(
                (row.status.as_str(), &row.value),
                ("timeout", &None),
                "{row:?}"
            );
        }
        assert_eq!(names(silent), ["SERIALNO", "T1"]);
        // The logger waited the whole timeout for 99, then went on to 2.
        assert!(
            silent.time.duration_since(first.time) >= SignedDuration::from_millis(300),
            "meter 99 timed out {:?} after meter 1 answered",
            silent.time.duration_since(first.time)
        );
        assert!(next.time > silent.time);
        assert_eq!(next.rows[0].value.as_deref(), Some(&*serial_of(2)));
        assert_eq!(next.rows[0].status, "ok");
    }
}

#[test]
fn a_gateway_that_restarts_is_reconnected_and_polled_again() {
    let address = format!("127.0.0.1:{}", free_port());
    let simulator = Simulator::tcp_on(&address, &["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
[[bus]]
name = "gateway"
tcp = "{address}"
connect_timeout_ms = 500

[[bus.request]]
description = "Every 500 ms"
addresses = 1
timeout_ms = 300
retries = 0
polling = "500ms"
items = ["SERIALNO"]
"#
        ),
    );
    let logger = Logger::run(&workdir, &config, "8s");
    std::thread::sleep(Duration::from_secs(2));
    let stopped = Timestamp::now();
    drop(simulator);
    std::thread::sleep(Duration::from_secs(2));
    let simulator = Simulator::tcp_on(&address, &["--meter", "1"]);
    let restarted = Timestamp::now();
    // The API shows the reconnection and the error before it; asked until
    // it shows them (the logger's own --for ends the wait).
    let bus = loop {
        let (status, body) = http(logger.api(), "GET", "/api/buses", &[]);
        assert_eq!(status, 200, "{body}");
        let state: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let bus = state["buses"][0].clone();
        if bus["reconnects"].as_u64() >= Some(1) && bus["connected"] == true {
            break bus;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(bus["last_error"]["error"].is_string(), "{bus}");
    assert!(bus["requests"][0]["last_run"].is_string(), "{bus}");
    let run = logger.finish();
    drop(simulator);
    assert_eq!(
        run.code, 0,
        "the logger kept running and ended well: {run:#?}"
    );

    let rows = readings(&run);
    let statuses = |from: Timestamp, to: Timestamp| -> BTreeSet<&str> {
        rows.iter()
            .filter(|row| row.time() > from && row.time() < to)
            .map(|row| row.status.as_str())
            .collect()
    };
    let start = rows.first().expect("readings").time();
    assert_eq!(
        statuses(start - SignedDuration::from_secs(1), stopped),
        ["ok"].into()
    );
    let away = statuses(stopped, restarted);
    assert!(
        !away.is_empty()
            && away
                .iter()
                .all(|status| ["line_down", "timeout"].contains(status)),
        "while the gateway was away: {away:?}"
    );
    let back: Vec<&Row> = rows.iter().filter(|row| row.time() > restarted).collect();
    assert!(
        back.iter().any(|row| row.status == "ok"),
        "no reading after the gateway came back: {run:#?}"
    );
    // Once reconnected it stays connected: the last reading is good.
    let last = back.last().expect("readings after the restart");
    assert_eq!(
        (last.status.as_str(), last.value.as_deref()),
        ("ok", Some(&*serial_of(1)))
    );
}

/// A recorded line: another master reads meters 1, 2 and 5; meter 2 once
/// does not answer, and the recording ends with a request left unanswered.
struct Recording {
    bytes: Vec<u8>,
    /// What `kmplog sniff --json` prints for it, without the time stamps.
    sniffed: Vec<serde_json::Value>,
}

fn request_bytes(address: u8, registers: &[u16]) -> Vec<u8> {
    Request::get_register(registers)
        .expect("a valid register list")
        .to_frame(address)
        .encode()
}

fn reply_bytes(address: u8, values: &[(u16, u8, &str)]) -> Vec<u8> {
    Response::Registers(
        values
            .iter()
            .map(|&(register, unit, value)| RegisterValue {
                register,
                unit: Unit(unit),
                value: value.parse().expect("a decimal"),
            })
            .collect(),
    )
    .to_frame(address)
    .encode()
}

fn recording() -> Recording {
    use serde_json::json;
    const GJ: u8 = 0x08;
    const CELSIUS: u8 = 0x25;
    const HOURS: u8 = 0x2E;
    let to_meter = |address: u8, registers: &[u16]| {
        (
            request_bytes(address, registers),
            json!({"direction": "to_meter", "address": address, "cid": 16, "command": "GetRegister", "registers": registers}),
        )
    };
    let from_meter = |address: u8, values: &[(u16, u8, &str)]| {
        (
            reply_bytes(address, values),
            json!({"direction": "from_meter", "address": address, "registers": values.iter().map(|&(register, unit, value)| json!({"register": register, "unit_code": unit, "value": value})).collect::<Vec<_>>()}),
        )
    };
    let parts = [
        to_meter(1, &[60, 86]),
        from_meter(1, &[(60, GJ, "12345.678"), (86, CELSIUS, "66.60")]),
        // Noise between frames: no start byte, no stop byte.
        (vec![0x11, 0x22, 0x33], json!({"garbage": "112233"})),
        // Meter 2 does not answer: the next request shows it.
        to_meter(2, &[60, 86]),
        // Meter 5 is not ours.
        to_meter(5, &[60]),
        from_meter(5, &[(60, GJ, "1.000")]),
        // A register we do not ask for (1004) is left out of the export.
        to_meter(1, &[60, 86, 1004]),
        from_meter(
            1,
            &[
                (60, GJ, "12345.679"),
                (86, CELSIUS, "66.61"),
                (1004, HOURS, "1234"),
            ],
        ),
        to_meter(2, &[86]),
        from_meter(2, &[(86, CELSIUS, "55.55")]),
        // The last request gets no reply at all: its timeout shows it.
        to_meter(2, &[60, 86]),
    ];
    Recording {
        bytes: parts.iter().flat_map(|(bytes, _)| bytes.clone()).collect(),
        sniffed: parts.into_iter().map(|(_, json)| json).collect(),
    }
}

/// Serves `bytes` to the first client on a loopback port, then holds the
/// connection open until the client closes it, as a quiet line would.
fn serve_once(bytes: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the logger");
        stream.write_all(&bytes).expect("send the recording");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    (address, thread)
}

#[test]
fn passive_bus_exports_the_configured_values_of_a_recorded_stream() {
    let recording = recording();
    let (address, server) = serve_once(recording.bytes);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
[[bus]]
name = "listener"
tcp = "{address}"

[[bus.request]]
description = "Heat, heard"
send = false
addresses = "1;2"
timeout_ms = 300
items = ["E1", "T1"]
"#
        ),
    );
    let run = Logger::run(&workdir, &config, "2s").finish().ok();
    server.join().expect("the recording was served");
    let rows = readings(&run);
    let seen: Vec<(u64, &str, Option<&str>, &str)> = rows
        .iter()
        .map(|row| {
            assert_eq!(
                (row.bus.as_str(), row.request.as_str()),
                ("listener", "Heat, heard")
            );
            (
                row.address,
                row.name.as_str(),
                row.value.as_deref(),
                row.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "E1", Some("12345.678"), "ok"),
            (1, "T1", Some("66.60"), "ok"),
            (2, "E1", None, "timeout"),
            (2, "T1", None, "timeout"),
            (1, "E1", Some("12345.679"), "ok"),
            (1, "T1", Some("66.61"), "ok"),
            (2, "T1", Some("55.55"), "ok"),
            (2, "E1", None, "timeout"),
            (2, "T1", None, "timeout"),
        ],
        "{run:#?}"
    );
    assert_eq!(sorted(workdir.db_rows()), sorted(rows));
}

/// `sniff` output without time stamps, keeping only the keys `expected`
/// has (registers compared by their exact fields).
fn sniff_lines(run: &Run) -> Vec<serde_json::Value> {
    run.json_lines()
        .into_iter()
        .map(|mut line| {
            let ts = line
                .as_object_mut()
                .and_then(|object| object.remove("ts"))
                .unwrap_or_else(|| panic!("no ts in {line}"));
            assert!(
                ts.as_str()
                    .is_some_and(|ts| ts.parse::<Timestamp>().is_ok())
            );
            line
        })
        .collect()
}

/// Whether `line` has every field of `expected` with the same value
/// (objects compared recursively, arrays item by item).
fn contains(line: &serde_json::Value, expected: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (line, expected) {
        (Value::Object(line), Value::Object(expected)) => expected
            .iter()
            .all(|(key, value)| line.get(key).is_some_and(|found| contains(found, value))),
        (Value::Array(line), Value::Array(expected)) => {
            line.len() == expected.len()
                && line
                    .iter()
                    .zip(expected)
                    .all(|(found, value)| contains(found, value))
        }
        _ => line == expected,
    }
}

#[test]
fn sniff_decodes_a_recording_from_a_file_and_from_stdin() {
    let recording = recording();
    let workdir = Workdir::new();
    let path = workdir.path().join("recording.bin");
    std::fs::write(&path, &recording.bytes).expect("write the recording");
    let from_file = run_kmplog(&["sniff", "--file", path.to_str().unwrap(), "--json"]).ok();
    let lines = sniff_lines(&from_file);
    assert_eq!(lines.len(), recording.sniffed.len(), "{from_file:#?}");
    for (line, expected) in lines.iter().zip(&recording.sniffed) {
        assert!(contains(line, expected), "{line}\n  expected {expected}");
    }
    let from_stdin = workdir
        .run_with_stdin(&["sniff", "-", "--json"], &recording.bytes)
        .ok();
    assert_eq!(sniff_lines(&from_stdin), lines);
}

/// `text` with each time stamp `sniff` printed replaced by `TS`: the value of
/// every `"ts"` key in JSON, the first word of a text line.
fn without_time_stamps(text: &str, json: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if json {
            let (head, tail) = line
                .split_once("\"ts\":\"")
                .unwrap_or_else(|| panic!("no ts in {line}"));
            let (ts, rest) = tail.split_once('"').unwrap_or_default();
            assert!(ts.parse::<Timestamp>().is_ok(), "{ts:?} in {line}");
            out.push_str(head);
            out.push_str("\"ts\":\"TS\"");
            out.push_str(rest);
        } else if let Some(register) = line.strip_prefix("  ") {
            out.push_str("  ");
            out.push_str(register);
        } else {
            let (ts, rest) = line.split_once(' ').unwrap_or_default();
            assert!(ts.parse::<Timestamp>().is_ok(), "{ts:?} in {line}");
            out.push_str("TS ");
            out.push_str(rest);
        }
    }
    out
}

#[test]
fn sniff_output_is_the_same_as_before_the_fast_writer() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/sniff");
    let recording = data.join("recording.bin");
    let recording = recording.to_str().unwrap();
    for (json, golden) in [(true, "recording.jsonl"), (false, "recording.txt")] {
        let mut args = vec!["sniff", "--file", recording];
        if json {
            args.push("--json");
        }
        let run = run_kmplog(&args).ok();
        let expected = std::fs::read_to_string(data.join(golden)).expect("golden file");
        let got = without_time_stamps(&run.stdout, json);
        let first_difference = got
            .lines()
            .zip(expected.lines())
            .find(|(got, expected)| got != expected);
        assert!(
            got == expected,
            "{golden}: {} lines, expected {}; first difference: {first_difference:#?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
}

/// A logger on one simulated meter with `requests` as its queue.
fn start_with_queue(requests: &str, duration: &str) -> (Simulator, Workdir, Logger) {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[&simulator.bus("gateway"), requests]);
    let logger = Logger::run(&workdir, &config, duration);
    (simulator, workdir, logger)
}

/// The requests of the bus's runs, in order.
fn run_sequence(rows: &[Row]) -> Vec<String> {
    transactions(rows, "gateway")
        .into_iter()
        .map(|transaction| transaction.request)
        .collect()
}

#[test]
fn an_event_request_runs_only_when_triggered() {
    let (_simulator, _workdir, logger) = start_with_queue(
        r#"
[[bus.request]]
description = "Polling"
addresses = 1
polling = "500ms"
items = ["T1"]

[[bus.request]]
description = "On go"
addresses = 1
event = "go"
items = ["SERIALNO", "T2"]
"#,
        "3s",
    );
    std::thread::sleep(Duration::from_millis(1500));
    let fired = Timestamp::now();
    let trigger = run_kmplog(&["trigger", "go", "--api", logger.api()]).ok();
    assert_eq!(trigger.stdout, "event go fired\n");
    let run = logger.finish().ok();
    let rows = readings(&run);
    let on_go: Vec<&Row> = rows.iter().filter(|row| row.request == "On go").collect();
    assert_eq!(on_go.len(), 2, "one run of the event request: {run:#?}");
    for row in on_go {
        assert!(row.time() > fired, "read before the event: {row:?}");
        assert_eq!(row.status, "ok");
    }
    assert!(
        rows.iter()
            .any(|row| row.request == "Polling" && row.time() < fired),
        "the bus polled before the event"
    );
}

#[test]
fn a_completion_event_chains_requests() {
    let (_simulator, _workdir, logger) = start_with_queue(
        r#"
[[bus.request]]
description = "A"
addresses = 1
polling = "500ms"
items = ["T1"]
on_complete = "a-done"

[[bus.request]]
description = "B"
addresses = 1
event = "a-done"
items = ["T2"]
"#,
        "3s",
    );
    let rows = readings(&logger.finish().ok());
    let sequence = run_sequence(&rows);
    assert!(sequence.len() >= 4, "{sequence:?}");
    // A, B, A, B, ...: B runs once after each run of A, and never before;
    // the logger may stop between an A and its B.
    for (index, request) in sequence.iter().enumerate() {
        let expected = if index % 2 == 0 { "A" } else { "B" };
        assert_eq!(request, expected, "run {index} of {sequence:?}");
    }
}

#[test]
fn a_threshold_fires_once_on_the_first_crossing() {
    let (_simulator, _workdir, logger) = start_with_queue(
        r#"
[[bus.request]]
description = "Watch"
addresses = 1
polling = "500ms"
items = ["T1"]

  [[bus.request.threshold]]
  item = "T1"
  above = "0"
  event = "hot"

[[bus.request]]
description = "When hot"
addresses = 1
event = "hot"
items = ["T2"]
"#,
        "3s",
    );
    let rows = readings(&logger.finish().ok());
    let sequence = run_sequence(&rows);
    let watches = sequence
        .iter()
        .filter(|request| *request == "Watch")
        .count();
    assert!(watches >= 3, "{sequence:?}");
    // T1 is beyond 0 in every run, but only the first run crosses it.
    assert_eq!(sequence[..2], ["Watch", "When hot"], "{sequence:?}");
    assert_eq!(
        sequence
            .iter()
            .filter(|request| *request == "When hot")
            .count(),
        1,
        "{sequence:?}"
    );
}

#[test]
fn events_that_arrive_together_run_the_request_once() {
    // Both meters cross the threshold in the same run: two `hot` events at
    // one moment. Like ticks missed while the bus is busy, they should
    // merge into one run of "When hot" (which reads both meters anyway),
    // not run it twice back to back.
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("gateway"),
        r#"
[[bus.request]]
description = "Watch"
addresses = "1;2"
polling = "500ms"
items = ["T1"]

  [[bus.request.threshold]]
  item = "T1"
  above = "0"
  event = "hot"

[[bus.request]]
description = "When hot"
addresses = "1;2"
event = "hot"
items = ["T2"]
"#,
    ]);
    let rows = readings(&Logger::run(&workdir, &config, "2s").finish().ok());
    let when_hot = rows
        .iter()
        .filter(|row| row.request == "When hot" && row.address == 1)
        .count();
    assert_eq!(when_hot, 1, "{:?}", run_sequence(&rows));
}

#[test]
fn the_api_refuses_a_bad_event_name_and_one_no_request_waits_for() {
    let (_simulator, _workdir, logger) = start_with_queue(
        r#"
[[bus.request]]
description = "Polling"
addresses = 1
polling = "1s"
items = ["T1"]

[[bus.request]]
description = "On go"
addresses = 1
event = "go"
items = ["T2"]
"#,
        "2s",
    );
    let (status, body) = http(logger.api(), "POST", "/api/events/bad.name", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("'bad.name' is not an event name"), "{body}");
    // `kmplog trigger` refuses it before sending, as bad input.
    let trigger = run_kmplog(&["trigger", "bad.name", "--api", logger.api()]);
    assert_eq!(trigger.code, 2, "{trigger:#?}");
    assert!(trigger.stderr.contains("not an event name"), "{trigger:#?}");
    // A good name that no request waits for would run nothing: 404, and
    // `trigger` says so instead of "fired".
    let unknown = "no request waits for event 'good-name'; the requests wait for: go";
    let (status, body) = http(logger.api(), "POST", "/api/events/good-name", &[]);
    assert_eq!(status, 404, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"], unknown, "{body}");
    let trigger = run_kmplog(&["trigger", "good-name", "--api", logger.api()]);
    assert_eq!(trigger.code, 1, "{trigger:#?}");
    assert!(trigger.stdout.is_empty(), "{trigger:#?}");
    assert!(trigger.stderr.contains(unknown), "{trigger:#?}");
    logger.finish().ok();
}

#[test]
fn an_event_posted_while_the_bus_is_busy_runs_its_request() {
    // Meter 9 is not there: each run of "Busy" waits its 2 s timeout,
    // longer than its 1 s interval, so the bus is never idle.
    let (_simulator, _workdir, logger) = start_with_queue(
        r#"
[[bus.request]]
description = "Busy"
addresses = 9
polling = "1s"
timeout_ms = 2000
retries = 0
items = ["T1"]

[[bus.request]]
description = "On go"
addresses = 1
event = "go"
items = ["SERIALNO", "T2"]
"#,
        "8s",
    );
    std::thread::sleep(Duration::from_millis(2500));
    let fired = Timestamp::now();
    let (status, body) = http(logger.api(), "POST", "/api/events/go", &[]);
    assert_eq!(
        (status, body.as_str()),
        (202, r#"{"event":"go","buses":1}"#)
    );
    let run = logger.finish().ok();
    let rows = readings(&run);
    let on_go: Vec<&Row> = rows.iter().filter(|row| row.request == "On go").collect();
    assert_eq!(on_go.len(), 2, "one run of the event request: {run:#?}");
    for row in on_go {
        assert!(row.time() > fired, "read before the event: {row:?}");
        assert_eq!(row.status, "ok", "{row:?}");
    }
    let busy = rows.iter().filter(|row| row.request == "Busy");
    assert!(
        busy.filter(|row| row.time() > fired).count() >= 2,
        "the timed request kept its turns: {run:#?}"
    );
}

#[test]
fn a_gateway_down_for_12_s_is_a_few_log_lines() {
    let address = format!("127.0.0.1:{}", free_port());
    let simulator = Simulator::tcp_on(&address, &["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &format!("[[bus]]\nname = \"gateway\"\ntcp = \"{address}\"\n"),
        r#"
[[bus.request]]
description = "Every second"
addresses = 1
polling = "1s"
items = ["T1"]
"#,
    ]);
    let config = config.to_str().expect("UTF-8 path");
    let logger = Logger::start(
        &workdir,
        &["run", config, "--api", "off", "--json", "--for", "24s"],
    );
    std::thread::sleep(Duration::from_secs(3));
    drop(simulator);
    std::thread::sleep(Duration::from_secs(12));
    let simulator = Simulator::tcp_on(&address, &["--meter", "1"]);
    let restarted = Timestamp::now();
    let run = logger.finish().ok();
    drop(simulator);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        (1..=4).contains(&lines.len()),
        "12 polls of a gateway that is down, logged in {} lines: {lines:#?}",
        lines.len()
    );
    let said = |words: &str| lines.iter().any(|line| line.contains(words));
    assert!(
        said(r#"WARN line down bus="gateway""#) && said(r#"INFO line up again bus="gateway""#),
        "{lines:#?}"
    );
    assert!(
        readings(&run)
            .iter()
            .any(|row| row.time() > restarted && row.status == "ok"),
        "read again after the gateway came back: {run:#?}"
    );
}

#[test]
fn cron_prints_the_next_fire_times() {
    const TZ: &str = "Europe/Copenhagen";
    // (expression, start, count, expected lines)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // The first Monday of each month at 09:00: both day fields must match.
        (
            "0 9 1-7 * 1",
            "2026-11-01T00:00:00",
            "3",
            &[
                "2026-11-02T09:00:00+01:00",
                "2026-12-07T09:00:00+01:00",
                "2027-01-04T09:00:00+01:00",
            ],
        ),
        // `?` takes the start's values, and the start instant is the first fire.
        (
            "? ? * * *",
            "2026-11-25T08:25:00",
            "2",
            &["2026-11-25T08:25:00+01:00", "2026-11-26T08:25:00+01:00"],
        ),
        (
            "? * * * *",
            "2026-11-25T08:25:00",
            "2",
            &["2026-11-25T08:25:00+01:00", "2026-11-25T09:25:00+01:00"],
        ),
        (
            "? ? ? ? *",
            "2026-11-25T08:25:00",
            "2",
            &["2026-11-25T08:25:00+01:00", "2027-11-25T08:25:00+01:00"],
        ),
        // 31 December 23:59 only when it is a Friday.
        (
            "59 23 31 12 5",
            "2026-01-01T00:00:00",
            "2",
            &["2027-12-31T23:59:00+01:00", "2032-12-31T23:59:00+01:00"],
        ),
        (
            "0 0 12 * Jan, Feb, Mar Mon-Fri",
            "2026-03-30T13:00:00",
            "2",
            &["2026-03-31T12:00:00+02:00", "2027-01-01T12:00:00+01:00"],
        ),
        // Spring: 02:30 does not exist on 29 March; it fires once, at the jump.
        (
            "0 30 2 * * *",
            "2026-03-28T12:00:00",
            "3",
            &[
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00",
            ],
        ),
        (
            "*/15 * * * *",
            "2026-03-29T01:40:00",
            "4",
            &[
                "2026-03-29T01:45:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:15:00+02:00",
                "2026-03-29T03:30:00+02:00",
            ],
        ),
        // Autumn: 02:30 happens twice on 25 October; it fires at the first.
        (
            "0 30 2 * * *",
            "2026-10-24T12:00:00",
            "3",
            &[
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00",
            ],
        ),
        // ... while a schedule within the hour keeps its pace through both.
        (
            "*/15 * * * *",
            "2026-10-25T01:50:00",
            "9",
            &[
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:15:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:45:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:15:00+01:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T02:45:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
    ];
    for &(expression, start, count, expected) in cases {
        let run = run_kmplog(&[
            "cron", expression, "--start", start, "--count", count, "--tz", TZ,
        ]);
        assert_eq!(run.code, 0, "{expression}: {run:#?}");
        assert_eq!(
            run.stdout.lines().collect::<Vec<_>>(),
            expected,
            "{expression} from {start}"
        );
    }
}

#[test]
fn cron_refuses_a_bad_expression_naming_the_field() {
    // (expression, what the message must name)
    let cases = [
        ("0 61 * * * *", "minute"),
        ("0 0 25 * * *", "hour"),
        ("0 0 0 32 * *", "day"),
        ("0 0 0 * 13 *", "month"),
        ("0 0 0 * * Fun", "weekday"),
        ("0 0 12 * * * *", "6 fields"),
        ("* * * * * ?", "weekday"),
    ];
    for (expression, field) in cases {
        let run = run_kmplog(&["cron", expression, "--tz", "UTC"]);
        assert_ne!(run.code, 0, "{expression} was accepted: {run:#?}");
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert!(
            run.stderr.contains(field),
            "{expression}: the message does not name {field:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn demo_polls_five_simulated_meters_on_two_buses_into_kmplog_db() {
    let workdir = Workdir::new();
    let run = workdir
        .run(&["demo", "--for", "6s", "--json", "--api", "off"])
        .ok();
    let rows = readings(&run);
    let buses: BTreeSet<&str> = rows.iter().map(|row| row.bus.as_str()).collect();
    assert_eq!(buses, ["boiler-room", "substation"].into(), "{run:#?}");
    let meters: BTreeSet<u64> = rows
        .iter()
        .filter(|row| row.status == "ok")
        .map(|row| row.address)
        .collect();
    assert_eq!(meters, [1, 2, 3, 10, 11].into(), "{run:#?}");
    for row in &rows {
        // The sample configuration reads only registers its meters have.
        assert_eq!(row.status, "ok", "{row:?}");
    }
    // The event chain: the info codes follow each run of the live values.
    let sequence: Vec<String> = transactions(&rows, "boiler-room")
        .into_iter()
        .map(|transaction| transaction.request)
        .collect();
    let chained = "After the live values: info codes";
    assert!(
        sequence.iter().any(|request| request == chained),
        "{sequence:?}"
    );
    // Each run of the chained request follows a run of the live values
    // since its own previous run; requests that were due anyway (the
    // counters) may come between, in queue order.
    let mut live_values_since = false;
    for (index, request) in sequence.iter().enumerate() {
        if request == "Heat meters, live values" {
            live_values_since = true;
        } else if request == chained && (index == 0 || sequence[index - 1] != chained) {
            assert!(live_values_since, "{sequence:?}");
            live_values_since = false;
        }
    }
    let stored = workdir.db_rows();
    assert_eq!(stored.len(), rows.len());
    assert_eq!(sorted(stored), sorted(rows));
}

/// Splits one CSV record, with RFC 4180 quoting.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// The lines of every daily file with `extension` in `directory`, in day order.
fn daily_lines(directory: &std::path::Path, extension: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("the sink directory exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{extension} file in {directory:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let day = name
            .strip_prefix("kmplog-")
            .and_then(|rest| rest.strip_suffix(&format!(".{extension}")))
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        assert!(day.parse::<jiff::civil::Date>().is_ok(), "{name}");
    }
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("read a daily file");
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if extension == "csv" {
                assert_eq!(
                    lines.first().map(String::as_str),
                    Some("ts,bus,address,request,register,name,value,unit,unit_code,status"),
                    "{file:?}"
                );
                lines.into_iter().skip(1).collect()
            } else {
                lines
            }
        })
        .collect()
}

#[test]
fn csv_and_json_lines_files_hold_exactly_the_readings() {
    let gateway = Simulator::tcp(&["--meter", "1", "--meter", "2:403"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
time_zone = "UTC"

[sinks]
csv = "files"
jsonl = "files"

{tcp_bus}

[[bus.request]]
description = "Heat, \"main\" values"
addresses = "1;2;7"
timeout_ms = 200
retries = 0
polling = "1s"
items = ["SERIALNO", "T1", "E1", "V1"]
"#,
            tcp_bus = gateway.bus("gateway")
        ),
    );
    let run = Logger::run(&workdir, &config, "3s").finish().ok();
    let printed: Vec<&str> = run.stdout.lines().collect();
    let rows = readings(&run);
    assert!(
        rows.iter().any(|row| row.status == "timeout") && rows.iter().any(|row| row.status == "ok"),
        "{run:#?}"
    );

    let jsonl = daily_lines(&workdir.path().join("files"), "jsonl");
    assert_eq!(
        jsonl, printed,
        "the JSON-lines files hold the printed lines"
    );

    let csv = daily_lines(&workdir.path().join("files"), "csv");
    assert_eq!(csv.len(), rows.len());
    for (line, (row, json)) in csv.iter().zip(rows.iter().zip(run.json_lines())) {
        let fields = csv_fields(line);
        let unit_code = json["unit_code"]
            .as_u64()
            .map(|code| code.to_string())
            .unwrap_or_default();
        assert_eq!(
            fields,
            [
                row.ts.clone(),
                row.bus.clone(),
                row.address.to_string(),
                row.request.clone(),
                row.register.to_string(),
                row.name.clone(),
                row.value.clone().unwrap_or_default(),
                row.unit.clone().unwrap_or_default(),
                unit_code,
                row.status.clone(),
            ],
            "{line}"
        );
    }
    assert_eq!(sorted(workdir.db_rows()), sorted(rows));
}

#[test]
fn sigterm_stops_the_logger_with_every_reading_stored() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[&simulator.bus("gateway"), "\n[[bus.request]]\ndescription = \"Fast\"\naddresses = 1\npolling = \"200ms\"\nitems = [\"SERIALNO\", \"T1\"]\n"]);
    let config = config.to_str().unwrap();
    let logger = Logger::start(&workdir, &["run", config, "--api", "127.0.0.1:0", "--json"]);
    std::thread::sleep(Duration::from_millis(1500));
    // As a service manager stops it.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &logger.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let run = logger.finish().ok();
    let rows = readings(&run);
    assert!(rows.len() >= 4, "{run:#?}");
    assert_eq!(sorted(workdir.db_rows()), sorted(rows));
}

#[test]
fn an_api_port_in_use_is_a_clear_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        "[[bus]]\nname = \"gateway\"\ntcp = \"127.0.0.1:1\"\n\n[[bus.request]]\ndescription = \"Once\"\naddresses = 1\nonce = true\nitems = [\"T1\"]\n",
    );
    let run = workdir.run(&[
        "run",
        config.to_str().unwrap(),
        "--api",
        &address,
        "--for",
        "5s",
    ]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("cannot listen for the API on {address}"))
            && run.stderr.contains("--api"),
        "{run:#?}"
    );
}

#[test]
fn a_listening_request_needs_no_method() {
    // In passive mode the other master decides when the meters are read: a
    // schedule means nothing there, so the check should not ask for one.
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        "[[bus]]\nname = \"listener\"\ntcp = \"127.0.0.1:4001\"\n\n[[bus.request]]\ndescription = \"Heard\"\nsend = false\naddresses = \"1;2\"\nitems = [\"E1\", \"T1\"]\n",
    );
    workdir.run(&["check", config.to_str().unwrap()]).ok();
}

#[test]
fn a_udp_bus_is_polled_one_frame_a_datagram() {
    let gateway = Simulator::udp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
{udp_bus}

[[bus.request]]
description = "Over UDP"
addresses = "1;2"
polling = "500ms"
items = ["SERIALNO", "T1"]
"#,
            udp_bus = gateway.bus("datagrams")
        ),
    );
    let run = Logger::run(&workdir, &config, "2s").finish().ok();
    let rows = readings(&run);
    assert!(rows.len() >= 4, "{run:#?}");
    for row in &rows {
        assert_eq!(
            (row.status.as_str(), row.bus.as_str()),
            ("ok", "datagrams"),
            "{row:?}"
        );
    }
    for address in [1, 2] {
        let serial = rows
            .iter()
            .find(|row| row.address == address && row.name == "SERIALNO");
        assert_eq!(
            serial.and_then(|row| row.value.as_deref()),
            Some(&*serial_of(address))
        );
    }
}
