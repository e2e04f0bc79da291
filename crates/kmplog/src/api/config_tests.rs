//! The editor's endpoints on a real file: saves keep comments, a file
//! edited by hand is not overwritten, mistakes are shown at their fields
//! and nothing is saved while one remains.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request as HttpRequest;
use serde_json::{Value as JsonValue, json};
use tokio::sync::broadcast;
use tower::ServiceExt;

use super::version_of;
use crate::api::{ApiState, router};
use crate::bus::events::EventRouter;
use crate::bus::state::SharedState;
use crate::bus::task::BusContext;
use crate::clock::Clock;
use crate::config;
use crate::reload::{ReloadSource, Reloaded, Reloader, RunningBuses};

const FILE: &str = r#"# The heat line, by hand.
[[bus]]
name = "heat"
tcp = "127.0.0.1:4001"   # the gateway

# Every minute.
[[bus.request]]
description = "Main"
addresses = "1"
items = ["E1"]   # energy
polling = "1min"
"#;

struct Editor {
    dir: tempfile::TempDir,
    state: ApiState,
}

impl Editor {
    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("kmplog.toml")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap()
    }
}

/// The API on a file, with the logger's reload loop standing in as a task
/// that reads the file again and names its buses as unchanged.
fn editor() -> Editor {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kmplog.toml");
    std::fs::write(&file, FILE).unwrap();
    let (live, _) = broadcast::channel(4);
    let mut state = ApiState::new(
        EventRouter::default(),
        Vec::<SharedState>::new(),
        Arc::default(),
        live,
    );
    let (reloader, mut orders) = Reloader::new(&file);
    let source = ReloadSource {
        file,
        extra_sinks: Vec::new(),
    };
    // The file's buses run (on no gateway), so that a reload tries the
    // serial ports as the logger's does.
    let started = source.load().map(|config| config.buses).unwrap_or_default();
    tokio::spawn(async move {
        let (readings, _unread) = tokio::sync::mpsc::unbounded_channel();
        let running = RunningBuses::start(
            &started,
            BusContext {
                clock: Clock::System,
                zone: jiff::tz::TimeZone::UTC,
                events: EventRouter::default(),
                readings,
                shutdown: tokio_util::sync::CancellationToken::new(),
                permit: None,
            },
        );
        while let Some(order) = orders.recv().await {
            let outcome = source.load().and_then(|config| {
                running.try_new_ports(&config.buses, true)?;
                Ok(Reloaded {
                    unchanged: config.buses.iter().map(|bus| bus.name.clone()).collect(),
                    ..Reloaded::default()
                })
            });
            let _ = order.answer.send(outcome);
        }
    });
    state.reloader = Some(reloader);
    Editor { dir, state }
}

async fn call(
    state: &ApiState,
    method: &str,
    uri: &str,
    body: Option<JsonValue>,
    headers: &[(&str, &str)],
) -> (u16, JsonValue) {
    let mut request = HttpRequest::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = router(state.clone())
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(JsonValue::Null),
    )
}

async fn version(state: &ApiState) -> String {
    let (status, config) = call(state, "GET", "/api/config", None, &[]).await;
    assert_eq!(status, 200, "{config}");
    config["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_configuration_is_given_as_the_editor_edits_it() {
    let editor = editor();
    let (status, config) = call(&editor.state, "GET", "/api/config", None, &[]).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["version"], version_of(FILE));
    let bus = &config["buses"][0];
    assert_eq!(bus["name"], "heat");
    assert_eq!(
        bus["line"],
        json!({ "kind": "tcp", "address": "127.0.0.1:4001", "connect_timeout_ms": 5000 })
    );
    assert_eq!(
        (&bus["echo"], &bus["retry_pause_ms"]),
        (&json!("auto"), &json!(200))
    );
    assert_eq!(
        bus["requests"][0],
        json!({
            "description": "Main",
            "send": true,
            "addresses": "1",
            "model": null,
            "timeout_ms": 1600,
            "retries": 1,
            "items": [{ "register": "E1", "export_name": "E1" }],
            "method": { "kind": "polling", "value": "1min" },
            "on_complete": null,
            "on_failure": null,
            "on_info_flag": null,
            "on_no_data": null,
            "no_data_after": null,
            "reads_per_day": null,
            "backfill": null,
            "thresholds": [],
        })
    );
}

#[tokio::test]
async fn a_save_keeps_the_comments_and_layout_and_reloads() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({
        "version": version,
        "edits": [
            { "op": "add", "bus": "heat", "description": "Temperatures" },
            { "op": "set", "bus": "heat", "request": 2, "fields": {
                "addresses": "1;2;17",
                "timeout_ms": 900,
                "items": [{ "register": "T1" }, { "register": "5000", "export_name": "CUSTOM1" }],
                "method": { "kind": "polling", "value": "5s" },
            }},
            { "op": "set", "bus": "heat", "request": 1, "fields": { "method": { "kind": "cron", "value": "0 */15 * * * *" } } },
            { "op": "move", "bus": "heat", "request": 2, "up": true },
        ],
    });
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let text = editor.text();
    assert_eq!(answer["version"], version_of(&text));
    assert_eq!(answer["reload"]["unchanged"], json!(["heat"]));
    for kept in [
        "# The heat line, by hand.",
        "# the gateway",
        "# Every minute.",
        "items = [\"E1\"]   # energy",
    ] {
        assert!(text.contains(kept), "{kept:?} lost:\n{text}");
    }
    assert!(
        text.contains("cron = \"0 */15 * * * *\"") && !text.contains("polling = \"1min\""),
        "{text}"
    );
    let config = config::parse(&text, "kmplog.toml").unwrap().0;
    let requests = &config.buses[0].requests;
    assert_eq!(requests[0].description, "Temperatures");
    assert_eq!(requests[0].addresses, [1, 2, 17]);
    assert_eq!(requests[0].timeout, std::time::Duration::from_millis(900));
    let items: Vec<(u16, &str)> = requests[0]
        .items
        .iter()
        .map(|item| (item.register, item.export_name.as_str()))
        .collect();
    assert_eq!(items, [(86, "T1"), (5000, "CUSTOM1")]);
    assert_eq!(requests[1].description, "Main");
}

#[tokio::test]
async fn a_file_changed_by_hand_is_409_and_not_overwritten() {
    let editor = editor();
    let version = version(&editor.state).await;
    let by_hand = FILE.replace("1min", "2min");
    std::fs::write(editor.file(), &by_hand).unwrap();
    let edits =
        json!({ "version": version, "edits": [{ "op": "remove", "bus": "heat", "request": 1 }] });
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("changed since the editor loaded it"),
        "{answer}"
    );
    assert_eq!(editor.text(), by_hand);
}

#[tokio::test]
async fn mistakes_are_422_at_their_fields_in_the_words_of_check_and_nothing_is_saved() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "set", "bus": "heat", "request": 1, "fields": { "method": { "kind": "polling", "value": "0s" } } },
    ]});
    let (status, answer) = call(
        &editor.state,
        "PUT",
        "/api/config",
        Some(edits.clone()),
        &[],
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(editor.text(), FILE, "nothing saved");
    // The same words and place as `kmplog check` gives for that file.
    let by_hand = FILE.replace("polling = \"1min\"", "polling = \"0s\"");
    let expected = config::parse(&by_hand, &editor.file().display().to_string()).unwrap_err();
    let expected = &expected.list()[0];
    let location = expected.location.as_ref().unwrap();
    let diagnostic = &answer["diagnostics"][0];
    assert_eq!(diagnostic["message"], expected.message.as_str());
    assert_eq!(diagnostic["hint"], expected.hint.as_str());
    assert_eq!(
        diagnostic["at"],
        format!(
            "{}:{}:{}",
            editor.file().display(),
            location.line,
            location.column
        )
    );
    assert_eq!(
        (
            &diagnostic["bus"],
            &diagnostic["request"],
            &diagnostic["field"]
        ),
        (&json!(0), &json!(0), &json!("polling"))
    );
    // The check says the same without saving; a good edit has none.
    let (status, checked) =
        call(&editor.state, "POST", "/api/config/check", Some(edits), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(checked["diagnostics"], answer["diagnostics"]);
    let good = json!({ "version": version, "edits": [
        { "op": "set", "bus": "heat", "request": 1, "fields": { "method": { "kind": "polling", "value": "10s" } } },
    ]});
    let (_, checked) = call(&editor.state, "POST", "/api/config/check", Some(good), &[]).await;
    assert_eq!(checked["diagnostics"], json!([]));
    assert_eq!(editor.text(), FILE);
}

#[tokio::test]
async fn buses_are_added_and_removed_and_a_foreign_origin_is_refused() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "add_bus", "bus": "meters", "kind": "serial", "address": "/dev/ttyUSB0", "baud": 2400, "framing": "8N1" },
        { "op": "add", "bus": "meters", "description": "Energy" },
    ]});
    let foreign = [("origin", "http://evil.example")];
    let (status, _) = call(
        &editor.state,
        "PUT",
        "/api/config",
        Some(edits.clone()),
        &foreign,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(editor.text(), FILE);
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let config = config::parse(&editor.text(), "kmplog.toml").unwrap().0;
    assert_eq!(
        config.buses[1].endpoint.to_string(),
        "serial /dev/ttyUSB0 2400 8N1"
    );
    assert_eq!(config.buses[1].requests[0].description, "Energy");
    let version = version_of(&editor.text());
    let edits = json!({ "version": version, "edits": [{ "op": "remove_bus", "bus": "meters" }] });
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(editor.text(), FILE, "the file is as it was, byte for byte");
}

#[tokio::test]
async fn a_bus_line_and_a_requests_model_events_limits_and_thresholds_are_edited_in_place() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "set_bus", "bus": "heat", "fields": {
            "kind": "tcp", "address": "127.0.0.1:4002", "connect_timeout_ms": 800, "retry_pause_ms": 50, "echo": "off",
        }},
        { "op": "set", "bus": "heat", "request": 1, "fields": {
            "model": "403",
            "on_failure": "main-failed",
            "on_no_data": "silent",
            "no_data_after": "1h",
            "reads_per_day": "1440",
            "backfill": "hourly",
            "items": [{ "register": "E1" }, { "register": "T1" }],
            "thresholds": [{ "item": "T1", "above": "90.00", "event": "hot" }],
        }},
    ]});
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let text = editor.text();
    assert!(
        text.contains("tcp = \"127.0.0.1:4002\"   # the gateway"),
        "the line changes where it is, its comment kept:\n{text}"
    );
    assert!(
        text.contains("# Every minute.") && text.contains("# The heat line, by hand."),
        "{text}"
    );
    let (status, config) = call(&editor.state, "GET", "/api/config", None, &[]).await;
    assert_eq!(status, 200, "{config}");
    let bus = &config["buses"][0];
    assert_eq!(
        bus["line"],
        json!({ "kind": "tcp", "address": "127.0.0.1:4002", "connect_timeout_ms": 800 })
    );
    assert_eq!(
        (&bus["echo"], &bus["retry_pause_ms"]),
        (&json!("off"), &json!(50))
    );
    let request = &bus["requests"][0];
    assert_eq!(request["model"], "403");
    assert_eq!(request["on_failure"], "main-failed");
    assert_eq!(request["on_complete"], JsonValue::Null);
    assert_eq!(
        (&request["on_no_data"], &request["no_data_after"]),
        (&json!("silent"), &json!("1h"))
    );
    assert_eq!(request["reads_per_day"], 1440);
    assert_eq!(request["backfill"], "hourly");
    assert!(text.contains("backfill = \"hourly\""), "{text}");
    assert_eq!(
        request["thresholds"],
        json!([{ "item": "T1", "above": "90.00", "below": null, "event": "hot" }])
    );

    // To a serial port and back to nothing on the request: keys go.
    let port = crate::sim::pty::Pty::open().unwrap();
    let path = port.path().display().to_string();
    let version = version_of(&text);
    let edits = json!({ "version": version, "edits": [
        { "op": "set_bus", "bus": "heat", "fields": { "kind": "serial", "address": path, "baud": 2400 } },
        { "op": "set", "bus": "heat", "request": 1, "fields": {
            "model": "", "on_failure": "", "on_no_data": "", "no_data_after": "", "reads_per_day": "", "backfill": "", "thresholds": [],
        }},
    ]});
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let text = editor.text();
    for gone in [
        "tcp =",
        "connect_timeout_ms",
        "model",
        "on_",
        "no_data_after",
        "reads_per_day",
        "backfill",
        "threshold",
    ] {
        assert!(!text.contains(gone), "{gone} left:\n{text}");
    }
    let config = config::parse(&text, "kmplog.toml").unwrap().0;
    assert_eq!(
        config.buses[0].endpoint.to_string(),
        format!("serial {path} 2400 8N2")
    );
}

#[tokio::test]
async fn mistakes_in_the_line_and_the_event_keys_are_at_their_fields() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "set_bus", "bus": "heat", "fields": { "kind": "tcp", "address": "nowhere" } },
        { "op": "set", "bus": "heat", "request": 1, "fields": {
            "on_failure": "not an event",
            "thresholds": [{ "item": "T9", "above": "1", "event": "hot" }],
        }},
    ]});
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 422, "{answer}");
    let at: Vec<(JsonValue, JsonValue, String)> = answer["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["request"].clone(),
                d["field"].clone(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(at.len(), 3, "{answer}");
    assert_eq!((&at[0].0, &at[0].1), (&JsonValue::Null, &json!("tcp")));
    assert!(at[0].2.starts_with("invalid gateway address"), "{answer}");
    assert_eq!((&at[1].0, &at[1].1), (&json!(0), &json!("on_failure")));
    assert!(
        at[1]
            .2
            .starts_with("the event name `not an event` holds ' '"),
        "{answer}"
    );
    assert_eq!((&at[2].0, &at[2].1), (&json!(0), &json!("threshold")));
    assert_eq!(at[2].2, "`T9` is not an item of this request");
    assert_eq!(editor.text(), FILE, "nothing saved");
}

#[tokio::test]
async fn a_backfill_from_no_such_logger_is_a_mistake_at_its_field() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "set", "bus": "heat", "request": 1, "fields": { "backfill": "weekly" } },
    ]});
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 422, "{answer}");
    let mistake = &answer["diagnostics"][0];
    assert_eq!(
        (&mistake["request"], &mistake["field"]),
        (&json!(0), &json!("backfill")),
        "{answer}"
    );
    assert!(
        mistake["message"]
            .as_str()
            .unwrap()
            .starts_with("`backfill` must be one of hourly, daily, not `weekly`"),
        "{answer}"
    );
    assert_eq!(editor.text(), FILE, "nothing saved");
}

#[tokio::test]
async fn a_save_onto_a_serial_port_that_cannot_be_opened_leaves_the_file_as_it_was() {
    let editor = editor();
    let version = version(&editor.state).await;
    let edits = json!({ "version": version, "edits": [
        { "op": "set_bus", "bus": "heat", "fields": { "kind": "serial", "address": "/dev/kmplog-no-such-port" } },
    ]});
    let (status, answer) = call(&editor.state, "PUT", "/api/config", Some(edits), &[]).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["error"],
        "bus heat: cannot open serial port /dev/kmplog-no-such-port: No such file or directory (os error 2); nothing was reloaded, every bus runs on as before"
    );
    let mistake = &answer["diagnostics"][0];
    assert_eq!(
        (&mistake["bus"], &mistake["field"]),
        (&json!(0), &json!("serial"))
    );
    assert_eq!(mistake["at"], format!("{}:4:10", editor.file().display()));
    assert_eq!(
        editor.text(),
        FILE,
        "the file is as the running logger has it"
    );
}

#[tokio::test]
async fn the_cron_preview_gives_five_times_or_the_mistake() {
    let editor = editor();
    let (status, answer) = call(
        &editor.state,
        "GET",
        "/api/cron?expression=0%20*/15%20*%20*%20*%20*",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let times: Vec<jiff::Timestamp> = answer["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|time| time.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 5);
    for pair in times.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            jiff::SignedDuration::from_mins(15)
        );
    }
    let (status, answer) = call(
        &editor.state,
        "GET",
        "/api/cron?expression=61%20*%20*%20*%20*",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid cron expression"),
        "{answer}"
    );
}
