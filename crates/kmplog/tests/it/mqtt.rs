//! The MQTT sink against real Mosquitto brokers, with rumqttc as the
//! subscriber: the machine's broker on 127.0.0.1:1883 (`.ci/run` starts
//! it), and a private `mosquitto` on a free port that a test stops and
//! starts again.
//!
//! Each test uses topic prefixes of its own, so tests run in parallel on the
//! shared broker, and clears the retained messages it leaves. With `CI=true`
//! a missing broker fails the test; elsewhere the test is skipped, loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rumqttc::{Client, Event, Incoming, MqttOptions, QoS};
use serde_json::Value as Json;

use crate::harness::{Logger, Row, Run, Simulator, Workdir, free_port, run_kmplog};

/// The machine's broker.
const SHARED_BROKER: &str = "127.0.0.1:1883";

/// Whether a test that needs `what` may go on: `true` when it is there;
/// with `CI=true` a missing one fails the test, elsewhere it is skipped.
fn available(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    let message = format!(
        "{what} is not available: start it with `mosquitto -d -c /etc/mosquitto/mosquitto.conf` (apt-get install mosquitto)"
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
    false
}

/// `kmplog run CONFIG --api API --json --for DURATION --sink SINK`.
fn run_with_sink(
    workdir: &Workdir,
    config: &Path,
    api: &str,
    duration: &str,
    sink: &str,
) -> Logger {
    let config = config.to_str().expect("a UTF-8 path");
    let args = [
        "run", config, "--api", api, "--json", "--for", duration, "--sink", sink,
    ];
    Logger::start(workdir, &args)
}

/// Whether the machine's broker answers (see [`available`]).
fn shared_broker() -> bool {
    available(
        listening(SHARED_BROKER),
        &format!("the MQTT broker on {SHARED_BROKER}"),
    )
}

fn listening(address: &str) -> bool {
    let address: SocketAddr = address.parse().expect("a socket address");
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// A topic prefix no other test or run uses.
fn unique_prefix(test: &str) -> String {
    format!(
        "kmplog-test-{test}-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond()
    )
}

/// One message as the subscriber got it.
#[derive(Debug, Clone)]
struct Message {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

impl Message {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|error| panic!("{}: not JSON: {error}: {:?}", self.topic, self.payload))
    }
}

/// A rumqttc client in a thread of its own, recording what it receives and
/// reconnecting after errors; stopped when dropped.
struct Subscriber {
    client: Client,
    messages: Arc<Mutex<Vec<Message>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects to `port` on loopback and subscribes to `filters` at QoS 1.
    /// `session`: a client id whose session the broker keeps across
    /// disconnects (and, with persistence, its restarts), so that messages
    /// published while this client is away wait for it.
    fn start(port: u16, filters: &[String], session: Option<&str>) -> Subscriber {
        let id = session.map_or_else(
            || {
                format!(
                    "kmplog-test-sub-{}-{}",
                    std::process::id(),
                    fastrand::u64(..)
                )
            },
            str::to_owned,
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_session(session.is_none());
        let (client, mut connection) = Client::new(options, 1000);
        for filter in filters {
            client
                .subscribe(filter.clone(), QoS::AtLeastOnce)
                .expect("subscribe");
        }
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (ready, subscribed) = std::sync::mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let messages = Arc::clone(&messages);
            let stop = Arc::clone(&stop);
            let wanted = filters.len();
            std::thread::spawn(move || {
                let mut acks = 0;
                for event in connection.iter() {
                    match event {
                        Ok(Event::Incoming(Incoming::SubAck(_))) => {
                            acks += 1;
                            if acks == wanted {
                                let _ = ready.send(());
                            }
                        }
                        Ok(Event::Incoming(Incoming::Publish(publish))) => {
                            messages.lock().unwrap().push(Message {
                                topic: publish.topic.clone(),
                                payload: publish.payload.to_vec(),
                                retain: publish.retain,
                            });
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        // The broker is away: rumqttc connects again on
                        // the next iteration.
                        Err(rumqttc::ConnectionError::RequestsDone) => break,
                        Err(_) if stop.load(std::sync::atomic::Ordering::Relaxed) => break,
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
        };
        subscribed
            .recv_timeout(Duration::from_secs(10))
            .expect("the broker acknowledges the subscriptions");
        Subscriber {
            client,
            messages,
            stop,
            thread: Some(thread),
        }
    }

    fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the messages, or `limit` passes.
    fn wait_for(&self, limit: Duration, done: impl Fn(&[Message]) -> bool) -> Vec<Message> {
        let deadline = Instant::now() + limit;
        loop {
            let messages = self.messages();
            if done(&messages) || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .expect("publish");
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // A broker that is gone already cannot take the disconnect: the
        // flag ends the reconnecting loop then.
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Clears the retained messages under `filters` on the broker at `port`,
/// so that test runs leave nothing behind.
fn clear_retained(port: u16, filters: &[String]) -> Vec<Message> {
    let reader = Subscriber::start(port, filters, None);
    // Retained messages come right after the subscription is acknowledged.
    std::thread::sleep(Duration::from_millis(500));
    let retained: Vec<Message> = reader
        .messages()
        .into_iter()
        .filter(|message| message.retain)
        .collect();
    for message in &retained {
        reader.publish(&message.topic, "", true);
    }
    // Let the clearing messages leave before disconnecting.
    std::thread::sleep(Duration::from_millis(300));
    retained
}

/// The readings a logger printed as JSON lines, in order.
fn readings(run: &Run) -> Vec<Row> {
    run.json_lines().iter().map(Row::of_json).collect()
}

/// A reading as both sides show it: topic, time, value, unit and status.
type Seen = (String, String, Option<String>, Option<String>, String);

fn seen_of_row(prefix: &str, row: &Row) -> Seen {
    (
        format!("{prefix}/{}/{}/{}", row.bus, row.address, row.name),
        row.ts.clone(),
        row.value.clone(),
        row.unit.clone(),
        row.status.clone(),
    )
}

fn seen_of_message(message: &Message) -> Seen {
    let json = message.json();
    let text = |key: &str| json[key].as_str().map(str::to_owned);
    (
        message.topic.clone(),
        text("time").expect("time"),
        text("value"),
        text("unit"),
        text("status").expect("status"),
    )
}

/// The state messages among `messages`: those under `prefix/` that carry a
/// key (not the status, not commands).
fn states(messages: &[Message], prefix: &str) -> Vec<Message> {
    messages
        .iter()
        .filter(|message| {
            message.topic.starts_with(&format!("{prefix}/"))
                && !message.payload.is_empty()
                && serde_json::from_slice::<Json>(&message.payload)
                    .is_ok_and(|json| json.get("key").is_some())
        })
        .cloned()
        .collect()
}

#[test]
fn messages_equal_the_readings_with_discovery_and_commands() {
    if !shared_broker() {
        return;
    }
    let prefix = unique_prefix("equal");
    let discovery = format!("{prefix}-ha");
    let filters = [format!("{prefix}/#"), format!("{discovery}/#")];
    let subscriber = Subscriber::start(1883, &filters, None);
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2:403"]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            r#"
{tcp_bus}

[[bus.request]]
description = "Heat"
addresses = 1
model = "603"
polling = "500ms"
items = ["T1", "E1", "V1", "INFO"]

[[bus.request]]
description = "Other"
addresses = 2
polling = "500ms"
items = ["T2", "SERIALNO"]

[[bus.request]]
description = "On x"
addresses = 1
event = "x"
items = ["SERIALNO", "T2"]
"#,
            tcp_bus = simulator.bus("gateway"),
        ),
    );
    let sink = format!("mqtt://127.0.0.1:1883?prefix={prefix}&discovery={discovery}");
    let logger = run_with_sink(&workdir, &config, "off", "4s", &sink);
    // The logger subscribes to its command topic right after it says online.
    let status = format!("{prefix}/status");
    subscriber.wait_for(Duration::from_secs(10), |messages| {
        messages
            .iter()
            .any(|m| m.topic == status && m.payload == b"online")
    });
    std::thread::sleep(Duration::from_millis(500));
    let fired = Timestamp::now();
    subscriber.publish(&format!("{prefix}/command/event"), "x", false);
    subscriber.publish(&format!("{prefix}/command/event"), "not an event!", false);
    subscriber.publish(&format!("{prefix}/command/event"), "nobody-waits", false);
    let run = logger.finish().ok();
    let rows = readings(&run);
    assert!(rows.len() >= 12, "a few runs in 4 s: {run:#?}");

    // Every reading has its message, equal field by field, and no more.
    let messages = subscriber.wait_for(Duration::from_secs(10), |messages| {
        states(messages, &prefix).len() >= rows.len()
    });
    let state_messages = states(&messages, &prefix);
    let mut expected: Vec<Seen> = rows.iter().map(|row| seen_of_row(&prefix, row)).collect();
    let mut got: Vec<Seen> = state_messages.iter().map(seen_of_message).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "the messages are the readings");
    let keys: BTreeSet<String> = state_messages
        .iter()
        .map(|message| message.json()["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys.len(),
        state_messages.len(),
        "each reading has a key of its own"
    );
    for message in &state_messages {
        let json = message.json();
        if message.topic.ends_with("/INFO") {
            assert!(
                json["flags"].is_array(),
                "the info code has its flags: {json}"
            );
        }
    }

    // The command fired the event once; the bad name and the event no
    // request waits for were ignored with a message.
    let on_x: Vec<&Row> = rows.iter().filter(|row| row.request == "On x").collect();
    assert_eq!(on_x.len(), 2, "one run of the event request: {run:#?}");
    assert!(
        on_x.iter()
            .all(|row| row.time() > fired && row.status == "ok")
    );
    assert!(
        run.stderr.contains("'not an event!' is not an event name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("WARN ignored a command: no request waits for event 'nobody-waits'"),
        "{}",
        run.stderr
    );

    // One discovery config per value, valid, before the first state.
    let names: BTreeSet<(u64, String)> = rows
        .iter()
        .map(|row| (row.address, row.name.clone()))
        .collect();
    for (address, name) in &names {
        // The prefix has only letters, digits and '-': it is the node id.
        let topic = format!("{discovery}/sensor/{prefix}_gateway_{address}_{name}/config");
        let configs: Vec<&Message> = messages.iter().filter(|m| m.topic == topic).collect();
        assert_eq!(configs.len(), 1, "one config for {topic}");
        let state = format!("{prefix}/gateway/{address}/{name}");
        let config_at = messages.iter().position(|m| m.topic == topic).unwrap();
        let first_state = messages.iter().position(|m| m.topic == state).unwrap();
        assert!(
            config_at < first_state,
            "{topic} comes before the first state"
        );
        let config = configs[0].json();
        assert_eq!(config["state_topic"], state.as_str());
        assert_eq!(config["availability_topic"], status.as_str());
        assert_eq!(
            config["unique_id"],
            format!("{prefix}_gateway_{address}_{name}")
        );
        assert_eq!(config["device"]["manufacturer"], "Kamstrup");
        assert_eq!(
            config["device"]["identifiers"],
            serde_json::json!([format!("{prefix}_gateway_{address}")])
        );
        let device = if *address == 1 {
            format!("MULTICAL 603 at gateway/1 ({prefix})")
        } else {
            format!("Kamstrup meter at gateway/2 ({prefix})")
        };
        assert_eq!(config["device"]["name"], device);
        let classes = (
            config.get("device_class").and_then(Json::as_str),
            config.get("state_class").and_then(Json::as_str),
            config.get("unit_of_measurement").and_then(Json::as_str),
        );
        let expected = match name.as_str() {
            "T1" | "T2" => (Some("temperature"), Some("measurement"), Some("°C")),
            "E1" => (Some("energy"), Some("total_increasing"), Some("GJ")),
            "V1" => (Some("volume"), Some("total_increasing"), Some("m³")),
            "INFO" | "SERIALNO" => (None, None, None),
            other => panic!("unexpected value {other}"),
        };
        assert_eq!(classes, expected, "{topic}: {config}");
    }

    // What stays: configs and states retained, the status `offline` after
    // a clean stop. Then the test clears them.
    let retained = clear_retained(1883, &filters);
    let retained_topics: BTreeMap<&str, &[u8]> = retained
        .iter()
        .map(|message| (message.topic.as_str(), message.payload.as_slice()))
        .collect();
    assert_eq!(retained_topics.get(status.as_str()), Some(&&b"offline"[..]));
    for (address, name) in &names {
        assert!(
            retained_topics.contains_key(format!("{prefix}/gateway/{address}/{name}").as_str())
        );
        assert!(retained_topics.contains_key(
            format!("{discovery}/sensor/{prefix}_gateway_{address}_{name}/config").as_str()
        ));
    }
}

/// A private Mosquitto on `port`, with persistence in `directory` so that
/// the subscriber's session and its queued messages survive a restart.
struct Broker {
    child: Child,
}

impl Broker {
    fn start(directory: &Path, port: u16) -> Broker {
        // Mosquitto started as root drops to the user `mosquitto`, which
        // must be able to write its database here.
        std::fs::set_permissions(
            directory,
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("open the broker's directory to its user");
        let config = directory.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 100000\nlog_dest none\n",
                directory.display()
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(&format!("127.0.0.1:{port}")) {
            assert!(Instant::now() < deadline, "mosquitto listens on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child }
    }

    /// Stops it as a service manager would (SIGTERM), so that it saves its
    /// sessions, and waits until it is gone.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `key` column of `kmplog.db`.
fn db_keys(workdir: &Workdir) -> Vec<String> {
    let connection =
        rusqlite::Connection::open(workdir.path().join("kmplog.db")).expect("open kmplog.db");
    let mut statement = connection
        .prepare("SELECT key FROM readings ORDER BY id")
        .expect("query keys");
    statement
        .query_map([], |row| row.get(0))
        .expect("query keys")
        .collect::<Result<_, _>>()
        .expect("read keys")
}

#[test]
fn a_broker_outage_loses_nothing() {
    let has_mosquitto = Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !available(has_mosquitto, "the mosquitto binary") {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let broker = Broker::start(directory.path(), port);
    let prefix = unique_prefix("outage");
    let subscriber = Subscriber::start(
        port,
        &[format!("{prefix}/#")],
        Some(&format!("kmplog-test-outage-{}", std::process::id())),
    );
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[&simulator.bus("gateway"), "\n[[bus.request]]\ndescription = \"Fast\"\naddresses = \"1;2\"\npolling = \"200ms\"\nitems = [\"T1\", \"E1\", \"V1\"]\n"]);
    let sink = format!("mqtt://127.0.0.1:{port}?prefix={prefix}&discovery={prefix}-ha");
    let logger = run_with_sink(&workdir, &config, "off", "9s", &sink);
    std::thread::sleep(Duration::from_secs(2));
    let before = states(&subscriber.messages(), &prefix).len();
    assert!(before > 0, "readings arrive before the outage");
    broker.stop();
    // The logger polls on while the broker is away.
    std::thread::sleep(Duration::from_secs(3));
    let _broker = Broker::start(directory.path(), port);
    let run = logger.finish().ok();
    let rows = readings(&run);
    let keys = db_keys(&workdir);
    assert_eq!(
        keys.len(),
        rows.len(),
        "kmplog.db has every reading printed"
    );
    let messages = subscriber.wait_for(Duration::from_secs(15), |messages| {
        let got: BTreeSet<String> = states(messages, &prefix)
            .iter()
            .map(|message| message.json()["key"].as_str().unwrap().to_owned())
            .collect();
        keys.iter().all(|key| got.contains(key))
    });
    let state_messages = states(&messages, &prefix);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for message in &state_messages {
        *count
            .entry(message.json()["key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !count.contains_key(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} readings never arrived: {missing:?}\n{}",
        missing.len(),
        keys.len(),
        run.stderr
    );
    let known: BTreeSet<&String> = keys.iter().collect();
    let strangers: Vec<&String> = count.keys().filter(|key| !known.contains(key)).collect();
    assert!(
        strangers.is_empty(),
        "messages of no reading: {strangers:?}"
    );
    assert!(
        run.stderr.contains("lost the broker")
            && run.stderr.contains("connected to the broker again"),
        "the logger saw the outage: {}",
        run.stderr
    );
    // None can be asserted: Mosquitto stopping with SIGTERM takes the
    // message being sent and closes the connection before its PUBACK, so
    // the sink sends that one again (one repeat in every run here). QoS 1
    // allows such repeats, where the broker took a message whose PUBACK was
    // lost (or, on the subscriber's leg, where its own PUBACK was): at most
    // the messages in flight at that moment. The sink never sends again
    // what the broker acknowledged; the key tells repeats apart.
    let repeated: Vec<(&String, &usize)> = count.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "outage: {} readings, {before} before the outage, repeated at QoS 1: {repeated:?}",
        keys.len(),
    );
    assert!(
        repeated.len() <= 20 && repeated.iter().all(|(_, n)| **n == 2),
        "more repeats than the messages in flight at the outage: {repeated:?}"
    );
}

/// Two sites publish to one broker with the same bus name and meter
/// address under prefixes of their own: Home Assistant must get two
/// entities per value, on two devices, not one config the other overwrites.
#[test]
fn two_sites_with_one_bus_name_keep_their_own_entities() {
    if !shared_broker() {
        return;
    }
    let base = unique_prefix("sites");
    let sites = [format!("{base}-north"), format!("{base}-south")];
    let discovery = format!("{base}-ha");
    let filters = [
        format!("{discovery}/#"),
        format!("{}/#", sites[0]),
        format!("{}/#", sites[1]),
    ];
    let subscriber = Subscriber::start(1883, &filters, None);
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let request = "\n[[bus.request]]\ndescription = \"Heat\"\naddresses = 1\npolling = \"500ms\"\nitems = [\"T1\", \"E1\"]\n";
    let loggers: Vec<(Workdir, Logger)> = sites
        .iter()
        .map(|prefix| {
            let workdir = Workdir::new();
            let config = workdir.config(&[&simulator.bus("gateway"), request]);
            let sink = format!("mqtt://127.0.0.1:1883?prefix={prefix}&discovery={discovery}");
            let logger = run_with_sink(&workdir, &config, "off", "2s", &sink);
            (workdir, logger)
        })
        .collect();
    for (_, logger) in loggers {
        let run = logger.finish().ok();
        assert!(!readings(&run).is_empty(), "{run:#?}");
    }
    let configs_of = |messages: &[Message]| -> BTreeMap<String, Json> {
        messages
            .iter()
            .filter(|m| m.topic.starts_with(&format!("{discovery}/")) && !m.payload.is_empty())
            .map(|m| (m.topic.clone(), m.json()))
            .collect()
    };
    // Two sites, two values each: four configs on four topics.
    let messages = subscriber.wait_for(Duration::from_secs(10), |messages| {
        configs_of(messages).len() >= 4
    });
    let retained = clear_retained(1883, &filters);
    let configs = configs_of(&messages);
    assert_eq!(
        configs.len(),
        4,
        "a discovery topic per site and value: {:?}",
        configs.keys()
    );
    for name in ["T1", "E1"] {
        let of_name: Vec<&Json> = configs
            .values()
            .filter(|config| config["name"] == name)
            .collect();
        let field = |key: &str| -> BTreeSet<String> {
            of_name
                .iter()
                .map(|config| config[key].to_string())
                .collect()
        };
        assert_eq!(field("unique_id").len(), 2, "{name}: {of_name:?}");
        let devices: BTreeSet<String> = of_name
            .iter()
            .map(|config| config["device"]["identifiers"].to_string())
            .collect();
        assert_eq!(devices.len(), 2, "a device per site: {of_name:?}");
        let states: BTreeSet<String> = sites
            .iter()
            .map(|prefix| format!("\"{prefix}/gateway/1/{name}\""))
            .collect();
        assert_eq!(field("state_topic"), states, "{name}");
    }
    let retained_configs = retained
        .iter()
        .filter(|m| m.topic.starts_with(&format!("{discovery}/")))
        .count();
    assert_eq!(retained_configs, 4, "both sites' configs stay retained");
}

/// A reload that changes a meter's model and drops a value: Home Assistant
/// gets the value's config again with the new model, and the dropped
/// value's config is cleared (an empty retained message), while the logger
/// runs on.
#[test]
fn discovery_follows_a_reload() {
    if !shared_broker() {
        return;
    }
    let prefix = unique_prefix("reload");
    let discovery = format!("{prefix}-ha");
    let filters = [format!("{discovery}/#")];
    let subscriber = Subscriber::start(1883, &filters, None);
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let request = |model: &str, items: &str| {
        format!(
            "\n[[bus.request]]\ndescription = \"Heat\"\naddresses = 1\nmodel = \"{model}\"\npolling = \"300ms\"\nitems = [{items}]\n"
        )
    };
    let bus = simulator.bus("gateway");
    let config = workdir.config(&[&bus, &request("603", "\"T1\", \"E1\"")]);
    let sink = format!("mqtt://127.0.0.1:1883?prefix={prefix}&discovery={discovery}");
    let logger = run_with_sink(&workdir, &config, "127.0.0.1:0", "6s", &sink);
    let topic = |name: &str| format!("{discovery}/sensor/{prefix}_gateway_1_{name}/config");
    let model_of = |message: &Message| message.json()["device"]["model"].clone();
    let configs_of = |messages: &[Message], name: &str| -> Vec<Message> {
        messages
            .iter()
            .filter(|message| message.topic == topic(name))
            .cloned()
            .collect()
    };
    let first = subscriber.wait_for(Duration::from_secs(10), |messages| {
        !configs_of(messages, "T1").is_empty() && !configs_of(messages, "E1").is_empty()
    });
    assert_eq!(
        model_of(&configs_of(&first, "T1")[0]),
        "MULTICAL 603",
        "{first:?}"
    );

    workdir.config(&[&bus, &request("403", "\"T1\"")]);
    let reloaded = run_kmplog(&["reload", "--api", logger.api()]).ok();
    assert!(reloaded.stdout.contains("model"), "{reloaded:#?}");
    let messages = subscriber.wait_for(Duration::from_secs(10), |messages| {
        configs_of(messages, "T1").len() >= 2 && configs_of(messages, "E1").len() >= 2
    });
    let run = logger.finish().ok();
    let retained = clear_retained(1883, &filters);
    let t1 = configs_of(&messages, "T1");
    assert_eq!(
        t1.len(),
        2,
        "T1's config once more, not on every reading: {t1:?}"
    );
    assert_eq!(model_of(&t1[1]), "MULTICAL 403", "{t1:?}");
    let e1 = configs_of(&messages, "E1");
    assert_eq!(e1.len(), 2, "{e1:?}");
    assert!(e1[1].payload.is_empty(), "E1's config cleared: {e1:?}");
    assert!(
        retained.iter().all(|message| message.topic != topic("E1")),
        "nothing retained for E1: {retained:?}"
    );
    assert!(
        retained.iter().any(|message| message.topic == topic("T1")),
        "{retained:?}"
    );
    assert!(!readings(&run).is_empty(), "{run:#?}");
}
