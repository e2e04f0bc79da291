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
//! and its acknowledgement delivers the batch again. A writer that knows a
//! reading's identity itself gives its own key ([`Outbox::append_keyed`]):
//! a backfilled logger row is the same reading however often it is read, so
//! its key is made of the meter, the logger, the log id and the register.
//!
//! The outbox is bounded in readings (`max_rows`) and in bytes (`max_bytes`,
//! the pages its readings take): past 80 % of either it warns; at the bound
//! it drops the oldest readings rather than fill the disk, and says once,
//! for the whole episode, which sinks lose readings. The write-ahead log is
//! kept small (a size limit, and a truncating checkpoint after the bound's
//! deletes), so that it does not take the space the deletes free.
//!
//! Only one logger writes an outbox: [`lock`] refuses a second.

pub mod collector;
pub mod lock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use kmp::Value;
use kmp::unit::Unit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::{error, info, warn};

use crate::reading::{Reading, Status};
use lock::{LockError, OutboxLock};

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
    status    TEXT    NOT NULL,
    key       TEXT,
    instance  TEXT
);
CREATE TABLE IF NOT EXISTS cursors (
    sink  TEXT PRIMARY KEY,
    acked INTEGER NOT NULL
);
";

/// How long a connection waits for another one's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the write-ahead log is cut back to after a checkpoint. Without a
/// limit it keeps the size of its largest burst for ever.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// Share of the bound past which the outbox warns.
const WARN_SHARE: f64 = 0.8;

/// The default bound: a million readings, about 150 MB on disk.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// The default bound in bytes: 512 MiB, above what a million readings take,
/// so that by default the bound in readings is met first.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// A reading in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its place in the outbox; increases with every reading.
    pub seq: u64,
    /// Unique across restarts: `<outbox id>-<seq>`.
    pub key: String,
    /// The reading.
    pub reading: Reading,
    /// The cluster instance that read it; `None` outside a cluster.
    pub instance: Option<String>,
}

/// What a sink takes from the outbox at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The readings, in order.
    pub readings: Vec<Stored>,
    /// The sequence number of the last row looked at, damaged rows
    /// included: where the sink's cursor goes once it has delivered the
    /// readings, so that damaged rows are passed over, not read again.
    pub through: u64,
}

/// The outbox cannot be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed on the file.
    #[error("outbox {path}: {source}")]
    Database {
        /// The outbox file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// Another logger holds the outbox, or it cannot be locked.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Turns SQLite's errors on the file at `path` into [`OutboxError`]s.
fn on(path: &Path) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
    move |source| OutboxError::Database {
        path: path.display().to_string(),
        source,
    }
}

fn open_connection(path: &Path) -> Result<Connection, OutboxError> {
    let fail = on(path);
    let connection = Connection::open(path).map_err(&fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(&fail)?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(&fail)?;
    // A process that is killed loses nothing committed in WAL mode with
    // NORMAL; only a power cut can lose the last transactions.
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(&fail)?;
    connection
        .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(&fail)?;
    Ok(connection)
}

/// How full the outbox is, as last said in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Below [`WARN_SHARE`] of its bound.
    Normal,
    /// Past [`WARN_SHARE`]: warned.
    Near,
    /// At the bound, dropping the oldest readings; the episode lasts until
    /// the outbox is below [`WARN_SHARE`] again, so that a sink creeping
    /// along the bound does not repeat the error with every batch.
    Full {
        /// Readings dropped in this episode so far.
        dropped: u64,
    },
}

/// The writing side of the outbox: the collector appends every reading here.
pub struct Outbox {
    path: PathBuf,
    connection: Connection,
    id: String,
    max_rows: u64,
    max_bytes: u64,
    fill: Fill,
    /// Damaged rows up to here have been reported, by any reader.
    damage_reported: Arc<AtomicU64>,
    /// Written with every reading appended: the cluster instance.
    instance: Option<String>,
    _lock: OutboxLock,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`, bounded to `max_rows` and
    /// [`DEFAULT_MAX_BYTES`], and locks it against a second logger.
    pub fn open(path: &Path, max_rows: u64) -> Result<Outbox, OutboxError> {
        let lock = lock::acquire(path)?;
        let connection = open_connection(path)?;
        let fail = on(path);
        connection.execute_batch(SCHEMA).map_err(&fail)?;
        add_column(&connection, "key").map_err(&fail)?;
        add_column(&connection, "instance").map_err(&fail)?;
        let id: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE key = 'id'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(&fail)?;
        let id = match id {
            Some(id) => id,
            None => {
                let id = format!("{:016x}", fastrand::u64(..));
                connection
                    .execute("INSERT INTO meta (key, value) VALUES ('id', ?1)", [&id])
                    .map_err(&fail)?;
                id
            }
        };
        Ok(Outbox {
            path: path.to_owned(),
            connection,
            id,
            max_rows: max_rows.max(1),
            max_bytes: DEFAULT_MAX_BYTES,
            fill: Fill::Normal,
            damage_reported: Arc::default(),
            instance: None,
            _lock: lock,
        })
    }

    /// Marks every reading appended from now on as read by `instance` (in a
    /// cluster), which the sinks store with it.
    pub fn with_instance(mut self, instance: Option<String>) -> Outbox {
        self.instance = instance;
        self
    }

    /// Bounds the outbox to `max_bytes` of readings as well.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Outbox {
        self.max_bytes = max_bytes.max(1);
        self
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
            damage_reported: Arc::clone(&self.damage_reported),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> OutboxError {
        on(&self.path)(source)
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
        self.insert(readings.iter().map(|reading| (None, reading)))?;
        self.settle()
    }

    /// Appends `readings` as [`append`](Outbox::append) does, each under the
    /// key given with it instead of one of the outbox's own: a sink that has
    /// a reading of that key already keeps only one.
    pub fn append_keyed(&mut self, readings: &[(String, Reading)]) -> Result<u64, OutboxError> {
        self.insert(
            readings
                .iter()
                .map(|(key, reading)| (Some(key.as_str()), reading)),
        )?;
        self.settle()
    }

    /// After an insert: the newest sequence number, once the acknowledged
    /// readings are deleted and the bound kept.
    fn settle(&mut self) -> Result<u64, OutboxError> {
        let last = self.last_seq()?;
        self.prune()?;
        Ok(last)
    }

    /// Inserts `readings`, each with its own key or none, in one transaction.
    fn insert<'a>(
        &mut self,
        readings: impl Iterator<Item = (Option<&'a str>, &'a Reading)>,
    ) -> Result<(), OutboxError> {
        let fail = on(&self.path);
        let instance = self.instance.as_deref();
        let transaction = self.connection.transaction().map_err(&fail)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO readings (ts, bus, address, request, register, name, value, unit_code, status, key, instance)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(&fail)?;
            for (key, reading) in readings {
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
                        key,
                        instance,
                    ])
                    .map_err(&fail)?;
            }
        }
        transaction.commit().map_err(&fail)
    }

    /// Deletes the readings every sink has acknowledged, says when the
    /// outbox fills, and drops the oldest readings past the bound.
    fn prune(&mut self) -> Result<(), OutboxError> {
        let acked_by_all: Option<i64> = self
            .connection
            .query_row("SELECT MIN(acked) FROM cursors", [], |row| row.get(0))
            .map_err(|source| self.fail(source))?;
        if let Some(acked) = acked_by_all {
            self.connection
                .execute("DELETE FROM readings WHERE seq <= ?1", [acked])
                .map_err(|source| self.fail(source))?;
        }
        let (rows, bytes) = self.size()?;
        let excess = self.excess(rows, bytes);
        if excess > 0 {
            self.drop_oldest(excess, rows)?;
            return Ok(());
        }
        let share = (rows as f64 / self.max_rows as f64).max(bytes as f64 / self.max_bytes as f64);
        let outbox = self.path.display().to_string();
        match self.fill {
            Fill::Normal if share >= WARN_SHARE => {
                warn!(
                    %outbox,
                    readings = rows,
                    bytes,
                    percent = (share * 100.0).round(),
                    // The sinks that hold a tenth of it or more keep it full.
                    lagging = %self.lagging(self.last_seq()? as i64, rows / 10)?,
                    "outbox near its bound; at the bound the oldest readings are dropped"
                );
                self.fill = Fill::Near;
            }
            Fill::Near | Fill::Full { .. } if share < WARN_SHARE => {
                if let Fill::Full { dropped } = self.fill {
                    info!(%outbox, readings = rows, dropped, "outbox below its bound again");
                } else {
                    info!(%outbox, readings = rows, "outbox no longer near its bound");
                }
                self.fill = Fill::Normal;
            }
            _ => {}
        }
        Ok(())
    }

    /// The readings in the outbox and the bytes their pages take (free
    /// pages, which SQLite reuses, not counted).
    fn size(&self) -> Result<(u64, u64), OutboxError> {
        let query = |sql: &str| -> Result<u64, OutboxError> {
            self.connection
                .query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|value| value.max(0) as u64)
                .map_err(|source| self.fail(source))
        };
        let rows = query("SELECT COUNT(*) FROM readings")?;
        let pages = query("PRAGMA page_count")?.saturating_sub(query("PRAGMA freelist_count")?);
        Ok((rows, pages * query("PRAGMA page_size")?))
    }

    /// How many of the oldest readings must go to keep both bounds.
    fn excess(&self, rows: u64, bytes: u64) -> u64 {
        let over_rows = rows.saturating_sub(self.max_rows);
        let over_bytes = match bytes.checked_sub(self.max_bytes) {
            // Pages hold many readings and the tables some overhead: the
            // average size per reading is close enough, and what a first
            // drop leaves over the bound the next append takes.
            Some(over) if over > 0 && rows > 0 => over.div_ceil(bytes.div_ceil(rows)).min(rows),
            _ => 0,
        };
        over_rows.max(over_bytes)
    }

    /// Drops the `count` oldest of the `rows` readings, moving the cursors
    /// of the sinks that had not delivered them past them. The first drop of
    /// an episode names those sinks.
    fn drop_oldest(&mut self, count: u64, rows: u64) -> Result<(), OutboxError> {
        let boundary: i64 = self
            .connection
            .query_row(
                "SELECT seq FROM readings ORDER BY seq LIMIT 1 OFFSET ?1",
                [count as i64 - 1],
                |row| row.get(0),
            )
            .map_err(|source| self.fail(source))?;
        let outbox = self.path.display().to_string();
        match &mut self.fill {
            Fill::Full { dropped } => *dropped += count,
            _ => {
                error!(
                    %outbox,
                    readings = rows,
                    max_readings = self.max_rows,
                    max_bytes = self.max_bytes,
                    dropped = count,
                    losing = %self.lagging(boundary, 1)?,
                    "outbox full: dropping the oldest readings"
                );
                self.fill = Fill::Full { dropped: count };
            }
        }
        let fail = on(&self.path);
        self.connection
            .execute("DELETE FROM readings WHERE seq <= ?1", [boundary])
            .map_err(&fail)?;
        self.connection
            .execute("UPDATE cursors SET acked = ?1 WHERE acked < ?1", [boundary])
            .map_err(&fail)?;
        // The delete went to the log; cut the log back now, or it grows by
        // what the delete frees in the file.
        self.connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(&fail)?;
        Ok(())
    }

    /// The sinks behind, for messages: `sink postgres 1200 readings, sink
    /// mqtt 40`: those that have not delivered the readings up to sequence
    /// number `up_to`, with how many of those, counting only those at least
    /// `at_least` behind (a sink that keeps up is a batch behind, and holds
    /// nothing back).
    fn lagging(&self, up_to: i64, at_least: u64) -> Result<String, OutboxError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT sink, behind FROM (
                     SELECT sink, acked,
                            (SELECT COUNT(*) FROM readings WHERE seq > acked AND seq <= ?1) AS behind
                     FROM cursors WHERE acked < ?1)
                 WHERE behind >= ?2 ORDER BY acked",
            )
            .map_err(|source| self.fail(source))?;
        let behind: Vec<String> = statement
            .query_map([up_to, at_least.max(1) as i64], |row| {
                Ok(format!(
                    "sink {} {} readings",
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?
                ))
            })
            .map_err(|source| self.fail(source))?
            .collect::<Result<_, _>>()
            .map_err(|source| self.fail(source))?;
        Ok(if behind.is_empty() {
            "no sink".to_owned()
        } else {
            behind.join(", ")
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
    damage_reported: Arc<AtomicU64>,
}

impl OutboxReader {
    fn fail(&self, source: rusqlite::Error) -> OutboxError {
        on(&self.path)(source)
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
        let id: String = connection
            .query_row("SELECT value FROM meta WHERE key = 'id'", [], |row| {
                row.get(0)
            })
            .map_err(on(path))?;
        Ok(OutboxReader {
            path: path.to_owned(),
            connection,
            id,
            damage_reported: Arc::default(),
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
    ///
    /// The outbox wrote every row itself, so a row it cannot read back was
    /// damaged on disk. Such rows are passed over ([`Batch::through`] goes
    /// past them) and a run of them is reported once, as a whole, with its
    /// first and last sequence numbers, however many sinks pass over it.
    pub fn after(&self, after: u64, limit: usize) -> Result<Batch, OutboxError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, ts, bus, address, request, register, name, value, unit_code, status, key, instance
                 FROM readings WHERE seq > ?1 ORDER BY seq",
            )
            .map_err(|source| self.fail(source))?;
        let mut rows = statement
            .query([after as i64])
            .map_err(|source| self.fail(source))?;
        let mut batch = Batch {
            readings: Vec::new(),
            through: after,
        };
        let mut damaged: Option<(u64, u64, u64)> = None;
        while batch.readings.len() < limit {
            let Some(row) = rows.next().map_err(|source| self.fail(source))? else {
                break;
            };
            let seq = row.get::<_, i64>(0).map_err(|source| self.fail(source))? as u64;
            batch.through = seq;
            match decode(row) {
                Some((reading, key, instance)) => {
                    if let Some(run) = damaged.take() {
                        self.report_damage(run);
                    }
                    batch.readings.push(Stored {
                        seq,
                        key: key.unwrap_or_else(|| format!("{}-{seq}", self.id)),
                        reading,
                        instance,
                    });
                }
                None => {
                    let (first, _, count) = damaged.unwrap_or((seq, seq, 0));
                    damaged = Some((first, seq, count + 1));
                }
            }
        }
        if let Some(run) = damaged {
            self.report_damage(run);
        }
        Ok(batch)
    }

    /// Reports the damaged rows `first..=last` unless a reader of the same
    /// outbox has reported them already.
    fn report_damage(&self, (first, last, count): (u64, u64, u64)) {
        if self.damage_reported.fetch_max(last, Ordering::Relaxed) < last {
            warn!(
                outbox = %self.path.display(),
                first,
                last,
                count,
                "damaged readings in the outbox skipped"
            );
        }
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

/// Adds the text column `column` to the table `readings` unless it has
/// it: files made before readings had keys, or carried their instance
/// (the outbox's and the SQLite sink's).
pub(crate) fn add_column(connection: &Connection, column: &str) -> rusqlite::Result<()> {
    let present = connection
        .prepare("SELECT 1 FROM pragma_table_info('readings') WHERE name = ?1")?
        .exists([column])?;
    if !present {
        connection.execute_batch(&format!("ALTER TABLE readings ADD COLUMN {column} TEXT"))?;
    }
    Ok(())
}

/// A row of `readings` as the outbox wrote it, with the key its writer gave
/// and the instance that read it (if any), or `None` when any column is not what the outbox writes there
/// (of another type, out of range, text that does not parse, a value
/// without a unit).
fn decode(row: &rusqlite::Row<'_>) -> Option<(Reading, Option<String>, Option<String>)> {
    let column = |index: usize| row.get_ref(index).ok();
    let text = |index: usize| match column(index)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    };
    let integer = |index: usize| match column(index)? {
        ValueRef::Integer(value) => Some(value),
        _ => None,
    };
    let value = match (column(7)?, column(8)?) {
        (ValueRef::Null, ValueRef::Null) => None,
        (ValueRef::Text(value), ValueRef::Integer(unit)) => Some((
            std::str::from_utf8(value).ok()?.parse::<Value>().ok()?,
            Unit(u8::try_from(unit).ok()?),
        )),
        _ => return None,
    };
    let optional_text = |index: usize| match column(index) {
        Some(ValueRef::Null) => Some(None),
        Some(ValueRef::Text(text)) => Some(Some(std::str::from_utf8(text).ok()?.to_owned())),
        _ => None,
    };
    let key = optional_text(10)?;
    let instance = optional_text(11)?;
    let reading = Reading {
        time: text(1)?.parse::<Timestamp>().ok()?,
        bus: text(2)?.to_owned(),
        address: u8::try_from(integer(3)?).ok()?,
        request: text(4)?.to_owned(),
        register: u16::try_from(integer(5)?).ok()?,
        name: text(6)?.to_owned(),
        value,
        status: Status::parse(text(9)?)?,
    };
    Some((reading, key, instance))
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

    fn registers(batch: &Batch) -> Vec<u16> {
        batch
            .readings
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
            batch.readings[0].reading,
            reading(1),
            "a reading comes back as it went in"
        );
        reader.ack("fast", batch.readings[1].seq).unwrap();
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
            let key = reader.after(0, 1).unwrap().readings[0].key.clone();
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
        assert_eq!(left.readings[0].seq, 3);
        assert_ne!(left.readings[0].key, first_key);
        assert_eq!(
            left.readings[0].key.split('-').next(),
            first_key.split('-').next(),
            "the outbox id survives a restart"
        );
    }

    #[test]
    fn a_key_given_by_the_writer_is_the_one_sinks_get_also_in_an_old_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&SCHEMA.replace(
                "status    TEXT    NOT NULL,\n    key       TEXT,\n    instance  TEXT",
                "status    TEXT    NOT NULL",
            ))
            .unwrap();
        let mut outbox = Outbox::open(&path, 1000).unwrap();
        outbox.register("db", true).unwrap();
        outbox.append(&[reading(0)]).unwrap();
        let mut outbox = outbox.with_instance(Some("meters-1".to_owned()));
        outbox
            .append_keyed(&[("logged-7-hourly-12-60".to_owned(), reading(60))])
            .unwrap();
        outbox.append(&[reading(1)]).unwrap();
        let batch = outbox.reader().unwrap().after(0, 10).unwrap();
        let keys: Vec<&str> = batch
            .readings
            .iter()
            .map(|stored| stored.key.as_str())
            .collect();
        assert_eq!(keys[1], "logged-7-hourly-12-60");
        assert_eq!(keys[2], format!("{}-3", outbox.id));
        assert_eq!(batch.readings[1].reading, reading(60));
        let instances: Vec<Option<&str>> = batch
            .readings
            .iter()
            .map(|stored| stored.instance.as_deref())
            .collect();
        assert_eq!(instances, [None, Some("meters-1"), Some("meters-1")]);
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
        assert_eq!(outbox.fill, Fill::Near, "full to the bound: warned first");
        outbox.append(&[reading(4), reading(5)]).unwrap();
        let reader = outbox.reader().unwrap();
        assert_eq!(
            registers(&reader.after(reader.cursor("dead").unwrap(), 10).unwrap()),
            [3, 4, 5]
        );
    }

    #[test]
    fn the_full_outbox_is_said_once_per_episode_naming_only_the_sinks_that_lose_readings() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), 10).unwrap();
        outbox.register("fast", true).unwrap();
        outbox.register("dead", true).unwrap();
        let reader = outbox.reader().unwrap();
        let append_and_let_fast_deliver = |outbox: &mut Outbox, registers: std::ops::Range<u16>| {
            for register in registers {
                let last = outbox.append(&[reading(register)]).unwrap();
                reader.ack("fast", last).unwrap();
            }
        };
        let ((), logged) =
            crate::logging::capture(|| append_and_let_fast_deliver(&mut outbox, 0..40));
        let said = |what: &str| logged.lines().filter(|line| line.contains(what)).count();
        assert_eq!(
            (said("outbox near its bound"), said("outbox full")),
            (1, 1),
            "{logged}"
        );
        let full = logged
            .lines()
            .find(|line| line.contains("outbox full"))
            .unwrap();
        assert!(
            full.contains("losing=sink dead 1 readings") && !full.contains("fast"),
            "only the sink that loses readings: {full}"
        );
        let ((), logged) = crate::logging::capture(|| {
            reader.ack("dead", outbox.last_seq().unwrap()).unwrap();
            append_and_let_fast_deliver(&mut outbox, 40..41);
        });
        assert!(
            logged.contains("outbox below its bound again") && logged.contains("dropped=30"),
            "the episode ends, with what it cost: {logged}"
        );
        let ((), logged) =
            crate::logging::capture(|| append_and_let_fast_deliver(&mut outbox, 41..60));
        assert_eq!(
            logged.matches("outbox full").count(),
            1,
            "a new episode is said again: {logged}"
        );
    }

    #[test]
    fn the_bound_in_bytes_keeps_the_file_and_its_log_small() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let max_bytes = 256 * 1024;
        let mut outbox = Outbox::open(&path, 1_000_000)
            .unwrap()
            .with_max_bytes(max_bytes);
        outbox.register("dead", true).unwrap();
        let batch: Vec<Reading> = (0..100).map(reading).collect();
        for _ in 0..200 {
            outbox.append(&batch).unwrap();
        }
        let (rows, bytes) = outbox.size().unwrap();
        assert!(
            rows < 20_000 && bytes <= max_bytes + 64 * 1024,
            "{rows} readings in {bytes} bytes"
        );
        let reader = outbox.reader().unwrap();
        let oldest = reader.after(reader.cursor("dead").unwrap(), 1).unwrap();
        assert!(oldest.readings[0].seq > 1, "the oldest were dropped");
        let file = std::fs::metadata(&path).unwrap().len();
        let mut wal_path = path.clone().into_os_string();
        wal_path.push("-wal");
        let wal = std::fs::metadata(&wal_path).map_or(0, |metadata| metadata.len());
        assert!(
            file <= 2 * max_bytes && wal <= WAL_SIZE_LIMIT as u64,
            "file {file} bytes, log {wal} bytes"
        );
    }

    /// Damages rows `seqs` on disk as another program (or a bad sector)
    /// would: each column in turn gets what the outbox never writes there.
    fn damage(path: &Path, seqs: std::ops::RangeInclusive<u64>) {
        let connection = Connection::open(path).unwrap();
        let damages = [
            "ts = 'yesterday'",
            "status = 'fine'",
            "address = 300",
            "register = 'E1'",
            "value = 'lots'",
            "unit_code = NULL",
            "bus = x'ff'",
        ];
        for seq in seqs {
            let damage = damages[seq as usize % damages.len()];
            connection
                .execute(
                    &format!("UPDATE readings SET {damage} WHERE seq = ?1"),
                    [seq as i64],
                )
                .unwrap();
        }
    }

    #[test]
    fn a_damaged_range_is_passed_over_whole_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let mut outbox = Outbox::open(&path, 10_000).unwrap();
        outbox.register("a", true).unwrap();
        let batch: Vec<Reading> = (0..603).map(reading).collect();
        outbox.append(&batch).unwrap();
        damage(&path, 1..=600);
        let (first, second) = (outbox.reader().unwrap(), outbox.reader().unwrap());
        let (batches, logged) = crate::logging::capture(|| {
            [
                first.after(0, 500).unwrap(),
                second.after(0, 500).unwrap(),
                first.after(0, 2).unwrap(),
            ]
        });
        assert_eq!(registers(&batches[0]), [600, 601, 602]);
        assert_eq!(batches[0].through, 603);
        assert_eq!(batches[1], batches[0]);
        assert_eq!(
            (registers(&batches[2]), batches[2].through),
            (vec![600, 601], 602),
            "the limit counts readings, not the damaged rows passed over"
        );
        let reports: Vec<&str> = logged.lines().collect();
        assert_eq!(reports.len(), 1, "{logged}");
        assert!(
            reports[0].contains("damaged readings in the outbox skipped")
                && reports[0].contains("first=1 last=600 count=600"),
            "{logged}"
        );
    }
}
