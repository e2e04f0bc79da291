//! The durable outbox: every reading is written here first, in a local SQLite
//! file in WAL mode, before any sink sees it. Each sink reads it through its
//! own cursor and acknowledges what it has delivered, so a slow or dead sink
//! holds up neither the buses nor the other sinks, and gets everything it
//! missed, in order, when it comes back. A reading leaves the outbox once
//! every sink has acknowledged it.
//!
//! Each reading has a sequence number and a key, `<outbox id>-<sequence>`,
//! unique across restarts (the id is drawn when the file is created), which
//! sinks use to make a repeated delivery harmless: a crash between a delivery
//! and its acknowledgement delivers the batch again.
//!
//! The outbox is bounded: past 80 % of `max_rows` it warns which sink lags;
//! at the bound it drops the oldest readings, saying how many and for which
//! sinks, rather than fill the disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use kmp::unit::Unit;
use rusqlite::{Connection, OptionalExtension, params};

use crate::reading::{Reading, Status};

/// The outbox's tables.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        TEXT    NOT NULL,
    bus       TEXT    NOT NULL,
    address   INTEGER NOT NULL,
    request   TEXT    NOT NULL,
    register  INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    value     TEXT,
    unit_code INTEGER,
    status    TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    sink  TEXT PRIMARY KEY,
    acked INTEGER NOT NULL
);
";

/// How long a connection waits for another one's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Share of `max_rows` past which the outbox warns.
const WARN_SHARE: f64 = 0.8;

/// The default bound: a million readings, about 150 MB on disk.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// A reading in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its place in the outbox; increases with every reading.
    pub seq: u64,
    /// Unique across restarts: `<outbox id>-<seq>`.
    pub key: String,
    /// The reading.
    pub reading: Reading,
}

/// The outbox cannot be opened, written or read.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {source}")]
pub struct OutboxError {
    path: String,
    source: rusqlite::Error,
}

fn open_connection(path: &Path) -> Result<Connection, OutboxError> {
    let fail = |source| OutboxError {
        path: path.display().to_string(),
        source,
    };
    let connection = Connection::open(path).map_err(fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(fail)?;
    // A process that is killed loses nothing committed in WAL mode with
    // NORMAL; only a power cut can lose the last transactions.
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail)?;
    Ok(connection)
}

/// The writing side of the outbox: the collector appends every reading here.
pub struct Outbox {
    path: PathBuf,
    connection: Connection,
    id: String,
    max_rows: u64,
    warned: bool,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`, bounded to `max_rows`.
    pub fn open(path: &Path, max_rows: u64) -> Result<Outbox, OutboxError> {
        let connection = open_connection(path)?;
        let fail = |source| OutboxError {
            path: path.display().to_string(),
            source,
        };
        connection.execute_batch(SCHEMA).map_err(fail)?;
        let id: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE key = 'id'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(fail)?;
        let id = match id {
            Some(id) => id,
            None => {
                let id = format!("{:016x}", fastrand::u64(..));
                connection
                    .execute("INSERT INTO meta (key, value) VALUES ('id', ?1)", [&id])
                    .map_err(fail)?;
                id
            }
        };
        Ok(Outbox {
            path: path.to_owned(),
            connection,
            id,
            max_rows: max_rows.max(1),
            warned: false,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new reading side, for one sink's thread.
    pub fn reader(&self) -> Result<OutboxReader, OutboxError> {
        Ok(OutboxReader {
            path: self.path.clone(),
            connection: open_connection(&self.path)?,
            id: self.id.clone(),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The sequence number of the newest reading (0 when there was none).
    pub fn last_seq(&self) -> Result<u64, OutboxError> {
        last_seq(&self.connection).map_err(|source| self.fail(source))
    }

    /// Makes sure `sink` has a cursor. A new sink, and a sink that does not
    /// keep its place across restarts (`durable` false, such as the
    /// terminal), start after the newest reading; a durable sink that has a
    /// cursor resumes where it stopped.
    pub fn register(&mut self, sink: &str, durable: bool) -> Result<(), OutboxError> {
        let last = self.last_seq()?;
        let sql = if durable {
            "INSERT INTO cursors (sink, acked) VALUES (?1, ?2) ON CONFLICT (sink) DO NOTHING"
        } else {
            "INSERT INTO cursors (sink, acked) VALUES (?1, ?2) ON CONFLICT (sink) DO UPDATE SET acked = excluded.acked"
        };
        self.connection
            .execute(sql, params![sink, last as i64])
            .map_err(|source| self.fail(source))?;
        Ok(())
    }

    /// Forgets the cursors of sinks that are no longer configured, so that
    /// they do not keep readings in the outbox for ever. Returns their names.
    pub fn forget_other_sinks(&mut self, keep: &[String]) -> Result<Vec<String>, OutboxError> {
        let names: Vec<String> = {
            let mut statement = self
                .connection
                .prepare("SELECT sink FROM cursors")
                .map_err(|source| self.fail(source))?;
            let rows = statement
                .query_map([], |row| row.get(0))
                .map_err(|source| self.fail(source))?;
            rows.collect::<Result<_, _>>()
                .map_err(|source| self.fail(source))?
        };
        let gone: Vec<String> = names
            .into_iter()
            .filter(|name| !keep.contains(name))
            .collect();
        for name in &gone {
            self.connection
                .execute("DELETE FROM cursors WHERE sink = ?1", [name])
                .map_err(|source| self.fail(source))?;
        }
        Ok(gone)
    }

    /// Appends `readings` in one transaction; returns the newest sequence
    /// number. Then deletes what every sink has acknowledged and keeps the
    /// bound.
    pub fn append(&mut self, readings: &[Reading]) -> Result<u64, OutboxError> {
        let path = self.path.display().to_string();
        let fail = |source| OutboxError {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(fail)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO readings (ts, bus, address, request, register, name, value, unit_code, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(fail)?;
            for reading in readings {
                insert
                    .execute(params![
                        reading.time.to_string(),
                        reading.bus,
                        reading.address,
                        reading.request,
                        reading.register,
                        reading.name,
                        reading.value.map(|(value, _)| value.to_string()),
                        reading.value.map(|(_, unit)| unit.code()),
                        reading.status.as_str(),
                    ])
                    .map_err(fail)?;
            }
        }
        transaction.commit().map_err(fail)?;
        let last = self.last_seq()?;
        self.prune()?;
        Ok(last)
    }

    /// Deletes the readings every sink has acknowledged, warns when the
    /// outbox fills, and drops the oldest readings past the bound.
    fn prune(&mut self) -> Result<(), OutboxError> {
        let fail = |source| OutboxError {
            path: self.path.display().to_string(),
            source,
        };
        let acked_by_all: Option<i64> = self
            .connection
            .query_row("SELECT MIN(acked) FROM cursors", [], |row| row.get(0))
            .map_err(fail)?;
        if let Some(acked) = acked_by_all {
            self.connection
                .execute("DELETE FROM readings WHERE seq <= ?1", [acked])
                .map_err(fail)?;
        }
        let rows: i64 = self
            .connection
            .query_row("SELECT COUNT(*) FROM readings", [], |row| row.get(0))
            .map_err(fail)?;
        let rows = rows as u64;
        if rows as f64 >= self.max_rows as f64 * WARN_SHARE {
            if !self.warned {
                eprintln!(
                    "kmplog: warning: the outbox {} holds {rows} undelivered readings, {:.0} % of its bound of {}; {}; at the bound the oldest readings are dropped",
                    self.path.display(),
                    rows as f64 * 100.0 / self.max_rows as f64,
                    self.max_rows,
                    self.lagging()?,
                );
                self.warned = true;
            }
        } else {
            self.warned = false;
        }
        if rows > self.max_rows {
            let excess = rows - self.max_rows;
            let boundary: i64 = self
                .connection
                .query_row(
                    "SELECT seq FROM readings ORDER BY seq LIMIT 1 OFFSET ?1",
                    [excess as i64 - 1],
                    |row| row.get(0),
                )
                .map_err(fail)?;
            eprintln!(
                "kmplog: error: the outbox {} is full ({} readings): dropped the oldest {excess}, which {} had not delivered",
                self.path.display(),
                self.max_rows,
                self.lagging()?,
            );
            self.connection
                .execute("DELETE FROM readings WHERE seq <= ?1", [boundary])
                .map_err(fail)?;
            self.connection
                .execute("UPDATE cursors SET acked = ?1 WHERE acked < ?1", [boundary])
                .map_err(fail)?;
        }
        Ok(())
    }

    /// `sink postgres is 1200 readings behind, sink mqtt 40` for messages.
    fn lagging(&self) -> Result<String, OutboxError> {
        let last = self.last_seq()? as i64;
        let mut statement = self
            .connection
            .prepare("SELECT sink, ?1 - acked FROM cursors WHERE acked < ?1 ORDER BY acked")
            .map_err(|source| self.fail(source))?;
        let behind: Vec<String> = statement
            .query_map([last], |row| {
                Ok(format!(
                    "{} is {} readings behind",
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?
                ))
            })
            .map_err(|source| self.fail(source))?
            .collect::<Result<_, _>>()
            .map_err(|source| self.fail(source))?;
        Ok(if behind.is_empty() {
            "no sink is behind".to_owned()
        } else {
            format!("sink {}", behind.join(", sink "))
        })
    }
}

fn last_seq(connection: &Connection) -> rusqlite::Result<u64> {
    // AUTOINCREMENT keeps the highest number ever used in sqlite_sequence,
    // even after every reading has been deleted.
    let last: Option<i64> = connection
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'readings'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(last.unwrap_or(0) as u64)
}

/// The reading side of the outbox, one per sink thread.
pub struct OutboxReader {
    path: PathBuf,
    connection: Connection,
    id: String,
}

impl OutboxReader {
    fn fail(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The last sequence number `sink` has acknowledged.
    pub fn cursor(&self, sink: &str) -> Result<u64, OutboxError> {
        let acked: Option<i64> = self
            .connection
            .query_row("SELECT acked FROM cursors WHERE sink = ?1", [sink], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|source| self.fail(source))?;
        Ok(acked.unwrap_or(0) as u64)
    }

    /// Opens a reading side of an existing outbox on its own, for a viewer
    /// that only looks (the API's `/metrics`); it writes nothing.
    pub fn open(path: &Path) -> Result<OutboxReader, OutboxError> {
        let connection = open_connection(path)?;
        let fail = |source| OutboxError {
            path: path.display().to_string(),
            source,
        };
        let id: String = connection
            .query_row("SELECT value FROM meta WHERE key = 'id'", [], |row| {
                row.get(0)
            })
            .map_err(fail)?;
        Ok(OutboxReader {
            path: path.to_owned(),
            connection,
            id,
        })
    }

    /// How many readings each sink has yet to deliver, by sink name.
    pub fn depths(&self) -> Result<Vec<(String, u64)>, OutboxError> {
        let last = last_seq(&self.connection).map_err(|source| self.fail(source))?;
        let mut statement = self
            .connection
            .prepare_cached("SELECT sink, acked FROM cursors ORDER BY sink")
            .map_err(|source| self.fail(source))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|source| self.fail(source))?;
        rows.map(|row| {
            row.map(|(sink, acked)| (sink, last.saturating_sub(acked as u64)))
                .map_err(|source| self.fail(source))
        })
        .collect()
    }

    /// How many readings `sink` has yet to deliver.
    pub fn depth(&self, sink: &str) -> Result<u64, OutboxError> {
        let cursor = self.cursor(sink)?;
        let last = last_seq(&self.connection).map_err(|source| self.fail(source))?;
        Ok(last.saturating_sub(cursor))
    }

    /// Up to `limit` readings after sequence number `after`, in order.
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<Stored>, OutboxError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, ts, bus, address, request, register, name, value, unit_code, status
                 FROM readings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(|source| self.fail(source))?;
        let rows = statement
            .query_map(params![after as i64, limit as i64], |row| {
                let seq: i64 = row.get(0)?;
                let time: String = row.get(1)?;
                let value: Option<String> = row.get(7)?;
                let unit: Option<u8> = row.get(8)?;
                let status: String = row.get(9)?;
                Ok((
                    seq,
                    time,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    value,
                    unit,
                    status,
                ))
            })
            .map_err(|source| self.fail(source))?;
        let mut stored = Vec::new();
        for row in rows {
            let (seq, time, bus, address, request, register, name, value, unit, status) =
                row.map_err(|source| self.fail(source))?;
            // The outbox wrote these itself; a row it cannot read back was
            // damaged on disk and is skipped rather than stop the sink.
            let (Ok(time), Some(status)) = (time.parse::<Timestamp>(), Status::parse(&status))
            else {
                eprintln!(
                    "kmplog: outbox {}: reading {seq} is damaged and skipped",
                    self.path.display()
                );
                continue;
            };
            let value = match (value.and_then(|text| text.parse().ok()), unit) {
                (Some(value), Some(unit)) => Some((value, Unit(unit))),
                _ => None,
            };
            let seq = seq as u64;
            stored.push(Stored {
                seq,
                key: format!("{}-{seq}", self.id),
                reading: Reading {
                    time,
                    bus,
                    address,
                    request,
                    register,
                    name,
                    value,
                    status,
                },
            });
        }
        Ok(stored)
    }

    /// Records that `sink` has delivered everything up to `seq`.
    pub fn ack(&self, sink: &str, seq: u64) -> Result<(), OutboxError> {
        self.connection
            .execute(
                "UPDATE cursors SET acked = MAX(acked, ?2) WHERE sink = ?1",
                params![sink, seq as i64],
            )
            .map_err(|source| self.fail(source))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(n: u16) -> Reading {
        Reading {
            time: "2026-11-25T08:00:00Z".parse().unwrap(),
            bus: "heat".to_owned(),
            address: 63,
            request: "Main".to_owned(),
            register: n,
            name: format!("R{n}"),
            value: Some((format!("{n}.50").parse().unwrap(), Unit(0x25))),
            status: Status::Ok,
        }
    }

    fn registers(stored: &[Stored]) -> Vec<u16> {
        stored
            .iter()
            .map(|stored| stored.reading.register)
            .collect()
    }

    #[test]
    fn each_sink_reads_after_its_own_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 1000).unwrap();
        outbox.register("fast", true).unwrap();
        outbox.register("slow", true).unwrap();
        outbox
            .append(&[reading(1), reading(2), reading(3)])
            .unwrap();
        let reader = outbox.reader().unwrap();
        let batch = reader.after(reader.cursor("fast").unwrap(), 2).unwrap();
        assert_eq!(registers(&batch), [1, 2]);
        assert_eq!(
            batch[0].reading,
            reading(1),
            "a reading comes back as it went in"
        );
        reader.ack("fast", batch[1].seq).unwrap();
        assert_eq!(
            registers(&reader.after(reader.cursor("fast").unwrap(), 10).unwrap()),
            [3]
        );
        assert_eq!(
            registers(&reader.after(reader.cursor("slow").unwrap(), 10).unwrap()),
            [1, 2, 3]
        );
        assert_eq!(
            (reader.depth("fast").unwrap(), reader.depth("slow").unwrap()),
            (1, 3)
        );
        let viewer = OutboxReader::open(outbox.path()).unwrap();
        assert_eq!(
            viewer.depths().unwrap(),
            [("fast".to_owned(), 1), ("slow".to_owned(), 3)],
            "a viewer opened by path sees every sink's depth"
        );
    }

    #[test]
    fn acknowledged_readings_leave_and_keys_stay_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let first_key = {
            let mut outbox = Outbox::open(&path, 1000).unwrap();
            outbox.register("db", true).unwrap();
            let last = outbox.append(&[reading(1), reading(2)]).unwrap();
            let reader = outbox.reader().unwrap();
            let key = reader.after(0, 1).unwrap()[0].key.clone();
            reader.ack("db", last).unwrap();
            outbox.append(&[reading(3)]).unwrap();
            let count: i64 = outbox
                .connection
                .query_row("SELECT COUNT(*) FROM readings", [], |row| row.get(0))
                .unwrap();
            assert_eq!(count, 1, "the two acknowledged readings were deleted");
            key
        };
        let mut outbox = Outbox::open(&path, 1000).unwrap();
        outbox.register("db", true).unwrap();
        let reader = outbox.reader().unwrap();
        let left = reader.after(reader.cursor("db").unwrap(), 10).unwrap();
        assert_eq!(
            registers(&left),
            [3],
            "a durable sink resumes where it stopped"
        );
        assert_eq!(left[0].seq, 3);
        assert_ne!(left[0].key, first_key);
        assert_eq!(
            left[0].key.split('-').next(),
            first_key.split('-').next(),
            "the outbox id survives a restart"
        );
    }

    #[test]
    fn new_and_ephemeral_sinks_start_after_the_newest_reading() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 1000).unwrap();
        outbox.register("db", true).unwrap();
        outbox.append(&[reading(1)]).unwrap();
        outbox.register("stdout", false).unwrap();
        outbox.register("new", true).unwrap();
        outbox.append(&[reading(2)]).unwrap();
        let reader = outbox.reader().unwrap();
        for (sink, expected) in [("db", vec![1, 2]), ("stdout", vec![2]), ("new", vec![2])] {
            assert_eq!(
                registers(&reader.after(reader.cursor(sink).unwrap(), 10).unwrap()),
                expected,
                "{sink}"
            );
        }
        assert_eq!(
            outbox.forget_other_sinks(&["db".to_owned()]).unwrap(),
            ["new", "stdout"]
        );
    }

    #[test]
    fn the_bound_drops_the_oldest_undelivered_readings() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 3).unwrap();
        outbox.register("dead", true).unwrap();
        outbox
            .append(&[reading(1), reading(2), reading(3)])
            .unwrap();
        assert!(outbox.warned, "full to the bound: warned first");
        outbox.append(&[reading(4), reading(5)]).unwrap();
        let reader = outbox.reader().unwrap();
        assert_eq!(
            registers(&reader.after(reader.cursor("dead").unwrap(), 10).unwrap()),
            [3, 4, 5]
        );
    }
}
