//! Reads a span of a meter's logger page by page, as kmp-protocol.md §3.1
//! says a master should: one GetLogIDPastAbs (`06`) per page, newest page
//! first; the first page as large as fits a frame, smaller from the moment
//! the meter cuts an answer short (info bit 4, or fewer rows than asked
//! before the tail) and going on from where the answer stopped; a page
//! retried once after a CRC error; done at the span's end or at the
//! logger's tail (info bit 6, or a log id out of range).
//!
//! Before the pages, one GetLogLastEntryPastAbs (`07`) of the newest row
//! finds the logger's head and which time stamp its rows carry (348, or
//! 1003 with 1002). A meter without 0xB8 stays silent (or answers nothing
//! usable): that is [`LogReadError::NoLogger`], naming what was asked.
//!
//! ```text
//! let plan = Plan { logger: Logger::DAILY, registers: vec![60, 68], span: Span::Last(10) };
//! let read = read_log(&mut master, 63, &plan, |progress| bar.set(progress.rows)).await?;
//! for row in &read.rows { /* oldest first: row.log_id, row.time, row.values */ }
//! ```

use jiff::civil::DateTime;
use kmp::logger::{
    DATE_REGISTER, DATE_TIME_REGISTER, LogEntries, LogInfo, LogRegisters, Logger, LoggerRequest,
    LoggerResponse, MAX_LOG_REGISTERS, TIME_REGISTER, row_time,
};
use kmp::message::{Request, Response};
use kmp::value::RegisterValue;

use crate::bus::{Master, Outcome};
use crate::transport::{Line, TransportError};

/// Data bytes a page is sized for before the meter has said otherwise: a
/// frame of this much data stays within the 1024 bytes a frame may take on
/// the wire even if every byte needed stuffing.
pub const PAGE_DATA_BYTES: usize = 480;

/// Bytes of a row reply before its rows (subcommand, logger, counts, ids,
/// info).
const REPLY_HEAD_BYTES: usize = 15;

/// Which rows to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The newest `n` rows.
    Last(u32),
    /// `count` rows from log id `first` on: `first`, `first + 1`, ...
    Ids {
        /// The oldest log id wanted.
        first: u32,
        /// How many.
        count: u32,
    },
    /// The rows logged from `from` to `to` (both included) by the meter's
    /// clock; an open end reaches to the tail or the head.
    Time {
        /// The earliest time wanted.
        from: Option<DateTime>,
        /// The latest time wanted.
        to: Option<DateTime>,
    },
}

/// What to read from one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The logger.
    pub logger: Logger,
    /// The registers of each row, besides the time stamp.
    pub registers: Vec<u16>,
    /// Which rows.
    pub span: Span,
}

/// One row of a logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// The row's log id.
    pub log_id: u32,
    /// When the meter logged it, by its own clock (no time zone); `None`
    /// when the logger keeps no time stamp.
    pub time: Option<DateTime>,
    /// The registers asked for that the row has, in the order asked.
    pub values: Vec<RegisterValue>,
}

/// How the reading went, for messages and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Logger requests sent (the head's included, retries of the master
    /// not).
    pub requests: u32,
    /// Answers the meter cut short.
    pub cut_short: u32,
    /// Pages asked again after a CRC error or an invalid reply.
    pub retries: u32,
    /// The page size at the end, in rows.
    pub page: u16,
}

/// What a read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    /// The rows, oldest first, each log id once.
    pub rows: Vec<LogRow>,
    /// The newest log id in the meter when the read began.
    pub head: u32,
    /// Registers asked for that the logger does not keep.
    pub unsupported: Vec<u16>,
    /// How it went.
    pub stats: Stats,
}

/// How far a read has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows read so far.
    pub rows: u32,
    /// Rows the span covers at most.
    pub expected: u32,
}

/// Why a logger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// The meter did not answer 0xB8 at all, or not with rows.
    #[error(
        "meter {address} gave no {logger} logger rows: {what} (asked for its newest row with the logger command 0xB8); a meter without loggers does not answer it"
    )]
    NoLogger {
        /// The meter.
        address: u8,
        /// The logger asked.
        logger: Logger,
        /// What it did instead.
        what: String,
        /// It did not answer at all: a meter without loggers, or one that
        /// went silent at that moment.
        silent: bool,
    },
    /// A page went unanswered, or stayed invalid after a retry.
    #[error(
        "meter {address}, {logger} logger: the page from log id {log_id} failed: {what} ({rows} rows read before)"
    )]
    Page {
        /// The meter.
        address: u8,
        /// The logger.
        logger: Logger,
        /// The newest log id of the page.
        log_id: u32,
        /// What happened.
        what: String,
        /// Rows read before it.
        rows: usize,
    },
    /// A time span over a logger whose rows carry no time stamp.
    #[error(
        "meter {address}, {logger} logger: its rows carry no time stamp (register 348, or 1003 and 1002), so --from/--to cannot be found; read by --last or --id instead"
    )]
    NoTimeStamp {
        /// The meter.
        address: u8,
        /// The logger.
        logger: Logger,
    },
    /// More registers than a request can name.
    #[error("{count} registers asked for; a logger request names at most {MAX_LOG_REGISTERS}")]
    TooManyRegisters {
        /// How many, with the time stamp.
        count: usize,
    },
    /// The line failed.
    #[error(transparent)]
    Line(#[from] TransportError),
}

/// Reads `plan`'s rows from the meter at `address`; `progress` is called
/// after each page.
pub async fn read_log<L: Line>(
    master: &mut Master<L>,
    address: u8,
    plan: &Plan,
    mut progress: impl FnMut(Progress),
) -> Result<LogRead, LogReadError> {
    let mut reader = LogReader::new(address, plan.clone());
    loop {
        match reader.step(master).await? {
            Step::Asked => {}
            Step::Page(done) => progress(done),
            Step::Done => return Ok(reader.finish()),
        }
    }
}

/// A read in progress, one logger exchange per [`step`](LogReader::step),
/// so that a bus can put its due requests between the pages.
#[derive(Debug)]
pub struct LogReader {
    address: u8,
    plan: Plan,
    stage: Stage,
    /// Whether the exchange of this stage was asked again already.
    retried: bool,
    /// Rows kept so far, taken or not.
    kept: u32,
    read: LogRead,
}

/// Where a read stands.
#[derive(Debug)]
enum Stage {
    /// The head is still to be found.
    Head,
    /// Pages are left to read.
    Pages(Pages),
    /// Nothing is left.
    Done,
}

/// The pages of a read, once its head is known.
#[derive(Debug)]
struct Pages {
    /// The registers asked for: the time stamp first.
    registers: Vec<u16>,
    request_registers: LogRegisters,
    /// The log ids wanted, both included.
    lo: u32,
    hi: u32,
    expected: u32,
    /// Rows a page asks for.
    page: u16,
    /// The newest log id of the next page.
    log_id: u32,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It found the head, or asked again after a corrupt answer.
    Asked,
    /// It read a page.
    Page(Progress),
    /// Nothing was left to read: no exchange made.
    Done,
}

impl LogReader {
    /// A read of `plan`'s rows from the meter at `address`, not begun.
    pub fn new(address: u8, plan: Plan) -> LogReader {
        LogReader {
            address,
            plan,
            stage: Stage::Head,
            retried: false,
            kept: 0,
            read: LogRead {
                rows: Vec::new(),
                head: 0,
                unsupported: Vec::new(),
                stats: Stats::default(),
            },
        }
    }

    /// Makes the next exchange of the read (none once it is done).
    pub async fn step<L: Line>(&mut self, master: &mut Master<L>) -> Result<Step, LogReadError> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Done => Ok(Step::Done),
            Stage::Head => {
                self.stage = match self.ask_head(master).await {
                    Ok(Some(head)) => self.pages_below(&head)?,
                    Ok(None) => Stage::Head,
                    Err(error) => {
                        // Asked again, the read begins anew.
                        self.stage = Stage::Head;
                        return Err(error);
                    }
                };
                Ok(Step::Asked)
            }
            Stage::Pages(pages) => self.ask_page(master, pages).await,
        }
    }

    /// Whether the read is complete: the next step makes no exchange.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// The rows read so far and not taken yet, newest page first.
    pub fn take_rows(&mut self) -> Vec<LogRow> {
        std::mem::take(&mut self.read.rows)
    }

    /// What has been read so far: registers the logger does not keep,
    /// how it went.
    pub fn so_far(&self) -> &LogRead {
        &self.read
    }

    /// The rows not taken, oldest first and each log id once, with what the
    /// read found.
    pub fn finish(mut self) -> LogRead {
        self.read.rows.sort_by_key(|row| row.log_id);
        self.read.rows.dedup_by_key(|row| row.log_id);
        if let Stage::Pages(pages) = &self.stage {
            self.read.stats.page = pages.page;
        }
        self.read
    }

    /// The newest row (0xB8 07); `None` when it is to be asked again.
    async fn ask_head<L: Line>(
        &mut self,
        master: &mut Master<L>,
    ) -> Result<Option<Head>, LogReadError> {
        let (address, logger) = (self.address, self.plan.logger);
        let stamps = [DATE_TIME_REGISTER, DATE_REGISTER, TIME_REGISTER];
        let request = Request::Logger(LoggerRequest::GetLogLastEntryPastAbs {
            logger,
            offset: 0xFFFF,
            entries: 1,
            registers: LogRegisters::new(&stamps).map_err(|_| LogReadError::TooManyRegisters {
                count: stamps.len(),
            })?,
        });
        let no_logger = |what: String, silent: bool| LogReadError::NoLogger {
            address,
            logger,
            what,
            silent,
        };
        self.read.stats.requests += 1;
        let exchange = master.transact_expecting(address, &request, 64).await?;
        let entries = match exchange.outcome {
            Outcome::Response(Response::Logger(LoggerResponse::Entries(entries))) => entries,
            Outcome::BadFrame(_) | Outcome::BadMessage(_) if !self.retried => {
                self.retried = true;
                self.read.stats.retries += 1;
                return Ok(None);
            }
            Outcome::NoReply => return Err(no_logger(no_reply(exchange.attempts), true)),
            other => return Err(no_logger(describe(&other), false)),
        };
        self.retried = false;
        let Some(row) = entries.table.rows().first() else {
            let what = if entries.info.0 == 0 {
                "an empty answer".to_owned()
            } else {
                format!("an answer without rows (info {})", entries.info)
            };
            return Err(no_logger(what, false));
        };
        let time_registers = if row.iter().any(|cell| cell.register == DATE_TIME_REGISTER) {
            vec![DATE_TIME_REGISTER]
        } else {
            [DATE_REGISTER, TIME_REGISTER]
                .into_iter()
                .filter(|id| row.iter().any(|cell| cell.register == *id))
                .collect()
        };
        Ok(Some(Head {
            newest: entries.first_log_id,
            time: row_time(row).and_then(civil),
            time_registers,
        }))
    }

    /// The pages from the head down to the span's end.
    fn pages_below(&mut self, head: &Head) -> Result<Stage, LogReadError> {
        self.read.head = head.newest;
        let mut registers = head.time_registers.clone();
        for &id in &self.plan.registers {
            if !registers.contains(&id) {
                registers.push(id);
            }
        }
        let request_registers =
            LogRegisters::new(&registers).map_err(|_| LogReadError::TooManyRegisters {
                count: registers.len(),
            })?;
        let (lo, hi) = id_range(&self.plan, head, self.address)?;
        if hi < lo || hi < 1 {
            return Ok(Stage::Done);
        }
        Ok(Stage::Pages(Pages {
            page: page_for(&registers, None),
            registers,
            request_registers,
            lo,
            hi,
            expected: hi.saturating_sub(lo).saturating_add(1).min(hi),
            log_id: hi,
        }))
    }

    /// One page (0xB8 06), asked again once after a corrupt or invalid
    /// answer.
    async fn ask_page<L: Line>(
        &mut self,
        master: &mut Master<L>,
        pages: Pages,
    ) -> Result<Step, LogReadError> {
        let logger = self.plan.logger;
        let want = pages
            .page
            .min(u16::try_from(pages.log_id - pages.lo + 1).unwrap_or(u16::MAX));
        let request = Request::Logger(LoggerRequest::GetLogIdPastAbs {
            logger,
            log_id: pages.log_id,
            entries: want,
            registers: pages.request_registers.clone(),
        });
        self.read.stats.requests += 1;
        let exchange = master
            .transact_expecting(self.address, &request, reply_bytes(&pages.registers, want))
            .await?;
        let what = match exchange.outcome {
            Outcome::Response(Response::Logger(LoggerResponse::Entries(entries))) => {
                self.retried = false;
                return Ok(self.take_page(pages, want, &entries));
            }
            Outcome::NoReply => no_reply(exchange.attempts),
            Outcome::BadFrame(_) | Outcome::BadMessage(_) if !self.retried => {
                self.retried = true;
                self.read.stats.retries += 1;
                self.stage = Stage::Pages(pages);
                return Ok(Step::Asked);
            }
            other => describe(&other),
        };
        let error = LogReadError::Page {
            address: self.address,
            logger,
            log_id: pages.log_id,
            what,
            rows: self.kept as usize,
        };
        // Asked again, the read goes on from this page.
        self.retried = false;
        self.stage = Stage::Pages(pages);
        Err(error)
    }

    /// Keeps a page's rows within the span and sets up the next page.
    fn take_page(&mut self, mut pages: Pages, want: u16, entries: &LogEntries) -> Step {
        let rows = entries.table.rows();
        if self.read.unsupported.is_empty() && entries.info.has(LogInfo::UNSUPPORTED_REGISTER) {
            let kept = rows.first().map_or(&[][..], Vec::as_slice);
            self.read.unsupported = self
                .plan
                .registers
                .iter()
                .copied()
                .filter(|id| !kept.iter().any(|cell| cell.register == *id))
                .collect();
        }
        let count = u16::try_from(rows.len()).unwrap_or(u16::MAX);
        let at_tail = entries.info.has(LogInfo::TAIL_INCLUDED);
        if count < want && !at_tail {
            self.read.stats.cut_short += 1;
            pages.page = count.max(1);
        } else if let Some(first) = rows.first() {
            // The real widths are known now: keep pages within a frame.
            pages.page = pages.page.min(page_for(&pages.registers, Some(first)));
        }
        let (from, to) = match self.plan.span {
            Span::Time { from, to } => (from, to),
            _ => (None, None),
        };
        let timed = matches!(self.plan.span, Span::Time { .. });
        for (id, row) in entries.rows_with_ids() {
            let time = row_time(row).and_then(civil);
            let within = (pages.lo..=pages.hi).contains(&id)
                && (!timed
                    || time.is_some_and(|time| {
                        from.is_none_or(|from| time >= from) && to.is_none_or(|to| time <= to)
                    }));
            if within {
                self.kept += 1;
                self.read.rows.push(LogRow {
                    log_id: id,
                    time,
                    values: self
                        .plan
                        .registers
                        .iter()
                        .filter_map(|id| row.iter().find(|cell| cell.register == *id).copied())
                        .collect(),
                });
            }
        }
        self.read.stats.page = pages.page;
        // From where the answer stopped; never forward, whatever the meter
        // says its first row was.
        let next = entries
            .first_log_id
            .min(pages.log_id)
            .saturating_sub(u32::from(count));
        let progress = Progress {
            rows: self.kept,
            expected: pages.expected,
        };
        if count > 0 && !at_tail && next >= pages.lo && next >= 1 {
            pages.log_id = next;
            self.stage = Stage::Pages(pages);
        }
        Step::Page(progress)
    }
}

/// The logger's newest row: its id, time, and the time stamp registers.
struct Head {
    newest: u32,
    time: Option<DateTime>,
    time_registers: Vec<u16>,
}

pub(super) fn no_reply(attempts: u32) -> String {
    match attempts {
        1 => "no reply (1 attempt)".to_owned(),
        count => format!("no reply ({count} attempts)"),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(Response::Logger(response)) => format!(
            "an answer to subcommand 0x{:02X} instead of rows",
            response.subcommand()
        ),
        Outcome::Response(_) => "a reply of another kind".to_owned(),
        other => other.to_string(),
    }
}

/// The inclusive log-id range the span covers, within the head.
fn id_range(plan: &Plan, head: &Head, address: u8) -> Result<(u32, u32), LogReadError> {
    let newest = head.newest;
    Ok(match plan.span {
        Span::Last(count) => (
            newest.saturating_sub(count.saturating_sub(1)).max(1),
            newest,
        ),
        Span::Ids { first, count } => (
            first.max(1),
            first.saturating_add(count.saturating_sub(1)).min(newest),
        ),
        Span::Time { from, to } => {
            let head_time = head.time.ok_or(LogReadError::NoTimeStamp {
                address,
                logger: plan.logger,
            })?;
            // Rows back from the head to a time, by the logger's interval;
            // one more on either side, as clocks and months are uneven.
            let back = |time: DateTime| -> i64 {
                let seconds = head_time.duration_since(time).as_secs();
                seconds.div_euclid(interval_seconds(plan.logger))
            };
            let hi = to.map_or(i64::from(newest), |to| i64::from(newest) - back(to) + 1);
            let lo = from.map_or(1, |from| i64::from(newest) - back(from) - 1);
            let clamp = |id: i64| u32::try_from(id.clamp(1, i64::from(newest))).unwrap_or(1);
            (clamp(lo), clamp(hi.min(i64::from(newest))))
        }
    })
}

/// A logger's interval in seconds, the month and year on average.
pub(crate) fn interval_seconds(logger: Logger) -> i64 {
    match logger {
        Logger::HOURLY => 3_600,
        Logger::DAILY => 86_400,
        Logger::MONTHLY => 2_629_746,
        Logger::YEARLY => 31_556_952,
        // Minute loggers: their interval is configured; a minute is the
        // finest, so the range errs on the wide side.
        _ => 60,
    }
}

/// Rows that fit [`PAGE_DATA_BYTES`]: with the widths of `first` when a
/// reply has shown them, else 7 bytes for 348 and 4 for the others.
fn page_for(registers: &[u16], first: Option<&Vec<RegisterValue>>) -> u16 {
    let (header, row) = row_bytes(registers, first);
    let rows = PAGE_DATA_BYTES.saturating_sub(REPLY_HEAD_BYTES + header) / row.max(1) + 1;
    u16::try_from(rows).unwrap_or(u16::MAX).max(1)
}

/// Bytes of row 1 (with headers) and of each later row.
fn row_bytes(registers: &[u16], first: Option<&Vec<RegisterValue>>) -> (usize, usize) {
    let widths: Vec<usize> = match first {
        Some(row) => row.iter().map(|cell| cell.value.width()).collect(),
        None => registers
            .iter()
            .map(|&id| if id == DATE_TIME_REGISTER { 7 } else { 4 })
            .collect(),
    };
    let row: usize = widths.iter().sum();
    (row + 5 * widths.len(), row)
}

/// Bytes a reply of `rows` rows may take on the line: a quarter more than
/// its data, for stuffing.
fn reply_bytes(registers: &[u16], rows: u16) -> usize {
    let (header, row) = row_bytes(registers, None);
    let data = REPLY_HEAD_BYTES + header + row * usize::from(rows.saturating_sub(1));
    data + data / 4
}

/// A meter's date and time as a civil date-time.
pub(crate) fn civil(stamp: kmp::DateTime7) -> Option<DateTime> {
    let byte = |value: u8| i8::try_from(value).ok();
    DateTime::new(
        i16::try_from(stamp.year).ok()?,
        byte(stamp.month)?,
        byte(stamp.day)?,
        byte(stamp.hour)?,
        byte(stamp.minute)?,
        byte(stamp.second)?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use kmp::catalogue::Model;

    use jiff::SignedDuration;

    use super::*;
    use crate::bus::{EchoMode, MasterSettings};
    use crate::sim::line::{Faults, LineConfig};
    use crate::sim::meter::Meter;
    use crate::sim::{Simulator, session, testing};

    fn master(meter: Meter, line: LineConfig) -> Master<tokio::io::DuplexStream> {
        let simulator: Arc<Simulator> = testing::simulator(vec![meter], line);
        let (logger_end, meter_end) = tokio::io::duplex(8192);
        tokio::spawn(async move { session::serve(&simulator, "test", meter_end, None).await });
        Master::new(
            logger_end,
            "test line",
            MasterSettings {
                timeout: Duration::from_millis(500),
                retries: 0,
                echo: EchoMode::Auto,
                ..MasterSettings::default()
            },
        )
    }

    fn plan(logger: Logger, registers: &[u16], span: Span) -> Plan {
        Plan {
            logger,
            registers: registers.to_vec(),
            span,
        }
    }

    #[tokio::test]
    async fn the_last_rows_are_read_in_pages_that_shrink_when_cut_short() {
        let meter = Meter::new(63, Model::Multical603);
        let mut master = master(meter, LineConfig::default());
        let registers = [60, 61, 62, 63, 68, 97, 86, 87, 74, 80, 1004, 99];
        let plan = plan(Logger::HOURLY, &registers, Span::Last(40));
        let mut pages = 0;
        let read = read_log(&mut master, 63, &plan, |_| pages += 1)
            .await
            .unwrap();
        let ids: Vec<u32> = read.rows.iter().map(|row| row.log_id).collect();
        let expected: Vec<u32> = (read.head - 39..=read.head).collect();
        assert_eq!(ids, expected);
        // Cut short once: the pages after it are the size the meter gave.
        assert_eq!(read.stats.cut_short, 1, "{:?}", read.stats);
        assert!(pages >= 3, "{pages} pages");
        // Hour by hour, a row apart.
        for pair in read.rows.windows(2) {
            let (older, newer) = (pair[0].time.unwrap(), pair[1].time.unwrap());
            assert_eq!(newer.duration_since(older), SignedDuration::from_hours(1));
            assert!(newer_counter(&pair[1], &pair[0], 60));
        }
        assert_eq!(read.rows[0].values.len(), registers.len());
    }

    fn newer_counter(newer: &LogRow, older: &LogRow, register: u16) -> bool {
        let value = |row: &LogRow| {
            row.values
                .iter()
                .find(|cell| cell.register == register)
                .map(|cell| cell.value)
                .unwrap()
        };
        value(newer).compare(&value(older)).is_ge()
    }

    #[tokio::test]
    async fn ids_and_times_choose_the_rows_and_the_tail_ends_the_read() {
        let meter = Meter::new(63, Model::Multical603);
        let mut master = master(meter, LineConfig::default());
        let read = read_log(
            &mut master,
            63,
            &plan(Logger::YEARLY, &[60], Span::Last(100)),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(read.rows.len(), 20, "the yearly logger is 20 deep");
        let tenth = read.rows[10].clone();
        let by_id = read_log(
            &mut master,
            63,
            &plan(
                Logger::YEARLY,
                &[60],
                Span::Ids {
                    first: tenth.log_id,
                    count: 3,
                },
            ),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(by_id.rows, read.rows[10..13]);
        let by_time = read_log(
            &mut master,
            63,
            &plan(
                Logger::YEARLY,
                &[60],
                Span::Time {
                    from: tenth.time,
                    to: read.rows[12].time,
                },
            ),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(by_time.rows, read.rows[10..13]);
    }

    #[tokio::test]
    async fn a_page_is_retried_once_after_a_crc_error() {
        let meter = Meter::new(63, Model::Multical603);
        let line = LineConfig {
            faults: Faults {
                bad_crc: 0.3,
                ..Faults::default()
            },
            ..LineConfig::default()
        };
        let mut master = master(meter, line);
        // With a third of the replies corrupt, some reads fail after their
        // one retry; those that succeed have every row, and retried.
        let mut retried = 0;
        for _ in 0..10 {
            let plan = plan(Logger::DAILY, &[60, 68], Span::Last(30));
            if let Ok(read) = read_log(&mut master, 63, &plan, |_| {}).await {
                assert_eq!(read.rows.len(), 30);
                retried += read.stats.retries;
            }
        }
        assert!(retried > 0);
    }

    #[tokio::test]
    async fn an_answer_without_rows_is_named() {
        let meter = Meter::new(63, Model::Multical603);
        let mut master = master(meter, LineConfig::default());
        let error = read_log(
            &mut master,
            63,
            &plan(Logger::MINUTE_1, &[60], Span::Last(1)),
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "meter 63 gave no minute1 logger rows: an answer without rows (info invalid_request) \
             (asked for its newest row with the logger command 0xB8); a meter without loggers \
             does not answer it"
        );
    }

    #[tokio::test]
    async fn a_meter_without_loggers_is_named() {
        let meter = Meter::new(63, Model::Multical603).without_loggers();
        let mut master = master(meter, LineConfig::default());
        let error = read_log(
            &mut master,
            63,
            &plan(Logger::DAILY, &[60], Span::Last(1)),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("meter 63 gave no daily logger rows: no reply (1 attempt)"),
            "{error}"
        );
    }
}
