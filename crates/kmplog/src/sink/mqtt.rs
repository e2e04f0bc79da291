//! MQTT: a retained topic per value, Home Assistant discovery, and a command
//! topic that fires named events.
//!
//! `mqtt://[user:password@]host[:1883][?prefix=kmplog&discovery=homeassistant&node_id=ID&client_id=ID]`,
//! or `mqtts://...:8883` for TLS (rustls; the platform's CA certificates, or
//! those of `ca=PATH`, a PEM file). `discovery=off` publishes no discovery.
//! `node_id` (letters, digits, `_`, `-`) starts every Home Assistant id of
//! this logger; by default it is the prefix with other characters as `_`.
//!
//! - Each reading goes to `<prefix>/<bus>/<address>/<name>` as JSON,
//!   `{"value":"63.44","unit":"°C","time":"...","status":"ok","key":"..."}`
//!   (the value as exact decimal text; `text` for dates, times and text;
//!   `flags` for the info code), retained, QoS 1.
//! - `<prefix>/status` is `online` while connected, and `offline` as the
//!   retained last will, or when kmplog stops.
//! - The first time a value is seen on a connection, its Home Assistant
//!   discovery config goes to `<discovery>/sensor/<node_id>_<bus>_<address>_<name>/config`
//!   (retained), before its state ([`discovery`]), with that object id as
//!   its unique id: two sites with their own prefixes (or node ids) on one
//!   broker keep their own entities even with the same bus names.
//! - A message on `<prefix>/command/event` fires the event its payload
//!   names, as `kmplog trigger` does.
//!
//! Delivery: `deliver` returns `Ok` only once the broker has acknowledged
//! (PUBACK) every message of the batch. rumqttc's `publish` gives no handle
//! on the acknowledgement, so the connection task pairs the packet ids it
//! sends with the messages in order and the PUBACKs with the packet ids. A
//! connection that drops fails the messages in flight, and the outbox gives
//! the batch again; messages the broker had acknowledged are not sent
//! twice. At QoS 1 a broker can still get a message twice, when it took a
//! message but its PUBACK was lost with the connection: the payload's `key`
//! is the reading's outbox key, so consumers can drop the repeat.
//!
//! The connection lives on a thread of its own, so that commands are heard
//! and the status is kept even while no reading is delivered.

pub mod discovery;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kmp::catalogue::Model;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS,
    TlsConfiguration, Transport,
};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use self::discovery::{
    Configured, Discovered, config_payload, config_topic, state_payload, state_topic, status_topic,
};
use super::{Sink, SinkError, SinkFuture};
use crate::bus::events::EventRouter;
use crate::outbox::Stored;

/// The prefix of the state topics unless `prefix=` says otherwise.
const DEFAULT_PREFIX: &str = "kmplog";
/// Home Assistant's discovery prefix unless `discovery=` says otherwise.
const DEFAULT_DISCOVERY: &str = "homeassistant";
/// Requests that may wait for the connection: a batch of states and their
/// discovery configs, with room to spare.
const REQUEST_CAPACITY: usize = 4096;
/// How long a batch waits for its acknowledgements before it is given
/// again; a dead connection is noticed sooner, through keep-alive.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive: a broker that stops answering is noticed after about this.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// First pause before connecting again; doubles up to [`MAX_RECONNECT`].
const MIN_RECONNECT: Duration = Duration::from_millis(250);
/// Longest pause between connection attempts.
const MAX_RECONNECT: Duration = Duration::from_secs(5);
/// How long stopping may take to say `offline`.
const GOODBYE: Duration = Duration::from_secs(2);

/// Where and how to publish, read from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    tls: bool,
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    prefix: String,
    discovery: Option<String>,
    node_id: String,
    client_id: Option<String>,
    ca: Option<String>,
}

/// An example URL for messages.
const EXAMPLE: &str = "mqtt://user:secret@localhost:1883?prefix=kmplog&discovery=homeassistant";

impl Settings {
    /// Reads `mqtt://` and `mqtts://` URLs; errors say what is wrong, with
    /// an example.
    pub fn parse(url: &str) -> Result<Settings, String> {
        let shown = super::url::without_password(url);
        let fail = |what: String| format!("MQTT sink '{shown}': {what}; for example {EXAMPLE}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| fail("it does not start with mqtt:// or mqtts://".to_owned()))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" => false,
            "mqtts" => true,
            _ => return Err(fail(format!("'{scheme}' is not mqtt or mqtts"))),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(fail(
                "a path is not used: give the topic prefix as ?prefix=".to_owned(),
            ));
        }
        let (credentials, address) = match rest.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, rest),
        };
        let (user, password) = match credentials {
            Some(credentials) => {
                let (user, password) = match credentials.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (credentials, None),
                };
                let user = percent_decode(user).ok_or_else(|| {
                    fail("the user name is not valid percent-encoded UTF-8".to_owned())
                })?;
                let password = password
                    .map(|password| {
                        percent_decode(password).ok_or_else(|| {
                            fail("the password is not valid percent-encoded UTF-8".to_owned())
                        })
                    })
                    .transpose()?;
                (Some(user), password)
            }
            None => (None, None),
        };
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| fail("an IPv6 address lacks its closing ']'".to_owned()))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(fail(format!("'{after}' follows the address"))),
            }
        } else {
            match address.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            }
        };
        if host.is_empty() {
            return Err(fail("it names no host".to_owned()));
        }
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| fail(format!("'{port}' is not a port number from 1 to 65535")))?,
            None => default_port,
        };
        let mut settings = Settings {
            tls,
            host: host.to_owned(),
            port,
            user,
            password,
            prefix: DEFAULT_PREFIX.to_owned(),
            discovery: Some(DEFAULT_DISCOVERY.to_owned()),
            node_id: String::new(),
            client_id: None,
            ca: None,
        };
        let mut node_id = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| {
                fail(format!(
                    "the value of {key} is not valid percent-encoded UTF-8"
                ))
            })?;
            let topic = |what: &str| {
                if value.is_empty()
                    || value.starts_with('/')
                    || value.ends_with('/')
                    || value.contains(['+', '#', '\0'])
                {
                    Err(fail(format!(
                        "{what} '{value}' is not a topic prefix: it must not be empty, start or end with '/', or hold '+' or '#'"
                    )))
                } else {
                    Ok(value.clone())
                }
            };
            match key {
                "prefix" => settings.prefix = topic("the prefix")?,
                "discovery" => {
                    settings.discovery = match value.as_str() {
                        "off" | "none" | "false" => None,
                        _ => Some(topic("the discovery prefix")?),
                    }
                }
                "node_id" if discovery::is_node_id(&value) => node_id = Some(value),
                "node_id" => {
                    return Err(fail(format!(
                        "node_id '{value}' is not a Home Assistant node id: give letters, digits, '_' and '-' only, such as node_id=north"
                    )));
                }
                "client_id" if !value.is_empty() => settings.client_id = Some(value),
                "ca" if !value.is_empty() => settings.ca = Some(value),
                "client_id" | "ca" => return Err(fail(format!("{key} is empty"))),
                other => {
                    return Err(fail(format!(
                        "'{other}' is not an option; the options are prefix, discovery, node_id, client_id and ca"
                    )));
                }
            }
        }
        settings.node_id = node_id.unwrap_or_else(|| discovery::default_node_id(&settings.prefix));
        if settings.ca.is_some() && !settings.tls {
            return Err(fail("ca= is for mqtts:// (TLS) only".to_owned()));
        }
        Ok(settings)
    }

    /// The sink's name: broker and prefix, no credentials, so that the
    /// outbox cursor stays when a password changes.
    fn name(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}?prefix={}", self.port, self.prefix)
    }

    /// The command topic.
    fn command_topic(&self) -> String {
        format!("{}/command/event", self.prefix)
    }

    /// The client's options for one connection.
    fn options(&self, tls: Option<&TlsConfiguration>) -> MqttOptions {
        let client_id = self.client_id.clone().unwrap_or_else(|| {
            // Unique per process: two loggers with one id would keep
            // disconnecting each other.
            let prefix: String = self
                .prefix
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            format!("kmplog-{prefix}-{}", std::process::id())
        });
        let mut options = MqttOptions::new(client_id, self.host.clone(), self.port);
        options.set_keep_alive(KEEP_ALIVE);
        // A new session on every connection: whatever the last one left
        // unacknowledged is given again by the outbox, not by rumqttc, so
        // that each message is counted once.
        options.set_clean_session(true);
        options.set_last_will(LastWill::new(
            status_topic(&self.prefix),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &self.user {
            options.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(tls) = tls {
            options.set_transport(Transport::tls_with_config(tls.clone()));
        }
        options
    }

    /// The TLS configuration: the platform's CA certificates or `ca=`.
    fn tls(&self) -> Result<Option<TlsConfiguration>, String> {
        if !self.tls {
            return Ok(None);
        }
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|certificates| certificates.collect())
                    .map_err(|error| format!("cannot read the CA certificates of ca={path}: {error}; give a PEM file, such as ca=/etc/ssl/certs/broker-ca.pem"))?;
                for certificate in certificates {
                    roots
                        .add(certificate)
                        .map_err(|error| format!("ca={path}: {error}"))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!(
                        "no CA certificates found on this system ({}); give one with ca=PATH",
                        found
                            .errors
                            .first()
                            .map_or_else(|| "none installed".to_owned(), ToString::to_string)
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS: {error}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(TlsConfiguration::Rustls(Arc::new(config))))
    }
}

/// `%XX` escapes undone; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// What a message's acknowledgement resolves to.
type Ack = Result<(), String>;

/// The connection as the sink and the connection task share it.
#[derive(Default)]
struct State {
    /// The client of the current connection, once the broker accepted it.
    client: Option<AsyncClient>,
    /// One entry per publish handed to the client and not yet sent, in
    /// order: rumqttc sends requests in the order it gets them, and tells
    /// each packet id as it sends it.
    queued: VecDeque<Option<oneshot::Sender<Ack>>>,
    /// Sent and waiting for their PUBACK, by packet id.
    in_flight: HashMap<u16, Option<oneshot::Sender<Ack>>>,
    /// The discovery topics published on this connection.
    announced: HashSet<String>,
    /// Every discovery config published, by topic, across connections.
    discovered: HashMap<String, Discovered>,
    /// Discovery topics to clear (an empty retained message): values the
    /// configuration no longer has.
    clears: Vec<String>,
    /// The meter models of the configuration, by bus and address.
    models: BTreeMap<(String, u8), Model>,
    /// Why the last connection failed, for messages.
    last_error: Option<String>,
}

impl State {
    /// Publishes through the current connection at QoS 1; the receiver
    /// tells when the broker has acknowledged it, when `wait`.
    fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        wait: bool,
    ) -> Result<Option<oneshot::Receiver<Ack>>, String> {
        let client = self.client.as_ref().ok_or_else(|| self.not_connected())?;
        client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .map_err(|error| format!("cannot hand a message to the connection: {error}"))?;
        let (sender, receiver) = if wait {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        self.queued.push_back(sender);
        Ok(receiver)
    }

    fn not_connected(&self) -> String {
        match &self.last_error {
            Some(error) => format!("not connected to the broker: {error}"),
            None => "not connected to the broker yet".to_owned(),
        }
    }

    /// The connection is gone: everything waiting on it fails.
    fn lost(&mut self, error: &str) {
        self.client = None;
        self.announced.clear();
        let waiting = self
            .queued
            .drain(..)
            .chain(self.in_flight.drain().map(|(_, sender)| sender));
        for sender in waiting.flatten() {
            let _ = sender.send(Err(format!(
                "the connection to the broker dropped: {error}"
            )));
        }
        self.last_error = Some(error.to_owned());
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reading's key and the receiver that tells when its state message is
/// acknowledged by the broker.
type AwaitedAck = (String, oneshot::Receiver<Ack>);

/// Publishes readings to an MQTT broker.
pub struct MqttSink {
    settings: Settings,
    state: Arc<Mutex<State>>,
    /// Keys of the failed batch that the broker did acknowledge, not to be
    /// sent again when the batch is retried.
    acknowledged: HashSet<String>,
    stop: CancellationToken,
    connection: Option<std::thread::JoinHandle<()>>,
    /// How many times the broker accepted a connection.
    connections: watch::Receiver<u64>,
}

impl MqttSink {
    /// Reads the URL and starts connecting; messages on the command topic
    /// fire `events`. Failing to reach the broker is no error here: readings
    /// wait in the outbox until it answers.
    pub fn open(url: &str, events: EventRouter) -> Result<Self, SinkError> {
        Self::following(url, events, watch::channel(Configured::default()).1)
    }

    /// As [`MqttSink::open`], with discovery following `configured`: the
    /// meter models name the devices, and when the configuration changes
    /// (a reload) the configs that change are published again and those of
    /// values no longer read are cleared.
    pub fn following(
        url: &str,
        events: EventRouter,
        mut configured: watch::Receiver<Configured>,
    ) -> Result<Self, SinkError> {
        let settings = Settings::parse(url).map_err(SinkError)?;
        let tls = settings
            .tls()
            .map_err(|error| SinkError(format!("MQTT sink {}: {error}", settings.name())))?;
        let state = Arc::new(Mutex::new(State {
            models: configured.borrow_and_update().models.clone(),
            ..State::default()
        }));
        let stop = CancellationToken::new();
        let (connected, connections) = watch::channel(0);
        let connection = {
            let (settings, state, stop) = (settings.clone(), Arc::clone(&state), stop.clone());
            std::thread::Builder::new()
                .name(format!("mqtt {}", settings.name()))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => {
                            runtime.block_on(connect(
                                Connection {
                                    settings,
                                    tls,
                                    state,
                                    events,
                                    configured,
                                },
                                connected,
                                stop,
                            ));
                        }
                        Err(error) => tracing::error!(
                            sink = %settings.name(),
                            reason = %error,
                            "sink cannot start its connection"
                        ),
                    }
                })
                .map_err(|error| {
                    SinkError(format!("cannot start an MQTT connection thread: {error}"))
                })?
        };
        Ok(MqttSink {
            settings,
            state,
            acknowledged: HashSet::new(),
            stop,
            connection: Some(connection),
            connections,
        })
    }

    /// Hands the batch's messages to the connection; the receivers tell
    /// when each reading's state is acknowledged.
    fn publish(&self, batch: &[Stored]) -> Result<Vec<AwaitedAck>, String> {
        let mut state = lock(&self.state);
        let mut waiting = Vec::with_capacity(batch.len());
        for stored in batch {
            if self.acknowledged.contains(&stored.key) {
                continue;
            }
            let reading = &stored.reading;
            let model = state
                .models
                .get(&(reading.bus.clone(), reading.address))
                .copied();
            if let Some(discovery) = &self.settings.discovery {
                let topic = config_topic(
                    discovery,
                    &self.settings.node_id,
                    &reading.bus,
                    reading.address,
                    &reading.name,
                );
                let unit = reading.value.map(|(_, unit)| unit);
                // A model that changed is published by the reload itself;
                // what a reading alone changes is its register and unit.
                let current = state.announced.contains(&topic)
                    && state.discovered.get(&topic).is_some_and(|discovered| {
                        discovered.register == reading.register && discovered.unit == unit
                    });
                if !current {
                    let mut discovered = Discovered {
                        bus: reading.bus.clone(),
                        address: reading.address,
                        name: reading.name.clone(),
                        register: reading.register,
                        unit,
                        payload: String::new(),
                    };
                    discovered.payload = config_payload(&discovered.entity(
                        &self.settings.prefix,
                        &self.settings.node_id,
                        model,
                    ))
                    .to_string();
                    // Sent before the state on the same connection, so Home
                    // Assistant has the entity when the state comes.
                    let payload = discovered.payload.clone().into_bytes();
                    state.publish(topic.clone(), payload, true, false)?;
                    state.announced.insert(topic.clone());
                    state.discovered.insert(topic, discovered);
                }
            }
            let topic = state_topic(
                &self.settings.prefix,
                &reading.bus,
                reading.address,
                &reading.name,
            );
            let payload = state_payload(stored, model).to_string().into_bytes();
            if let Some(receiver) = state.publish(topic, payload, true, true)? {
                waiting.push((stored.key.clone(), receiver));
            }
        }
        Ok(waiting)
    }
}

impl Sink for MqttSink {
    fn name(&self) -> String {
        self.settings.name()
    }

    fn connections(&self) -> Option<watch::Receiver<u64>> {
        Some(self.connections.clone())
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        Box::pin(async move {
            let waiting = self.publish(batch).map_err(SinkError)?;
            let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
            let mut failure = None;
            for (key, receiver) in waiting {
                match tokio::time::timeout_at(deadline, receiver).await {
                    Ok(Ok(Ok(()))) => {
                        self.acknowledged.insert(key);
                    }
                    Ok(Ok(Err(error))) => {
                        failure.get_or_insert(error);
                    }
                    Ok(Err(_)) => {
                        failure.get_or_insert_with(|| "the connection task ended".to_owned());
                    }
                    Err(_) => {
                        failure.get_or_insert_with(|| {
                            format!(
                                "the broker acknowledged not every message within {} s",
                                ACK_TIMEOUT.as_secs()
                            )
                        });
                    }
                }
            }
            match failure {
                None => {
                    // The outbox moves past this batch: its keys are done.
                    self.acknowledged.clear();
                    Ok(())
                }
                Some(error) => Err(SinkError(error)),
            }
        })
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.stop.cancel();
        // Let the connection say `offline` and disconnect cleanly; it gives
        // up by itself after `GOODBYE`.
        if let Some(connection) = self.connection.take() {
            let _ = connection.join();
        }
    }
}

/// What the connection task works with.
struct Connection {
    settings: Settings,
    tls: Option<TlsConfiguration>,
    state: Arc<Mutex<State>>,
    events: EventRouter,
    configured: watch::Receiver<Configured>,
}

/// Follows a new configuration: its models from now on; the discovery
/// configs of values it no longer reads cleared, those it changes (a
/// meter's model) published again.
fn follow(settings: &Settings, state: &mut State, configured: &Configured) {
    state.models.clone_from(&configured.models);
    if settings.discovery.is_none() {
        return;
    }
    let mut gone = Vec::new();
    for (topic, discovered) in &mut state.discovered {
        if !discovered.is_configured(configured) {
            gone.push(topic.clone());
            continue;
        }
        let model = configured
            .models
            .get(&(discovered.bus.clone(), discovered.address))
            .copied();
        let payload =
            config_payload(&discovered.entity(&settings.prefix, &settings.node_id, model))
                .to_string();
        if payload != discovered.payload {
            discovered.payload = payload;
            state.announced.remove(topic);
        }
    }
    for topic in gone {
        state.discovered.remove(&topic);
        state.announced.remove(&topic);
        state.clears.push(topic);
    }
    publish_discovery(state);
}

/// Sends what discovery owes the broker on this connection: the clears,
/// and every config not yet announced on it. Without a connection they
/// wait for the next one.
fn publish_discovery(state: &mut State) {
    if state.client.is_none() {
        return;
    }
    for topic in std::mem::take(&mut state.clears) {
        if state
            .publish(topic.clone(), Vec::new(), true, false)
            .is_err()
        {
            state.clears.push(topic);
        }
    }
    let owed: Vec<(String, Vec<u8>)> = state
        .discovered
        .iter()
        .filter(|(topic, _)| !state.announced.contains(*topic))
        .map(|(topic, discovered)| (topic.clone(), discovered.payload.clone().into_bytes()))
        .collect();
    for (topic, payload) in owed {
        if state.publish(topic.clone(), payload, true, false).is_ok() {
            state.announced.insert(topic);
        }
    }
}

/// The connection task: connects, reconnects with back-off, pairs packet
/// ids with messages and PUBACKs, answers commands, follows reloads, says
/// goodbye.
async fn connect(connection: Connection, connected: watch::Sender<u64>, stop: CancellationToken) {
    let Connection {
        settings,
        tls,
        state,
        events,
        mut configured,
    } = connection;
    let name = settings.name();
    let command_topic = settings.command_topic();
    let mut pause = MIN_RECONNECT;
    let mut reported: Option<String> = None;
    let mut ever_connected = false;
    loop {
        let (client, mut eventloop) =
            AsyncClient::new(settings.options(tls.as_ref()), REQUEST_CAPACITY);
        let error = loop {
            let event = tokio::select! {
                event = eventloop.poll() => event,
                // A logger without reloads drops its sender: then never.
                Ok(()) = configured.changed() => {
                    let now = configured.borrow_and_update().clone();
                    follow(&settings, &mut lock(&state), &now);
                    continue;
                }
                () = stop.cancelled() => {
                    goodbye(&settings, &state, &mut eventloop).await;
                    return;
                }
            };
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    pause = MIN_RECONNECT;
                    let mut shared = lock(&state);
                    shared.client = Some(client.clone());
                    shared.announced.clear();
                    let online = shared.publish(
                        status_topic(&settings.prefix),
                        b"online".to_vec(),
                        true,
                        false,
                    );
                    let subscribed = client
                        .try_subscribe(command_topic.clone(), QoS::AtLeastOnce)
                        .map_err(|error| error.to_string());
                    if let Err(error) = online.and(subscribed) {
                        tracing::warn!(sink = %name, reason = %error, "cannot announce on the broker");
                    }
                    publish_discovery(&mut shared);
                    if reported.take().is_some() {
                        tracing::info!(sink = %name, "connected to the broker again");
                    } else if !ever_connected {
                        tracing::info!(sink = %name, "connected to the broker");
                    }
                    shared.last_error = None;
                    ever_connected = true;
                    drop(shared);
                    connected.send_modify(|count| *count += 1);
                }
                Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                    let mut shared = lock(&state);
                    let sender = shared.queued.pop_front().flatten();
                    shared.in_flight.insert(packet_id, sender);
                }
                Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                    let sender = lock(&state).in_flight.remove(&ack.pkid).flatten();
                    if let Some(sender) = sender {
                        let _ = sender.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(message))) => {
                    command(&name, &command_topic, &message, &events);
                }
                Ok(_) => {}
                Err(error) => break describe(&error),
            }
        };
        lock(&state).lost(&error);
        if reported.as_deref() != Some(error.as_str()) {
            let verb = if ever_connected {
                "lost the broker"
            } else {
                "cannot reach the broker"
            };
            tracing::warn!(
                sink = %name,
                reason = %error,
                "{verb}; trying again, readings wait in the outbox"
            );
            reported = Some(error);
        }
        drop(eventloop);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
        pause = (pause * 2).min(MAX_RECONNECT);
    }
}

/// A connection error for people.
fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => format!(
            "the broker refused the connection ({code:?}); check the user name and password"
        ),
        ConnectionError::Io(error) => error.to_string(),
        other => other.to_string(),
    }
}

/// A message on the command topic: its payload names an event to fire.
fn command(name: &str, command_topic: &str, message: &rumqttc::Publish, events: &EventRouter) {
    if message.topic != command_topic {
        return;
    }
    // A retained command would fire again on every reconnect.
    if message.retain {
        tracing::warn!(
            sink = %name,
            topic = %command_topic,
            "ignored a retained command: publish events without the retain flag"
        );
        return;
    }
    let payload = String::from_utf8_lossy(&message.payload);
    let event = payload.trim();
    if crate::api::is_event_name(event) {
        if let Err(refused) = events.fire(event) {
            tracing::warn!(
                sink = name,
                topic = command_topic,
                "ignored a command: {refused}"
            );
        }
    } else {
        tracing::warn!(
            sink = %name,
            topic = %command_topic,
            "ignored a command: '{event}' is not an event name: use letters, digits, '-' and '_', such as morning-read"
        );
    }
}

/// Says `offline` (retained) and disconnects, within [`GOODBYE`].
async fn goodbye(settings: &Settings, state: &Mutex<State>, eventloop: &mut EventLoop) {
    let (offline, client) = {
        let mut shared = lock(state);
        let offline = shared
            .publish(
                status_topic(&settings.prefix),
                b"offline".to_vec(),
                true,
                true,
            )
            .ok()
            .flatten();
        (offline, shared.client.clone())
    };
    let (Some(mut offline), Some(client)) = (offline, client) else {
        return;
    };
    let _ = tokio::time::timeout(GOODBYE, async {
        loop {
            tokio::select! {
                _ = &mut offline => break,
                event = eventloop.poll() => match event {
                    Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                        let mut shared = lock(state);
                        let sender = shared.queued.pop_front().flatten();
                        shared.in_flight.insert(packet_id, sender);
                    }
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        if let Some(sender) = lock(state).in_flight.remove(&ack.pkid).flatten() {
                            let _ = sender.send(Ok(()));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
            }
        }
        let _ = client.try_disconnect();
        while let Ok(event) = eventloop.poll().await {
            if event == Event::Outgoing(Outgoing::Disconnect) {
                break;
            }
        }
    })
    .await;
    lock(state).lost("kmplog is stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_their_options() {
        let settings = Settings::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!(
            settings,
            Settings {
                tls: false,
                host: "127.0.0.1".to_owned(),
                port: 1883,
                user: None,
                password: None,
                prefix: "kmplog".to_owned(),
                discovery: Some("homeassistant".to_owned()),
                node_id: "kmplog".to_owned(),
                client_id: None,
                ca: None,
            }
        );
        let settings = Settings::parse(
            "mqtts://meter%40site:p%3Ass@broker.example:8884/?prefix=site/heat&discovery=ha&client_id=k1&ca=/tmp/ca.pem",
        )
        .unwrap();
        assert_eq!(
            (settings.tls, settings.host.as_str(), settings.port),
            (true, "broker.example", 8884)
        );
        assert_eq!(settings.user.as_deref(), Some("meter@site"));
        assert_eq!(settings.password.as_deref(), Some("p:ss"));
        assert_eq!(settings.prefix, "site/heat");
        assert_eq!(settings.discovery.as_deref(), Some("ha"));
        assert_eq!(settings.node_id, "site_heat", "the prefix as a node id");
        assert_eq!(settings.client_id.as_deref(), Some("k1"));
        assert_eq!(settings.ca.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(
            settings.name(),
            "mqtts://broker.example:8884?prefix=site/heat"
        );
        assert_eq!(settings.command_topic(), "site/heat/command/event");
        assert_eq!(Settings::parse("mqtts://h").unwrap().port, 8883);
        assert_eq!(
            Settings::parse("mqtt://h?discovery=off").unwrap().discovery,
            None
        );
        assert_eq!(
            Settings::parse("mqtt://h?prefix=a/b&node_id=North-1")
                .unwrap()
                .node_id,
            "North-1"
        );
        let v6 = Settings::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1884));
        assert_eq!(v6.name(), "mqtt://[::1]:1884?prefix=kmplog");
    }

    #[test]
    fn the_name_has_no_password() {
        let settings = Settings::parse("mqtt://u:secret@h:1883?prefix=p").unwrap();
        assert_eq!(settings.name(), "mqtt://h:1883?prefix=p");
    }

    #[test]
    fn mistakes_say_what_is_wrong_with_an_example() {
        for (url, message) in [
            ("mqtt://", "it names no host"),
            ("mqtt://h:0", "'0' is not a port number"),
            ("mqtt://h:x", "'x' is not a port number"),
            ("mqtt://h/topic", "a path is not used"),
            ("mqtt://h?prefix=a/+", "is not a topic prefix"),
            ("mqtt://h?prefix=", "is not a topic prefix"),
            ("mqtt://h?qos=2", "'qos' is not an option"),
            ("mqtt://h?ca=/x.pem", "ca= is for mqtts://"),
            ("mqtt://u:%zz@h", "the password is not valid"),
            ("mqtt://[::1", "lacks its closing"),
            ("mqtt://h?node_id=site/a", "node_id 'site/a' is not"),
            ("mqtt://h?node_id=", "node_id '' is not"),
        ] {
            let error = Settings::parse(url).unwrap_err();
            assert!(error.contains(message), "{url}: {error}");
            assert!(error.contains("for example mqtt://"), "{url}: {error}");
        }
        let error = Settings::parse("mqtt://u:s3cret@h?qos=1").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn a_missing_ca_file_is_reported() {
        let settings = Settings::parse("mqtts://h?ca=/nonexistent/ca.pem").unwrap();
        let error = settings.tls().unwrap_err();
        assert!(error.contains("ca=/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn a_lost_connection_fails_what_waits() {
        let mut state = State::default();
        let (sender, mut receiver) = oneshot::channel();
        state.in_flight.insert(3, Some(sender));
        state.queued.push_back(None);
        state.announced.insert("t".to_owned());
        state.lost("connection reset");
        assert!(
            matches!(receiver.try_recv(), Ok(Err(error)) if error.contains("connection reset"))
        );
        assert!(
            state.queued.is_empty() && state.in_flight.is_empty() && state.announced.is_empty()
        );
        assert_eq!(
            state
                .publish("t".to_owned(), Vec::new(), true, true)
                .unwrap_err(),
            "not connected to the broker: connection reset"
        );
    }

    /// A reload while the broker is away: the dropped value's clear and the
    /// changed config wait, and go out on the next connection.
    #[tokio::test]
    async fn a_reload_while_disconnected_is_published_on_the_next_connection() {
        let settings = Settings::parse("mqtt://127.0.0.1?prefix=p&discovery=ha").unwrap();
        let mut state = State::default();
        for (name, register) in [("T1", 86), ("E1", 60)] {
            let mut discovered = Discovered {
                bus: "gateway".to_owned(),
                address: 1,
                name: name.to_owned(),
                register,
                unit: None,
                payload: String::new(),
            };
            discovered.payload =
                config_payload(&discovered.entity(&settings.prefix, &settings.node_id, None))
                    .to_string();
            let topic = config_topic("ha", &settings.node_id, "gateway", 1, name);
            state.announced.insert(topic.clone());
            state.discovered.insert(topic, discovered);
        }
        let t1 = config_topic("ha", &settings.node_id, "gateway", 1, "T1");
        let e1 = config_topic("ha", &settings.node_id, "gateway", 1, "E1");
        let configured = Configured {
            models: [(("gateway".to_owned(), 1), Model::Multical403)].into(),
            values: [("gateway".to_owned(), 1, "T1".to_owned())].into(),
        };
        follow(&settings, &mut state, &configured);
        assert_eq!(state.clears, std::slice::from_ref(&e1));
        assert_eq!(state.discovered.keys().collect::<Vec<_>>(), [&t1]);
        assert!(state.discovered[&t1].payload.contains("MULTICAL 403"));
        assert!(state.announced.is_empty(), "T1's new config is owed");
        assert!(state.queued.is_empty(), "nothing sent without a connection");

        let (client, _eventloop) = AsyncClient::new(settings.options(None), 10);
        state.client = Some(client);
        publish_discovery(&mut state);
        assert!(state.clears.is_empty());
        assert_eq!(state.queued.len(), 2, "the clear and T1's config");
        assert!(state.announced.contains(&t1) && !state.announced.contains(&e1));
    }
}
