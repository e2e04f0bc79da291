//! The router, request by request, through `tower::ServiceExt::oneshot`.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request as HttpRequest;
use futures_util::StreamExt;
use kmp::unit::Unit;
use tower::ServiceExt;

use super::*;
use crate::bus::state::BusState;
use crate::outbox::{Outbox, Stored};
use crate::reading::Reading;
use crate::reading::Status;
use crate::sink::Sink;
use crate::sink::sqlite::SqliteSink;

fn reading(time: &str, address: u8, name: &str, value: Option<&str>) -> Reading {
    Reading {
        time: time.parse().unwrap(),
        bus: "heat".to_owned(),
        address,
        request: "Main".to_owned(),
        register: 60,
        name: name.to_owned(),
        value: value.map(|text| (text.parse().unwrap(), Unit(0x08))),
        status: if value.is_some() {
            Status::Ok
        } else {
            Status::Timeout
        },
    }
}

/// Readings in the same second with fractions of different lengths, which
/// sort wrong as text, and in other seconds.
const TIMES: [&str; 6] = [
    "2026-11-25T08:00:00Z",
    "2026-11-25T08:00:01Z",
    "2026-11-25T08:00:01.125Z",
    "2026-11-25T08:00:01.25Z",
    "2026-11-25T08:00:01.5Z",
    "2026-11-25T08:00:02.000000001Z",
];

struct Fixture {
    _dir: tempfile::TempDir,
    state: ApiState,
    /// The collector's side of the live feed.
    live: broadcast::Sender<LiveBatch>,
}

async fn fixture(token: Option<&str>, with_database: bool) -> Fixture {
    fixture_with(token, with_database, Limits::default()).await
}

async fn fixture_with(token: Option<&str>, with_database: bool, limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let events = EventRouter::from_routes([("heat".to_owned(), "morning-read".to_owned())]);
    let (live, _) = broadcast::channel(16);
    let bus = BusState {
        name: "heat".to_owned(),
        polls: 5,
        timeouts: 1,
        ..BusState::default()
    };
    let mut state = ApiState::with_limits(
        events,
        vec![crate::bus::state::SharedState::new(bus)],
        Arc::default(),
        live.clone(),
        limits,
    );
    let readings: Vec<Reading> = TIMES
        .iter()
        .enumerate()
        .map(|(n, time)| {
            let value = (n != 3).then(|| format!("{n}.5"));
            reading(
                time,
                if n % 2 == 0 { 1 } else { 2 },
                ["E1", "T1"][n % 2],
                value.as_deref(),
            )
        })
        .collect();
    state.latest.lock().unwrap().update(&readings);
    let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 1000).unwrap();
    outbox.register("sqlite:kmplog.db", true).unwrap();
    outbox.append(&readings).unwrap();
    state.outbox = Some(Arc::new(Mutex::new(
        OutboxReader::open(outbox.path()).unwrap(),
    )));
    if with_database {
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let batch: Vec<Stored> = readings
            .into_iter()
            .enumerate()
            .map(|(n, reading)| Stored {
                seq: n as u64 + 1,
                key: format!("k-{}", n + 1),
                instance: None,
                reading,
            })
            .collect();
        sink.deliver(&batch).await.unwrap();
        state.database = Some(path);
    }
    state.token = token.map(Arc::from);
    Fixture {
        _dir: dir,
        state,
        live,
    }
}

async fn send(
    state: &ApiState,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|authorization| ("authorization", authorization))
        .into_iter()
        .collect();
    send_with(state, method, uri, &headers).await
}

async fn send_with(
    state: &ApiState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = HttpRequest::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(state: &ApiState, uri: &str) -> JsonValue {
    let (status, body) = send(state, "GET", uri, None).await;
    assert_eq!(status, 200, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn times(answer: &JsonValue) -> Vec<String> {
    answer["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["ts"].as_str().unwrap().to_owned())
        .collect()
}

/// An error answer: its status, and its message, which must be JSON.
async fn refused(
    state: &ApiState,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let (status, body) = send(state, method, uri, authorization).await;
    let json: JsonValue =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{uri}: not JSON: {body}"));
    let message = json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{uri}: no error in {body}"));
    (status, message.to_owned())
}

#[tokio::test]
async fn readings_come_newest_first_exactly_even_within_a_second() {
    let fixture = fixture(None, true).await;
    let state = &fixture.state;
    let all = get_json(state, "/api/readings").await;
    let mut expected: Vec<String> = TIMES.iter().rev().map(|time| (*time).to_owned()).collect();
    assert_eq!(times(&all), expected);
    let first = &all["readings"][0];
    assert_eq!(
        (
            first["bus"].as_str(),
            first["address"].as_u64(),
            first["name"].as_str()
        ),
        (Some("heat"), Some(2), Some("T1"))
    );
    assert_eq!(
        (first["value"].as_str(), first["unit"].as_str()),
        (Some("5.5"), Some("GJ"))
    );
    assert_eq!(
        (first["status"].as_str(), first["key"].as_str()),
        (Some("ok"), Some("k-6"))
    );
    // A page that ends inside a second still holds that second's newest.
    let page = get_json(state, "/api/readings?limit=3").await;
    expected.truncate(3);
    assert_eq!(times(&page), expected);
}

#[tokio::test]
async fn each_filter_narrows_the_readings() {
    let fixture = fixture(None, true).await;
    let state = &fixture.state;
    for (query, expected) in [
        ("address=2", vec![5, 3, 1]),
        ("name=E1&address=1", vec![4, 2, 0]),
        ("bus=heat&limit=2", vec![5, 4]),
        ("bus=other", vec![]),
        ("status=timeout", vec![3]),
        ("from=2026-11-25T08:00:01.125Z", vec![5, 4, 3, 2]),
        ("to=2026-11-25T08:00:01.25Z", vec![3, 2, 1, 0]),
        (
            "from=2026-11-25T09:00:01%2B01:00&to=2026-11-25T08:00:01.2Z",
            vec![2, 1],
        ),
    ] {
        let expected: Vec<String> = expected.iter().map(|&n| TIMES[n].to_owned()).collect();
        assert_eq!(
            times(&get_json(state, &format!("/api/readings?{query}")).await),
            expected,
            "{query}"
        );
    }
}

#[tokio::test]
async fn bad_filters_are_400_with_a_message() {
    let fixture = fixture(None, true).await;
    for (query, message) in [
        (
            "address=999",
            "address=999 is not a meter address; give a number from 1 to 255",
        ),
        ("address=x", "address=x is not a meter address"),
        (
            "status=fine",
            "status=fine is not a status; use one of ok, suspect",
        ),
        ("from=yesterday", "from=yesterday is not an RFC 3339 time"),
        ("to=2026-13-01T00:00:00Z", "is not an RFC 3339 time"),
        (
            "limit=0",
            "limit=0 is not a number of readings from 1 to 10000",
        ),
        ("limit=10001", "limit=10001 is not a number"),
        ("limit=-1", "limit=-1 is not a number"),
        ("bus=a&bus=b", "filter 'bus' is given twice"),
        (
            "adress=1",
            "'adress' is not a filter here; the filters are bus, address",
        ),
        (
            "from=2026-11-25T09:00:00Z&to=2026-11-25T08:00:00Z",
            "is after to=",
        ),
    ] {
        let (status, error) = refused(
            &fixture.state,
            "GET",
            &format!("/api/readings?{query}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {error}");
        assert!(error.contains(message), "{query}: {error}");
    }
    let (status, error) =
        refused(&fixture.state, "GET", "/api/readings/stream?limit=5", None).await;
    assert_eq!(
        (status, error.contains("'limit' is not a filter here")),
        (400, true),
        "{error}"
    );
}

#[tokio::test]
async fn readings_without_the_sqlite_sink_are_404_with_the_way_to_turn_it_on() {
    let fixture = fixture(None, false).await;
    let (status, error) = refused(&fixture.state, "GET", "/api/readings", None).await;
    assert_eq!(status, 404);
    assert!(
        error.contains("the SQLite sink is off") && error.contains("--sink sqlite:kmplog.db"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreadable_database_is_503_not_a_crash() {
    let mut fixture = fixture(None, false).await;
    fixture.state.database = Some("/nonexistent/kmplog.db".into());
    let (status, error) = refused(&fixture.state, "GET", "/api/readings", None).await;
    assert_eq!(status, 503);
    assert!(
        error.contains("/nonexistent/kmplog.db cannot be read now"),
        "{error}"
    );
}

#[tokio::test]
async fn events_are_fired_and_bad_or_unknown_names_refused() {
    let fixture = fixture(None, false).await;
    let (status, body) = send(&fixture.state, "POST", "/api/events/morning-read", None).await;
    assert_eq!(
        (status, body.as_str()),
        (202, r#"{"event":"morning-read","buses":1}"#)
    );
    assert_eq!(fixture.state.events.inbox("heat").take(), ["morning-read"]);
    let (status, error) = refused(&fixture.state, "POST", "/api/events/nope", None).await;
    assert_eq!(
        (status, error.as_str()),
        (
            404,
            "no request waits for event 'nope'; the requests wait for: morning-read"
        )
    );
    let (status, error) = refused(&fixture.state, "POST", "/api/events/bad.name", None).await;
    assert_eq!(status, 400);
    assert!(error.contains("'bad.name' is not an event name"), "{error}");
    let (status, error) = refused(&fixture.state, "POST", "/api/events/a%20b", None).await;
    assert_eq!(
        (status, error.contains("'a b' is not an event name")),
        (400, true),
        "{error}"
    );
}

#[tokio::test]
async fn buses_show_their_state() {
    let fixture = fixture(None, false).await;
    let buses = get_json(&fixture.state, "/api/buses").await;
    assert_eq!(buses["buses"][0]["name"], "heat");
    assert_eq!(buses["buses"][0]["polls"], 5);
}

#[tokio::test]
async fn metrics_show_values_counters_and_outbox_depths() {
    let fixture = fixture(None, false).await;
    let (status, text) = send(&fixture.state, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    for line in [
        "kmplog_value{bus=\"heat\",address=\"1\",name=\"E1\",unit=\"GJ\"} 4.5",
        "kmplog_polls_total{bus=\"heat\"} 5",
        "kmplog_timeouts_total{bus=\"heat\"} 1",
        "kmplog_outbox_depth{sink=\"sqlite:kmplog.db\"} 6",
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "{line} missing in\n{text}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let fixture = fixture(None, false).await;
    let (status, error) = refused(&fixture.state, "GET", "/api/nothing", None).await;
    assert_eq!(status, 404);
    assert!(
        error.contains("no such path: /api/nothing") && error.contains("/api/openapi.json"),
        "{error}"
    );
    let (status, error) = refused(&fixture.state, "DELETE", "/api/buses", None).await;
    assert_eq!(
        (
            status,
            error.contains("DELETE is not allowed on /api/buses")
        ),
        (405, true),
        "{error}"
    );
}

#[tokio::test]
async fn a_token_is_needed_on_every_path_and_must_be_right() {
    let fixture = fixture(Some("s3cret-token"), true).await;
    let state = &fixture.state;
    for (method, uri) in [
        ("GET", "/api/buses"),
        ("GET", "/api/readings"),
        ("GET", "/api/readings/stream"),
        ("GET", "/api/openapi.json"),
        ("GET", "/metrics"),
        ("POST", "/api/events/morning-read"),
        ("GET", "/api/nothing"),
    ] {
        let (status, message) = refused(state, method, uri, None).await;
        assert_eq!(status, 401, "{uri}");
        assert!(message.contains("Authorization: Bearer TOKEN"), "{message}");
        let (status, message) = refused(state, method, uri, Some("Basic dXNlcjpwYXNz")).await;
        assert_eq!(
            (status, message.contains("not a bearer token")),
            (401, true),
            "{message}"
        );
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-tokenX",
            "Bearer S3CRET-TOKEN",
            "Bearer ",
        ] {
            let (status, message) = refused(state, method, uri, Some(wrong)).await;
            assert_eq!(
                (status, message.as_str()),
                (403, "the token is wrong"),
                "{uri} {wrong}"
            );
        }
    }
    let (status, _) = send(state, "GET", "/api/buses", Some("Bearer s3cret-token")).await;
    assert_eq!(status, 200);
    let (status, _) = send(state, "GET", "/api/readings", Some("Bearer s3cret-token")).await;
    assert_eq!(status, 200);
    let response = router(state.clone())
        .oneshot(HttpRequest::get("/api/buses").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[test]
fn tokens_are_compared_whole() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abd", b"abc"));
    assert!(!constant_time_eq(b"ab", b"abc"));
    assert!(!constant_time_eq(b"abcd", b"abc"));
    assert!(!constant_time_eq(b"", b"abc"));
    assert!(!constant_time_eq(b"\0", b""));
}

#[test]
fn a_public_address_needs_a_long_token() {
    let long = "0123456789abcdef";
    for (address, token, expected) in [
        (
            "0.0.0.0:7064",
            None,
            Some("refusing to serve the API on 0.0.0.0:7064 without a token"),
        ),
        (
            "0.0.0.0:7064",
            Some("s3cret"),
            Some(
                "with a token of 6 characters: on other than a loopback address it needs at least 16",
            ),
        ),
        (
            "192.0.2.7:7064",
            Some("0123456789abcde"),
            Some("a token of 15 characters"),
        ),
        ("0.0.0.0:7064", Some(long), None),
        ("127.0.0.1:0", None, None),
        ("127.8.9.1:0", Some("t"), None),
        ("[::1]:0", None, None),
        ("[::ffff:127.0.0.1]:7064", None, None),
        ("[::ffff:192.0.2.7]:7064", None, Some("without a token")),
    ] {
        let result = check_bind(address.parse().unwrap(), token);
        match expected {
            None => assert_eq!(result, Ok(()), "{address} {token:?}"),
            Some(expected) => {
                let error = result.expect_err(address);
                assert!(
                    error.contains(expected) && error.contains("openssl rand -hex 32"),
                    "{address} {token:?}: {error}"
                );
            }
        }
    }
    let error = check_bind("0.0.0.0:7064".parse().unwrap(), None).unwrap_err();
    assert!(
        error.contains("--api-token TOKEN (or KMPLOG_API_TOKEN)")
            && error.contains("--api 127.0.0.1:7064"),
        "{error}"
    );
}

#[tokio::test]
async fn the_stream_sends_each_reading_that_passes_the_filters() {
    let fixture = fixture(None, false).await;
    let response = router(fixture.state.clone())
        .oneshot(
            HttpRequest::get("/api/readings/stream?address=2")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let batch = LiveBatch {
        last_seq: 2,
        readings: vec![
            reading(TIMES[0], 1, "E1", Some("1.5")),
            reading(TIMES[1], 2, "T1", Some("61.25")),
        ]
        .into(),
    };
    fixture.live.send(batch).unwrap();
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = body.next().await.expect("an event").unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    // Stopping the server ends the stream, so its shutdown does not wait.
    fixture.state.shutdown.cancel();
    assert!(body.next().await.is_none());
    let data: Vec<JsonValue> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(
        data,
        [reading(TIMES[1], 2, "T1", Some("61.25")).to_json()],
        "{text}"
    );
}

#[tokio::test]
async fn openapi_describes_exactly_the_routes_of_the_router() {
    let fixture = fixture(None, true).await;
    let document: JsonValue = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_owned()))
        .collect();
    assert_eq!(described, routed);
    // And each described operation is really served: neither 404 nor 405.
    for (method, path) in &described {
        if path.ends_with("/stream") {
            continue; // endless; its own test reads it
        }
        let uri = path
            .replace("{name}", "morning-read")
            .replace("/api/history", "/api/history?bus=heat&address=1&name=E1")
            .replace("/api/cron", "/api/cron?expression=0%20*%20*%20*%20*%20*")
            .replace("/api/registers", "/api/registers?model=603");
        let (status, body) = send(&fixture.state, method, &uri, None).await;
        if path.starts_with("/api/config") || path == "/api/reload" {
            // The fixture runs no file; the editor's own tests save one.
            let refused_by_handler = body.contains("runs no configuration file") || status == 415;
            assert!(refused_by_handler, "{method} {uri}: {status} {body}");
        } else {
            assert!(status < 400, "{method} {uri}: {status} {body}");
        }
    }
    let (status, body) = send(&fixture.state, "GET", "/api/openapi.json", None).await;
    assert_eq!((status, body.as_str()), (200, OPENAPI));
}

/// A request (method, URI, headers) and the status it gets, with a part of
/// its error message.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

/// Host and Origin, sizes and encodings: each case a request and the
/// status it gets, with the message's telling part.
#[tokio::test]
async fn foreign_hosts_origins_and_oversized_or_non_utf8_requests_are_refused_in_json() {
    let fixture = fixture(None, false).await;
    let long_uri = format!("/api/buses?{}", "x".repeat(guard::MAX_URI_BYTES));
    let big_header = "y".repeat(guard::MAX_HEADER_BYTES);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/api/buses",
            vec![("host", "127.0.0.1:7064")],
            200,
            "",
        ),
        (
            "GET",
            "/api/buses",
            vec![("host", "localhost:7064")],
            200,
            "",
        ),
        ("GET", "/api/buses", vec![("host", "[::1]:7064")], 200, ""),
        (
            "GET",
            "/api/buses",
            vec![("host", "[::ffff:127.0.0.1]:7064")],
            200,
            "",
        ),
        (
            "GET",
            "/api/buses",
            vec![("host", "evil.example:7064")],
            421,
            "does not answer to the host 'evil.example:7064'",
        ),
        (
            "GET",
            "/api/buses",
            vec![("host", "192.0.2.7:7064")],
            421,
            "--api-name 192.0.2.7",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![("host", "evil.example")],
            421,
            "it answers to localhost, 127.0.0.1, [::1]",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![
                ("host", "127.0.0.1:7064"),
                ("origin", "http://evil.example"),
            ],
            403,
            "refusing POST from a page of http://evil.example",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![("host", "127.0.0.1:7064"), ("origin", "null")],
            403,
            "refusing POST",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![
                ("host", "127.0.0.1:7064"),
                ("origin", "http://127.0.0.1:9999"),
            ],
            403,
            "only the API's own pages",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![
                ("host", "127.0.0.1:7064"),
                ("origin", "http://127.0.0.1:7064"),
            ],
            202,
            "",
        ),
        (
            "POST",
            "/api/events/morning-read",
            vec![("host", "127.0.0.1:7064")],
            202,
            "",
        ),
        (
            "GET",
            "/api/buses",
            vec![
                ("host", "127.0.0.1:7064"),
                ("origin", "http://evil.example"),
            ],
            200,
            "",
        ),
        (
            "GET",
            &long_uri,
            vec![],
            414,
            "more than the 8192 this API reads",
        ),
        (
            "GET",
            "/api/buses",
            vec![("x-big", &big_header)],
            431,
            "more than the 16384 this API reads",
        ),
        (
            "GET",
            "/api/readings/stream?bus=%FF",
            vec![],
            400,
            "the query 'bus=%FF' is not UTF-8 once percent-decoded",
        ),
        (
            "POST",
            "/api/events/%C3%28",
            vec![],
            400,
            "the path '/api/events/%C3%28' is not UTF-8",
        ),
    ];
    for (method, uri, headers, status, message) in cases {
        let (got, body) = send_with(&fixture.state, method, uri, &headers).await;
        let shown = &uri[..uri.len().min(40)];
        assert_eq!(got, status, "{method} {shown} {headers:?}: {body}");
        if status >= 400 {
            let json: JsonValue =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("{shown}: not JSON: {body}"));
            let error = json["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(message),
                "{method} {shown} {headers:?}: {error}"
            );
        }
    }
    // A wildcard bind answers to any address of the machine, and a name
    // only when it is given.
    let mut state = fixture.state.clone();
    state.bind = "0.0.0.0:7064".parse().unwrap();
    state.host_names = vec!["kmplog.example.net".to_owned()];
    for (host, status) in [
        ("192.0.2.7:7064", 200),
        ("KMPLOG.example.net", 200),
        ("localhost", 200),
        ("evil.example", 421),
    ] {
        let (got, body) = send_with(&state, "GET", "/api/buses", &[("host", host)]).await;
        assert_eq!(got, status, "{host}: {body}");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let fixture = fixture(Some("s3cret-token-0123"), false).await;
    for (authorization, status) in [
        ("Bearer s3cret-token-0123", 200),
        ("bearer s3cret-token-0123", 200),
        ("BEARER s3cret-token-0123", 200),
        ("bEaReR   s3cret-token-0123", 200),
        ("Bearers3cret-token-0123", 401),
        ("Bear s3cret-token-0123", 401),
    ] {
        let (got, body) = send(&fixture.state, "GET", "/api/buses", Some(authorization)).await;
        assert_eq!(got, status, "{authorization}: {body}");
    }
}

#[tokio::test]
async fn readings_queries_past_the_cap_are_503_with_retry_after() {
    let limits = Limits {
        readings_queries: 1,
        ..Limits::default()
    };
    let fixture = fixture_with(None, true, limits).await;
    let held = fixture
        .state
        .readings_queries
        .clone()
        .try_acquire_owned()
        .unwrap();
    let response = router(fixture.state.clone())
        .oneshot(
            HttpRequest::get("/api/readings")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: JsonValue = serde_json::from_slice(&body).unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("as many readings queries"),
        "{json}"
    );
    drop(held);
    get_json(&fixture.state, "/api/readings").await;
}

/// Readings `first..first + count` one millisecond apart from 09:00, keyed
/// by their sequence numbers, delivered to `database`.
async fn store(database: &std::path::Path, first: u64, count: u64) -> Vec<Reading> {
    let readings: Vec<Reading> = (first..first + count)
        .map(|seq| {
            let time = format!("2026-11-25T09:00:{:02}.{:03}Z", seq / 1000 % 60, seq % 1000);
            reading(&time, 1, "E1", Some(&format!("{seq}.5")))
        })
        .collect();
    let batch: Vec<Stored> = readings
        .iter()
        .zip(first..)
        .map(|(reading, seq)| Stored {
            seq,
            key: format!("k-{seq}"),
            instance: None,
            reading: reading.clone(),
        })
        .collect();
    SqliteSink::open(database)
        .unwrap()
        .deliver(&batch)
        .await
        .unwrap();
    readings
}

#[tokio::test]
async fn a_large_page_is_written_in_pieces_not_held_whole() {
    let fixture = fixture(None, true).await;
    store(fixture.state.database.as_ref().unwrap(), 100, 3000).await;
    let response = router(fixture.state.clone())
        .oneshot(
            HttpRequest::get("/api/readings?limit=3000")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body().into_data_stream();
    let mut pieces = 0;
    let mut text = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece.unwrap();
        assert!(piece.len() < 64 * 1024, "a piece of {} bytes", piece.len());
        text.extend_from_slice(&piece);
        pieces += 1;
    }
    assert!(pieces > 4, "{pieces} pieces");
    let answer: JsonValue = serde_json::from_slice(&text).unwrap();
    assert_eq!(answer["readings"].as_array().unwrap().len(), 3000);
    assert_eq!(answer["limit"], 3000);
}

#[tokio::test]
async fn cursor_pages_give_every_row_once_with_inserts_in_between() {
    let fixture = fixture(None, true).await;
    let state = &fixture.state;
    let database = state.database.clone().unwrap();
    let mut expected: Vec<String> = store(&database, 100, 25)
        .await
        .iter()
        .map(|reading| reading.time.to_string())
        .collect();
    expected.extend(TIMES.iter().map(|time| (*time).to_owned()));
    expected.sort_by_key(|time| std::cmp::Reverse(time.parse::<jiff::Timestamp>().unwrap()));
    let mut seen: Vec<String> = Vec::new();
    let mut uri = "/api/readings?bus=heat&limit=4".to_owned();
    let mut inserted = 200;
    loop {
        let page = get_json(state, &uri).await;
        seen.extend(times(&page));
        // Newer readings arrive between pages; they come before the cursor.
        store(&database, inserted, 3).await;
        inserted += 3;
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/readings?bus=heat&limit=4&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // A page that ends exactly at the last row says there is no more.
    let all = get_json(state, &format!("/api/readings?limit={}", inserted + 100)).await;
    assert!(all["next"].is_null(), "{}", all["next"]);
    let (status, error) = refused(state, "GET", "/api/readings?cursor=yesterday", None).await;
    assert_eq!(
        (status, error.contains("cursor=yesterday is not a cursor")),
        (400, true),
        "{error}"
    );
}

/// The events of a stream, read until `count` have come: (event, id, data).
async fn read_events(
    body: &mut axum::body::BodyDataStream,
    count: usize,
) -> Vec<(String, String, JsonValue)> {
    let mut text = String::new();
    loop {
        let events: Vec<&str> = text
            .split("\n\n")
            .filter(|event| event.lines().any(|line| line.starts_with("data:")))
            .collect();
        if events.len() >= count && text.ends_with("\n\n") {
            return events
                .iter()
                .map(|event| {
                    let field = |name: &str| {
                        event
                            .lines()
                            .find_map(|line| line.strip_prefix(name))
                            .unwrap_or_default()
                            .trim()
                            .to_owned()
                    };
                    (
                        field("event:"),
                        field("id:"),
                        serde_json::from_str(&field("data:")).unwrap(),
                    )
                })
                .collect();
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .unwrap_or_else(|_| panic!("an event within 10 s after {text:?}"))
            .expect("the stream goes on")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn open_stream(state: &ApiState, last_event_id: Option<&str>) -> axum::body::BodyDataStream {
    let mut request = HttpRequest::get("/api/readings/stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().into_data_stream()
}

fn batch(last_seq: u64, count: u64) -> LiveBatch {
    LiveBatch {
        last_seq,
        readings: (last_seq + 1 - count..=last_seq)
            .map(|seq| reading(TIMES[0], 1, "E1", Some(&format!("{seq}.5"))))
            .collect(),
    }
}

/// Lets the feed's task take what was sent.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn values(events: &[(String, String, JsonValue)]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|(_, id, data)| (id.clone(), data["value"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn expected(seqs: std::ops::RangeInclusive<u64>) -> Vec<(String, String)> {
    seqs.map(|seq| (seq.to_string(), format!("{seq}.5")))
        .collect()
}

#[tokio::test]
async fn a_slow_stream_client_is_dropped_while_others_go_on() {
    let limits = Limits {
        stream_backlog: 2,
        ..Limits::default()
    };
    let fixture = fixture_with(None, false, limits).await;
    let mut slow = open_stream(&fixture.state, None).await;
    let mut fast = open_stream(&fixture.state, None).await;
    for seq in 1..=10 {
        fixture.live.send(batch(seq, 1)).unwrap();
        let events = read_events(&mut fast, 1).await;
        assert_eq!(values(&events), expected(seq..=seq));
    }
    // The slow one has what fitted in its backlog, then is told and ended.
    let events = read_events(&mut slow, 3).await;
    assert_eq!(values(&events[..2]), expected(1..=2));
    assert_eq!(events[2].0, "dropped", "{events:?}");
    assert!(
        events[2].2["error"]
            .as_str()
            .unwrap()
            .contains("reconnect with Last-Event-ID"),
        "{events:?}"
    );
    assert!(slow.next().await.is_none(), "the slow stream ends");
    fixture.live.send(batch(11, 1)).unwrap();
    assert_eq!(values(&read_events(&mut fast, 1).await), expected(11..=11));
}

#[tokio::test]
async fn last_event_id_resumes_exactly_from_memory_then_the_database() {
    let limits = Limits {
        replay_readings: 4,
        ..Limits::default()
    };
    // The fixture's database holds sequence numbers 1 to 6 (keys k-1..k-6).
    let fixture = fixture_with(None, true, limits).await;
    let database = fixture.state.database.clone().unwrap();
    store(&database, 7, 6).await;
    for last in [3, 6, 9, 12] {
        fixture.live.send(batch(last, 3)).unwrap();
    }
    settle().await;
    // 7..=12 are in memory: exactly what follows 8.
    let mut stream = open_stream(&fixture.state, Some("8")).await;
    assert_eq!(values(&read_events(&mut stream, 4).await), expected(9..=12));
    fixture.live.send(batch(13, 1)).unwrap();
    assert_eq!(
        values(&read_events(&mut stream, 1).await),
        expected(13..=13)
    );
    // Memory keeps the latest 4 readings or a little more: 10..=13 now.
    // 3 is older: 4..=9 from the database, then memory.
    let mut stream = open_stream(&fixture.state, Some("3")).await;
    let events = read_events(&mut stream, 10).await;
    let from_database: Vec<String> = events[..3].iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(from_database, ["4", "5", "6"]);
    assert_eq!(values(&events[3..]), expected(7..=13));
    // Without the database, what memory lacks is a `missed` event.
    let mut state = fixture.state.clone();
    state.database = None;
    let mut stream = open_stream(&state, Some("2")).await;
    let events = read_events(&mut stream, 5).await;
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("missed", "9"),
        "{events:?}"
    );
    assert_eq!(
        (
            &events[0].2["from_seq"],
            &events[0].2["to_seq"],
            &events[0].2["readings"]
        ),
        (&json!(3), &json!(9), &json!(7))
    );
    assert_eq!(values(&events[1..]), expected(10..=13));
    // A Last-Event-ID that is not a number is a 400.
    let (status, error) = send_with(
        &fixture.state,
        "GET",
        "/api/readings/stream",
        &[("last-event-id", "x")],
    )
    .await;
    assert_eq!(
        (status, error.contains("is not an event id")),
        (400, true),
        "{error}"
    );
}

/// Serves the fixture's API on a free loopback port.
async fn listen(fixture: &Fixture) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let address = serve(
        "127.0.0.1:0".parse().unwrap(),
        fixture.state.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    (address, stop)
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let limits = Limits {
        header_read_timeout: std::time::Duration::from_secs(10),
        ..Limits::default()
    };
    let fixture = fixture_with(None, false, limits).await;
    let (address, _stop) = listen(&fixture).await;
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buffer = [0; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), idle.read(&mut buffer))
        .await
        .expect("the server closes an idle connection");
    assert_eq!(read.unwrap(), 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(10) && waited < std::time::Duration::from_secs(12),
        "closed after {waited:?}"
    );
}

/// One request on a connection of its own: the status and the body.
async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test]
async fn connections_past_the_cap_get_503_and_the_api_answers_again_once_they_close() {
    use tokio::io::AsyncReadExt;
    let limits = Limits {
        connections: 3,
        ..Limits::default()
    };
    let fixture = fixture_with(None, false, limits).await;
    let (address, _stop) = listen(&fixture).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }
    // The server has taken the three before it refuses the fourth.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut refused = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        refused.read_to_string(&mut answer),
    )
    .await
    .expect("a connection past the cap is answered at once")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.contains("retry-after: 1") && answer.contains("as many connections open"),
        "{answer}"
    );
    drop(idle.pop());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, body) = http_get(address, "/api/buses").await.unwrap();
        if status == 200 {
            assert!(body.contains("\"heat\""), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `promtool check metrics` on what `/metrics` serves; without promtool
/// the test fails under `CI=true` and is skipped loudly elsewhere.
#[tokio::test]
async fn metrics_pass_promtool_check() {
    use std::io::Write;
    let mut fixture = fixture(None, false).await;
    fixture.state.cluster = Some(crate::cluster::ClusterView::of(crate::cluster::Status {
        instance: "meters-1".to_owned(),
        members: vec!["meters-1".to_owned(), "meters-2".to_owned()],
        owned: [("heat".to_owned(), 4)].into(),
        coordinator_error: Some("no answer".to_owned()),
        ..crate::cluster::Status::default()
    }));
    fixture.state.buses.states()[0]
        .lock()
        .lateness_us
        .extend([1200, 800, 15_000]);
    let (status, text) = send(&fixture.state, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(text.contains("quantile=\"0.99\""), "{text}");
    assert!(
        text.contains("kmplog_cluster_coordinator_up{instance=\"meters-1\"} 0"),
        "{text}"
    );
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut promtool = match promtool {
        Ok(promtool) => promtool,
        Err(error) => {
            let message = format!(
                "promtool cannot be run ({error}): install it with `apt-get install prometheus`"
            );
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("{message}");
            }
            eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
            return;
        }
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_cluster_answer_names_the_instance_or_says_there_is_none() {
    let mut fixture = fixture(None, false).await;
    let (status, body) = send(&fixture.state, "GET", "/api/cluster", None).await;
    assert_eq!(status, 200);
    let alone: JsonValue = serde_json::from_str(&body).unwrap();
    assert_eq!(alone["instance"], JsonValue::Null);
    assert_eq!(alone["owned"], json!(["heat"]));
    assert!(
        alone["coordinator"]
            .as_str()
            .unwrap()
            .starts_with("none: no [cluster]"),
        "{alone}"
    );
    fixture.state.cluster = Some(crate::cluster::ClusterView::of(crate::cluster::Status {
        instance: "a".to_owned(),
        members: vec!["a".to_owned(), "b".to_owned()],
        owned: [("heat".to_owned(), 4)].into(),
        buses: vec![crate::cluster::BusOwner {
            bus: "heat".to_owned(),
            owner: Some("a".to_owned()),
            token: Some(4),
        }],
        ..crate::cluster::Status::default()
    }));
    let (_, body) = send(&fixture.state, "GET", "/api/cluster", None).await;
    let member: JsonValue = serde_json::from_str(&body).unwrap();
    assert_eq!(
        member,
        json!({
            "instance": "a",
            "members": ["a", "b"],
            "owned": ["heat"],
            "coordinator": "ok",
            "buses": [{ "bus": "heat", "owner": "a", "token": 4 }],
        })
    );
}

#[tokio::test]
async fn a_long_uri_gets_json_from_the_real_server_too() {
    let fixture = fixture(None, false).await;
    let (address, _stop) = listen(&fixture).await;
    let path = format!("/api/buses?{}", "x".repeat(guard::MAX_URI_BYTES + 1000));
    let (status, body) = http_get(address, &path).await.unwrap();
    assert_eq!(status, 414, "{body}");
    let json: JsonValue = serde_json::from_str(&body).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("this API reads"),
        "{json}"
    );
}

#[tokio::test]
async fn readings_the_database_lacks_are_reported_missed_once() {
    let limits = Limits {
        replay_readings: 2,
        ..Limits::default()
    };
    // The database holds 1..=6; 7..=9 never reached it.
    let fixture = fixture_with(None, true, limits).await;
    fixture.live.send(batch(11, 2)).unwrap();
    settle().await;
    let mut stream = open_stream(&fixture.state, Some("5")).await;
    let events = read_events(&mut stream, 4).await;
    assert_eq!(events[0].1, "6", "{events:?}");
    assert_eq!(
        (events[1].0.as_str(), events[1].1.as_str()),
        ("missed", "9")
    );
    assert_eq!(
        (&events[1].2["from_seq"], &events[1].2["readings"]),
        (&json!(6), &json!(3)),
        "{events:?}"
    );
    assert!(
        events[1].2["error"]
            .as_str()
            .unwrap()
            .contains("not (yet) in the SQLite database"),
        "{events:?}"
    );
    assert_eq!(values(&events[2..]), expected(10..=11));
}
