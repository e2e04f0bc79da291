//! The loggers of a simulated heat meter: hourly, daily, monthly and yearly
//! history, answered through the logger command 0xB8 as kmp-protocol.md §3.1
//! describes.
//!
//! Nothing is stored: a row is the meter's registers at the end of its
//! interval (the first instant of the next, as the real yearly row of
//! 2026-01-01 holds the year 2025), read from the same closed forms as the
//! live registers at that earlier time. Log ids count intervals since the
//! meter's installation, [`HISTORY`] before the simulator started, so every
//! logger is full from the start and its newest id grows as time goes on.
//!
//! A reply holds at most [`REPLY_DATA_BYTES`] bytes of rows: a longer answer
//! is cut short with info bit 4, as a real meter's buffer does.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use kmp::logger::{
    DATE_TIME_REGISTER, LogEntries, LogInfo, LogQuery, LogRegisters, LogTable, Logger,
    LoggerConfiguration, LoggerRequest, LoggerResponse,
};
use kmp::{RegisterValue, Value};

use super::meter::{HISTORY, Meter, Moment};

/// Most bytes of rows in one reply (header row included). A frame of that
/// much data stays well within the 1024 bytes a frame may have on the wire,
/// stuffing included.
pub const REPLY_DATA_BYTES: usize = 400;

/// Bytes of a row reply before its rows: subcommand, logger, entries,
/// register count, first and last log id, info.
const REPLY_HEAD_BYTES: usize = 15;

/// The registers every logger keeps, those the meter's model has: the time
/// stamps (348, and 1003 date with 1002 time), the energy and volume
/// counters, temperatures, flow, power, the hours counter and the info code
/// (after the daily set that works on a real 603, §3.1).
pub const LOG_REGISTERS: [u16; 19] = [
    348, 1003, 1002, 60, 61, 62, 63, 68, 97, 110, 86, 87, 74, 80, 379, 380, 369, 99, 1004,
];

/// One logger: which, its interval and its depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggerSpec {
    /// The logger type.
    pub logger: Logger,
    /// How often it logs.
    pub interval: Interval,
    /// How many rows it keeps.
    pub depth: u32,
}

/// A logger's interval, on the UTC calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// On the hour.
    Hour,
    /// At midnight.
    Day,
    /// At midnight on the first of the month.
    Month,
    /// At midnight on January 1.
    Year,
}

/// The loggers a simulated heat meter keeps.
pub const LOGGERS: [LoggerSpec; 4] = [
    LoggerSpec {
        logger: Logger::HOURLY,
        interval: Interval::Hour,
        depth: 1_460,
    },
    LoggerSpec {
        logger: Logger::DAILY,
        interval: Interval::Day,
        depth: 460,
    },
    LoggerSpec {
        logger: Logger::MONTHLY,
        interval: Interval::Month,
        depth: 36,
    },
    LoggerSpec {
        logger: Logger::YEARLY,
        interval: Interval::Year,
        depth: 20,
    },
];

/// The spec of `logger`, if a simulated meter keeps it.
pub fn spec(logger: Logger) -> Option<LoggerSpec> {
    LOGGERS.into_iter().find(|spec| spec.logger == logger)
}

impl Interval {
    /// The index of the interval `unix_seconds` falls in, counted from 1970.
    fn index(self, unix_seconds: i64) -> i64 {
        match self {
            Interval::Hour => unix_seconds.div_euclid(3_600),
            Interval::Day => unix_seconds.div_euclid(86_400),
            Interval::Month | Interval::Year => {
                let (date, _) = super::meter::civil(unix_seconds);
                let (year, month) = (i64::try_from(date / 10_000).unwrap_or(0), date / 100 % 100);
                if self == Interval::Month {
                    year * 12 + i64::try_from(month).unwrap_or(1) - 1
                } else {
                    year
                }
            }
        }
    }

    /// The first instant of interval `index`.
    fn start(self, index: i64) -> i64 {
        match self {
            Interval::Hour => index * 3_600,
            Interval::Day => index * 86_400,
            Interval::Month => first_of_month(index.div_euclid(12), index.rem_euclid(12) + 1),
            Interval::Year => first_of_month(index, 1),
        }
    }
}

/// Midnight UTC on the first of `month` in `year`, in Unix seconds.
fn first_of_month(year: i64, month: i64) -> i64 {
    let date = i16::try_from(year)
        .ok()
        .zip(i8::try_from(month).ok())
        .and_then(|(year, month)| Date::new(year, month, 1).ok());
    date.and_then(|date| TimeZone::UTC.to_timestamp(DateTime::from(date)).ok())
        .map_or(0, |timestamp| timestamp.as_second())
}

/// Where a meter's logger stands at a moment.
#[derive(Debug, Clone, Copy)]
struct Book {
    spec: LoggerSpec,
    /// Unix seconds when the simulator started.
    start: i64,
    /// The index of the interval the meter was installed in: log id `n` is
    /// the end of interval `installed + n - 1`, the start of the next.
    installed: i64,
    /// The newest log id.
    newest: u32,
}

impl Book {
    fn at(spec: LoggerSpec, at: Moment) -> Book {
        let since_start = i64::try_from(at.elapsed.as_secs()).unwrap_or(i64::MAX);
        let start = at.unix_seconds.saturating_sub(since_start);
        let history = i64::try_from(HISTORY.as_secs()).unwrap_or(0);
        let installed = spec.interval.index(start - history);
        let newest = spec.interval.index(at.unix_seconds) - installed;
        Book {
            spec,
            start,
            installed,
            newest: u32::try_from(newest).unwrap_or(0),
        }
    }

    /// The oldest log id still kept.
    fn oldest(&self) -> u32 {
        self.newest
            .saturating_sub(self.spec.depth - 1)
            .max(1)
            .min(self.newest)
    }

    /// The instant row `log_id` stands for.
    fn time_of(&self, log_id: u32) -> i64 {
        self.spec.interval.start(self.installed + i64::from(log_id))
    }

    /// Row `log_id`: `registers` as they were at its instant.
    fn row(&self, meter: &Meter, log_id: u32, registers: &[u16]) -> Vec<RegisterValue> {
        let unix_seconds = self.time_of(log_id);
        // i64 seconds to f64: exact for any date a meter shows.
        let since_start = (unix_seconds - self.start) as f64;
        registers
            .iter()
            .filter_map(|&id| meter.value_at(id, since_start, unix_seconds))
            .collect()
    }
}

/// The registers of `meter`'s loggers: [`LOG_REGISTERS`] that its model
/// has, and the time stamp 348, which a 603 logs (§3.1) though the
/// catalogue has it from the 403's list only.
pub fn registers(meter: &Meter) -> Vec<u16> {
    LOG_REGISTERS
        .into_iter()
        .filter(|&id| id == DATE_TIME_REGISTER || meter.model().register(id).is_some())
        .collect()
}

/// The meter's answer to a logger request at `at`; `None` where it stays
/// silent (the configuration of a logger it does not keep, a subcommand
/// without public layout).
pub fn answer(meter: &Meter, request: &LoggerRequest, at: Moment) -> Option<LoggerResponse> {
    match request {
        LoggerRequest::GetConfiguration { logger } => {
            let spec = spec(*logger)?;
            let registers = LogRegisters::new(&registers(meter)).ok()?;
            Some(LoggerResponse::Configuration(LoggerConfiguration {
                logger: *logger,
                date1_format: 0,
                date1: 0,
                date2_format: 0,
                date2: 0,
                max_records_format: 0,
                max_records: 0,
                interval_format: 0,
                interval: 0,
                depth: u16::try_from(spec.depth).unwrap_or(u16::MAX),
                registers,
            }))
        }
        LoggerRequest::GetLogIdPastAbs {
            logger,
            log_id,
            entries,
            registers,
        } => Some(rows(
            meter,
            LogQuery::IdPastAbs,
            *logger,
            Start::LogId(*log_id),
            *entries,
            registers,
            at,
        )),
        LoggerRequest::GetLogLastEntryPastAbs {
            logger,
            offset,
            entries,
            registers,
        } => Some(rows(
            meter,
            LogQuery::LastEntryPastAbs,
            *logger,
            Start::Back(*offset),
            *entries,
            registers,
            at,
        )),
        LoggerRequest::Other { .. } => None,
    }
}

/// Where a row query starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// At a log id.
    LogId(u32),
    /// This many rows back from the newest; `FF FF`, the one offset seen in
    /// public, is taken to mean the newest itself.
    Back(u16),
}

fn rows(
    meter: &Meter,
    query: LogQuery,
    logger: Logger,
    start: Start,
    entries: u16,
    asked: &[u16],
    at: Moment,
) -> LoggerResponse {
    let reply = |first_log_id: u32, last_log_id: u32, info: u16, table: LogTable| {
        LoggerResponse::Entries(LogEntries {
            query,
            logger,
            first_log_id,
            last_log_id,
            info: LogInfo(info),
            table,
        })
    };
    let Some(spec) = spec(logger) else {
        return reply(0, 0, LogInfo::INVALID_REQUEST, LogTable::empty(0));
    };
    let book = Book::at(spec, at);
    let kept = registers(meter);
    let columns: Vec<u16> = asked
        .iter()
        .copied()
        .filter(|id| kept.contains(id))
        .collect();
    let mut info = 0;
    if columns.len() < asked.len() {
        info |= LogInfo::UNSUPPORTED_REGISTER;
    }
    let first = match start {
        Start::LogId(log_id) => log_id,
        Start::Back(0xFFFF) => book.newest,
        Start::Back(back) => book.newest.saturating_sub(u32::from(back)),
    };
    if columns.is_empty() || entries == 0 {
        return reply(first, book.newest, info, LogTable::empty(0));
    }
    if !(book.oldest()..=book.newest).contains(&first) {
        return reply(
            first,
            book.newest,
            info | LogInfo::OUT_OF_RANGE,
            LogTable::empty(0),
        );
    }
    let wanted = u32::from(entries).min(first - book.oldest() + 1);
    let mut table: Vec<Vec<RegisterValue>> = Vec::new();
    let mut used = REPLY_HEAD_BYTES;
    for log_id in (first + 1 - wanted..=first).rev() {
        let row = book.row(meter, log_id, &columns);
        let bytes = if table.is_empty() {
            row.iter().map(|cell| 5 + cell.value.width()).sum::<usize>()
        } else {
            row.iter().map(|cell| cell.value.width()).sum()
        };
        if used + bytes > REPLY_DATA_BYTES && !table.is_empty() {
            info |= LogInfo::ENTRIES_TRUNCATED;
            break;
        }
        used += bytes;
        table.push(row);
    }
    let last_row = first + 1 - u32::try_from(table.len()).unwrap_or(0);
    if first == book.newest {
        info |= LogInfo::HEAD_INCLUDED;
    }
    if last_row == book.oldest() {
        info |= LogInfo::TAIL_INCLUDED;
    }
    match LogTable::new(same_layout(table)) {
        Ok(table) => reply(first, book.newest, info, table),
        Err(_) => reply(
            first,
            book.newest,
            info | LogInfo::INVALID_REQUEST,
            LogTable::empty(0),
        ),
    }
}

/// Gives each column the widest width any of its rows needs, as rows after
/// the first carry their mantissas in row 1's width.
fn same_layout(mut rows: Vec<Vec<RegisterValue>>) -> Vec<Vec<RegisterValue>> {
    let columns = rows.first().map_or(0, Vec::len);
    for column in 0..columns {
        let width = rows
            .iter()
            .filter_map(|row| row.get(column))
            .map(|cell| cell.value.width())
            .max()
            .unwrap_or(4);
        for cell in rows.iter_mut().filter_map(|row| row.get_mut(column)) {
            if let Ok(value) = Value::from_parts(
                cell.value.is_negative(),
                cell.value.mantissa(),
                cell.value.exponent(),
                width,
            ) {
                cell.value = value;
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kmp::catalogue::Model;
    use kmp::{Frame, Request, Response};

    use super::*;
    use crate::sim::meter::Answer;

    /// When the tests' simulator started: 2026-11-30 22:00:00 UTC.
    const START: i64 = 1_796_083_200 - 2 * 3_600;

    /// 2026-12-01 10:30:00 UTC, 12.5 hours after the start.
    fn moment() -> Moment {
        Moment::after(START, Duration::from_secs(12 * 3_600 + 1_800))
    }

    fn ask(meter: &Meter, request: LoggerRequest, at: Moment) -> LogEntries {
        let Some(Answer::Response(response)) = meter.answer(&Request::Logger(request), at) else {
            panic!("no answer");
        };
        // Through the wire and back, as a master reads it.
        let frame = Frame::decode(&response.to_frame(63).encode()).unwrap();
        match Response::decode(&frame) {
            Ok(Response::Logger(LoggerResponse::Entries(entries))) => entries,
            other => panic!("not rows: {other:?}"),
        }
    }

    fn by_id(logger: Logger, log_id: u32, entries: u16, registers: &[u16]) -> LoggerRequest {
        LoggerRequest::GetLogIdPastAbs {
            logger,
            log_id,
            entries,
            registers: LogRegisters::new(registers).unwrap(),
        }
    }

    fn newest(meter: &Meter, logger: Logger, at: Moment) -> LogEntries {
        ask(
            meter,
            LoggerRequest::GetLogLastEntryPastAbs {
                logger,
                offset: 0xFFFF,
                entries: 1,
                registers: LogRegisters::new(&[1003, 1002]).unwrap(),
            },
            at,
        )
    }

    #[test]
    fn rows_are_the_registers_at_the_end_of_each_interval() {
        let meter = Meter::new(63, Model::Multical603);
        let at = moment();
        let head = newest(&meter, Logger::DAILY, at);
        assert!(head.info.has(LogInfo::HEAD_INCLUDED));
        let texts: Vec<Option<String>> = head.table.rows()[0]
            .iter()
            .map(RegisterValue::natural)
            .collect();
        assert_eq!(
            texts,
            [Some("2026-12-01".to_owned()), Some("00:00:00".to_owned())]
        );
        let entries = ask(
            &meter,
            by_id(Logger::DAILY, head.first_log_id, 3, &[348, 60, 68, 1004]),
            at,
        );
        let rows = entries.table.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2][0].natural().as_deref(), Some("2026-11-29T00:00:00"));
        // The newest row is what the live registers read at midnight, two
        // hours after the start.
        let midnight = Moment::after(START, Duration::from_secs(2 * 3_600));
        for (cell, id) in rows[0][1..].iter().zip([60, 68, 1004]) {
            assert_eq!(Some(*cell), meter.read(id, midnight), "{id}");
        }
        // Counters rose from row to row.
        for pair in rows.windows(2) {
            for (newer, older) in pair[0][1..].iter().zip(&pair[1][1..]) {
                assert!(newer.value.compare(&older.value).is_gt(), "{newer:?}");
            }
        }
        let hours = |row: &[RegisterValue]| row[3].value.to_f64();
        assert_eq!(hours(&rows[0]) - hours(&rows[1]), 24.0);
        // And the newest row is below the live value.
        let live = meter.read(60, at).unwrap();
        assert!(live.value.compare(&rows[0][1].value).is_ge());
    }

    #[test]
    fn each_logger_is_full_to_its_depth() {
        let meter = Meter::new(17, Model::Multical403);
        let at = moment();
        for spec in LOGGERS {
            let head = newest(&meter, spec.logger, at);
            let oldest = head.last_log_id - (spec.depth - 1);
            let tail = ask(&meter, by_id(spec.logger, oldest, 5, &[1003]), at);
            assert_eq!(tail.table.rows().len(), 1, "{}", spec.logger);
            assert!(tail.info.has(LogInfo::TAIL_INCLUDED), "{}", spec.logger);
            let gone = ask(&meter, by_id(spec.logger, oldest - 1, 1, &[1003]), at);
            assert!(gone.info.has(LogInfo::OUT_OF_RANGE), "{}", spec.logger);
            assert!(gone.table.rows().is_empty());
            let ahead = ask(
                &meter,
                by_id(spec.logger, head.last_log_id + 1, 1, &[1003]),
                at,
            );
            assert!(ahead.info.has(LogInfo::OUT_OF_RANGE), "{}", spec.logger);
        }
        let yearly = newest(&meter, Logger::YEARLY, at);
        assert_eq!(
            yearly.table.rows()[0][0].natural().as_deref(),
            Some("2026-01-01")
        );
        let monthly = newest(&meter, Logger::MONTHLY, at);
        assert_eq!(
            monthly.table.rows()[0][0].natural().as_deref(),
            Some("2026-12-01")
        );
    }

    #[test]
    fn a_long_answer_is_cut_short_and_unknown_registers_are_flagged() {
        let meter = Meter::new(63, Model::Multical603);
        let at = moment();
        let head = newest(&meter, Logger::HOURLY, at).first_log_id;
        let all = registers(&meter);
        let entries = ask(&meter, by_id(Logger::HOURLY, head, 100, &all), at);
        assert!(entries.info.has(LogInfo::ENTRIES_TRUNCATED));
        assert!((2..100).contains(&entries.table.rows().len()));
        let reply = LoggerResponse::Entries(entries.clone()).encode();
        assert!(reply.len() <= REPLY_DATA_BYTES, "{} bytes", reply.len());
        let entries = ask(&meter, by_id(Logger::HOURLY, head, 2, &[60, 9_999]), at);
        assert!(entries.info.has(LogInfo::UNSUPPORTED_REGISTER));
        assert_eq!(entries.table.rows().len(), 2);
        assert_eq!(entries.table.rows()[0].len(), 1);
    }

    #[test]
    fn a_meter_without_loggers_is_silent() {
        let meter = Meter::new(63, Model::Multical603).without_loggers();
        let request = Request::Logger(by_id(Logger::DAILY, 1, 1, &[60]));
        assert_eq!(meter.answer(&request, moment()), None);
        let electricity = Meter::new(5, Model::Kamstrup382);
        assert_eq!(electricity.answer(&request, moment()), None);
    }

    /// The logger frames of the shared vectors (real MULTICAL 603 captures).
    const VECTORS: &str = include_str!("../../../kmp/tests/vectors/kmp-vectors.json");

    fn vector_frames(direction: &str) -> Vec<Frame> {
        let cases: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        cases
            .as_array()
            .unwrap()
            .iter()
            .filter(|case| case["direction"] == direction && case["decoded"]["cid"] == 0xB8)
            .map(|case| {
                let hex = case["wire"].as_str().unwrap();
                let wire: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
                    .collect();
                Frame::decode(&wire).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_vectors_requests_get_answers_in_the_real_meters_layout() {
        let meter = Meter::new(63, Model::Multical603);
        let at = moment();
        let real = vector_frames("from_meter");
        let [real] = real.as_slice() else {
            panic!("one logger reply in the vectors")
        };
        let Ok(Response::Logger(LoggerResponse::Entries(real))) = Response::decode(real) else {
            panic!("the vector reply decodes to rows")
        };
        let requests = vector_frames("to_meter");
        assert_eq!(requests.len(), 2);
        for frame in requests {
            let Ok(Request::Logger(request)) = Request::decode(&frame) else {
                panic!("a logger request")
            };
            // The real meter's newest yearly row was its log id 2; ask the
            // simulated one for its own newest, the rest as captured.
            let request = match request {
                LoggerRequest::GetLogIdPastAbs {
                    logger,
                    entries,
                    registers,
                    ..
                } => LoggerRequest::GetLogIdPastAbs {
                    logger,
                    log_id: newest(&meter, logger, at).first_log_id,
                    entries,
                    registers,
                },
                other => other,
            };
            let Some(Answer::Response(response)) =
                meter.answer(&Request::Logger(request.clone()), at)
            else {
                panic!("no answer to {request:?}")
            };
            let wire = response.to_frame(63).encode();
            let decoded = Response::decode(&Frame::decode(&wire).unwrap()).unwrap();
            match (&request, decoded) {
                (
                    LoggerRequest::GetConfiguration { logger },
                    Response::Logger(LoggerResponse::Configuration(configuration)),
                ) => {
                    assert_eq!(configuration.logger, *logger);
                    assert_eq!(configuration.depth, 20);
                    assert_eq!(configuration.registers.to_vec(), registers(&meter));
                }
                (
                    LoggerRequest::GetLogIdPastAbs { .. },
                    Response::Logger(LoggerResponse::Entries(simulated)),
                ) => {
                    assert_eq!(
                        (simulated.query, simulated.logger),
                        (real.query, real.logger)
                    );
                    let (ours, theirs) = (simulated.table.rows(), real.table.rows());
                    assert_eq!(ours.len(), theirs.len());
                    for (ours, theirs) in ours.iter().zip(theirs) {
                        for (ours, theirs) in ours.iter().zip(theirs) {
                            assert_eq!(
                                (
                                    ours.register,
                                    ours.unit,
                                    ours.value.width(),
                                    ours.value.exponent()
                                ),
                                (
                                    theirs.register,
                                    theirs.unit,
                                    theirs.value.width(),
                                    theirs.value.exponent()
                                )
                            );
                        }
                    }
                    // January 1 rows, a year apart, as the real meter's.
                    let texts: Vec<Option<String>> =
                        ours.iter().map(|row| row[0].natural()).collect();
                    assert_eq!(
                        texts,
                        [Some("2026-01-01".to_owned()), Some("2025-01-01".to_owned())]
                    );
                    assert!(simulated.info.has(LogInfo::HEAD_INCLUDED));
                }
                (request, other) => panic!("{request:?} answered with {other:?}"),
            }
        }
    }
}
