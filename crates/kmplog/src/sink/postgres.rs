//! PostgreSQL (and TimescaleDB): readings in a table, one `INSERT` per batch.
//!
//! The URL is PostgreSQL's own (`postgres://user:password@host:port/db?...`)
//! with three options read here rather than by the driver: `table=NAME` or
//! `table=SCHEMA.NAME` (default `kmplog_readings`), `sslmode=` (`disable`,
//! `prefer` the default, `require`, `verify-full`) and `sslrootcert=PATH`.
//! A password missing from the URL comes from `PGPASSWORD`, a missing user
//! from `PGUSER` or `USER`, as with `psql`.
//!
//! Exactly once: each row carries the reading's outbox key, and the batch is
//! one `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT DO NOTHING`, so it
//! lands whole or not at all, and a batch delivered again (the connection
//! died before the commit was acknowledged, or kmplog was killed before the
//! outbox cursor moved) adds nothing. The unique constraint is on
//! `(key, ts)`, not `key` alone, because TimescaleDB requires the time column
//! in every unique index of a hypertable; a key always comes with the same
//! time, so the two are equivalent here, and a plain table can be turned
//! into a hypertable later without changing the constraint.
//!
//! The sink connects on its first delivery, not when opened, so that kmplog
//! starts while the database is down; after any error it drops the
//! connection and the dispatcher's retry connects afresh. On each connection
//! it creates or migrates its schema, under an advisory lock so that two
//! loggers starting together do not race, and makes the table a hypertable
//! when the `timescaledb` extension is installed.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::without_password;
use super::{Sink, SinkError, SinkFuture};
use crate::outbox::Stored;

/// The table when the URL names none.
pub const DEFAULT_TABLE: &str = "kmplog_readings";
/// The table of schema versions, one row per readings table, in the same
/// PostgreSQL schema as the readings table.
const VERSIONS_TABLE: &str = "kmplog_schema";
/// The newest schema version this kmplog writes.
const SCHEMA_VERSION: i32 = 2;
/// Longest table name: PostgreSQL cuts identifiers at 63 bytes, and index
/// names add a suffix to the table's.
const MAX_TABLE_NAME: usize = 48;
/// How long one connection attempt may take, unless the URL sets
/// `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one delivery (connecting included) may take before the
/// connection is given up: a server that stopped answering without closing
/// the socket must not stall the sink for ever.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How the sink shows in `pg_stat_activity` unless the URL sets
/// `application_name`.
const APPLICATION_NAME: &str = "kmplog";
/// An example for messages.
const EXAMPLE: &str = "postgres://kmplog@localhost:5432/meters?table=readings&sslmode=require";

/// A readings table, perhaps in a named schema; both parts are lower-case
/// identifiers, so quoted and unquoted they mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    schema: Option<String>,
    name: String,
}

impl Table {
    fn parse(text: &str) -> Result<Table, String> {
        let valid = |part: &str| {
            part.len() <= MAX_TABLE_NAME
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, text),
        };
        if !valid(name) || !schema.is_none_or(valid) {
            return Err(format!(
                "table={text} is not a table name: use lower-case letters, digits and _ (at most {MAX_TABLE_NAME}), \
                 optionally after a schema and a dot, for example table=readings or table=heat.readings"
            ));
        }
        Ok(Table {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// `"schema"."name"` or `"name"`.
    fn qualify(&self, name: &str) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{name}\""),
            None => format!("\"{name}\""),
        }
    }

    fn quoted(&self) -> String {
        self.qualify(&self.name)
    }

    fn versions(&self) -> String {
        self.qualify(VERSIONS_TABLE)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Whether and how the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// `sslmode=disable`.
    Off,
    /// `prefer` and `require` as libpq has them: encrypted, but the
    /// server's certificate is not checked unless `sslrootcert` is given.
    Encrypt,
    /// `verify-full`: the certificate must chain to a trusted root and name
    /// the host.
    Verify,
}

/// What the URL says, checked.
struct Settings {
    config: Config,
    table: Table,
    tls: TlsMode,
    root_certificates: Option<PathBuf>,
    name: String,
}

/// `%41` and `+` in a query value, as URLs write them.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (byte, hex) {
            (b'%', Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

impl Settings {
    /// Reads `url`; `env` looks up environment variables (a parameter so
    /// that tests do not depend on the environment they run in).
    fn parse(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let shown = without_password(url);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut driver_options = Vec::new();
        let mut table = DEFAULT_TABLE.to_owned();
        let mut ssl_mode = "prefer".to_owned();
        let mut root_certificates = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key).as_str() {
                "table" => table = percent_decode(value),
                "sslmode" => ssl_mode = percent_decode(value),
                "sslrootcert" => root_certificates = Some(PathBuf::from(percent_decode(value))),
                _ => driver_options.push(pair),
            }
        }
        let driver_url = if driver_options.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", driver_options.join("&"))
        };
        let mut config = Config::from_str(&driver_url).map_err(|error| {
            format!(
                "'{shown}' is not a PostgreSQL URL: {}; for example {EXAMPLE}",
                describe(&error)
            )
        })?;
        let tls = match ssl_mode.as_str() {
            "disable" => {
                config.ssl_mode(SslMode::Disable);
                TlsMode::Off
            }
            "prefer" | "require" => {
                config.ssl_mode(if ssl_mode == "prefer" {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                if root_certificates.is_some() {
                    TlsMode::Verify
                } else {
                    TlsMode::Encrypt
                }
            }
            "verify-full" => {
                config.ssl_mode(SslMode::Require);
                TlsMode::Verify
            }
            other => {
                return Err(format!(
                    "'{shown}': sslmode={other} is not supported; use disable, prefer (the default), require or verify-full, \
                     for example {EXAMPLE}"
                ));
            }
        };
        if config.get_user().is_none() {
            match env("PGUSER").or_else(|| env("USER")) {
                Some(user) => config.user(user),
                None => {
                    return Err(format!(
                        "'{shown}' names no user and neither PGUSER nor USER is set; for example {EXAMPLE}"
                    ));
                }
            };
        }
        if config.get_password().is_none()
            && let Some(password) = env("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let table = Table::parse(&table).map_err(|error| format!("'{shown}': {error}"))?;
        let name = sink_name(&config, &table);
        Ok(Settings {
            config,
            table,
            tls,
            root_certificates,
            name,
        })
    }
}

/// `postgres://user@host:port/db?table=NAME`: where the readings go, without
/// the password or options that do not change the destination, so that the
/// sink keeps its outbox cursor when those change.
fn sink_name(config: &Config, table: &Table) -> String {
    let user = config.get_user().unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let database = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{hosts}/{database}?table={table}")
}

/// A driver error with its causes, which its `Display` leaves out: `db
/// error` alone says nothing, `ERROR 28000: role "x" is not permitted to
/// log in` does.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The SQL that makes schema version 1: the readings table and its indexes.
fn version_1(table: &Table) -> String {
    let quoted = table.quoted();
    let name = &table.name;
    format!(
        "CREATE TABLE {quoted} (
    key        text        NOT NULL,  -- the outbox key: <outbox id>-<sequence>, or logged-... for a backfilled row
    ts         timestamptz NOT NULL,  -- when the reply arrived, to the microsecond
    bus        text        NOT NULL,
    address    smallint    NOT NULL,
    request    text        NOT NULL,
    register   integer     NOT NULL,
    name       text        NOT NULL,  -- export name
    value      numeric,               -- exact, from the decimal text
    value_text text,                  -- the decimal as the meter sent it
    unit       text,
    unit_code  smallint,
    status     text        NOT NULL,
    CONSTRAINT \"{name}_key\" UNIQUE (key, ts)
);
CREATE INDEX \"{name}_by_meter\" ON {quoted} (bus, address, name, ts);
CREATE INDEX \"{name}_by_time\" ON {quoted} (ts);"
    )
}

/// Version 2: the cluster instance that read each reading (`NULL` outside
/// a cluster, and for rows from before).
fn version_2(table: &Table) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS instance text",
        table.quoted()
    )
}

/// Every schema version after the first, in order; index 0 is version 1.
fn migrations(table: &Table) -> Vec<String> {
    vec![version_1(table), version_2(table)]
}

/// The batch insert: one statement, its rows from one array per column.
fn insert_sql(table: &Table) -> String {
    format!(
        "INSERT INTO {} (key, ts, bus, address, request, register, name, value, value_text, unit, unit_code, status, instance)
SELECT key, ts::timestamptz, bus, address, request, register, name, value_text::numeric, value_text, unit, unit_code, status, instance
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::int4[], $7::text[], $8::text[], $9::text[], $10::int2[], $11::text[], $12::text[])
    AS batch (key, ts, bus, address, request, register, name, value_text, unit, unit_code, status, instance)
ON CONFLICT (key, ts) DO NOTHING",
        table.quoted()
    )
}

/// Makes the table a hypertable; harmless when it is one already.
fn hypertable_sql(table: &Table) -> String {
    // The table name is a checked identifier, so it needs no escaping
    // inside the literal.
    format!(
        "SELECT create_hypertable('{}', 'ts', if_not_exists => TRUE, migrate_data => TRUE)",
        table.quoted()
    )
}

/// A batch as one array per column.
#[derive(Debug, Default, PartialEq)]
struct Columns {
    key: Vec<String>,
    ts: Vec<String>,
    bus: Vec<String>,
    address: Vec<i16>,
    request: Vec<String>,
    register: Vec<i32>,
    name: Vec<String>,
    value: Vec<Option<String>>,
    unit: Vec<Option<String>>,
    unit_code: Vec<Option<i16>>,
    status: Vec<String>,
    instance: Vec<Option<String>>,
}

impl Columns {
    fn of(batch: &[Stored]) -> Columns {
        let mut columns = Columns::default();
        for Stored {
            key,
            reading,
            instance,
            ..
        } in batch
        {
            // PostgreSQL keeps microseconds and would round the rest; cut
            // them here so that a key always comes with the same time.
            let time = jiff::Timestamp::from_microsecond(reading.time.as_microsecond())
                .unwrap_or(reading.time);
            columns.key.push(key.clone());
            columns.ts.push(time.to_string());
            columns.bus.push(reading.bus.clone());
            columns.address.push(i16::from(reading.address));
            columns.request.push(reading.request.clone());
            columns.register.push(i32::from(reading.register));
            columns.name.push(reading.name.clone());
            columns
                .value
                .push(reading.value.map(|(value, _)| value.to_string()));
            columns
                .unit
                .push(reading.value.map(|(_, unit)| unit.to_string()));
            columns
                .unit_code
                .push(reading.value.map(|(_, unit)| i16::from(unit.code())));
            columns.status.push(reading.status.as_str().to_owned());
            columns.instance.push(instance.clone());
        }
        columns
    }

    fn parameters(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.key,
            &self.ts,
            &self.bus,
            &self.address,
            &self.request,
            &self.register,
            &self.name,
            &self.value,
            &self.unit,
            &self.unit_code,
            &self.status,
            &self.instance,
        ]
    }
}

/// Accepts any certificate, for `prefer` and `require` without
/// `sslrootcert`, as libpq does: the link is encrypted against listeners,
/// not authenticated. Signatures are still checked, so the handshake is
/// sound.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration for `mode`: the Mozilla roots compiled
/// in (webpki-roots) plus the certificates of `sslrootcert`.
fn tls_config(mode: TlsMode, root_certificates: Option<&PathBuf>) -> Result<ClientConfig, String> {
    // The provider is named rather than taken from the process default, so
    // that another crate enabling a second provider cannot make it ambiguous.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("setting up TLS: {error}"))?;
    if mode != TlsMode::Verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = root_certificates {
        let fail = |error: &dyn std::fmt::Display| {
            format!(
                "sslrootcert={}: {error}; give a PEM file of CA certificates, for example sslrootcert=/etc/ssl/certs/db-ca.pem",
                path.display()
            )
        };
        let mut added = 0;
        for certificate in CertificateDer::pem_file_iter(path).map_err(|error| fail(&error))? {
            let certificate = certificate.map_err(|error| fail(&error))?;
            roots.add(certificate).map_err(|error| fail(&error))?;
            added += 1;
        }
        if added == 0 {
            return Err(fail(&"no certificate in the file"));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// An open connection with its prepared insert.
struct Connection {
    client: Client,
    insert: Statement,
}

/// A PostgreSQL server as a URL names it, with the TLS the URL asks for:
/// the sink's and the cluster coordinator's way in.
pub(crate) struct Server {
    settings: Settings,
    tls: Option<MakeRustlsConnect>,
}

impl Server {
    /// Reads the URL. The error says what is wrong with it, without its
    /// password.
    pub(crate) fn open(url: &str) -> Result<Server, String> {
        let settings = Settings::parse(url, |name| std::env::var(name).ok())?;
        let tls = match settings.tls {
            TlsMode::Off => None,
            mode => Some(MakeRustlsConnect::new(
                tls_config(mode, settings.root_certificates.as_ref())
                    .map_err(|error| format!("{}: {error}", settings.name))?,
            )),
        };
        Ok(Server { settings, tls })
    }

    /// `postgres://user@host:port/db?table=T`: the URL without password.
    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    /// The table `table=` names: `"schema"."name"` quoted, and its bare name.
    pub(crate) fn table(&self) -> (String, &str) {
        (self.settings.table.quoted(), &self.settings.table.name)
    }

    /// The name `table=` gives another table next to the named one:
    /// `"schema"."name"` quoted.
    pub(crate) fn beside(&self, name: &str) -> String {
        self.settings.table.qualify(name)
    }

    /// `127.0.0.1:5432 as kmplog` for messages.
    pub(crate) fn server(&self) -> String {
        let name = &self.settings.name;
        let after_user = name.split_once('@').map_or(name.as_str(), |(_, rest)| rest);
        let hosts = after_user
            .split_once('/')
            .map_or(after_user, |(hosts, _)| hosts);
        format!(
            "{hosts} as {}",
            self.settings.config.get_user().unwrap_or_default()
        )
    }

    /// A new connection, which runs on the current runtime until the client
    /// is dropped or the server goes away.
    pub(crate) async fn connect(&self) -> Result<Client, String> {
        let config = &self.settings.config;
        let connected = match &self.tls {
            None => config.connect(NoTls).await.map(|(client, connection)| {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }),
            Some(tls) => config
                .connect(tls.clone())
                .await
                .map(|(client, connection)| {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    client
                }),
        };
        connected.map_err(|error| format!("connecting to {}: {}", self.server(), describe(&error)))
    }
}

/// Writes readings to a PostgreSQL table.
pub struct PostgresSink {
    server: Server,
    connection: Option<Connection>,
    /// The hypertable warning is given once, not at every reconnection.
    warned_hypertable: bool,
}

impl PostgresSink {
    /// Reads the URL; connects only when it first delivers. The error says
    /// what is wrong with the URL, without its password.
    pub fn open(url: &str) -> Result<Self, SinkError> {
        Ok(PostgresSink {
            server: Server::open(url).map_err(SinkError)?,
            connection: None,
            warned_hypertable: false,
        })
    }

    async fn connect(&mut self) -> Result<Connection, String> {
        let mut client = self.server.connect().await?;
        let table = self.server.settings.table.clone();
        migrate(&mut client, &table).await?;
        self.make_hypertable(&client).await?;
        let insert = client
            .prepare(&insert_sql(&table))
            .await
            .map_err(|error| format!("preparing the insert into {table}: {}", describe(&error)))?;
        Ok(Connection { client, insert })
    }

    /// Turns the table into a hypertable where TimescaleDB is installed. A
    /// failure is a warning, not an error: the rows are as good in a plain
    /// table, and a sink that refused to deliver over it would fill the
    /// outbox.
    async fn make_hypertable(&mut self, client: &Client) -> Result<(), String> {
        let table = &self.server.settings.table;
        let installed: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|error| format!("looking for TimescaleDB: {}", describe(&error)))?;
        if !installed {
            return Ok(());
        }
        if let Err(error) = client.batch_execute(&hypertable_sql(table)).await
            && !self.warned_hypertable
        {
            self.warned_hypertable = true;
            tracing::warn!(
                sink = %self.server.settings.name,
                %table,
                reason = %describe(&error),
                "TimescaleDB is installed but the table could not be made a hypertable; readings go to it as a plain table"
            );
        }
        Ok(())
    }

    async fn write(&mut self, batch: &[Stored]) -> Result<(), String> {
        if self
            .connection
            .as_ref()
            .is_some_and(|connection| connection.client.is_closed())
        {
            self.connection = None;
        }
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let columns = Columns::of(batch);
        connection
            .client
            .execute(&connection.insert, &columns.parameters())
            .await
            .map_err(|error| {
                format!(
                    "inserting {} readings into {}: {}",
                    batch.len(),
                    self.server.settings.table,
                    describe(&error)
                )
            })?;
        // Kept only after a success: any error drops the connection, and the
        // next attempt starts from a fresh one.
        self.connection = Some(connection);
        Ok(())
    }
}

/// Creates the schema or brings it to [`SCHEMA_VERSION`], in one
/// transaction under an advisory lock.
async fn migrate(client: &mut Client, table: &Table) -> Result<(), String> {
    let fail = |doing: &str| {
        let doing = doing.to_owned();
        move |error: tokio_postgres::Error| format!("{doing}: {}", describe(&error))
    };
    let versions = table.versions();
    let transaction = client
        .transaction()
        .await
        .map_err(fail("starting the schema transaction"))?;
    transaction
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('kmplog schema'));
             CREATE TABLE IF NOT EXISTS {versions} (
                 table_name text PRIMARY KEY,
                 version    integer NOT NULL,
                 migrated   timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(fail(&format!("creating {versions}")))?;
    let version: i32 = transaction
        .query_opt(
            &format!("SELECT version FROM {versions} WHERE table_name = $1"),
            &[&table.name],
        )
        .await
        .and_then(|row| row.map_or(Ok(0), |row| row.try_get(0)))
        .map_err(fail(&format!("reading the schema version of {table}")))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "table {table} has schema version {version}, written by a newer kmplog; this one knows versions up to \
             {SCHEMA_VERSION}: upgrade kmplog, or give this one another table with table=NAME"
        ));
    }
    for (index, sql) in migrations(table).iter().enumerate() {
        let target = index as i32 + 1;
        if target <= version {
            continue;
        }
        transaction.batch_execute(sql).await.map_err(fail(&format!(
            "making schema version {target} of table {table}"
        )))?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO {versions} (table_name, version) VALUES ($1, $2)
                     ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, migrated = now()"
                ),
                &[&table.name, &target],
            )
            .await
            .map_err(fail(&format!("recording schema version {target} of {table}")))?;
    }
    transaction
        .commit()
        .await
        .map_err(fail(&format!("committing the schema of {table}")))
}

impl Sink for PostgresSink {
    fn name(&self) -> String {
        self.server.settings.name.clone()
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        Box::pin(async move {
            let outcome = tokio::time::timeout(DELIVERY_TIMEOUT, self.write(batch)).await;
            let error = match outcome {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error,
                Err(_) => format!(
                    "{} did not answer within {} s",
                    self.server.server(),
                    DELIVERY_TIMEOUT.as_secs()
                ),
            };
            self.connection = None;
            Err(SinkError(error))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Reading, Status};
    use kmp::unit::Unit;

    fn parse(url: &str) -> Result<Settings, String> {
        Settings::parse(url, |name| match name {
            "USER" => Some("meters".to_owned()),
            _ => None,
        })
    }

    #[test]
    fn the_name_shows_where_without_password_or_options() {
        for (url, name) in [
            (
                "postgres://kmplog:s3cret@db.example:6543/heat?sslmode=require&application_name=x",
                "postgres://kmplog@db.example:6543/heat?table=kmplog_readings",
            ),
            (
                "postgresql://kmplog@127.0.0.1/test?table=site_a.readings",
                "postgres://kmplog@127.0.0.1:5432/test?table=site_a.readings",
            ),
            // No user: the environment's, and the database named after it.
            (
                "postgres://localhost",
                "postgres://meters@localhost:5432/meters?table=kmplog_readings",
            ),
        ] {
            assert_eq!(parse(url).unwrap().name, name, "{url}");
        }
    }

    #[test]
    fn options_are_read_and_defaults_filled_in() {
        let settings =
            parse("postgres://u:pw@h/db?table=t1&sslmode=disable&connect_timeout=3").unwrap();
        assert_eq!(settings.table.quoted(), "\"t1\"");
        assert_eq!(settings.tls, TlsMode::Off);
        assert_eq!(settings.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(settings.config.get_application_name(), Some("kmplog"));
        assert_eq!(
            settings.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let settings = parse("postgres://u@h/db").unwrap();
        assert_eq!(
            (settings.tls, settings.config.get_ssl_mode()),
            (TlsMode::Encrypt, SslMode::Prefer)
        );
        assert_eq!(
            settings.config.get_connect_timeout(),
            Some(&CONNECT_TIMEOUT)
        );
        let settings = parse("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert_eq!(
            (settings.tls, settings.config.get_ssl_mode()),
            (TlsMode::Verify, SslMode::Require)
        );
        let settings =
            parse("postgres://u@h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(settings.tls, TlsMode::Verify);
        assert_eq!(
            settings.root_certificates,
            Some(PathBuf::from("/etc/ca.pem"))
        );
    }

    #[test]
    fn the_password_comes_from_pgpassword_when_the_url_has_none() {
        let env = |name: &str| (name == "PGPASSWORD").then(|| "from-env".to_owned());
        let settings = Settings::parse("postgres://u@h/db", env).unwrap();
        assert_eq!(settings.config.get_password(), Some(&b"from-env"[..]));
        let settings = Settings::parse("postgres://u:url@h/db", env).unwrap();
        assert_eq!(settings.config.get_password(), Some(&b"url"[..]));
    }

    #[test]
    fn mistakes_say_what_is_wrong_without_the_password() {
        for (url, message) in [
            (
                "postgres://u:s3cret@h/db?sslmode=verify-ca",
                "'postgres://u:***@h/db?sslmode=verify-ca': sslmode=verify-ca is not supported; use disable",
            ),
            (
                "postgres://u:s3cret@h/db?table=Readings",
                "'postgres://u:***@h/db?table=Readings': table=Readings is not a table name",
            ),
            (
                "postgres://u@h/db?table=a.b.c",
                "table=a.b.c is not a table name",
            ),
            ("postgres://u@h/db?table=", "table= is not a table name"),
            (
                "postgres://u:s3cret@h/db?colour=blue",
                "'postgres://u:***@h/db?colour=blue' is not a PostgreSQL URL: invalid connection string: unknown option `colour`; for example postgres://",
            ),
            ("postgres://u@h:port/db", "is not a PostgreSQL URL"),
        ] {
            let error = parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} was accepted"));
            assert!(error.contains(message), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{url}: {error}");
        }
        let no_user = Settings::parse("postgres://h/db", |_| None).err().unwrap();
        assert!(no_user.contains("names no user"), "{no_user}");
    }

    #[test]
    fn the_schema_keys_on_key_and_time_and_the_insert_skips_what_is_there() {
        let table = Table::parse("heat.readings").unwrap();
        let schema = version_1(&table);
        assert!(
            schema.contains("CREATE TABLE \"heat\".\"readings\" ("),
            "{schema}"
        );
        assert!(
            schema.contains("CONSTRAINT \"readings_key\" UNIQUE (key, ts)"),
            "{schema}"
        );
        assert!(schema.contains("value      numeric"), "{schema}");
        assert_eq!(table.versions(), "\"heat\".\"kmplog_schema\"");
        let insert = insert_sql(&table);
        assert!(
            insert.starts_with("INSERT INTO \"heat\".\"readings\" (key, ts,"),
            "{insert}"
        );
        assert!(insert.contains("FROM UNNEST($1::text[],"), "{insert}");
        assert!(
            insert.ends_with("ON CONFLICT (key, ts) DO NOTHING"),
            "{insert}"
        );
        assert_eq!(
            hypertable_sql(&Table::parse("readings").unwrap()),
            "SELECT create_hypertable('\"readings\"', 'ts', if_not_exists => TRUE, migrate_data => TRUE)"
        );
        assert_eq!(migrations(&table).len(), SCHEMA_VERSION as usize);
    }

    #[test]
    fn a_batch_becomes_one_array_per_column() {
        let reading = |register, value: Option<&str>, status| Reading {
            time: "2026-11-25T08:00:00.123456789Z".parse().unwrap(),
            bus: "heat".to_owned(),
            address: 63,
            request: "Main".to_owned(),
            register,
            name: "E1".to_owned(),
            value: value.map(|text| (text.parse().unwrap(), Unit(0x08))),
            status,
        };
        let batch = [
            Stored {
                seq: 1,
                key: "ab-1".to_owned(),
                instance: None,
                reading: reading(60, Some("34.00"), Status::Ok),
            },
            Stored {
                seq: 2,
                key: "ab-2".to_owned(),
                instance: Some("b".to_owned()),
                reading: reading(61, None, Status::Timeout),
            },
        ];
        let columns = Columns::of(&batch);
        assert_eq!(columns.key, ["ab-1", "ab-2"]);
        // Cut to PostgreSQL's microseconds, never rounded up.
        assert_eq!(columns.ts, ["2026-11-25T08:00:00.123456Z"; 2]);
        assert_eq!(columns.address, [63, 63]);
        assert_eq!(columns.register, [60, 61]);
        assert_eq!(columns.value, [Some("34.00".to_owned()), None]);
        assert_eq!(columns.unit, [Some("GJ".to_owned()), None]);
        assert_eq!(columns.unit_code, [Some(8), None]);
        assert_eq!(columns.status, ["ok", "timeout"]);
        assert_eq!(columns.instance, [None, Some("b".to_owned())]);
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("%2Fetc%2Fca+file.pem"), "/etc/ca file.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
