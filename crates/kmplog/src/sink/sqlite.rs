//! SQLite, the embedded default: a table `readings` in a local file, written
//! in WAL mode in one transaction per batch. Works with no set-up at all.
//! Each row carries the reading's outbox key, unique, so a batch delivered
//! twice (after a crash before its acknowledgement) is stored once.
//!
//! Beside the readings it keeps per-minute and per-hour summaries of each
//! value for the history ([`rollup`]), summing an hour up once it has
//! ended.

pub mod rollup;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, params};
use tracing::{debug, info};

use super::{Sink, SinkError, SinkFuture};
use crate::outbox::{Stored, add_column};

/// How long a write waits for another connection's transaction to end,
/// as long as the outbox waits.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The `readings` table and its indexes.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    id        INTEGER PRIMARY KEY,
    ts        TEXT    NOT NULL,  -- RFC 3339, UTC
    bus       TEXT    NOT NULL,
    address   INTEGER NOT NULL,
    request   TEXT    NOT NULL,
    register  INTEGER NOT NULL,
    name      TEXT    NOT NULL,  -- export name
    value     TEXT,              -- exact decimal as the meter sent it
    unit      TEXT,
    unit_code INTEGER,
    status    TEXT    NOT NULL,
    key       TEXT,              -- the outbox key; unique
    instance  TEXT               -- the cluster instance that read it
);
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (ts);
";

/// A meter's readings in time order, its registers side by side: a round
/// of a meter's registers changes one page of the index, where an index by
/// register changes one per register once each register's readings fill
/// pages of their own (after about an hour of readings once a minute;
/// BENCHMARKS.md "Scale"). A register's readings are found through it as
/// well, among its meter's.
const BY_METER_TIME: &str = "readings_by_meter_time";
/// The index it replaces, by bus, address, export name and time.
const BY_METER_NAME: &str = "readings_by_meter";

/// Makes [`BY_METER_TIME`], replacing [`BY_METER_NAME`] in a file made
/// before it; building it over many readings takes a while, once, and is
/// logged.
fn index_by_meter_time(connection: &Connection) -> rusqlite::Result<()> {
    if in_schema(connection, "index", BY_METER_TIME)? {
        return Ok(());
    }
    let replacing = in_schema(connection, "index", BY_METER_NAME)?;
    let began = std::time::Instant::now();
    connection.execute_batch(&format!(
        "BEGIN;
         DROP INDEX IF EXISTS {BY_METER_NAME};
         CREATE INDEX {BY_METER_TIME} ON readings (bus, address, ts, name);
         COMMIT;"
    ))?;
    if replacing {
        info!(
            "indexed the stored readings by meter and time, their registers side by side, in {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Whether the file has the `kind` (`table`, `index`) named `name`.
fn in_schema(connection: &Connection, kind: &str, name: &str) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2")?
        .exists([kind, name])
}

/// Databases made before readings had keys, or their instance, get the
/// columns, and the key its index.
fn add_columns(connection: &Connection) -> rusqlite::Result<()> {
    add_column(connection, "key")?;
    add_column(connection, "instance")?;
    connection.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS readings_by_key ON readings (key)")
}

/// Writes readings to a SQLite file.
pub struct SqliteSink {
    path: PathBuf,
    connection: Connection,
    /// Where the open hours begin ([`rollup::open_from`]).
    open_from: i64,
}

impl SqliteSink {
    /// Opens (or creates) the database and its table.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Self::open_at(path, Timestamp::now())
    }

    /// [`SqliteSink::open`] at `now`: the hours that ended before it and
    /// wait to be summed up are summed up.
    pub(crate) fn open_at(path: &Path, now: Timestamp) -> Result<Self, SinkError> {
        let doing = format!("opening SQLite database {}", path.display());
        let connection =
            Connection::open(path).map_err(|error| SinkError::context(&doing, error))?;
        // The API reads this file while the sink writes it: wait for the
        // other's transaction rather than fail with "locked" (rusqlite's
        // default wait is 5 s; the outbox's is this one).
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| connection.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.execute_batch(SCHEMA))
            .and_then(|()| add_columns(&connection))
            .and_then(|()| index_by_meter_time(&connection))
            .map_err(|error| SinkError::context(&doing, error))?;
        let mut connection = connection;
        rollup::upgrade(&mut connection).map_err(|error| {
            SinkError::context(
                &format!(
                    "summing up the stored readings of {} for the history",
                    path.display()
                ),
                error,
            )
        })?;
        let open_from = rollup::start_open(&mut connection, now)
            .map_err(|error| SinkError::context(&doing, error))?;
        let mut sink = SqliteSink {
            path: path.to_owned(),
            connection,
            open_from,
        };
        sink.write_at(&[], now)?;
        Ok(sink)
    }
}

impl Sink for SqliteSink {
    fn name(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        // SQLite writes are quick and this sink has a thread of its own.
        Box::pin(async move { self.write_at(batch, Timestamp::now()) })
    }
}

impl SqliteSink {
    /// Stores `batch` at `now`. A reading of an open hour is only stored;
    /// one of an hour summed up already (a backfill, a late delivery) is
    /// merged into its summaries at once. Once an hour has ended its
    /// readings are summed up ([`rollup::close`]): the summaries are written
    /// once an hour for each value, not once a reading.
    pub(crate) fn write_at(&mut self, batch: &[Stored], now: Timestamp) -> Result<(), SinkError> {
        let fail =
            |error| SinkError::context(&format!("writing to {}", self.path.display()), error);
        let transaction = self.connection.transaction().map_err(fail)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO readings (ts, bus, address, request, register, name, value, unit, unit_code, status, key, instance)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(fail)?;
            let mut pending = rollup::Pending::default();
            for Stored {
                key,
                reading,
                instance,
                ..
            } in batch
            {
                let value = reading.value.map(|(value, _)| value.to_string());
                let unit = reading.value.map(|(_, unit)| unit.to_string());
                let inserted = insert
                    .execute(params![
                        reading.time.to_string(),
                        reading.bus,
                        reading.address,
                        reading.request,
                        reading.register,
                        reading.name,
                        value,
                        unit,
                        reading.value.map(|(_, unit)| unit.code()),
                        reading.status.as_str(),
                        key,
                        instance,
                    ])
                    .map_err(fail)?;
                // Ignored by its key: stored before, and summed up then.
                // Of an open hour: summed up once the hour has ended.
                if inserted == 0 || reading.time.as_millisecond() >= self.open_from {
                    continue;
                }
                let series = rollup::Series {
                    bus: reading.bus.clone(),
                    address: reading.address,
                    name: reading.name.clone(),
                };
                pending.add(
                    series,
                    rollup::Stored {
                        id: transaction.last_insert_rowid(),
                        time: reading.time,
                        value: value.as_deref(),
                        unit: unit.as_deref(),
                        status: reading.status.as_str(),
                    },
                );
            }
            pending.write(&transaction).map_err(fail)?;
        }
        let ended = rollup::hour_of(now);
        let began = std::time::Instant::now();
        let summed = if ended > self.open_from {
            rollup::close(&transaction, self.open_from, ended).map_err(fail)?
        } else {
            0
        };
        transaction.commit().map_err(fail)?;
        if summed > 0 {
            debug!(
                "summed up {summed} readings of the hours from {} for the history in {:.1} s",
                Timestamp::from_millisecond(self.open_from).unwrap_or_default(),
                began.elapsed().as_secs_f64()
            );
        }
        self.open_from = self.open_from.max(ended);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Reading, Status};
    use kmp::unit::Unit;

    impl SqliteSink {
        /// Stores `batch` now.
        fn write(&mut self, batch: &[Stored]) -> Result<(), SinkError> {
            self.write_at(batch, Timestamp::now())
        }
    }

    fn stored(seq: u64, value: Option<&str>, status: Status) -> Stored {
        Stored {
            seq,
            key: format!("0123-{seq}"),
            instance: None,
            reading: Reading {
                time: "2026-11-25T08:00:00Z".parse().unwrap(),
                bus: "heat".to_owned(),
                address: 63,
                request: "Main values".to_owned(),
                register: 60,
                name: "E1".to_owned(),
                value: value.map(|text| (text.parse().unwrap(), Unit(0x08))),
                status,
            },
        }
    }

    #[test]
    fn stores_exact_values_and_statuses_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let batch = [
            stored(1, Some("34.00"), Status::Ok),
            stored(2, None, Status::Timeout),
        ];
        sink.write(&batch).unwrap();
        // Delivered again after a crash before the acknowledgement.
        sink.write(&batch).unwrap();
        type Row = (String, Option<String>, Option<String>, String, String);
        let rows: Vec<Row> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT ts, value, unit, status, key FROM readings ORDER BY id")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let time = "2026-11-25T08:00:00Z".to_owned();
        assert_eq!(
            rows,
            [
                (
                    time.clone(),
                    Some("34.00".to_owned()),
                    Some("GJ".to_owned()),
                    "ok".to_owned(),
                    "0123-1".to_owned()
                ),
                (time, None, None, "timeout".to_owned(), "0123-2".to_owned()),
            ]
        );
    }

    /// Every row of the summary tables, in order, as text.
    fn summaries(path: &Path) -> Vec<String> {
        let connection = Connection::open(path).unwrap();
        let mut all = Vec::new();
        for level in &rollup::LEVELS {
            let mut select = connection
                .prepare(&format!(
                    "SELECT '{0}', * FROM {0} ORDER BY bus, address, name, start_ms",
                    level.table
                ))
                .unwrap();
            let mut rows = select.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let columns: Vec<String> = (0..16)
                    .map(|index| format!("{:?}", row.get_ref(index).unwrap()))
                    .collect();
                all.push(columns.join(" "));
            }
        }
        all
    }

    /// The summaries after they are dropped and built again from the
    /// readings, as for a database from before them.
    fn summaries_built_again(path: &Path) -> Vec<String> {
        Connection::open(path)
            .unwrap()
            .execute_batch("DROP TABLE rollup_minute; DROP TABLE rollup_hour")
            .unwrap();
        drop(SqliteSink::open(path).unwrap());
        summaries(path)
    }

    /// A reading of E1 at `time` with `value` (or failed without one).
    fn at(seq: u64, time: &str, value: Option<&str>, status: Status) -> Stored {
        let mut stored = stored(seq, value, status);
        stored.reading.time = time.parse().unwrap();
        stored
    }

    #[test]
    fn summaries_count_each_stored_reading_once_and_keep_the_newest_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        // The hour from 08:00 is dense: its minutes are summed up.
        let dense: Vec<Stored> = (0..rollup::DENSE_HOUR)
            .map(|n| {
                let time = format!("2026-11-25T08:{:02}:{:02}Z", 1 + n / 30, 2 * (n % 30));
                at(100 + n, &time, Some("2.0"), Status::Ok)
            })
            .collect();
        sink.write(&dense).unwrap();
        sink.write(&[
            at(1, "2026-11-25T08:00:30Z", Some("3.0"), Status::Ok),
            at(2, "2026-11-25T08:00:40Z", None, Status::Timeout),
        ])
        .unwrap();
        // Later, older readings: a backfill, or a late delivery.
        let late = [
            at(3, "2026-11-25T08:00:10Z", Some("9.5"), Status::Logged),
            at(4, "2026-11-25T08:00:20Z", Some("1.25"), Status::Suspect),
            at(5, "2026-11-25T07:59:59.5Z", Some("4"), Status::Ok),
        ];
        sink.write(&late).unwrap();
        let once = summaries(&path);
        // Delivered again after a crash before the acknowledgement.
        sink.write(&late).unwrap();
        assert_eq!(summaries(&path), once);
        let connection = Connection::open(&path).unwrap();
        type Row = (i64, i64, i64, i64, f64, f64, String, String);
        let row: Row = connection
            .query_row(
                "SELECT start_ms, readings, valued, suspect, min, max, last_value, last_unit \
                 FROM rollup_minute WHERE start_ms = ?1",
                [1_795_593_600_000_i64],
                |row| Row::try_from(row),
            )
            .unwrap();
        // 08:00 holds four readings; its newest value is 08:00:30's, the
        // last inserted (08:00:20) is not.
        assert_eq!(
            row,
            (
                1_795_593_600_000,
                4,
                3,
                1,
                1.25,
                9.5,
                "3.0".to_owned(),
                "GJ".to_owned()
            )
        );
        let hour: (i64, String) = connection
            .query_row(
                "SELECT readings, last_value FROM rollup_hour WHERE start_ms = ?1",
                [1_795_590_000_000_i64],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(hour, (1, "4".to_owned()));
        // 07:00 is sparse: the reading is summed up in its hour only.
        let minutes_before_eight: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM rollup_minute WHERE start_ms < ?1",
                [1_795_593_600_000_i64],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(minutes_before_eight, 0);
    }

    /// The rows of each summary table.
    fn rows_per_level(path: &Path) -> [i64; 2] {
        let connection = Connection::open(path).unwrap();
        rollup::LEVELS.map(|level| {
            connection
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}", level.table),
                    [],
                    |row| row.get(0),
                )
                .unwrap()
        })
    }

    fn time(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn readings_of_an_hour_under_way_are_summed_up_once_it_has_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open_at(&path, time("2026-11-25T08:10:00Z")).unwrap();
        // Read once a minute from 08:00 to 09:29, each delivered a second later.
        for minute in 0..90 {
            let read = format!("2026-11-25T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60);
            let now = time(&read)
                .checked_add(jiff::SignedDuration::from_secs(1))
                .unwrap();
            sink.write_at(&[at(minute + 1, &read, Some("1.0"), Status::Ok)], now)
                .unwrap();
            if minute == 59 {
                assert_eq!(rows_per_level(&path), [0, 0], "08:00 is under way");
            }
        }
        assert_eq!(rows_per_level(&path), [0, 1], "08:00 has ended, 09:00 not");
        // A reading of an hour summed up already is merged at once.
        let late = at(500, "2026-11-25T07:30:00Z", Some("5.0"), Status::Ok);
        sink.write_at(&[late], time("2026-11-25T09:30:00Z"))
            .unwrap();
        assert_eq!(rows_per_level(&path), [0, 2]);
        // Stopped until after 10:00: 09:00 is summed up as the sink opens.
        drop(sink);
        drop(SqliteSink::open_at(&path, time("2026-11-25T10:05:00Z")).unwrap());
        assert_eq!(rows_per_level(&path), [0, 3]);
        assert_eq!(summaries(&path), summaries_built_again(&path));
    }

    #[test]
    fn a_file_whose_summaries_hold_every_reading_opens_its_hours_after_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        // Readings of 08:00 stored at 12:00 are summed up at once, as an
        // older kmplog summed up every reading.
        let mut sink = SqliteSink::open_at(&path, time("2026-11-25T12:00:00Z")).unwrap();
        let early: Vec<Stored> = (0..30)
            .map(|n| {
                at(
                    n + 1,
                    &format!("2026-11-25T08:{n:02}:00Z"),
                    Some("1.0"),
                    Status::Ok,
                )
            })
            .collect();
        sink.write_at(&early, time("2026-11-25T12:00:00Z")).unwrap();
        drop(sink);
        Connection::open(&path)
            .unwrap()
            .execute_batch("DROP TABLE rollup_open")
            .unwrap();
        let mut sink = SqliteSink::open_at(&path, time("2026-11-25T12:30:00Z")).unwrap();
        let connection = Connection::open(&path).unwrap();
        assert_eq!(
            rollup::open_from(&connection).unwrap(),
            Some(time("2026-11-25T12:00:00Z").as_millisecond()),
            "open after 08:00, the newest reading's hour; nothing to sum up until 12:00"
        );
        sink.write_at(
            &[at(100, "2026-11-25T12:10:00Z", Some("2.0"), Status::Ok)],
            time("2026-11-25T13:00:05Z"),
        )
        .unwrap();
        assert_eq!(rows_per_level(&path), [0, 2]);
        assert_eq!(summaries(&path), summaries_built_again(&path));
    }

    #[test]
    fn a_value_read_once_a_minute_is_summed_up_per_hour_only_until_its_hour_is_dense() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        // Two hours read once a minute, a delivery each minute.
        for minute in 0..120 {
            let time = format!("2026-11-25T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60);
            sink.write(&[at(minute + 1, &time, Some("1.0"), Status::Ok)])
                .unwrap();
        }
        assert_eq!(rows_per_level(&path), [0, 2]);
        // Then read every half second for 45 s: 09:00 becomes dense.
        let fast: Vec<Stored> = (0..90)
            .map(|n| {
                let time = format!("2026-11-25T09:30:{:02}.{}Z", n / 2, 5 * (n % 2));
                at(200 + n, &time, Some("2.0"), Status::Ok)
            })
            .collect();
        for batch in fast.chunks(7) {
            sink.write(batch).unwrap();
        }
        // Its 60 minutes (09:30 with 91 readings), from all its readings.
        assert_eq!(rows_per_level(&path), [60, 2]);
        let kept = summaries(&path);
        assert_eq!(summaries_built_again(&path), kept);
    }

    #[test]
    fn a_database_from_before_summaries_gets_them_built_from_its_readings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seq = 0;
        for _ in 0..20 {
            let batch: Vec<Stored> = (0..50)
                .map(|_| {
                    seq += 1;
                    let time = jiff::Timestamp::from_millisecond(
                        1_795_593_600_000 + rng.i64(0..4 * 3_600_000),
                    )
                    .unwrap()
                    .to_string();
                    let value = format!("{}.{}", rng.u32(0..100), rng.u32(0..10));
                    match rng.u8(0..10) {
                        0 => at(seq, &time, None, Status::Timeout),
                        1 => at(seq, &time, Some(&value), Status::Suspect),
                        _ => at(seq, &time, Some(&value), Status::Ok),
                    }
                })
                .collect();
            sink.write(&batch).unwrap();
        }
        drop(sink);
        let kept = summaries(&path);
        assert!(kept.len() > 200, "{} summaries", kept.len());
        assert_eq!(summaries_built_again(&path), kept);
    }

    #[test]
    fn a_database_from_before_keys_and_instances_gets_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE readings (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, bus TEXT NOT NULL, address INTEGER NOT NULL,
                 request TEXT NOT NULL, register INTEGER NOT NULL, name TEXT NOT NULL, value TEXT, unit TEXT, unit_code INTEGER,
                 status TEXT NOT NULL)",
            )
            .unwrap();
        let mut sink = SqliteSink::open(&path).unwrap();
        let mut read_by_b = stored(7, Some("1.5"), Status::Ok);
        read_by_b.instance = Some("b".to_owned());
        sink.write(std::slice::from_ref(&read_by_b)).unwrap();
        sink.write(&[read_by_b]).unwrap();
        let (count, instance): (i64, Option<String>) = Connection::open(&path)
            .unwrap()
            .query_row("SELECT COUNT(*), MAX(instance) FROM readings", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((count, instance.as_deref()), (1, Some("b")));
    }

    /// The names of the indexes of `readings`.
    fn indexes(path: &Path) -> Vec<String> {
        Connection::open(path)
            .unwrap()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'readings' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_file_indexed_by_register_is_indexed_by_meter_and_time_instead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open_at(&path, time("2026-11-25T07:00:00Z")).unwrap();
        sink.write_at(
            &[
                at(1, "2026-11-25T07:10:00Z", Some("1.5"), Status::Ok),
                at(2, "2026-11-25T07:20:00Z", Some("2.5"), Status::Ok),
            ],
            time("2026-11-25T07:30:00Z"),
        )
        .unwrap();
        drop(sink);
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "DROP INDEX {BY_METER_TIME};
                 CREATE INDEX {BY_METER_NAME} ON readings (bus, address, name, ts);"
            ))
            .unwrap();
        let before = summaries(&path);

        let mut sink = SqliteSink::open_at(&path, time("2026-11-25T08:05:00Z")).unwrap();
        assert_eq!(
            indexes(&path),
            ["readings_by_key", BY_METER_TIME, "readings_by_time"]
        );
        // The hour of 07:00 was summed up through the new index.
        assert_ne!(summaries(&path), before);
        assert_eq!(summaries(&path), summaries_built_again(&path));
        sink.write_at(
            &[at(3, "2026-11-25T08:06:00Z", Some("3.5"), Status::Ok)],
            time("2026-11-25T08:07:00Z"),
        )
        .unwrap();

        let connection = Connection::open(&path).unwrap();
        for statement in [rollup::METER_READINGS, rollup::NEXT_METER] {
            let mut explain = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .unwrap();
            let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(unbound), |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|step| step.contains(BY_METER_TIME))
                    && !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "{statement}: {plan:?}"
            );
        }
    }
}
