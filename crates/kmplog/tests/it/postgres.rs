//! The PostgreSQL sink against the real server of this machine
//! (`127.0.0.1:5432`, database `test`, trust authentication; DEVELOPERS.md
//! and `.ci/run` say how it starts; `KMPLOG_TEST_POSTGRES` names another).
//!
//! Each test makes a role and a schema of its own, named after the test and
//! the process, and the sink writes to `<role>.readings` with
//! `application_name=<role>`: tests run in parallel, an outage is made by
//! taking that role's right to log in away (`ALTER ROLE ... NOLOGIN`) and
//! ending its sessions, which disturbs no other test, and the drop guard
//! gives the right back and drops everything.
//!
//! Rows are matched to readings by the outbox key, which the SQLite sink
//! stores too (column `key` of `kmplog.db`); the JSON lines carry no key, so
//! they are compared with the rows by content, as multisets.
//!
//! When the server is unreachable a test fails under `CI=true` and is
//! skipped, loudly, elsewhere.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kmplog::outbox::Stored;
use kmplog::reading::{Reading, Status};
use kmplog::sink::Sink;
use kmplog::sink::postgres::PostgresSink;

use crate::harness::{Logger, Run, Simulator, Workdir};

/// The server and an account that may create roles.
fn server_url() -> String {
    std::env::var("KMPLOG_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A synchronous client for the tests' own queries.
pub(crate) struct Pg {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Pg {
    /// Connects as the administrator; `None` (after saying so) when the
    /// server is unreachable outside CI.
    pub(crate) fn admin(test: &str) -> Option<Pg> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let url = server_url();
        let connected = runtime.block_on(async {
            let (client, connection) = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_postgres::connect(&url, tokio_postgres::NoTls),
            )
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
            .map_err(|error| match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            })?;
            tokio::spawn(connection);
            Ok::<_, String>(client)
        });
        match connected {
            Ok(client) => Some(Pg { runtime, client }),
            Err(error) if std::env::var("CI").is_ok_and(|value| value == "true") => {
                panic!("{test}: PostgreSQL at {url} is unreachable and CI=true: {error}")
            }
            Err(error) => {
                eprintln!(
                    "\n*** SKIPPED {test}: PostgreSQL at {url} is unreachable ({error}); start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`. \
                     With CI=true this is a failure. ***\n"
                );
                None
            }
        }
    }

    pub(crate) fn execute(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    }

    pub(crate) fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"))
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0].get(0)
    }
}

/// A role with a schema of its own, dropped with everything in it.
struct Scratch {
    pg: Pg,
    role: String,
}

impl Scratch {
    fn new(test: &str) -> Option<Scratch> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pg = Pg::admin(test)?;
        let role = format!(
            "kmplog_t_{}_{}_{}",
            test.chars().take(20).collect::<String>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        pg.execute(&format!(
            "DROP SCHEMA IF EXISTS {role} CASCADE; DROP ROLE IF EXISTS {role};
             CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role};"
        ));
        Some(Scratch { pg, role })
    }

    /// The sink's URL: this role, its table, its application name.
    fn url(&self) -> String {
        let role = &self.role;
        format!(
            "postgres://{role}@127.0.0.1:5432/test?table={role}.readings&application_name={role}&sslmode=disable"
        )
    }

    /// Ends the sink's sessions, found by their application name, and
    /// refuses new ones; returns how many were ended.
    fn refuse(&self) -> i64 {
        let role = &self.role;
        self.pg.execute(&format!("ALTER ROLE {role} NOLOGIN"));
        self.pg.count(&format!(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = '{role}') AS ended"
        ))
    }

    fn allow(&self) {
        self.pg.execute(&format!("ALTER ROLE {} LOGIN", self.role));
    }

    fn table_exists(&self) -> bool {
        self.pg.query(&format!(
            "SELECT to_regclass('{}.readings') IS NOT NULL",
            self.role
        ))[0]
            .get(0)
    }

    fn rows(&self) -> Vec<PgRow> {
        let rows = self.pg.query(&format!(
            "SELECT key, (extract(epoch FROM ts) * 1000000)::bigint, bus, address, request, register, name,
                    value_text, unit, status, value::text
             FROM {}.readings ORDER BY key",
            self.role
        ));
        rows.iter()
            .map(|row| {
                let value_text: Option<String> = row.get(7);
                let numeric: Option<String> = row.get(10);
                assert_eq!(numeric, value_text, "numeric keeps the exact decimal");
                PgRow {
                    key: row.get(0),
                    content: Content {
                        micros: row.get(1),
                        bus: row.get(2),
                        address: row.get::<_, i16>(3).into(),
                        request: row.get(4),
                        register: row.get::<_, i32>(5).into(),
                        name: row.get(6),
                        value: value_text,
                        unit: row.get(8),
                        status: row.get(9),
                    },
                }
            })
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let role = &self.role;
        let _ = self
            .pg
            .runtime
            .block_on(self.pg.client.batch_execute(&format!(
                "ALTER ROLE {role} LOGIN;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
             DROP SCHEMA IF EXISTS {role} CASCADE; DROP ROLE IF EXISTS {role};"
            )));
    }
}

/// What a reading says, the same from PostgreSQL, SQLite and JSON lines;
/// time in microseconds, PostgreSQL's resolution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Content {
    micros: i64,
    bus: String,
    address: i64,
    request: String,
    register: i64,
    name: String,
    value: Option<String>,
    unit: Option<String>,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PgRow {
    key: String,
    content: Content,
}

fn micros(ts: &str) -> i64 {
    ts.parse::<jiff::Timestamp>()
        .unwrap_or_else(|error| panic!("{ts}: {error}"))
        .as_microsecond()
}

/// `kmplog.db`'s rows by key.
fn sqlite_rows(workdir: &Workdir) -> BTreeMap<String, Content> {
    let path = workdir.path().join("kmplog.db");
    if !path.exists() {
        return BTreeMap::new();
    }
    let Ok(connection) = rusqlite::Connection::open(path) else {
        return BTreeMap::new();
    };
    let Ok(mut statement) = connection.prepare(
        "SELECT key, ts, bus, address, request, register, name, value, unit, status FROM readings",
    ) else {
        // Not created yet.
        return BTreeMap::new();
    };
    statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                Content {
                    micros: micros(&row.get::<_, String>(1)?),
                    bus: row.get(2)?,
                    address: row.get(3)?,
                    request: row.get(4)?,
                    register: row.get(5)?,
                    name: row.get(6)?,
                    value: row.get(7)?,
                    unit: row.get(8)?,
                    status: row.get(9)?,
                },
            ))
        })
        .expect("query kmplog.db")
        .collect::<Result<_, _>>()
        .expect("read kmplog.db")
}

fn json_contents(run: &Run) -> Vec<Content> {
    let mut contents: Vec<Content> = run
        .json_lines()
        .iter()
        .map(|line| {
            let row = crate::harness::Row::of_json(line);
            Content {
                micros: micros(&row.ts),
                bus: row.bus,
                address: row.address as i64,
                request: row.request,
                register: row.register as i64,
                name: row.name,
                value: row.value,
                unit: row.unit,
                status: row.status,
            }
        })
        .collect();
    contents.sort();
    contents
}

/// Every key once, with the same reading as `kmplog.db` has under it.
fn assert_same_as_sqlite(scratch: &Scratch, workdir: &Workdir) -> usize {
    let rows = scratch.rows();
    let mut by_key = BTreeMap::new();
    for row in &rows {
        assert!(
            by_key
                .insert(row.key.clone(), row.content.clone())
                .is_none(),
            "key {} is in PostgreSQL twice",
            row.key
        );
    }
    let sqlite = sqlite_rows(workdir);
    assert!(!sqlite.is_empty(), "kmplog.db holds readings");
    let missing: Vec<&String> = sqlite
        .keys()
        .filter(|key| !by_key.contains_key(*key))
        .collect();
    let extra: Vec<&String> = by_key
        .keys()
        .filter(|key| !sqlite.contains_key(*key))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} readings missing from PostgreSQL: {missing:?}; {} rows not in kmplog.db: {extra:?}",
        missing.len(),
        extra.len()
    );
    assert_eq!(by_key, sqlite, "the same reading under each key");
    rows.len()
}

fn config(workdir: &Workdir, simulator: &Simulator) -> String {
    workdir
        .config(&[
            &simulator.bus("gateway"),
            "\n[[bus.request]]\ndescription = \"Heat\"\naddresses = \"1;2\"\n\
                 polling = \"200ms\"\nitems = [\"SERIALNO\", \"T1\", \"E1\"]\n",
        ])
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// Waits for `done`, up to `limit` (a bound against hanging, not a timing).
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postgres_rows_equal_the_readings_taken() {
    let Some(scratch) = Scratch::new("rows") else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2:403"]);
    let workdir = Workdir::new();
    let config = config(&workdir, &simulator);
    let url = scratch.url();
    let run = workdir
        .run(&[
            "run", &config, "--api", "off", "--json", "--for", "3s", "--sink", &url,
        ])
        .ok();
    let printed = json_contents(&run);
    assert!(printed.len() >= 12, "{run:#?}");
    let mut stored: Vec<Content> = scratch.rows().into_iter().map(|row| row.content).collect();
    stored.sort();
    assert_eq!(
        stored, printed,
        "PostgreSQL holds exactly the readings printed"
    );
    assert_same_as_sqlite(&scratch, &workdir);
    assert_eq!(
        scratch.pg.count(&format!(
            "SELECT version::bigint FROM {}.kmplog_schema WHERE table_name = 'readings'",
            scratch.role
        )),
        2
    );
}

#[test]
fn postgres_outage_every_reading_arrives_exactly_once() {
    let Some(scratch) = Scratch::new("outage") else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = config(&workdir, &simulator);
    let url = scratch.url();
    let logger = Logger::start(
        &workdir,
        &[
            "run", &config, "--api", "off", "--json", "--for", "14s", "--sink", &url,
        ],
    );
    let count = || {
        if scratch.table_exists() {
            scratch
                .pg
                .count(&format!("SELECT COUNT(*) FROM {}.readings", scratch.role))
        } else {
            0
        }
    };
    wait_until(
        "the first rows in PostgreSQL",
        Duration::from_secs(20),
        || count() >= 6,
    );
    let ended = scratch.refuse();
    assert!(
        ended >= 1,
        "the sink's session is found by its application_name"
    );
    // A batch cut off in its commit may or may not be in; after that, nothing
    // arrives while the role may not log in.
    std::thread::sleep(Duration::from_millis(500));
    let during = count();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(),
        during,
        "nothing is delivered while connections are refused"
    );
    let waiting = sqlite_rows(&workdir).len() as i64;
    assert!(waiting > during, "readings were taken during the outage");
    scratch.allow();
    let run = logger.finish().ok();
    assert!(
        run.stderr.contains("is not permitted to log in")
            && run.stderr.contains("delivering again"),
        "the outage and the recovery are reported: {}",
        run.stderr
    );
    let rows = assert_same_as_sqlite(&scratch, &workdir);
    assert_eq!(rows, json_contents(&run).len(), "and as many as printed");
    assert!(rows as i64 > waiting);
}

#[test]
fn postgres_kill_9_loses_nothing_already_read() {
    let Some(scratch) = Scratch::new("kill9") else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2"]);
    let workdir = Workdir::new();
    let config = config(&workdir, &simulator);
    let url = scratch.url();
    scratch.refuse();
    let logger = Logger::start(
        &workdir,
        &[
            "run", &config, "--api", "off", "--json", "--for", "60s", "--sink", &url,
        ],
    );
    wait_until("readings in kmplog.db", Duration::from_secs(20), || {
        sqlite_rows(&workdir).len() >= 12
    });
    let kill = std::process::Command::new("kill")
        .args(["-KILL", &logger.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let killed = logger.finish();
    assert_ne!(killed.code, 0, "killed: {killed:#?}");
    assert!(!scratch.table_exists(), "PostgreSQL had nothing yet");
    // What the first process had put in its outbox: every sequence number
    // up to the last it used.
    let (id, last): (String, i64) = {
        let outbox = rusqlite::Connection::open(workdir.path().join("kmplog-outbox.db"))
            .expect("open the outbox");
        (
            outbox
                .query_row("SELECT value FROM meta WHERE key = 'id'", [], |row| {
                    row.get(0)
                })
                .expect("outbox id"),
            outbox
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'readings'",
                    [],
                    |row| row.get(0),
                )
                .expect("outbox sequence"),
        )
    };
    assert!(last >= 12);
    scratch.allow();
    workdir
        .run(&[
            "run", &config, "--api", "off", "--for", "3s", "--sink", &url,
        ])
        .ok();
    assert_same_as_sqlite(&scratch, &workdir);
    let keys: Vec<String> = scratch.rows().into_iter().map(|row| row.key).collect();
    let lost: Vec<String> = (1..=last)
        .map(|seq| format!("{id}-{seq}"))
        .filter(|key| !keys.contains(key))
        .collect();
    assert!(
        lost.is_empty(),
        "read before the kill but not in PostgreSQL: {lost:?}"
    );
}

fn batch(n: u64) -> Vec<Stored> {
    (1..=n)
        .map(|seq| Stored {
            seq,
            key: format!("direct-{seq}"),
            instance: None,
            reading: Reading {
                time: "2026-11-25T08:00:00.123456789Z".parse().unwrap(),
                bus: "heat".to_owned(),
                address: 63,
                request: "Main".to_owned(),
                register: 60,
                name: "E1".to_owned(),
                value: (seq % 2 == 0)
                    .then(|| (format!("{seq}.050").parse().unwrap(), kmp::Unit(0x08))),
                status: if seq % 2 == 0 {
                    Status::Ok
                } else {
                    Status::Timeout
                },
            },
        })
        .collect()
}

/// A runtime like the sink thread's; the sink's connection lives as long as
/// it does.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn deliver(
    runtime: &tokio::runtime::Runtime,
    sink: &mut PostgresSink,
    batch: &[Stored],
) -> Result<(), String> {
    runtime
        .block_on(sink.deliver(batch))
        .map_err(|error| error.to_string())
}

#[test]
fn postgres_a_batch_delivered_twice_is_stored_once_over_tls() {
    let Some(scratch) = Scratch::new("twice") else {
        return;
    };
    // The server's certificate is the self-signed snake-oil one: require
    // encrypts without checking it, as libpq does.
    let url = scratch.url().replace("sslmode=disable", "sslmode=require");
    let runtime = runtime();
    let mut sink = PostgresSink::open(&url).expect("open");
    assert_eq!(
        sink.name(),
        format!(
            "postgres://{0}@127.0.0.1:5432/test?table={0}.readings",
            scratch.role
        )
    );
    let batch = batch(300);
    deliver(&runtime, &mut sink, &batch).expect("first delivery");
    deliver(&runtime, &mut sink, &batch[100..]).expect("a partly known batch");
    let rows = scratch.rows();
    assert_eq!(rows.len(), 300);
    assert_eq!(
        rows.iter()
            .filter(|row| row.content.value.is_some())
            .count(),
        150
    );
    let encrypted: bool = scratch.pg.query(&format!(
        "SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = '{}'",
        scratch.role
    ))[0]
        .get(0);
    assert!(encrypted, "the sink's session is encrypted");
    // A new sink on the same table migrates nothing and adds nothing.
    let mut again = PostgresSink::open(&url).expect("open again");
    deliver(&runtime, &mut again, &batch).expect("delivery by a new sink");
    assert_eq!(scratch.rows().len(), 300);
}

#[test]
fn postgres_a_version_1_table_gets_the_instance_column_and_keeps_its_rows() {
    let Some(scratch) = Scratch::new("upgrade") else {
        return;
    };
    let runtime = runtime();
    let mut sink = PostgresSink::open(&scratch.url()).expect("open");
    deliver(&runtime, &mut sink, &batch(4)).expect("first delivery");
    // As a kmplog of schema version 1 left it.
    let role = &scratch.role;
    scratch.pg.execute(&format!(
        "ALTER TABLE {role}.readings DROP COLUMN instance;
         UPDATE {role}.kmplog_schema SET version = 1 WHERE table_name = 'readings';"
    ));
    let mut upgraded = PostgresSink::open(&scratch.url()).expect("open again");
    let mut newer = batch(6);
    for stored in &mut newer {
        stored.instance = Some("meters-2".to_owned());
    }
    deliver(&runtime, &mut upgraded, &newer).expect("delivery after the upgrade");
    let instances = scratch.pg.query(&format!(
        "SELECT key, instance FROM {role}.readings ORDER BY key"
    ));
    let instances: Vec<(String, Option<String>)> = instances
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let meters_2 = Some("meters-2".to_owned());
    assert_eq!(
        instances,
        [
            ("direct-1".to_owned(), None),
            ("direct-2".to_owned(), None),
            ("direct-3".to_owned(), None),
            ("direct-4".to_owned(), None),
            ("direct-5".to_owned(), meters_2.clone()),
            ("direct-6".to_owned(), meters_2),
        ],
        "old rows kept, the same keys not stored twice, new rows with their instance"
    );
    assert_eq!(
        scratch.pg.count(&format!(
            "SELECT version::bigint FROM {role}.kmplog_schema WHERE table_name = 'readings'"
        )),
        2
    );
}

#[test]
fn postgres_errors_say_what_failed_without_the_password() {
    let Some(scratch) = Scratch::new("errors") else {
        return;
    };
    scratch.refuse();
    let url = scratch.url().replacen(
        &format!("://{}@", scratch.role),
        &format!("://{}:s3cret@", scratch.role),
        1,
    );
    let runtime = runtime();
    let mut sink = PostgresSink::open(&url).expect("open");
    assert!(!sink.name().contains("s3cret"));
    let error = deliver(&runtime, &mut sink, &batch(1)).unwrap_err();
    assert!(
        error.starts_with(&format!(
            "connecting to 127.0.0.1:5432 as {}: FATAL 28000: role",
            scratch.role
        )) && error.contains("is not permitted to log in"),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    scratch.allow();
    // verify-full checks the certificate: the snake-oil one is trusted by
    // nobody.
    let mut verified = PostgresSink::open(
        &scratch
            .url()
            .replace("sslmode=disable", "sslmode=verify-full"),
    )
    .expect("open");
    let error = deliver(&runtime, &mut verified, &batch(1)).unwrap_err();
    assert!(
        error.starts_with("connecting to 127.0.0.1:5432") && error.contains("certificate"),
        "{error}"
    );
}

#[test]
fn backfilling_twice_into_postgres_adds_no_duplicate() {
    let Some(scratch) = Scratch::new("backfill_twice") else {
        return;
    };
    let simulator = Simulator::tcp(&[]);
    let rows = crate::backfill::hourly_rows(&simulator, 30);
    let args = crate::backfill::span_args(&rows, 2, 25);
    let workdir = Workdir::new();
    let url = scratch.url();
    let sinks = ["sqlite:kmplog.db", url.as_str()];
    crate::backfill::backfill(&workdir, &simulator, &args, &sinks).ok();
    let once = scratch.rows();
    assert_eq!(once.len(), 48, "24 rows of 2 registers");
    crate::backfill::backfill(&workdir, &simulator, &args, &sinks).ok();
    let twice = scratch.rows();
    assert_eq!(twice.len(), 48, "the second backfill added nothing");
    assert!(twice.iter().all(|row| row.content.status == "logged"));
    let mut keys: Vec<&str> = twice.iter().map(|row| row.key.as_str()).collect();
    keys.sort_unstable();
    let mut sqlite_keys: Vec<String> = crate::backfill::stored(&workdir)
        .into_iter()
        .map(|row| row.key)
        .collect();
    sqlite_keys.sort();
    assert_eq!(
        keys, sqlite_keys,
        "the same readings, under the same keys, as in SQLite"
    );
}
