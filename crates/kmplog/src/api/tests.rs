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
}

async fn fixture(token: Option<&str>, with_database: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let events = EventRouter::from_routes([("heat".to_owned(), "morning-read".to_owned())]);
    let (live, _) = broadcast::channel(16);
    let bus = BusState {
        name: "heat".to_owned(),
        polls: 5,
        timeouts: 1,
        ..BusState::default()
    };
    let mut state = ApiState::new(events, vec![SharedState::new(bus)], Arc::default(), live);
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
                key: format!("k-{n}"),
                reading,
            })
            .collect();
        sink.deliver(&batch).await.unwrap();
        state.database = Some(path);
    }
    state.token = token.map(Arc::from);
    Fixture { _dir: dir, state }
}

async fn send(
    state: &ApiState,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let mut request = HttpRequest::builder().method(method).uri(uri);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
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
        (Some("ok"), Some("k-5"))
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
        ("address=300", "address=300 is not a meter address"),
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
        ("POST", "/api/events/go"),
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
fn a_public_address_needs_a_token() {
    let public: SocketAddr = "0.0.0.0:7064".parse().unwrap();
    let error = check_bind(public, None).unwrap_err();
    assert!(
        error.starts_with("refusing to serve the API on 0.0.0.0:7064 without a token")
            && error.contains("--api-token TOKEN (or KMPLOG_API_TOKEN)")
            && error.contains("--api 127.0.0.1:7064"),
        "{error}"
    );
    assert_eq!(check_bind(public, Some("t")), Ok(()));
    assert_eq!(check_bind("127.0.0.1:0".parse().unwrap(), None), Ok(()));
    assert_eq!(check_bind("[::1]:0".parse().unwrap(), None), Ok(()));
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
    let batch: Arc<[Reading]> = vec![
        reading(TIMES[0], 1, "E1", Some("1.5")),
        reading(TIMES[1], 2, "T1", Some("61.25")),
    ]
    .into();
    fixture.state.live.send(batch).unwrap();
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
            .replace("/api/history", "/api/history?bus=heat&address=1&name=E1");
        let (status, body) = send(&fixture.state, method, &uri, None).await;
        assert!(status < 400, "{method} {uri}: {status} {body}");
    }
    let (status, body) = send(&fixture.state, "GET", "/api/openapi.json", None).await;
    assert_eq!((status, body.as_str()), (200, OPENAPI));
}
