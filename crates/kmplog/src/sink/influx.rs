//! InfluxDB over HTTP, in line protocol, written here (it is a few lines):
//! one point per reading, measurement `kmplog`, tags `address`, `bus`,
//! `name`, `status` and `unit`, fields `value` (a float, when the reading
//! has one) and `value_text` (the exact decimal as the meter sent it,
//! empty when there is none), time in nanoseconds.
//!
//! The URL is the write endpoint with `influx+` before the scheme:
//! `influx+http://host:8086/api/v2/write?org=ORG&bucket=BUCKET&token=TOKEN`
//! (InfluxDB 2 and 3) or `influx+http://host:8086/write?db=DB` (InfluxDB
//! 1). Its path and query go to the server as they are, except `token`,
//! which goes in an `Authorization: Token ...` header instead.
//!
//! A batch delivered twice is harmless: InfluxDB keeps one point per
//! measurement, tag set and time, so the second write overwrites the first
//! with the same values.
//!
//! What the answers mean: 2xx, delivered. 5xx, 429, no connection, a
//! timeout, 401/403/404 (a token, organisation or bucket that may be fixed
//! on the server while we wait): an error, and the batch is tried again.
//! 400 and 422 mean InfluxDB read the batch and refused some lines as
//! malformed; it has written the others, and the refused ones would be
//! refused again for ever, holding up every later reading. So the batch
//! counts as delivered and the refusal is reported, with InfluxDB's message
//! and the range of readings it concerns.

use std::time::Duration;

use super::{Sink, SinkError, SinkFuture};
use crate::outbox::Stored;
use crate::reading::Reading;
use crate::sink::url::without_password;

/// How long one write may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes readings to InfluxDB.
pub struct InfluxSink {
    /// `influx+http://...` with the token hidden: the cursor's name.
    name: String,
    /// The write URL without the token.
    endpoint: String,
    /// `Token ...`, when the URL has one.
    authorization: Option<String>,
    agent: ureq::Agent,
}

/// How to write the write URL, for messages.
const EXAMPLE: &str = "influx+http://localhost:8086/api/v2/write?org=ORG&bucket=BUCKET&token=TOKEN \
                       (InfluxDB 2) or influx+http://localhost:8086/write?db=DB (InfluxDB 1)";

impl InfluxSink {
    /// Reads the write URL, `influx+http(s)://...` or `http(s)://...`;
    /// connects only when it delivers.
    pub fn open(url: &str) -> Result<InfluxSink, SinkError> {
        let url = url.trim();
        let plain = url.strip_prefix("influx+").unwrap_or(url);
        let fail = |problem: &str| {
            SinkError(format!(
                "InfluxDB URL {}: {problem}; write it as {EXAMPLE}",
                without_password(url)
            ))
        };
        let Some((scheme, rest)) = plain.split_once("://") else {
            return Err(fail("it has no scheme"));
        };
        if !matches!(scheme, "http" | "https") {
            return Err(fail(&format!("'{scheme}' is not http or https")));
        }
        let (authority, path_and_query) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(fail("it names no host"));
        }
        if authority.contains('@') {
            return Err(fail(
                "user names and passwords go in the query: token= (InfluxDB 2), u= and p= (InfluxDB 1)",
            ));
        }
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        if path.trim_end_matches('/').is_empty() {
            return Err(fail("it names no write endpoint"));
        }
        let mut token = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "token" => token = Some(percent_decode(value)),
                // Our timestamps are nanoseconds, InfluxDB's default.
                "precision" if !matches!(value, "ns" | "n") => {
                    return Err(fail(&format!(
                        "precision={value}: kmplog writes nanoseconds; leave precision out"
                    )));
                }
                _ => kept.push(pair),
            }
        }
        let has = |key: &str| kept.iter().any(|pair| pair.split('=').next() == Some(key));
        if path.ends_with("/api/v2/write") && !has("bucket") {
            return Err(fail("InfluxDB 2 needs bucket=BUCKET (and org=ORG)"));
        }
        if path.trim_end_matches('/') == "/write" && !has("db") {
            return Err(fail("InfluxDB 1 needs db=DB"));
        }
        let mut endpoint = format!("{scheme}://{authority}{path}");
        if !kept.is_empty() {
            endpoint.push('?');
            endpoint.push_str(&kept.join("&"));
        }
        let agent = ureq::Agent::config_builder()
            // Refusals are answers to read (their body says why), not errors.
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Ok(InfluxSink {
            name: format!("influx+{}", without_password(plain)),
            endpoint,
            authorization: token.map(|token| format!("Token {token}")),
            agent,
        })
    }
}

/// `%XX` escapes undone (tokens may hold `=` or `/` written escaped).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                index += 3;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a write came to.
enum Written {
    Delivered,
    /// InfluxDB refused lines as malformed: the status and its message.
    Refused(u16, String),
}

impl Sink for InfluxSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = lines(batch.iter().map(|stored| &stored.reading));
            let (agent, endpoint, authorization) = (
                self.agent.clone(),
                self.endpoint.clone(),
                self.authorization.clone(),
            );
            // On the blocking pool, so that the sink's loop can give up on a
            // hung server when the logger stops.
            let written = tokio::task::spawn_blocking(move || {
                write(&agent, &endpoint, authorization.as_deref(), body)
            })
            .await
            .map_err(|error| SinkError::context("writing to InfluxDB", error))??;
            if let Written::Refused(status, message) = written {
                let (first, last) = (
                    batch.first().map_or(0, |stored| stored.seq),
                    batch.last().map_or(0, |stored| stored.seq),
                );
                tracing::warn!(
                    sink = %self.name,
                    first,
                    last,
                    status,
                    %message,
                    "InfluxDB refused lines of these readings as malformed; it wrote the others, and the refused ones are skipped, since sending them again cannot succeed"
                );
            }
            Ok(())
        })
    }
}

fn write(
    agent: &ureq::Agent,
    endpoint: &str,
    authorization: Option<&str>,
    body: String,
) -> Result<Written, SinkError> {
    let mut request = agent
        .post(endpoint)
        .header("Content-Type", "text/plain; charset=utf-8");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let shown = without_password(endpoint);
    let mut response = request
        .send(body)
        .map_err(|error| SinkError(format!("no answer from InfluxDB at {shown}: {error}")))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(Written::Delivered);
    }
    let text = response.body_mut().read_to_string().unwrap_or_default();
    // InfluxDB answers {"code": ..., "message": ...} (2) or {"error": ...} (1).
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| {
            json.get("message")
                .or_else(|| json.get("error"))
                .and_then(|message| message.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| text.trim().to_owned());
    let hint = match status {
        401 | 403 => "; check token= in the sink URL",
        404 => "; check the path, org= and bucket= (or db=) in the sink URL",
        _ => "",
    };
    match status {
        400 | 422 => Ok(Written::Refused(status, message)),
        _ => Err(SinkError(format!(
            "InfluxDB at {shown} answered HTTP {status}: {message}{hint}"
        ))),
    }
}

/// The line-protocol body of `readings`, a line each.
pub fn lines<'a>(readings: impl Iterator<Item = &'a Reading>) -> String {
    let mut body = String::new();
    for reading in readings {
        line(&mut body, reading);
        body.push('\n');
    }
    body
}

/// One reading as a line: `kmplog,tags fields time`.
fn line(out: &mut String, reading: &Reading) {
    out.push_str("kmplog");
    let unit = reading.unit_text();
    // Sorted by key, as InfluxDB prefers; an empty tag value cannot be
    // written, so such a tag is left out.
    for (key, value) in [
        ("address", reading.address.to_string()),
        ("bus", reading.bus.clone()),
        ("name", reading.name.clone()),
        ("status", reading.status.as_str().to_owned()),
        ("unit", unit),
    ] {
        if !value.is_empty() {
            out.push(',');
            out.push_str(key);
            out.push('=');
            escape_tag(out, &value);
        }
    }
    out.push(' ');
    if let Some((value, _)) = reading.value {
        let float = value.to_f64();
        // Line protocol has no NaN or infinity.
        if float.is_finite() {
            // Rust prints floats without an exponent, which InfluxDB reads
            // back as the same float; a whole number without `i` is a float.
            out.push_str(&format!("value={float},"));
        }
    }
    out.push_str("value_text=\"");
    for c in reading.value_text().chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    let nanos = reading.time.as_nanosecond();
    out.push_str(&format!(" {nanos}"));
}

/// A tag value: comma, equals sign and space escaped with a backslash.
/// Line protocol cannot carry a line break in a tag; it becomes a space.
fn escape_tag(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            ',' | '=' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use kmp::unit::Unit;

    use super::*;
    use crate::reading::Status;

    fn reading(name: &str, value: Option<&str>, status: Status) -> Reading {
        Reading {
            time: "2026-11-25T08:00:00.123456789Z".parse().unwrap(),
            bus: "boiler room".to_owned(),
            address: 63,
            request: "Main".to_owned(),
            register: 60,
            name: name.to_owned(),
            value: value.map(|text| (text.parse().unwrap(), Unit(0x08))),
            status,
        }
    }

    fn stored(readings: &[Reading]) -> Vec<Stored> {
        readings
            .iter()
            .enumerate()
            .map(|(n, reading)| Stored {
                seq: n as u64 + 1,
                key: format!("k-{n}"),
                instance: None,
                reading: reading.clone(),
            })
            .collect()
    }

    #[test]
    fn a_line_per_reading_with_tags_fields_and_nanoseconds() {
        let body = lines(
            [
                reading("E1", Some("34.000"), Status::Ok),
                reading("T1", None, Status::Timeout),
            ]
            .iter(),
        );
        assert_eq!(
            body,
            "kmplog,address=63,bus=boiler\\ room,name=E1,status=ok,unit=GJ value=34,value_text=\"34.000\" 1795593600123456789\n\
             kmplog,address=63,bus=boiler\\ room,name=T1,status=timeout value_text=\"\" 1795593600123456789\n"
        );
    }

    #[test]
    fn special_characters_are_escaped_per_the_line_protocol() {
        let mut odd = reading("a,b=c d", Some("1.5"), Status::Ok);
        odd.bus = "x\ny".to_owned();
        let mut out = String::new();
        line(&mut out, &odd);
        assert!(
            out.starts_with(
                "kmplog,address=63,bus=x\\ y,name=a\\,b\\=c\\ d,status=ok,unit=GJ value=1.5,"
            ),
            "{out}"
        );
        let mut text = String::new();
        escape_tag(&mut text, "plain-ünits_m³");
        assert_eq!(text, "plain-ünits_m³", "nothing else is escaped");
    }

    #[test]
    fn urls_of_both_versions_and_the_token_in_a_header() {
        let sink = InfluxSink::open(
            "influx+https://db.example:8086/api/v2/write?org=home&bucket=heat&token=abc%3D%3D",
        )
        .unwrap();
        assert_eq!(
            sink.endpoint,
            "https://db.example:8086/api/v2/write?org=home&bucket=heat"
        );
        assert_eq!(sink.authorization.as_deref(), Some("Token abc=="));
        assert_eq!(
            sink.name(),
            "influx+https://db.example:8086/api/v2/write?org=home&bucket=heat&token=***"
        );
        let v1 = InfluxSink::open("http://localhost:8086/write?db=meters&u=me&p=pw").unwrap();
        assert_eq!(
            v1.endpoint,
            "http://localhost:8086/write?db=meters&u=me&p=pw"
        );
        assert_eq!(v1.authorization, None);
        for (url, problem) in [
            ("influx+ftp://h/write?db=x", "'ftp' is not http or https"),
            ("influx+http://h:8086", "it names no write endpoint"),
            (
                "influx+http://h:8086/api/v2/write?org=o",
                "InfluxDB 2 needs bucket=BUCKET",
            ),
            ("influx+http://h:8086/write", "InfluxDB 1 needs db=DB"),
            (
                "influx+http://h/write?db=x&precision=s",
                "precision=s: kmplog writes nanoseconds",
            ),
            (
                "influx+http://me:pw@h/write?db=x",
                "user names and passwords go in the query",
            ),
        ] {
            let error = InfluxSink::open(url).err().unwrap().to_string();
            assert!(
                error.contains(problem) && error.contains("write it as influx+http://"),
                "{url}: {error}"
            );
        }
    }

    /// What the test server saw, and how it answers next.
    #[derive(Default)]
    struct Server {
        bodies: Vec<String>,
        queries: Vec<String>,
        authorizations: Vec<String>,
        answers: Vec<(StatusCode, &'static str)>,
    }

    async fn record(
        State(server): State<Arc<Mutex<Server>>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, &'static str) {
        let mut server = server.lock().unwrap();
        server.bodies.push(body);
        server.queries.push(query.unwrap_or_default());
        let authorization = headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned());
        server
            .authorizations
            .push(authorization.unwrap_or_default());
        if server.answers.is_empty() {
            (StatusCode::NO_CONTENT, "")
        } else {
            server.answers.remove(0)
        }
    }

    async fn start(answers: Vec<(StatusCode, &'static str)>) -> (String, Arc<Mutex<Server>>) {
        let server = Arc::new(Mutex::new(Server {
            answers,
            ..Server::default()
        }));
        let app = axum::Router::new()
            .route("/api/v2/write", post(record))
            .with_state(Arc::clone(&server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (
            format!("influx+http://{address}/api/v2/write?org=o&bucket=b&token=t0k"),
            server,
        )
    }

    #[tokio::test]
    async fn the_server_gets_the_lines_of_the_readings() {
        let (url, server) = start(Vec::new()).await;
        let mut sink = InfluxSink::open(&url).unwrap();
        let readings = [
            reading("E1", Some("34.000"), Status::Ok),
            reading("V1", Some("1234.56"), Status::Ok),
            reading("T1", None, Status::NotAnswered),
        ];
        sink.deliver(&stored(&readings)).await.unwrap();
        let server = server.lock().unwrap();
        assert_eq!(server.bodies, [lines(readings.iter())]);
        assert_eq!(server.bodies[0].lines().count(), 3);
        assert_eq!(
            server.queries,
            ["org=o&bucket=b"],
            "the token left the query"
        );
        assert_eq!(server.authorizations, ["Token t0k"]);
    }

    #[tokio::test]
    async fn a_server_error_or_no_server_is_an_error_so_the_batch_is_retried() {
        let (url, server) = start(vec![(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"code":"unavailable","message":"starting up"}"#,
        )])
        .await;
        let mut sink = InfluxSink::open(&url).unwrap();
        let batch = stored(&[reading("E1", Some("1.0"), Status::Ok)]);
        let error = sink.deliver(&batch).await.unwrap_err().to_string();
        assert!(error.contains("answered HTTP 503: starting up"), "{error}");
        sink.deliver(&batch).await.unwrap();
        assert_eq!(
            server.lock().unwrap().bodies.len(),
            2,
            "sent again after the error"
        );

        let (url, _server) = start(vec![(
            StatusCode::UNAUTHORIZED,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        )])
        .await;
        let error = InfluxSink::open(&url)
            .unwrap()
            .deliver(&batch)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("HTTP 401: unauthorized access; check token="),
            "{error}"
        );

        // A port nobody listens on: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sink =
            InfluxSink::open(&format!("influx+http://127.0.0.1:{port}/write?db=x")).unwrap();
        let error = sink.deliver(&batch).await.unwrap_err().to_string();
        assert!(
            error.starts_with("no answer from InfluxDB at http://127.0.0.1:"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn through_the_outbox_every_reading_arrives_once_after_a_server_error() {
        let (url, server) = start(vec![(StatusCode::BAD_GATEWAY, "proxy down")]).await;
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = crate::outbox::Outbox::open(&dir.path().join("outbox.db"), 1000).unwrap();
        let (appended, receiver) = tokio::sync::watch::channel(0);
        let sink = InfluxSink::open(&url).unwrap();
        let name = sink.name();
        let sinks =
            crate::sink::Sinks::start(&mut outbox, vec![Box::new(sink)], &receiver).unwrap();
        let readings = [
            reading("E1", Some("1.5"), Status::Ok),
            reading("T1", Some("61.25"), Status::Ok),
        ];
        appended.send_replace(outbox.append(&readings).unwrap());
        let reader = outbox.reader().unwrap();
        for _ in 0..200 {
            if reader.depth(&name).unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::task::spawn_blocking(move || sinks.stop(Duration::from_secs(1)))
            .await
            .unwrap();
        let bodies = server.lock().unwrap().bodies.clone();
        assert_eq!(
            bodies,
            [lines(readings.iter()), lines(readings.iter())],
            "refused once, then delivered once"
        );
        assert_eq!(reader.depth(&name).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_malformed_batch_is_reported_and_skipped_not_retried_for_ever() {
        let (url, server) = start(vec![(
            StatusCode::BAD_REQUEST,
            r#"{"code":"invalid","message":"partial write: unable to parse 'kmplog,...': bad timestamp"}"#,
        )])
        .await;
        let mut sink = InfluxSink::open(&url).unwrap();
        sink.deliver(&stored(&[reading("E1", Some("1.0"), Status::Ok)]))
            .await
            .unwrap();
        assert_eq!(server.lock().unwrap().bodies.len(), 1);
    }
}
