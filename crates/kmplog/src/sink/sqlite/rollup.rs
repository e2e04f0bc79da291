//! Summaries of the readings, kept beside them so that a long history is
//! read from a few thousand rows instead of millions: for each value (bus,
//! address, export name) and each minute and each hour, how many readings
//! there were, how many had a value and how many were `suspect`, the lowest
//! and highest value, the times of the first and last reading, and the
//! newest value with its unit.
//!
//! The summaries hold exactly the stored readings before the *open hours*
//! ([`open_from`], a whole hour kept in the table `rollup_open`): the hour
//! under way, and any after it. The sink stores a reading of an open hour
//! and nothing more; once an hour has ended, the sink's next transaction
//! sums up its readings ([`close`]), meter by meter, and moves the open
//! hours on. So a value read once a minute costs its summary one write an
//! hour instead of one a reading, which was a third of the sink's work at
//! 3,000 readings a second (BENCHMARKS.md). A reading of an hour summed up
//! already (a backfill, a late delivery) is merged into its summaries in
//! the transaction that inserts it. Only rows actually inserted count (a
//! reading delivered twice is ignored by its key, and so is its summary).
//! A summary is merged with what its row already holds, so readings may
//! come in any order: "newest" is the latest time, the highest id among
//! equal times, never the last written. A reader ([`read`]) takes the open
//! hours from the readings, in the same snapshot.
//!
//! Minutes are summed up only in dense hours, those with more than
//! [`DENSE_HOUR`] readings of the value: for a value read once a minute a
//! minute's summary would be its one reading again, and writing it would
//! double the sink's work. Whether an hour is dense is in its own summary,
//! so a reader at the minute level ([`read`]) takes a dense hour's minutes
//! and a sparse hour's readings, from the same snapshot. When an hour
//! becomes dense its minutes are made from all its readings, in the
//! transaction that made it dense.
//!
//! A file whose summaries hold every reading (from a kmplog before the open
//! hours) has its open hours begin after its newest reading
//! ([`start_open`]). A database from before the summaries gets them when
//! the sink opens it:
//! the tables are made and filled from every stored reading in one
//! transaction (logged with its duration; a year of 1 s readings of one
//! value, 31.5 million rows, took 57 s in BENCHMARKS.md; the logger opens
//! its sinks before it polls, so its first start on such a file waits that
//! long, once; stopped meanwhile, the transaction is rolled back and the
//! next start builds them again). Building them at once rather than lazily
//! keeps one rule for the reader: the tables exist and hold every reading
//! before the open hours, or they do not exist and it reads the readings (a reader sees the tables
//! only once that transaction has committed).
//!
//! [`Summary`] is also how `GET /api/history` sums up raw readings; the
//! sink's upsert ([`MERGE`]) is the same rule in SQL, and the history's
//! tests hold answers from summaries to those from the readings.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Instant;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use tracing::info;

use super::in_schema;

/// One length of summary: its table and how long each of its buckets is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// The table.
    pub table: &'static str,
    /// The length of a bucket in milliseconds; buckets start at whole
    /// multiples of it since the epoch.
    pub width_ms: i64,
}

/// The summaries kept, finest first.
pub const LEVELS: [Level; 2] = [
    Level {
        table: "rollup_minute",
        width_ms: 60_000,
    },
    Level {
        table: "rollup_hour",
        width_ms: 3_600_000,
    },
];

/// The columns of a summary, in the order [`Summary::from_row`] reads them.
const COLUMNS: &str = "readings, valued, suspect, min, max, first_ms, last_ms, \
     last_ns, last_id, last_value, last_unit";

/// The table of one level.
fn schema(level: &Level) -> String {
    format!(
        "CREATE TABLE {} (
            bus        TEXT    NOT NULL,
            address    INTEGER NOT NULL,
            name       TEXT    NOT NULL,
            start_ms   INTEGER NOT NULL,  -- the bucket's start, ms since the epoch
            readings   INTEGER NOT NULL,
            valued     INTEGER NOT NULL,  -- readings with a value; the others failed
            suspect    INTEGER NOT NULL,
            min        REAL,
            max        REAL,
            first_ms   INTEGER NOT NULL,  -- the first reading's time
            last_ms    INTEGER NOT NULL,  -- the last reading's time
            last_ns    INTEGER,           -- the newest value's time, ns
            last_id    INTEGER,           -- and its row in readings
            last_value TEXT,              -- exact, as stored
            last_unit  TEXT,
            PRIMARY KEY (bus, address, name, start_ms)
        ) WITHOUT ROWID",
        level.table
    )
}

/// The newest value of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Newest {
    /// Its time in nanoseconds since the epoch: what "newest" means.
    pub ns: i64,
    /// Its row in `readings`, which decides between equal times.
    pub id: i64,
    /// The exact decimal as stored.
    pub value: String,
    /// Its unit.
    pub unit: Option<String>,
}

/// What a set of readings of one value sums up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Readings, with a value or not.
    pub readings: u64,
    /// Readings with a value; the others failed (timeout, line down, ...).
    pub valued: u64,
    /// Readings flagged `suspect`.
    pub suspect: u64,
    /// Lowest value, as a number; `None` when none has one.
    pub min: Option<f64>,
    /// Highest value.
    pub max: Option<f64>,
    /// The first reading's time, in milliseconds since the epoch.
    pub first_ms: i64,
    /// The last reading's time.
    pub last_ms: i64,
    /// The newest reading that has a value.
    pub newest: Option<Newest>,
}

/// One stored reading, as far as a summary cares.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// Its row in `readings`.
    pub id: i64,
    /// When it was read.
    pub time: Timestamp,
    /// Its value, exact.
    pub value: Option<&'a str>,
    /// The value's unit.
    pub unit: Option<&'a str>,
    /// Its status, as stored (`ok`, `suspect`, `timeout`, ...).
    pub status: &'a str,
}

impl Summary {
    /// The summary of one reading.
    pub fn of(reading: Stored<'_>) -> Summary {
        let number = reading.value.and_then(|value| value.parse::<f64>().ok());
        let ms = reading.time.as_millisecond();
        Summary {
            readings: 1,
            valued: u64::from(reading.value.is_some()),
            suspect: u64::from(reading.status == "suspect"),
            min: number,
            max: number,
            first_ms: ms,
            last_ms: ms,
            newest: reading.value.map(|value| Newest {
                ns: i64::try_from(reading.time.as_nanosecond()).unwrap_or(i64::MAX),
                id: reading.id,
                value: value.to_owned(),
                unit: reading.unit.map(str::to_owned),
            }),
        }
    }

    /// Adds `other`'s readings to these; the order does not matter.
    pub fn merge(&mut self, other: Summary) {
        fn pick(a: Option<f64>, b: Option<f64>, keep: fn(f64, f64) -> f64) -> Option<f64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(keep(a, b)),
                (a, b) => a.or(b),
            }
        }
        self.readings += other.readings;
        self.valued += other.valued;
        self.suspect += other.suspect;
        self.min = pick(self.min, other.min, f64::min);
        self.max = pick(self.max, other.max, f64::max);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        let newer = match (&self.newest, &other.newest) {
            (Some(mine), Some(theirs)) => (theirs.ns, theirs.id) > (mine.ns, mine.id),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if newer {
            self.newest = other.newest;
        }
    }

    /// A summary from a row whose columns from `first` on are [`COLUMNS`].
    pub fn from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Summary> {
        let count = |index: usize| -> rusqlite::Result<u64> {
            Ok(u64::try_from(row.get::<_, i64>(first + index)?).unwrap_or(0))
        };
        let newest = match row.get::<_, Option<String>>(first + 9)? {
            Some(value) => Some(Newest {
                ns: row.get(first + 7)?,
                id: row.get(first + 8)?,
                value,
                unit: row.get(first + 10)?,
            }),
            None => None,
        };
        Ok(Summary {
            readings: count(0)?,
            valued: count(1)?,
            suspect: count(2)?,
            min: row.get(first + 3)?,
            max: row.get(first + 4)?,
            first_ms: row.get(first + 5)?,
            last_ms: row.get(first + 6)?,
            newest,
        })
    }
}

/// Which value a summary is of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// The bus name.
    pub bus: String,
    /// The meter address.
    pub address: u8,
    /// The export name.
    pub name: String,
}

/// The minutes of an hour are summed up only when the hour holds more than
/// this many readings of a value; a reader reads the readings of a sparser
/// hour instead, which are no more than this. So a value read once a
/// minute costs one summary write per reading (its hour), not two: the
/// summary of a minute of one reading is that reading again.
pub const DENSE_HOUR: u64 = 120;

/// The per-minute level.
pub const MINUTE: Level = LEVELS[0];
/// The per-hour level.
pub const HOUR: Level = LEVELS[1];

/// The start of the bucket of `level` that `ms` falls in.
fn bucket(level: &Level, ms: i64) -> i64 {
    ms.div_euclid(level.width_ms) * level.width_ms
}

/// Merges `summary` into the bucket from `start` in `buckets`; whether the
/// bucket is new.
fn merge_into(buckets: &mut BTreeMap<i64, Summary>, start: i64, summary: Summary) -> bool {
    match buckets.entry(start) {
        Entry::Occupied(mut held) => {
            held.get_mut().merge(summary);
            false
        }
        Entry::Vacant(place) => {
            place.insert(summary);
            true
        }
    }
}

/// What waits for one hour of one value: its summary and its minutes'.
#[derive(Debug)]
struct HourPending {
    hour: Summary,
    minutes: BTreeMap<i64, Summary>,
}

/// Summaries waiting to be merged into their tables: per value and hour,
/// the hour's and its minutes'.
#[derive(Debug, Default)]
pub struct Pending {
    hours: BTreeMap<(Series, i64), HourPending>,
    buckets: usize,
}

impl Pending {
    /// Adds a reading of `series` that was stored.
    pub fn add(&mut self, series: Series, reading: Stored<'_>) {
        self.add_summary(series, reading.time.as_millisecond(), Summary::of(reading));
    }

    /// Adds the summary of a reading of `series` at `ms`.
    fn add_summary(&mut self, series: Series, ms: i64, summary: Summary) {
        match self.hours.entry((series, bucket(&HOUR, ms))) {
            Entry::Occupied(mut held) => {
                let held = held.get_mut();
                held.hour.merge(summary.clone());
                if merge_into(&mut held.minutes, bucket(&MINUTE, ms), summary) {
                    self.buckets += 1;
                }
            }
            Entry::Vacant(place) => {
                place.insert(HourPending {
                    hour: summary.clone(),
                    minutes: BTreeMap::from([(bucket(&MINUTE, ms), summary)]),
                });
                self.buckets += 2;
            }
        }
    }

    /// How many buckets wait.
    pub fn waiting(&self) -> usize {
        self.buckets
    }

    /// Merges every waiting summary into its row, in `transaction`, whose
    /// `readings` already hold the readings added: one statement each
    /// ([`MERGE`]). An hour that has just become dense gets its minutes
    /// from all its readings.
    pub fn write(&mut self, transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        // Asked before the merge rather than with `RETURNING`, which costs
        // SQLite a temporary table on every statement.
        let mut hour_held = transaction.prepare_cached(&format!(
            "SELECT readings FROM {} WHERE bus = ?1 AND address = ?2 AND name = ?3 AND start_ms = ?4",
            HOUR.table
        ))?;
        let mut hour_merge = transaction.prepare_cached(&merge(&HOUR))?;
        let mut minute_merge = transaction.prepare_cached(&merge(&MINUTE))?;
        let mut minutes_forget = transaction.prepare_cached(&format!(
            "DELETE FROM {} WHERE bus = ?1 AND address = ?2 AND name = ?3 \
             AND start_ms >= ?4 AND start_ms < ?5",
            MINUTE.table
        ))?;
        self.buckets = 0;
        for ((series, start), pending) in std::mem::take(&mut self.hours) {
            let before: i64 = hour_held
                .query_row(
                    params![series.bus, series.address, series.name, start],
                    |row| row.get(0),
                )
                .optional()?
                .unwrap_or(0);
            hour_merge.execute(summary_params(&series, start, &pending.hour))?;
            let before = u64::try_from(before).unwrap_or(0);
            let held = before + pending.hour.readings;
            if held <= DENSE_HOUR {
                continue;
            }
            let minutes = if before == 0 || before > DENSE_HOUR {
                // All of the hour is here, or its minutes are in the table.
                pending.minutes
            } else {
                // Dense from now on: its minutes from every reading of it,
                // replacing those of a kmplog that summed up every minute.
                let end = start + HOUR.width_ms;
                minutes_forget.execute(params![
                    series.bus,
                    series.address,
                    series.name,
                    start,
                    end
                ])?;
                let mut minutes = BTreeMap::new();
                readings(transaction, &series, start, end, |ms, summary| {
                    merge_into(&mut minutes, bucket(&MINUTE, ms), summary);
                })?;
                minutes
            };
            for (minute, summary) in &minutes {
                minute_merge.execute(summary_params(&series, *minute, summary))?;
            }
        }
        Ok(())
    }
}

/// The parameters of [`merge`]'s statement for `summary`, of the bucket of
/// `series` from `start`.
fn summary_params<'a>(
    series: &'a Series,
    start: i64,
    summary: &'a Summary,
) -> impl rusqlite::Params + 'a {
    let newest = summary.newest.as_ref();
    let count = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    (
        series.bus.as_str(),
        series.address,
        series.name.as_str(),
        start,
        count(summary.readings),
        count(summary.valued),
        count(summary.suspect),
        summary.min,
        summary.max,
        summary.first_ms,
        summary.last_ms,
        newest.map(|newest| newest.ns),
        newest.map(|newest| newest.id),
        newest.map(|newest| newest.value.as_str()),
        newest.and_then(|newest| newest.unit.as_deref()),
    )
}

/// [`Summary::merge`] in SQL, for a summary merged into its row: one
/// statement and one search of the table instead of a read and a write.
/// (Every expression of an `UPDATE` sees the row as it was.)
const MERGE: &str = "ON CONFLICT (bus, address, name, start_ms) DO UPDATE SET
    readings = readings + excluded.readings,
    valued = valued + excluded.valued,
    suspect = suspect + excluded.suspect,
    min = CASE WHEN min IS NULL OR excluded.min < min THEN excluded.min ELSE min END,
    max = CASE WHEN max IS NULL OR excluded.max > max THEN excluded.max ELSE max END,
    first_ms = MIN(first_ms, excluded.first_ms),
    last_ms = MAX(last_ms, excluded.last_ms),
    last_ns = CASE WHEN {newer} THEN excluded.last_ns ELSE last_ns END,
    last_id = CASE WHEN {newer} THEN excluded.last_id ELSE last_id END,
    last_value = CASE WHEN {newer} THEN excluded.last_value ELSE last_value END,
    last_unit = CASE WHEN {newer} THEN excluded.last_unit ELSE last_unit END";

/// Whether the merged summary's newest value is newer than the row's.
const NEWER: &str = "(excluded.last_value IS NOT NULL AND (last_value IS NULL \
     OR (excluded.last_ns, excluded.last_id) > (last_ns, last_id)))";

/// The statement that merges a summary into its row of `level`.
fn merge(level: &Level) -> String {
    format!(
        "INSERT INTO {} (bus, address, name, start_ms, {COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) {}",
        level.table,
        MERGE.replace("{newer}", NEWER)
    )
}

/// Whether the database has every level's table (a reader's question: the
/// sink makes them all in one transaction).
pub fn present(connection: &Connection) -> rusqlite::Result<bool> {
    for level in &LEVELS {
        if !in_schema(connection, "table", level.table)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The summaries of `series` at `level` whose buckets start from `start_ms`
/// to before `end_ms`, with their starts; in a sparse hour at the minute
/// level ([`DENSE_HOUR`]) and in the open hours ([`open_from`]), those of
/// its readings instead, with their times.
pub fn read(
    connection: &Connection,
    level: &Level,
    series: &Series,
    start_ms: i64,
    end_ms: i64,
    mut each: impl FnMut(i64, Summary),
) -> rusqlite::Result<()> {
    let open = open_from(connection)?.unwrap_or(i64::MAX);
    readings(connection, series, start_ms.max(open), end_ms, &mut each)?;
    let end_ms = end_ms.min(open);
    if *level != MINUTE || start_ms >= end_ms {
        return read_rows(connection, level, series, start_ms, end_ms, each);
    }
    let mut hours = Vec::new();
    read_rows(
        connection,
        &HOUR,
        series,
        bucket(&HOUR, start_ms),
        end_ms,
        |start, hour| hours.push((start, hour.readings)),
    )?;
    for (hour, held) in hours {
        let (from, to) = (hour.max(start_ms), (hour + HOUR.width_ms).min(end_ms));
        if held > DENSE_HOUR {
            read_rows(connection, &MINUTE, series, from, to, &mut each)?;
        } else {
            readings(connection, series, from, to, &mut each)?;
        }
    }
    Ok(())
}

/// The rows of `level`'s table for [`read`].
fn read_rows(
    connection: &Connection,
    level: &Level,
    series: &Series,
    start_ms: i64,
    end_ms: i64,
    mut each: impl FnMut(i64, Summary),
) -> rusqlite::Result<()> {
    let mut select = connection.prepare_cached(&format!(
        "SELECT start_ms, {COLUMNS} FROM {} \
         WHERE bus = ?1 AND address = ?2 AND name = ?3 AND start_ms >= ?4 AND start_ms < ?5",
        level.table
    ))?;
    let mut rows = select.query(params![
        series.bus,
        series.address,
        series.name,
        start_ms,
        end_ms
    ])?;
    while let Some(row) = rows.next()? {
        each(row.get(0)?, Summary::from_row(row, 1)?);
    }
    Ok(())
}

/// Each stored reading of `series` from `start_ms` to before `end_ms`, as
/// its time in milliseconds and its summary.
pub fn readings(
    connection: &Connection,
    series: &Series,
    start_ms: i64,
    end_ms: i64,
    mut each: impl FnMut(i64, Summary),
) -> rusqlite::Result<()> {
    let meter = (series.bus.as_str(), series.address);
    meter_readings(
        connection,
        meter,
        Some(&series.name),
        start_ms,
        end_ms,
        |_, ms, summary| each(ms, summary),
    )
}

/// The readings of the meter (?1, ?2) from the second ?3 to before the
/// second ?4, of the export name ?5, or of all when it is null.
pub(crate) const METER_READINGS: &str = "SELECT id, ts, value, unit, status, name FROM readings \
     WHERE bus = ?1 AND address = ?2 AND ts >= ?3 AND ts < ?4 AND (?5 IS NULL OR name = ?5)";

/// The meter after (?1, ?2) in order of bus and address.
pub(crate) const NEXT_METER: &str = "SELECT bus, address FROM readings WHERE (bus, address) > (?1, ?2) \
     ORDER BY bus, address LIMIT 1";

/// Each stored reading of the meter (bus, address) from `start_ms` to
/// before `end_ms`, of the export name `only` or of all, as its export
/// name, its time in milliseconds and its summary, in order of time. Found
/// through the index by meter and time: those of the meter's other names
/// are passed over in the index, not read from the table.
fn meter_readings(
    connection: &Connection,
    (bus, address): (&str, u8),
    only: Option<&str>,
    start_ms: i64,
    end_ms: i64,
    mut each: impl FnMut(&str, i64, Summary),
) -> rusqlite::Result<()> {
    if start_ms >= end_ms {
        return Ok(());
    }
    let mut select = connection.prepare_cached(METER_READINGS)?;
    let mut rows = select.query(params![
        bus,
        address,
        second_from(start_ms)?,
        second_to(end_ms)?,
        only,
    ])?;
    while let Some(row) = rows.next()? {
        let text = row.get_ref(1)?.as_str()?;
        // The sink writes every time in this form; another is not a reading
        // of a place in time, and the summaries skip it too.
        let Ok(time) = text.parse::<Timestamp>() else {
            continue;
        };
        let ms = time.as_millisecond();
        if !(start_ms..end_ms).contains(&ms) {
            continue;
        }
        let summary = Summary::of(Stored {
            id: row.get(0)?,
            time,
            value: row.get_ref(2)?.as_str_or_null()?,
            unit: row.get_ref(3)?.as_str_or_null()?,
            status: row.get_ref(4)?.as_str()?,
        });
        each(row.get_ref(5)?.as_str()?, ms, summary);
    }
    Ok(())
}

/// The whole second `ms` falls in, as stored times begin: a bound from
/// which a search of the stored times by their text finds every reading
/// from `ms` on.
fn second_from(ms: i64) -> rusqlite::Result<String> {
    second_text(ms.div_euclid(1000) * 1000)
}

/// The whole second from `ms` on, rounded up: the bound below which a
/// search of the stored times by their text finds every reading before `ms`.
fn second_to(ms: i64) -> rusqlite::Result<String> {
    second_text(-(-ms).div_euclid(1000) * 1000)
}

fn second_text(ms: i64) -> rusqlite::Result<String> {
    Timestamp::from_millisecond(ms)
        .map(|time| time.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(error.into()))
}

/// The table that says from when on the readings are not summed up yet.
const OPEN: &str = "rollup_open";

/// From when on (a whole hour, in milliseconds since the epoch) the stored
/// readings are not in the summaries yet: those of the hour under way, and
/// of any hour after it. `None` for a file whose summaries hold every
/// stored reading, as those of a kmplog from before this table.
pub fn open_from(connection: &Connection) -> rusqlite::Result<Option<i64>> {
    if !in_schema(connection, "table", OPEN)? {
        return Ok(None);
    }
    connection
        .prepare_cached(&format!("SELECT from_ms FROM {OPEN}"))?
        .query_row([], |row| row.get(0))
        .optional()
}

/// Where the open hours begin, making the table when it is missing, at a
/// time that keeps the rule of [`open_from`]: the summaries hold every
/// stored reading then (those of an older kmplog, or those [`upgrade`] has
/// just built), so the open hours begin after the newest; in a file with
/// no readings, at the hour of `now`. A newest time that does not read
/// leaves no hour open: every reading is summed up as it is stored.
pub fn start_open(connection: &mut Connection, now: Timestamp) -> rusqlite::Result<i64> {
    if let Some(from) = open_from(connection)? {
        return Ok(from);
    }
    let transaction = connection.transaction()?;
    transaction.execute_batch(&format!("CREATE TABLE {OPEN} (from_ms INTEGER NOT NULL)"))?;
    let newest: Option<String> =
        transaction.query_row("SELECT MAX(ts) FROM readings", [], |row| row.get(0))?;
    let from = match newest {
        None => bucket(&HOUR, now.as_millisecond()),
        Some(text) => text.parse::<Timestamp>().map_or(i64::MAX, |newest| {
            bucket(&HOUR, newest.as_millisecond()) + HOUR.width_ms
        }),
    };
    transaction.execute(&format!("INSERT INTO {OPEN} (from_ms) VALUES (?1)"), [from])?;
    transaction.commit()?;
    Ok(from)
}

/// The start of the hour of `time`: where the open hours begin once the
/// hours before it have ended.
pub fn hour_of(time: Timestamp) -> i64 {
    bucket(&HOUR, time.as_millisecond())
}

/// Sums up the readings from `from` to before `to`, hours that have ended,
/// into the summaries, in `transaction`, and records that the open hours
/// begin at `to`; how many readings it summed up. Each meter's readings of
/// those hours are found through the index by meter and time, the meters
/// one after the other through the same index, so the work is the readings
/// summed up and a search per meter. Each meter's buckets are written
/// before the next meter's are gathered: gathered for many values at once,
/// as [`upgrade`] does (a map of minutes each), they took the logger from
/// 167 to 232 MB in a scale run of 200,000 values whose hour ended
/// mid-run, and the process kept the memory.
pub fn close(transaction: &Transaction<'_>, from: i64, to: i64) -> rusqlite::Result<u64> {
    let mut summed = 0;
    let any = transaction
        .prepare_cached("SELECT 1 FROM readings WHERE ts >= ?1 AND ts < ?2 LIMIT 1")?
        .exists(params![second_from(from)?, second_to(to)?])?;
    if any {
        let mut next = transaction.prepare_cached(NEXT_METER)?;
        let mut after = (String::new(), -1_i64);
        let mut pending = Pending::default();
        while let Some((bus, address)) = next
            .query_row(params![after.0, after.1], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, u8>(1)?))
            })
            .optional()?
        {
            meter_readings(
                transaction,
                (&bus, address),
                None,
                from,
                to,
                |name, ms, summary| {
                    let series = Series {
                        bus: bus.clone(),
                        address,
                        name: name.to_owned(),
                    };
                    pending.add_summary(series, ms, summary);
                    summed += 1;
                },
            )?;
            pending.write(transaction)?;
            after = (bus, i64::from(address));
        }
    }
    transaction.execute(&format!("UPDATE {OPEN} SET from_ms = ?1"), [to])?;
    Ok(summed)
}

/// Buckets gathered before they are written while the summaries of an
/// existing database are built: bounds the memory, whatever its size.
const BUILD_BATCH: usize = 100_000;

/// Makes the tables when they are missing and fills them from the stored
/// readings, in one transaction.
pub fn upgrade(connection: &mut Connection) -> rusqlite::Result<()> {
    if present(connection)? {
        return Ok(());
    }
    let began = Instant::now();
    let transaction = connection.transaction()?;
    for level in &LEVELS {
        transaction.execute_batch(&format!("DROP TABLE IF EXISTS {}", level.table))?;
        transaction.execute_batch(&schema(level))?;
    }
    // Every stored reading is summed up here: no hour is open any more
    // ([`start_open`] opens them after the newest).
    transaction.execute_batch(&format!("DROP TABLE IF EXISTS {OPEN}"))?;
    let mut pending = Pending::default();
    let mut readings = 0_u64;
    {
        let mut select = transaction.prepare(
            "SELECT id, ts, bus, address, name, value, unit, status FROM readings \
             ORDER BY bus, address, ts, name",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let text: String = row.get(1)?;
            // A time that does not read was not written by the sink; it
            // cannot be placed in a bucket, and the reader skips it too.
            let Ok(time) = text.parse::<Timestamp>() else {
                continue;
            };
            let series = Series {
                bus: row.get(2)?,
                address: row.get(3)?,
                name: row.get(4)?,
            };
            let value: Option<String> = row.get(5)?;
            let unit: Option<String> = row.get(6)?;
            let status: String = row.get(7)?;
            pending.add(
                series,
                Stored {
                    id: row.get(0)?,
                    time,
                    value: value.as_deref(),
                    unit: unit.as_deref(),
                    status: &status,
                },
            );
            readings += 1;
            if pending.waiting() >= BUILD_BATCH {
                pending.write(&transaction)?;
            }
        }
    }
    pending.write(&transaction)?;
    transaction.commit()?;
    if readings > 0 {
        info!(
            "summed up {readings} stored readings per minute and per hour for the history in {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
