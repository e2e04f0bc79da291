//! The HTTP API of `kmplog run`, end to end: stored readings equal the
//! SQLite rows, `/metrics` has the gauges and counters, the live stream
//! delivers what is read, and the token rules hold.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Logger, Row, Simulator, Workdir, http, run_kmplog};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("not JSON: {body:?}: {error}"))
}

/// A logger on two simulated meters whose only request runs on event `go`,
/// so that the stored readings stay put once it has run.
fn start(extra: &[&str]) -> (Simulator, Workdir, Logger) {
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2:403"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("gateway"),
        r#"
[[bus.request]]
description = "On go"
addresses = "1;2"
event = "go"
items = ["SERIALNO", "T1", "E1"]
"#,
    ]);
    let config = config.to_str().expect("UTF-8 path").to_owned();
    let args = [
        &[
            "run",
            &config,
            "--api",
            "127.0.0.1:0",
            "--json",
            "--for",
            "30s",
        ][..],
        extra,
    ]
    .concat();
    let logger = Logger::start(&workdir, &args);
    (simulator, workdir, logger)
}

/// Opens the live stream and returns it once the response has begun (the
/// handler has subscribed by then).
fn open_stream(address: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(address).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        stream,
        "GET /api/readings/stream HTTP/1.1\r\nHost: {address}\r\n\r\n"
    )
    .expect("send the request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" {
            return reader;
        }
    }
}

#[test]
fn readings_metrics_and_the_live_stream_match_what_is_read() {
    let (_simulator, workdir, logger) = start(&[]);
    let api = logger.api().to_owned();
    let mut stream = open_stream(&api);

    let (status, body) = http(&api, "POST", "/api/events/go", &[]);
    assert_eq!(status, 202, "{body}");

    // Two meters, three items each.
    let mut streamed = Vec::new();
    let mut line = String::new();
    while streamed.len() < 6 {
        line.clear();
        stream
            .read_line(&mut line)
            .expect("an event from the stream");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            streamed.push(Row::of_json(&json(data)));
        }
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let (status, body) = http(&api, "GET", "/api/readings?limit=10000", &[]);
        assert_eq!(status, 200, "{body}");
        let rows: Vec<Row> = json(&body)["readings"]
            .as_array()
            .expect("readings")
            .iter()
            .map(Row::of_json)
            .collect();
        if rows.len() >= 6 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let newest_first = stored
        .windows(2)
        .all(|pair| pair[0].time() >= pair[1].time());
    assert!(newest_first, "{stored:#?}");
    let sorted = |mut rows: Vec<Row>| {
        rows.sort();
        rows
    };
    let database = sorted(workdir.db_rows());
    assert_eq!(database.len(), 6, "{database:#?}");
    assert_eq!(
        sorted(stored),
        database,
        "/api/readings is the SQLite table"
    );
    assert_eq!(
        sorted(streamed),
        database,
        "the stream sent each reading read"
    );

    let (status, body) = http(&api, "GET", "/api/readings?address=2&name=T1", &[]);
    assert_eq!(status, 200, "{body}");
    let rows = json(&body)["readings"]
        .as_array()
        .expect("readings")
        .clone();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(
        (rows[0]["address"].as_u64(), rows[0]["unit"].as_str()),
        (Some(2), Some("°C"))
    );
    let (status, body) = http(&api, "GET", "/api/readings?address=256", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .expect("error")
            .contains("address=256 is not a meter address")
    );

    let (status, metrics) = http(&api, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{metrics}");
    let t1 = database
        .iter()
        .find(|row| row.address == 1 && row.name == "T1")
        .and_then(|row| row.value.clone())
        .expect("T1 of meter 1");
    let t1: f64 = t1.parse().expect("a number");
    for line in [
        format!("kmplog_value{{bus=\"gateway\",address=\"1\",name=\"T1\",unit=\"°C\"}} {t1}"),
        "kmplog_polls_total{bus=\"gateway\"} 2".to_owned(),
        "kmplog_timeouts_total{bus=\"gateway\"} 0".to_owned(),
        "kmplog_faults_total{bus=\"gateway\"} 0".to_owned(),
        "kmplog_reconnects_total{bus=\"gateway\"} 0".to_owned(),
        "kmplog_outbox_depth{sink=\"sqlite:kmplog.db\"} 0".to_owned(),
        "kmplog_schedule_lateness_samples{bus=\"gateway\"} 0".to_owned(),
    ] {
        assert!(
            metrics.lines().any(|candidate| candidate == line),
            "{line} missing in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("# TYPE kmplog_schedule_lateness_seconds summary"),
        "{metrics}"
    );

    let (status, body) = http(&api, "GET", "/api/openapi.json", &[]);
    assert_eq!(
        (status, json(&body)["openapi"].as_str()),
        (200, Some("3.1.0"))
    );
    let (status, body) = http(&api, "GET", "/nowhere", &[]);
    assert_eq!(status, 404, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .expect("error")
            .contains("no such path")
    );
    drop(stream);
}

#[test]
fn a_public_address_without_a_token_is_refused_before_anything_starts() {
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        "[[bus]]\nname = \"gateway\"\ntcp = \"127.0.0.1:9\"\n\n[[bus.request]]\ndescription = \"Poll\"\naddresses = 1\npolling = \"1s\"\nitems = [\"T1\"]\n",
    );
    let config = config.to_str().expect("UTF-8 path");
    let run = workdir.run(&["run", config, "--api", "0.0.0.0:0", "--for", "1s"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("refusing to serve the API on 0.0.0.0:0 without a token")
            && run
                .stderr
                .contains("--api-token TOKEN (or KMPLOG_API_TOKEN)")
            && run.stderr.contains("--api 127.0.0.1:0"),
        "{run:#?}"
    );
    assert!(
        !workdir.path().join("kmplog.db").exists(),
        "nothing started"
    );
    let run = workdir.run(&[
        "run",
        config,
        "--api",
        "127.0.0.1:0",
        "--api-token",
        " ",
        "--for",
        "1s",
    ]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("--api-token (or KMPLOG_API_TOKEN) is empty"),
        "{run:#?}"
    );
    let run = workdir.run(&[
        "run",
        config,
        "--api",
        "0.0.0.0:0",
        "--api-token",
        "short",
        "--for",
        "1s",
    ]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("with a token of 5 characters")
            && run.stderr.contains("openssl rand -hex 32"),
        "{run:#?}"
    );
    let run = workdir.run(&[
        "run",
        config,
        "--api-name",
        "http://kmplog.example.net",
        "--for",
        "1s",
    ]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("'http://kmplog.example.net' is not a host name")
            && run.stderr.contains("such as kmplog.example.net"),
        "{run:#?}"
    );
}

#[test]
fn with_a_token_every_request_needs_the_header_and_trigger_sends_it() {
    let (_simulator, _workdir, logger) = start(&["--api-token", "s3cret"]);
    let api = logger.api().to_owned();
    for path in [
        "/api/buses",
        "/api/readings",
        "/metrics",
        "/api/openapi.json",
    ] {
        let (status, body) = http(&api, "GET", path, &[]);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(
            json(&body)["error"]
                .as_str()
                .expect("error")
                .contains("Authorization: Bearer TOKEN")
        );
        let (status, body) = http(&api, "GET", path, &["Authorization: Bearer wrong"]);
        assert_eq!(
            (status, body.as_str()),
            (403, r#"{"error":"the token is wrong"}"#),
            "{path}"
        );
        let (status, body) = http(&api, "GET", path, &["Authorization: Bearer s3cret"]);
        assert_eq!(status, 200, "{path}: {body}");
    }

    let refused = run_kmplog(&["trigger", "go", "--api", &api]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(
        refused.stderr.contains("HTTP 401")
            && refused
                .stderr
                .contains("--api-token TOKEN or KMPLOG_API_TOKEN"),
        "{refused:#?}"
    );
    let wrong = run_kmplog(&["trigger", "go", "--api", &api, "--api-token", "nope"]);
    assert!(
        wrong.stderr.contains("HTTP 403: the token is wrong"),
        "{wrong:#?}"
    );
    let fired = run_kmplog(&["trigger", "go", "--api", &api, "--api-token", "s3cret"]).ok();
    assert_eq!(fired.stdout, "event go fired\n");
    let output = std::process::Command::new(crate::harness::kmplog())
        .args(["trigger", "go", "--api", &api])
        .env("KMPLOG_API_TOKEN", "s3cret")
        .output()
        .expect("run kmplog trigger");
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_foreign_page_or_host_is_refused_while_trigger_still_fires() {
    let (_simulator, _workdir, logger) = start(&[]);
    let api = logger.api().to_owned();
    let (status, body) = http(
        &api,
        "POST",
        "/api/events/go",
        &["Origin: http://evil.example"],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .expect("error")
            .contains("refusing POST from a page of http://evil.example"),
        "{body}"
    );
    // DNS rebinding: the page's own name pointed at 127.0.0.1.
    let mut stream = TcpStream::connect(&api).expect("connect to the API");
    write!(
        stream,
        "GET /api/buses HTTP/1.1\r\nHost: rebind.evil.example:7064\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 421 "), "{answer}");
    assert!(
        answer.contains("--api-name rebind.evil.example"),
        "{answer}"
    );
    let fired = run_kmplog(&["trigger", "go", "--api", &api]).ok();
    assert_eq!(fired.stdout, "event go fired\n");
}
