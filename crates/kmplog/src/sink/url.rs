//! Sinks named by one line of text, the same on the command line
//! (`--sink postgres://meters@db/heat`) and in the configuration
//! (`urls = ["mqtt://broker:1883"]`): the scheme says which sink, the rest
//! where it is and how to reach it. Each network sink reads its own options
//! from the URL when it is opened.

use std::fmt;
use std::path::PathBuf;

/// A sink as a URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkUrl {
    /// `sqlite:PATH`: a SQLite database file.
    Sqlite(PathBuf),
    /// `csv:DIR`: daily CSV files in a directory.
    Csv(PathBuf),
    /// `jsonl:DIR`: daily JSON-lines files in a directory.
    Jsonl(PathBuf),
    /// `postgres://` or `postgresql://`: a PostgreSQL database (the URL as
    /// PostgreSQL itself takes it).
    Postgres(String),
    /// `mqtt://` or `mqtts://` (TLS): an MQTT broker.
    Mqtt(String),
    /// `influx+http://` or `influx+https://`: the InfluxDB write endpoint,
    /// with `http`/`https` in place of the scheme.
    Influx(String),
}

/// The schemes, with an example each, for messages.
const SCHEMES: &str = "sqlite:kmplog.db, csv:readings, jsonl:readings, postgres://user@host/db, mqtt://host:1883, \
                       mqtts://host:8883, influx+http://host:8086/api/v2/write?org=ORG&bucket=BUCKET";

impl SinkUrl {
    /// Reads a sink URL; the error says what is wrong and lists the forms.
    pub fn parse(text: &str) -> Result<SinkUrl, String> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(format!(
                "'{text}' names no sink: it has no scheme; use one of: {SCHEMES}"
            ));
        };
        let path = |kind: &str| {
            if rest.is_empty() {
                Err(format!(
                    "'{text}' names no {kind}: write {scheme}:PATH, for example {scheme}:readings"
                ))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        let authority = |kind: &str| {
            let host = rest.strip_prefix("//").unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                Err(format!(
                    "'{text}' names no {kind} host: write {scheme}://HOST..., for example {scheme}://localhost"
                ))
            } else {
                Ok(text.to_owned())
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => path("database file").map(SinkUrl::Sqlite),
            "csv" => path("directory").map(SinkUrl::Csv),
            "jsonl" => path("directory").map(SinkUrl::Jsonl),
            "postgres" | "postgresql" => authority("PostgreSQL").map(SinkUrl::Postgres),
            "mqtt" | "mqtts" => authority("MQTT broker").map(SinkUrl::Mqtt),
            "influx+http" | "influx+https" => {
                authority("InfluxDB").map(|url| SinkUrl::Influx(url["influx+".len()..].to_owned()))
            }
            other => Err(format!(
                "'{other}' is not a sink kind; use one of: {SCHEMES}"
            )),
        }
    }
}

impl fmt::Display for SinkUrl {
    /// The URL back, with any password hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            SinkUrl::Csv(path) => write!(f, "csv:{}", path.display()),
            SinkUrl::Jsonl(path) => write!(f, "jsonl:{}", path.display()),
            SinkUrl::Postgres(url) | SinkUrl::Mqtt(url) => f.write_str(&without_password(url)),
            SinkUrl::Influx(url) => write!(f, "influx+{}", without_password(url)),
        }
    }
}

/// `scheme://user:secret@host/...` as `scheme://user:***@host/...`, and a
/// `token=` or `password=` query value as `***`, so URLs can be logged.
pub fn without_password(url: &str) -> String {
    let hidden = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority
                .rsplit_once('@')
                .and_then(|(user, host)| user.split_once(':').map(|(name, _)| (name, host)))
            {
                Some((name, host)) => format!("{scheme}://{name}:***@{host}{tail}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    match hidden.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if matches!(key, "token" | "password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => hidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_sink_url() {
        for (text, expected) in [
            ("sqlite:kmplog.db", SinkUrl::Sqlite("kmplog.db".into())),
            (
                "csv:/var/lib/kmplog",
                SinkUrl::Csv("/var/lib/kmplog".into()),
            ),
            ("jsonl:out", SinkUrl::Jsonl("out".into())),
            (
                "postgres://meters@db/heat",
                SinkUrl::Postgres("postgres://meters@db/heat".into()),
            ),
            (
                "postgresql://db",
                SinkUrl::Postgres("postgresql://db".into()),
            ),
            (
                "mqtt://broker:1883",
                SinkUrl::Mqtt("mqtt://broker:1883".into()),
            ),
            (
                "mqtts://u:p@broker:8883",
                SinkUrl::Mqtt("mqtts://u:p@broker:8883".into()),
            ),
            (
                "influx+http://h:8086/api/v2/write?bucket=b",
                SinkUrl::Influx("http://h:8086/api/v2/write?bucket=b".into()),
            ),
        ] {
            assert_eq!(SinkUrl::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (text, message) in [
            ("kmplog.db", "'kmplog.db' names no sink: it has no scheme"),
            ("sqlite:", "'sqlite:' names no database file"),
            (
                "ftp://x",
                "'ftp' is not a sink kind; use one of: sqlite:kmplog.db",
            ),
            ("postgres://", "'postgres://' names no PostgreSQL host"),
            ("mqtt:broker", "'mqtt:broker' names no MQTT broker host"),
        ] {
            let error = SinkUrl::parse(text).unwrap_err();
            assert!(error.starts_with(message), "{text}: {error}");
        }
    }

    #[test]
    fn passwords_and_tokens_are_hidden_when_shown() {
        assert_eq!(
            SinkUrl::parse("postgres://meters:s3cret@db:5432/heat")
                .unwrap()
                .to_string(),
            "postgres://meters:***@db:5432/heat"
        );
        assert_eq!(
            SinkUrl::parse("influx+https://h/api/v2/write?org=o&token=abc")
                .unwrap()
                .to_string(),
            "influx+https://h/api/v2/write?org=o&token=***"
        );
        assert_eq!(
            SinkUrl::parse("mqtt://broker").unwrap().to_string(),
            "mqtt://broker"
        );
    }
}
