//! The coordinator: two tables in PostgreSQL, each statement one round trip
//! that the server decides by its own clock.
//!
//! - `kmplog_leases` (or the `table=` of the URL): one row per bus that was
//!   ever owned: `owner`, the fencing `token` (one more at every
//!   acquisition), `expires` (`now() + lease` at the last renewal).
//! - `kmplog_leases_members` beside it: one row per instance name with its
//!   heartbeat's `expires` and a `nonce` drawn at each start, so that a
//!   second live process under the same name is told, not merged.
//!
//! An acquisition succeeds only on a bus without a row or whose `expires`
//! has passed by the server's clock, in one `INSERT ... ON CONFLICT DO
//! UPDATE ... WHERE`, so two instances cannot both win it. A renewal names
//! the bus and token it holds, so a lease that has changed hands is never
//! renewed by its former holder, and one a former process under the same
//! name left behind is not either.

use std::time::Duration;

use tokio_postgres::Client;

use crate::sink::postgres::{Server, describe};

/// The lease table when the URL names none.
pub const DEFAULT_TABLE: &str = "kmplog_leases";

/// Checks a `[cluster] coordinator` URL as `kmplog check` does.
///
/// # Errors
/// What is wrong with it, without its password.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("nats://") {
        return Err(format!(
            "coordinator '{url}': NATS is not a coordinator kmplog supports; give a PostgreSQL URL (postgres://...)"
        ));
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "coordinator '{}' is not a postgres:// URL",
            crate::sink::url::without_password(url)
        ));
    }
    with_default_table(url).map(|_| ())
}

/// The server, with the lease table defaulting to [`DEFAULT_TABLE`].
fn with_default_table(url: &str) -> Result<Server, String> {
    let names_table = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("table=")));
    if names_table {
        Server::open(url)
    } else {
        let separator = if url.contains('?') { '&' } else { '?' };
        Server::open(&format!("{url}{separator}table={DEFAULT_TABLE}"))
    }
}

/// A bus's lease as the coordinator has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The bus.
    pub bus: String,
    /// Its holder, or its last holder when it has lapsed.
    pub owner: String,
    /// The fencing token of the holder's acquisition.
    pub token: i64,
    /// Whether it is held now, by the server's clock.
    pub live: bool,
    /// Milliseconds until it lapses (negative: since), by the server's clock.
    pub expires_in_ms: i64,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The name is this process's.
    Alive,
    /// Another live process has the name.
    NameTaken,
}

/// The coordinator's address and tables; [`Coordinator::connect`] opens a
/// session.
pub struct Coordinator {
    server: Server,
    leases: String,
    members: String,
}

/// An open session.
pub struct Session<'c> {
    coordinator: &'c Coordinator,
    client: Client,
}

/// The `(bus, token)` of each row that a statement returned.
fn buses_and_tokens(
    rows: &[tokio_postgres::Row],
) -> Result<Vec<(String, i64)>, tokio_postgres::Error> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Seconds of a duration, as the statements take them.
fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Coordinator {
    /// Reads the URL (see [`check_url`]). Sessions show in
    /// `pg_stat_activity` as `kmplog-<instance>` unless the URL names an
    /// `application_name`.
    ///
    /// # Errors
    /// What is wrong with the URL.
    pub fn open(url: &str, instance: Option<&str>) -> Result<Coordinator, String> {
        check_url(url)?;
        let url = match instance {
            Some(instance) if !url.contains("application_name=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}application_name=kmplog-{instance}")
            }
            _ => url.to_owned(),
        };
        let server = with_default_table(&url)?;
        let (leases, name) = server.table();
        let members = server.beside(&format!("{name}_members"));
        Ok(Coordinator {
            leases,
            members,
            server,
        })
    }

    /// `127.0.0.1:5432 as kmplog` for messages.
    pub fn server(&self) -> String {
        self.server.server()
    }

    /// The coordinator's URL without password.
    pub fn name(&self) -> &str {
        self.server.name()
    }

    /// A session, with the tables made if they are missing.
    ///
    /// # Errors
    /// The server's refusal, or a failed statement.
    pub async fn connect(&self) -> Result<Session<'_>, String> {
        let client = self.server.connect().await?;
        let (leases, members) = (&self.leases, &self.members);
        client
            .batch_execute(&format!(
                "BEGIN;
                 SELECT pg_advisory_xact_lock(hashtext('kmplog cluster'));
                 CREATE TABLE IF NOT EXISTS {leases} (
                     bus      text PRIMARY KEY,
                     owner    text NOT NULL,
                     token    bigint NOT NULL,
                     expires  timestamptz NOT NULL,
                     acquired timestamptz NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS {members} (
                     name    text PRIMARY KEY,
                     nonce   bigint NOT NULL,
                     expires timestamptz NOT NULL,
                     started timestamptz NOT NULL
                 );
                 COMMIT;"
            ))
            .await
            .map_err(|error| format!("making the cluster tables {leases}: {}", describe(&error)))?;
        Ok(Session {
            coordinator: self,
            client,
        })
    }
}

impl Session<'_> {
    fn fail(doing: &str) -> impl Fn(tokio_postgres::Error) -> String + '_ {
        move |error| format!("{doing}: {}", describe(&error))
    }

    /// Whether the session has ended (the server closed it).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Renews the leases `held` (bus and token) of `owner` that are still
    /// live for `lease` from now; returns those renewed.
    ///
    /// # Errors
    /// The statement failed: nothing is known to be renewed.
    pub async fn renew(
        &self,
        owner: &str,
        held: &[(String, i64)],
        lease: Duration,
    ) -> Result<Vec<(String, i64)>, String> {
        let leases = &self.coordinator.leases;
        let (buses, tokens): (Vec<&str>, Vec<i64>) = held
            .iter()
            .map(|(bus, token)| (bus.as_str(), *token))
            .unzip();
        let rows = self
            .client
            .query(
                &format!(
                    "UPDATE {leases} AS l SET expires = now() + $4::float8 * interval '1 second'
                     FROM unnest($2::text[], $3::int8[]) AS h(bus, token)
                     WHERE l.bus = h.bus AND l.token = h.token AND l.owner = $1 AND l.expires > now()
                     RETURNING l.bus, l.token"
                ),
                &[&owner, &buses, &tokens, &seconds(lease)],
            )
            .await
            .map_err(Self::fail("renewing the leases"))?;
        buses_and_tokens(&rows).map_err(Self::fail("reading the renewed leases"))
    }

    /// Says `name` is alive for `lease` from now, unless another live
    /// process (another `nonce`) has the name.
    ///
    /// # Errors
    /// The statement failed.
    pub async fn heartbeat(
        &self,
        name: &str,
        nonce: i64,
        lease: Duration,
    ) -> Result<Heartbeat, String> {
        let members = &self.coordinator.members;
        let row = self
            .client
            .query_opt(
                &format!(
                    "INSERT INTO {members} AS m (name, nonce, expires, started)
                     VALUES ($1, $2, now() + $3::float8 * interval '1 second', now())
                     ON CONFLICT (name) DO UPDATE
                     SET nonce = excluded.nonce, expires = excluded.expires,
                         started = CASE WHEN m.nonce = excluded.nonce THEN m.started ELSE now() END
                     WHERE m.nonce = excluded.nonce OR m.expires <= now()
                     RETURNING name"
                ),
                &[&name, &nonce, &seconds(lease)],
            )
            .await
            .map_err(Self::fail("sending the heartbeat"))?;
        Ok(if row.is_some() {
            Heartbeat::Alive
        } else {
            Heartbeat::NameTaken
        })
    }

    /// The live members, by name.
    ///
    /// # Errors
    /// The statement failed.
    pub async fn members(&self) -> Result<Vec<String>, String> {
        let members = &self.coordinator.members;
        let rows = self
            .client
            .query(
                &format!("SELECT name FROM {members} WHERE expires > now() ORDER BY name"),
                &[],
            )
            .await
            .map_err(Self::fail("reading the members"))?;
        rows.iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(Self::fail("reading the members"))
    }

    /// Every lease, by bus.
    ///
    /// # Errors
    /// The statement failed.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, String> {
        let leases = &self.coordinator.leases;
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT bus, owner, token, expires > now(),
                            (extract(epoch FROM expires - now()) * 1000)::int8
                     FROM {leases} ORDER BY bus"
                ),
                &[],
            )
            .await
            .map_err(Self::fail("reading the leases"))?;
        rows.iter()
            .map(|row| {
                Ok(LeaseRow {
                    bus: row.try_get(0)?,
                    owner: row.try_get(1)?,
                    token: row.try_get(2)?,
                    live: row.try_get(3)?,
                    expires_in_ms: row.try_get(4)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(Self::fail("reading the leases"))
    }

    /// Acquires for `owner` those of `buses` that nobody holds, for `lease`
    /// from now; returns them with their new fencing tokens.
    ///
    /// # Errors
    /// The statement failed: nothing is known to be acquired.
    pub async fn acquire(
        &self,
        owner: &str,
        buses: &[String],
        lease: Duration,
    ) -> Result<Vec<(String, i64)>, String> {
        let leases = &self.coordinator.leases;
        let rows = self
            .client
            .query(
                &format!(
                    "INSERT INTO {leases} AS l (bus, owner, token, expires, acquired)
                     SELECT bus, $1, 1, now() + $3::float8 * interval '1 second', now()
                     FROM unnest($2::text[]) AS wanted(bus)
                     ON CONFLICT (bus) DO UPDATE
                     SET owner = excluded.owner, token = l.token + 1,
                         expires = excluded.expires, acquired = excluded.acquired
                     WHERE l.expires <= now()
                     RETURNING l.bus, l.token"
                ),
                &[&owner, &buses, &seconds(lease)],
            )
            .await
            .map_err(Self::fail("acquiring leases"))?;
        buses_and_tokens(&rows).map_err(Self::fail("reading the acquired leases"))
    }

    /// Gives up the leases `held` (bus and token) of `owner` at once (their
    /// expiry set to 1970): their buses have stopped, so another instance
    /// may take them now.
    ///
    /// # Errors
    /// The statement failed: the leases lapse by themselves.
    pub async fn release(&self, owner: &str, held: &[(String, i64)]) -> Result<u64, String> {
        let leases = &self.coordinator.leases;
        let (buses, tokens): (Vec<&str>, Vec<i64>) = held
            .iter()
            .map(|(bus, token)| (bus.as_str(), *token))
            .unzip();
        self.client
            .execute(
                &format!(
                    "UPDATE {leases} AS l SET expires = 'epoch'
                     FROM unnest($2::text[], $3::int8[]) AS h(bus, token)
                     WHERE l.bus = h.bus AND l.token = h.token AND l.owner = $1"
                ),
                &[&owner, &buses, &tokens],
            )
            .await
            .map_err(Self::fail("releasing leases"))
    }

    /// Ends `name`'s membership at once (a clean stop).
    ///
    /// # Errors
    /// The statement failed: the membership lapses by itself.
    pub async fn leave(&self, name: &str, nonce: i64) -> Result<(), String> {
        let members = &self.coordinator.members;
        self.client
            .execute(
                &format!("DELETE FROM {members} WHERE name = $1 AND nonce = $2"),
                &[&name, &nonce],
            )
            .await
            .map(|_| ())
            .map_err(Self::fail("leaving the cluster"))
    }
}
