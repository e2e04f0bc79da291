//! `GET /api/history`: one value's history from the SQLite sink's database,
//! downsampled on the server so that a plot gets at most `points` buckets
//! however long the range: for each bucket the lowest, highest and last
//! value, how many readings were `suspect` and how many failed.
//!
//! Long ranges are read from the SQLite sink's summaries
//! ([`rollup`]): where the buckets are a minute or longer they are cut on
//! the grid of the coarsest summary no longer than a bucket (a whole number
//! of its buckets each, from a start on its grid, so that no summary
//! straddles two), the whole summaries inside the range are merged into
//! them, and only the range's partial ends are read from the readings. A
//! year of 1 s readings is then some 9,000 hourly rows and at most two
//! hours of readings. Shorter buckets, and a database without summaries,
//! are summed up from the readings over the `(bus, address, ts, name)`
//! index (a meter's readings in time order), in one pass.
//!
//! Both ways sum up with [`Summary`], so they give the same answer: the
//! last value of a bucket is its newest reading with a value (the latest
//! time; the highest id among equal times), whatever order readings were
//! stored in. Its text is the exact decimal as stored; lowest and highest
//! are numbers, for the plot. Times are placed in buckets to the
//! millisecond. The stored text of `ts` sorts right across seconds (see
//! [`super::readings`]), so the index finds the seconds of a range and each
//! row's exact time decides.
//!
//! Where readings stop for longer than they usually come (twice their
//! mean spacing in the range) and at least one bucket is empty, the answer
//! holds a gap marker: a point whose values are `null`, so that a plot
//! breaks its line there instead of drawing across the outage.

use std::path::Path;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use serde_json::{Value as JsonValue, json};

use super::{ApiError, ApiState, readings};
use crate::sink::sqlite::rollup::{self, LEVELS, Level, Summary};

/// The most buckets one answer holds, and the default.
pub const MAX_POINTS: usize = 2000;
/// The range when `from` is not given: the hour before `to`.
const DEFAULT_RANGE: SignedDuration = SignedDuration::from_hours(1);

/// What the query asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// The bus name.
    pub bus: String,
    /// The meter address.
    pub address: u8,
    /// The export name.
    pub name: String,
    /// Start of the range, included.
    pub from: Timestamp,
    /// End of the range, included.
    pub to: Timestamp,
    /// At most this many buckets.
    pub points: usize,
}

/// The buckets a range is cut into: `count` buckets of `width_ms`
/// milliseconds from `from_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// The summaries whose grid the buckets are on, when they are that long.
    pub level: Option<Level>,
    /// Start of the first bucket, in milliseconds since the epoch.
    pub from_ms: i64,
    /// Width of each bucket, at least 1 ms.
    pub width_ms: i64,
    /// How many buckets cover the range; at most the points asked for.
    pub count: i64,
}

impl Buckets {
    /// The fewest buckets, at most `points`, that cover `from` to `to`, both
    /// included: of whole milliseconds, or of whole seconds from a whole
    /// second when they are a second or longer, or on the grid of the
    /// coarsest summary that is no longer than that.
    pub fn new(from: Timestamp, to: Timestamp, points: usize) -> Buckets {
        let points = i64::try_from(points.max(1)).unwrap_or(i64::MAX);
        let to_ms = to.as_millisecond();
        let cover = |from_ms: i64, unit: i64| {
            // `to` itself must fall in the last bucket: the span counts it.
            let span = (to_ms - from_ms).max(0) + 1;
            let width = ceil_div(ceil_div(span, points), unit) * unit;
            Buckets {
                level: None,
                from_ms,
                width_ms: width,
                count: ceil_div(span, width),
            }
        };
        let on_grid = |unit: i64| cover(from.as_millisecond().div_euclid(unit) * unit, unit);
        let exact = cover(from.as_millisecond(), 1);
        if exact.width_ms < 1000 {
            return exact;
        }
        let seconds = on_grid(1000);
        match LEVELS
            .iter()
            .rev()
            .find(|level| level.width_ms <= seconds.width_ms)
        {
            Some(level) => Buckets {
                level: Some(*level),
                ..on_grid(level.width_ms)
            },
            None => seconds,
        }
    }

    /// Which bucket a time in the range falls in.
    fn index(&self, ms: i64) -> usize {
        usize::try_from((ms - self.from_ms).div_euclid(self.width_ms)).unwrap_or(0)
    }

    /// Start of bucket `index`, in seconds since the epoch.
    pub fn start_seconds(&self, index: i64) -> f64 {
        (self.from_ms + index * self.width_ms) as f64 / 1000.0
    }
}

/// `value / divisor`, rounded up, for positive numbers.
fn ceil_div(value: i64, divisor: i64) -> i64 {
    value.div_euclid(divisor) + i64::from(value.rem_euclid(divisor) != 0)
}

/// One bucket as the database sums it up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BucketRow {
    /// Which bucket.
    pub index: i64,
    /// Lowest value; `None` when no reading of the bucket has one.
    pub min: Option<f64>,
    /// Highest value.
    pub max: Option<f64>,
    /// The last value, exact as stored.
    pub last: Option<String>,
    /// Time of the bucket's first reading, in seconds.
    pub first_time: Option<f64>,
    /// Time of the bucket's last reading, in seconds.
    pub last_time: Option<f64>,
    /// Readings, with a value or not.
    pub readings: u64,
    /// Readings with a value; the others failed (timeout, line down, ...).
    pub valued: u64,
    /// Readings flagged `suspect`.
    pub suspect: u64,
}

/// The series of a plot, column by column; a gap marker is a point whose
/// `min`, `max` and `last` are all `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Bucket starts (or a gap's start), in seconds since the epoch.
    pub time: Vec<f64>,
    /// Lowest value of each bucket.
    pub min: Vec<Option<f64>>,
    /// Highest value of each bucket.
    pub max: Vec<Option<f64>>,
    /// Last value of each bucket, as a number.
    pub last: Vec<Option<f64>>,
    /// Last value of each bucket, exact.
    pub last_text: Vec<Option<String>>,
    /// Suspect readings in each bucket.
    pub suspect: Vec<u64>,
    /// Failed readings in each bucket.
    pub failed: Vec<u64>,
}

impl Series {
    fn push(&mut self, time: f64, row: Option<&BucketRow>) {
        self.time.push(time);
        self.min.push(row.and_then(|row| row.min));
        self.max.push(row.and_then(|row| row.max));
        self.last
            .push(row.and_then(|row| row.last.as_deref()?.parse().ok()));
        self.last_text.push(row.and_then(|row| row.last.clone()));
        self.suspect.push(row.map_or(0, |row| row.suspect));
        self.failed
            .push(row.map_or(0, |row| row.readings - row.valued));
    }
}

/// The series of `rows` (in bucket order), with a gap marker after a
/// bucket when at least one empty bucket follows it and the readings on
/// either side are further apart than twice their mean spacing. (A bucket
/// of failed readings has no values, so it breaks the line by itself.)
pub fn assemble(buckets: &Buckets, rows: &[BucketRow]) -> Series {
    let readings: u64 = rows.iter().map(|row| row.readings).sum();
    let first = rows.iter().find_map(|row| row.first_time);
    let last = rows.iter().rev().find_map(|row| row.last_time);
    let spacing = match (first, last) {
        (Some(first), Some(last)) if readings > 1 => (last - first) / (readings - 1) as f64,
        _ => f64::INFINITY,
    };
    let mut series = Series::default();
    let mut previous: Option<&BucketRow> = None;
    for row in rows {
        if let Some(before) = previous
            && row.index > before.index + 1
        {
            let apart = match (before.last_time, row.first_time) {
                (Some(end), Some(start)) => start - end,
                _ => 0.0,
            };
            if apart > 2.0 * spacing {
                series.push(buckets.start_seconds(before.index + 1), None);
            }
        }
        series.push(buckets.start_seconds(row.index), Some(row));
        previous = Some(row);
    }
    series
}

/// The buckets of `query`'s range with readings, from the database, with
/// the unit of the last value.
pub fn bucket_rows(
    database: &Path,
    query: &HistoryQuery,
    buckets: &Buckets,
) -> Result<(Vec<BucketRow>, Option<String>), String> {
    let connection = readings::open(database)?;
    // One snapshot for the summaries and the readings at the ends, however
    // the sink writes meanwhile.
    let snapshot = connection
        .unchecked_transaction()
        .map_err(|error| error.to_string())?;
    let summaries = rollup::present(&snapshot).map_err(|error| error.to_string())?;
    sum_up(&snapshot, query, buckets, summaries).map_err(|error| error.to_string())
}

/// [`bucket_rows`] on an open database, from the summaries where the
/// buckets are on their grid and `summaries` says they are there.
fn sum_up(
    connection: &Connection,
    query: &HistoryQuery,
    buckets: &Buckets,
    summaries: bool,
) -> rusqlite::Result<(Vec<BucketRow>, Option<String>)> {
    let series = rollup::Series {
        bus: query.bus.clone(),
        address: query.address,
        name: query.name.clone(),
    };
    let mut sums: Vec<Option<Summary>> = vec![None; usize::try_from(buckets.count).unwrap_or(0)];
    let mut add = |ms: i64, summary: Summary| match &mut sums[buckets.index(ms)] {
        Some(sum) => sum.merge(summary),
        empty => *empty = Some(summary),
    };
    let (range_start, range_end) = (query.from.as_millisecond(), query.to.as_millisecond() + 1);
    let level = buckets.level.filter(|_| summaries);
    // The whole summaries inside the range; the readings before and after.
    let whole = level.map(|level| {
        let width = level.width_ms;
        (
            ceil_div(range_start, width) * width,
            range_end.div_euclid(width) * width,
        )
    });
    match (level, whole) {
        (Some(level), Some((whole_start, whole_end))) if whole_start < whole_end => {
            rollup::readings(connection, &series, range_start, whole_start, &mut add)?;
            rollup::read(
                connection,
                &level,
                &series,
                whole_start,
                whole_end,
                &mut add,
            )?;
            rollup::readings(connection, &series, whole_end, range_end, &mut add)?;
        }
        _ => rollup::readings(connection, &series, range_start, range_end, &mut add)?,
    }
    let mut unit = None;
    let rows = sums
        .into_iter()
        .enumerate()
        .filter_map(|(index, sum)| {
            let sum = sum?;
            let newest = sum.newest;
            if let Some(newest_unit) = newest.as_ref().and_then(|newest| newest.unit.clone()) {
                unit = Some(newest_unit);
            }
            Some(BucketRow {
                index: index as i64,
                min: sum.min,
                max: sum.max,
                last: newest.map(|newest| newest.value),
                first_time: Some(sum.first_ms as f64 / 1000.0),
                last_time: Some(sum.last_ms as f64 / 1000.0),
                readings: sum.readings,
                valued: sum.valued,
                suspect: sum.suspect,
            })
        })
        .collect();
    Ok((rows, unit))
}

impl HistoryQuery {
    /// Reads the query string; `now` is the default end of the range.
    pub fn parse(pairs: Vec<(String, String)>, now: Timestamp) -> Result<HistoryQuery, ApiError> {
        let (mut bus, mut address, mut name) = (None, None, None);
        let (mut from, mut to, mut points) = (None, None, MAX_POINTS);
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return Err(ApiError::bad_request(format!(
                    "'{key}' is given twice; give it once"
                )));
            }
            match key.as_str() {
                "bus" => bus = Some(value),
                "name" => name = Some(value),
                "address" => address = Some(readings::address(&value)?),
                "from" => from = Some(readings::time(&key, &value)?),
                "to" => to = Some(readings::time(&key, &value)?),
                "points" => {
                    points = value
                        .parse()
                        .ok()
                        .filter(|points| (1..=MAX_POINTS).contains(points))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "points={value} is not a number of points from 1 to {MAX_POINTS}, such as points=500"
                            ))
                        })?;
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "'{key}' is not a parameter here; the parameters are bus, address, name, from, to, points"
                    )));
                }
            }
            seen.push(key);
        }
        let missing = |what: &str| {
            ApiError::bad_request(format!(
                "the history of which value? give bus, address and name, such as /api/history?bus=heat&address=63&name=T1 ({what} is missing)"
            ))
        };
        let to = to.unwrap_or(now);
        let from = from.unwrap_or_else(|| to.checked_sub(DEFAULT_RANGE).unwrap_or(to));
        if from > to {
            return Err(ApiError::bad_request(format!(
                "from={from} is after to={to}; the range would be empty"
            )));
        }
        Ok(HistoryQuery {
            bus: bus.ok_or_else(|| missing("bus"))?,
            address: address.ok_or_else(|| missing("address"))?,
            name: name.ok_or_else(|| missing("name"))?,
            from,
            to,
            points,
        })
    }
}

/// `GET /api/history`.
pub async fn history(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<JsonValue>, ApiError> {
    let Query(pairs) = query.map_err(|rejection| {
        ApiError::bad_request(format!("the query string cannot be read: {rejection}"))
    })?;
    let query = HistoryQuery::parse(pairs, Timestamp::now())?;
    let Some(database) = state.database.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no history is stored here: the SQLite sink is off; turn it on with sqlite = \"kmplog.db\" under [sinks] \
             or --sink sqlite:kmplog.db",
        ));
    };
    let buckets = Buckets::new(query.from, query.to, query.points);
    let answer = tokio::task::spawn_blocking(move || {
        let read = bucket_rows(&database, &query, &buckets);
        (database, query, read)
    })
    .await
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the database: {error}"),
        )
    })?;
    let (database, query, read) = answer;
    let (rows, unit) = read.map_err(|error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the SQLite database {} cannot be read now: {error}",
                database.display()
            ),
        )
    })?;
    let series = assemble(&buckets, &rows);
    Ok(Json(json!({
        "bus": query.bus,
        "address": query.address,
        "name": query.name,
        "unit": unit,
        "from": query.from.to_string(),
        "to": query.to.to_string(),
        "bucket_ms": buckets.width_ms,
        "time": series.time,
        "min": series.min,
        "max": series.max,
        "last": series.last,
        "last_text": series.last_text,
        "suspect": series.suspect,
        "failed": series.failed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_is_cut_into_at_most_the_points_asked_for() {
        // (from, to, points, width_ms, count): whole seconds from a second
        // and up, whole milliseconds below.
        let cases = [
            (
                "2026-12-01T10:00:00Z",
                "2026-12-01T11:00:00Z",
                2000,
                2000,
                1801,
            ),
            (
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:59:59.999Z",
                2000,
                2000,
                1800,
            ),
            (
                "2026-12-01T10:00:00.5Z",
                "2026-12-01T11:00:00Z",
                2000,
                2000,
                1801,
            ),
            // A week: on the minute summaries' grid.
            (
                "2026-12-01T10:00:00Z",
                "2026-12-08T10:00:00Z",
                2000,
                360_000,
                1681,
            ),
            // A year: on the hour summaries' grid.
            (
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
                2000,
                18_000_000,
                1753,
            ),
            // A day from half a minute: the grid starts at the minute.
            (
                "2026-12-01T10:00:30Z",
                "2026-12-02T10:00:30Z",
                100,
                900_000,
                97,
            ),
            (
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:33:19.999Z",
                2000,
                1000,
                2000,
            ),
            (
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:33:20Z",
                2000,
                2000,
                1001,
            ),
            (
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:00:09.999Z",
                2000,
                5,
                2000,
            ),
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z", 2000, 1, 1),
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:07Z", 2, 4000, 2),
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.002Z", 1, 3, 1),
        ];
        for (from, to, points, width_ms, count) in cases {
            let buckets = Buckets::new(at(from), at(to), points);
            assert_eq!(
                (buckets.width_ms, buckets.count),
                (width_ms, count),
                "{from} to {to} in {points}"
            );
            assert!(buckets.count <= points as i64);
            // The first bucket holds `from`, the last `to`.
            assert!(buckets.from_ms <= at(from).as_millisecond(), "{from}");
            let last_end = buckets.from_ms + buckets.count * buckets.width_ms;
            assert!(at(to).as_millisecond() < last_end, "{from} to {to}");
            // Buckets a minute or longer are whole summaries.
            assert_eq!(buckets.level.is_some(), width_ms >= 60_000, "{from}");
            if let Some(level) = buckets.level {
                assert_eq!(buckets.from_ms % level.width_ms, 0, "{from}");
                assert_eq!(buckets.width_ms % level.width_ms, 0, "{from}");
            }
        }
    }

    /// Random readings of T1 at address 1 over three days, stored through
    /// the sink in a shuffled order, some batches twice: every half a
    /// second to a minute, with times to the nanosecond; bursts in the same
    /// millisecond and at the same time; pauses of minutes to hours;
    /// `suspect`, `logged` and failed ones; and another meter's and another
    /// value's readings.
    async fn random_database(dir: &Path, rng: &mut fastrand::Rng) -> std::path::PathBuf {
        use crate::outbox::Stored;
        use crate::reading::Status;
        use crate::sink::sqlite::SqliteSink;
        let path = dir.join("kmplog.db");
        let mut readings = Vec::new();
        let mut time = at("2026-12-01T00:00:00Z");
        let end = at("2026-12-04T00:00:00Z");
        // Spells of a reading every few seconds make dense hours.
        let mut fast = false;
        while time < end {
            fast = if fast {
                rng.u16(0..300) != 0
            } else {
                rng.u16(0..60) == 0
            };
            let step = match rng.u8(0..100) {
                0 if !fast => SignedDuration::from_secs(rng.i64(60..4 * 3600)),
                1..=5 => SignedDuration::ZERO,
                6..=10 => SignedDuration::from_nanos(rng.i64(1..1_000_000)),
                _ if fast => SignedDuration::from_nanos(rng.i64(100_000_000..5_000_000_000)),
                _ => SignedDuration::from_nanos(rng.i64(500_000_000..60_000_000_000)),
            };
            time = time.checked_add(step).unwrap();
            let (address, name) = match rng.u8(0..10) {
                0 => (2, "T1"),
                1 => (1, "T2"),
                _ => (1, "T1"),
            };
            let status = match rng.u8(0..20) {
                0 => Status::Suspect,
                1 => Status::Logged,
                2 | 3 => Status::Timeout,
                _ => Status::Ok,
            };
            let value = format!("{}.{:02}", rng.i32(-20..90), rng.u8(0..100));
            let value = (status != Status::Timeout).then_some(value.as_str());
            readings.push(heat_reading(time, address, name, value, status));
        }
        rng.shuffle(&mut readings);
        let stored: Vec<Stored> = readings
            .into_iter()
            .zip(1..)
            .map(|(reading, seq)| Stored {
                seq,
                key: format!("k-{seq}"),
                instance: None,
                reading,
            })
            .collect();
        // The sink's clock runs from the first day to the middle of the
        // third, so that most hours are summed up when they end, with
        // readings of theirs coming late and summed up at once, and the
        // last half day is still open.
        let mut now = at("2026-12-01T00:00:00Z");
        let mut sink = SqliteSink::open_at(&path, now).unwrap();
        let batches = stored.chunks(500);
        let tick = SignedDuration::from_hours(60) / i32::try_from(batches.len()).unwrap();
        for batch in batches {
            now = now.checked_add(tick).unwrap();
            sink.write_at(batch, now).unwrap();
            if rng.u8(0..4) == 0 {
                sink.write_at(batch, now).unwrap();
            }
        }
        sink.write_at(&[], at("2026-12-03T12:00:00Z")).unwrap();
        path
    }

    #[tokio::test]
    async fn answers_from_summaries_are_those_from_the_readings() {
        let mut rng = fastrand::Rng::with_seed(8);
        let dir = tempfile::tempdir().unwrap();
        let path = random_database(dir.path(), &mut rng).await;
        let connection = Connection::open(&path).unwrap();
        assert!(rollup::present(&connection).unwrap());
        let (dense, sparse): (i64, i64) = connection
            .query_row(
                "SELECT SUM(readings > ?1), SUM(readings <= ?1) FROM rollup_hour \
                 WHERE bus = 'heat' AND address = 1 AND name = 'T1'",
                [i64::try_from(rollup::DENSE_HOUR).unwrap()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert!(
            dense > 10 && sparse > 10,
            "{dense} dense hours, {sparse} sparse"
        );
        let open = rollup::open_from(&connection).unwrap();
        assert_eq!(open, Some(at("2026-12-03T12:00:00Z").as_millisecond()));
        let start = at("2026-12-01T00:00:00Z").as_millisecond();
        let span = 3 * 24 * 3_600_000;
        let mut ranges = vec![
            (at("2026-11-30T00:00:00Z"), at("2026-12-05T00:00:00Z"), 2000),
            (at("2026-12-01T00:00:00Z"), at("2026-12-04T00:00:00Z"), 7),
            (
                at("2026-12-01T10:00:00Z"),
                at("2026-12-01T10:59:59.999Z"),
                1,
            ),
            (
                at("2026-12-01T10:00:00.5Z"),
                at("2026-12-01T10:01:00.5Z"),
                1,
            ),
        ];
        for _ in 0..300 {
            let from = start + rng.i64(0..span);
            let to = from + rng.i64(0..span / 2);
            let points = match rng.u8(0..3) {
                0 => rng.usize(1..10),
                1 => rng.usize(10..200),
                _ => rng.usize(200..=MAX_POINTS),
            };
            ranges.push((
                Timestamp::from_millisecond(from).unwrap(),
                Timestamp::from_millisecond(to).unwrap(),
                points,
            ));
        }
        let mut levels_used = Vec::new();
        let mut answered = 0;
        for (from, to, points) in ranges {
            let query = HistoryQuery {
                bus: "heat".to_owned(),
                address: 1,
                name: "T1".to_owned(),
                from,
                to,
                points,
            };
            let buckets = Buckets::new(from, to, points);
            let summed = sum_up(&connection, &query, &buckets, true).unwrap();
            let read = sum_up(&connection, &query, &buckets, false).unwrap();
            assert_eq!(summed, read, "{from} to {to} in {points}");
            answered += usize::from(!read.0.is_empty());
            levels_used.push(buckets.level.map(|level| level.table));
        }
        for level in [None, Some("rollup_minute"), Some("rollup_hour")] {
            let times = levels_used.iter().filter(|&&used| used == level).count();
            assert!(times > 20, "{level:?} used {times} times");
        }
        assert!(answered > 250, "{answered} answers with readings");
    }

    /// A bucket with `valued` readings evenly between `first` and `last`.
    fn row(index: i64, first: f64, last: f64, valued: u64) -> BucketRow {
        BucketRow {
            index,
            min: Some(1.0),
            max: Some(2.0),
            last: Some("2".to_owned()),
            first_time: Some(first),
            last_time: Some(last),
            readings: valued,
            valued,
            ..BucketRow::default()
        }
    }

    #[test]
    fn gaps_are_marked_where_readings_stop_for_longer_than_they_usually_come() {
        let buckets = Buckets {
            level: None,
            from_ms: 0,
            width_ms: 10_000,
            count: 10,
        };
        // (what, rows, where a gap marker is, as an index into the series)
        let cases: Vec<(&str, Vec<BucketRow>, Vec<usize>)> = vec![
            (
                "every bucket has readings",
                vec![
                    row(0, 0.0, 9.0, 10),
                    row(1, 10.0, 19.0, 10),
                    row(2, 20.0, 29.0, 10),
                ],
                vec![],
            ),
            (
                "two empty buckets in 1 s readings",
                vec![row(0, 0.0, 9.0, 10), row(3, 30.0, 39.0, 10)],
                vec![1],
            ),
            (
                "readings sparser than the buckets: empty buckets, no outage",
                vec![
                    row(0, 5.0, 5.0, 1),
                    row(2, 25.0, 25.0, 1),
                    row(4, 45.0, 45.0, 1),
                ],
                vec![],
            ),
            (
                "readings every 10 s, then a pause of 60 s",
                vec![
                    row(0, 5.0, 5.0, 1),
                    row(1, 15.0, 15.0, 1),
                    row(2, 25.0, 25.0, 1),
                    row(3, 35.0, 35.0, 1),
                    row(9, 95.0, 95.0, 1),
                ],
                vec![4],
            ),
            ("a single reading", vec![row(5, 50.0, 50.0, 1)], vec![]),
        ];
        for (what, rows, gaps) in cases {
            let series = assemble(&buckets, &rows);
            let found: Vec<usize> = (0..series.time.len())
                .filter(|&i| series.last[i].is_none())
                .collect();
            assert_eq!(found, gaps, "{what}");
            assert_eq!(series.time.len(), rows.len() + gaps.len(), "{what}");
            for gap in gaps {
                // The marker sits at the first empty bucket after the readings.
                assert!(series.time[gap] > series.time[gap - 1], "{what}");
                assert!(series.time[gap] < series.time[gap + 1], "{what}");
            }
        }
    }

    #[test]
    fn a_bucket_of_failed_readings_has_no_values_and_counts_them() {
        let buckets = Buckets {
            level: None,
            from_ms: 0,
            width_ms: 1000,
            count: 3,
        };
        let failed = BucketRow {
            index: 1,
            first_time: Some(1.0),
            last_time: Some(1.9),
            readings: 3,
            ..BucketRow::default()
        };
        let series = assemble(
            &buckets,
            &[row(0, 0.0, 0.9, 2), failed, row(2, 2.0, 2.9, 2)],
        );
        assert_eq!(series.time, vec![0.0, 1.0, 2.0]);
        assert_eq!(series.last, vec![Some(2.0), None, Some(2.0)]);
        assert_eq!(series.failed, vec![0, 3, 0]);
    }

    #[test]
    fn the_query_names_its_mistakes() {
        let now = at("2026-12-01T11:00:00Z");
        let parse = |query: &str| {
            let pairs: Vec<(String, String)> = query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap();
                    (key.to_owned(), value.to_owned())
                })
                .collect();
            HistoryQuery::parse(pairs, now).map_err(|error| error.message)
        };
        let query = parse("bus=heat&address=63&name=T1").unwrap();
        assert_eq!((query.from, query.to), (at("2026-12-01T10:00:00Z"), now));
        assert_eq!(query.points, MAX_POINTS);
        for (query, expected) in [
            ("bus=heat&name=T1", "address is missing"),
            (
                "bus=heat&address=300&name=T1",
                "address=300 is not a meter address",
            ),
            (
                "bus=heat&address=1&name=T1&points=0",
                "points=0 is not a number of points from 1 to 2000",
            ),
            (
                "bus=heat&address=1&name=T1&from=yesterday",
                "from=yesterday is not an RFC 3339 time",
            ),
            (
                "bus=heat&address=1&name=T1&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
                "is after to=",
            ),
            (
                "bus=heat&address=1&name=T1&limit=5",
                "'limit' is not a parameter here",
            ),
            (
                "bus=heat&bus=cold&address=1&name=T1",
                "'bus' is given twice",
            ),
        ] {
            let error = parse(query).unwrap_err();
            assert!(error.contains(expected), "{query}: {error}");
        }
    }

    /// A reading of register 86 (°C) on the bus `heat`.
    fn heat_reading(
        time: Timestamp,
        address: u8,
        name: &str,
        value: Option<&str>,
        status: crate::reading::Status,
    ) -> crate::reading::Reading {
        crate::reading::Reading {
            time,
            bus: "heat".to_owned(),
            address,
            request: "Main".to_owned(),
            register: 86,
            name: name.to_owned(),
            value: value.map(|value| (value.parse().unwrap(), kmp::unit::Unit(0x25))),
            status,
        }
    }

    /// A SQLite sink file with 1 s readings of T1 at address 1 from 10:00
    /// for 600 s, except: none from 10:04:00 to 10:05:59 (the gateway was
    /// off), timeouts from 10:08:00 to 10:08:09, a suspect one at 10:09:00;
    /// and T1 of address 2 and T2 of address 1 at the same times, which
    /// must not mix in.
    async fn generated_database(dir: &Path) -> std::path::PathBuf {
        use crate::outbox::Stored;
        use crate::reading::Status;
        use crate::sink::Sink;
        use crate::sink::sqlite::SqliteSink;
        let path = dir.join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let start = at("2026-12-01T10:00:00Z");
        let mut batch = Vec::new();
        for second in 0..600_i64 {
            if (240..360).contains(&second) {
                continue;
            }
            let time = start
                .checked_add(SignedDuration::from_secs(second))
                .unwrap();
            for (address, name) in [(1, "T1"), (2, "T1"), (1, "T2")] {
                let failed = (480..490).contains(&second) && address == 1 && name == "T1";
                let value = format!("{}.{:02}", 20 + address, second % 100);
                let status = match second {
                    _ if failed => Status::Timeout,
                    540 => Status::Suspect,
                    _ => Status::Ok,
                };
                let seq = batch.len() as u64 + 1;
                batch.push(Stored {
                    seq,
                    key: format!("k-{seq}"),
                    instance: None,
                    reading: heat_reading(
                        time,
                        address,
                        name,
                        (!failed).then_some(value.as_str()),
                        status,
                    ),
                });
            }
        }
        sink.deliver(&batch).await.unwrap();
        path
    }

    async fn get(state: &ApiState, uri: &str) -> (u16, JsonValue) {
        use tower::ServiceExt;
        let request = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = super::super::router(state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_endpoint_buckets_one_value_with_its_gaps_suspects_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let (live, _) = tokio::sync::broadcast::channel(1);
        let mut state = ApiState::new(
            crate::bus::events::EventRouter::from_routes([]),
            Vec::new(),
            std::sync::Arc::default(),
            live,
        );
        state.database = Some(generated_database(dir.path()).await);
        // 10 minutes in 60 buckets of 10 s (the range holds `to`, so 10001 ms).
        let (status, answer) = get(
            &state,
            "/api/history?bus=heat&address=1&name=T1&from=2026-12-01T10:00:00Z&to=2026-12-01T10:09:59.999Z&points=60",
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["bucket_ms"], 10_000);
        assert_eq!(answer["unit"], "°C");
        let time = answer["time"].as_array().unwrap();
        let last = answer["last"].as_array().unwrap();
        assert!(time.len() <= 60);
        // 24 buckets of readings, a gap marker at 10:04:00 for the two
        // minutes without any, 12 buckets, 1 of timeouts only, 11 buckets.
        assert_eq!(time.len(), 24 + 1 + 12 + 1 + 11);
        let start = at("2026-12-01T10:00:00Z").as_second() as f64;
        let gaps: Vec<f64> = (0..time.len())
            .filter(|&i| last[i].is_null() && answer["failed"][i] == 0)
            .map(|i| time[i].as_f64().unwrap() - start)
            .collect();
        assert_eq!(gaps, vec![240.0]);
        // The first bucket: 10:00:00 to 10:00:09, values 21.00 to 21.09.
        assert_eq!(answer["min"][0], 21.0);
        assert_eq!(answer["max"][0], 21.09);
        assert_eq!(answer["last_text"][0], "21.09");
        // 10:08:00 to 10:08:09 only timed out: no value, 10 failed.
        let failed_bucket = time
            .iter()
            .position(|t| t.as_f64().unwrap() - start == 480.0)
            .unwrap();
        assert!(answer["last"][failed_bucket].is_null());
        assert_eq!(answer["failed"][failed_bucket], 10);
        let suspect: u64 = answer["suspect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|count| count.as_u64().unwrap())
            .sum();
        assert_eq!(suspect, 1);
        // Values are those of address 1's T1 only (address 2 reads 22.xx).
        assert!(
            answer["max"]
                .as_array()
                .unwrap()
                .iter()
                .all(|max| max.as_f64().is_none_or(|max| max < 22.0))
        );

        // The range's ends are exact: 10:00:05 to 10:00:07 holds 3 readings.
        let (_, answer) = get(
            &state,
            "/api/history?bus=heat&address=1&name=T1&from=2026-12-01T10:00:05Z&to=2026-12-01T10:00:07Z&points=1",
        )
        .await;
        assert_eq!(answer["min"], json!([21.05]));
        assert_eq!(answer["max"], json!([21.07]));
        assert_eq!(answer["last_text"], json!(["21.07"]));

        // When the newest readings of a bucket failed, its last value is the
        // newest that has one.
        let (_, answer) = get(
            &state,
            "/api/history?bus=heat&address=1&name=T1&from=2026-12-01T10:07:55Z&to=2026-12-01T10:08:04Z&points=1",
        )
        .await;
        assert_eq!(answer["last_text"], json!(["21.79"]));
        assert_eq!(answer["failed"], json!([5]));

        let (status, answer) = get(&state, "/api/history?bus=heat&name=T1").await;
        assert_eq!(status, 400, "{answer}");
        state.database = None;
        let (status, answer) = get(&state, "/api/history?bus=heat&address=1&name=T1").await;
        assert_eq!(status, 404, "{answer}");
    }
}
