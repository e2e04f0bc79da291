//! The logger command, CID `0xB8`: a meter's own hourly, daily, monthly and
//! yearly history, in both directions (kmp-protocol.md §3.1).
//!
//! A request is a subcommand, a logger and the subcommand's rest:
//! GetConfiguration (`05`) asks which registers a logger keeps and how deep
//! it is; GetLogIDPastAbs (`06`) and GetLogLastEntryPastAbs (`07`) ask for
//! rows, newest first. The reply to `06` and `07` is a table: its first row
//! carries each register's header (id, unit, length, sigEx) with the value,
//! later rows only the mantissas, which take row 1's unit and sigEx. That is
//! why [`LogTable`] checks on construction that every row has row 1's layout:
//! any table it holds can be sent.
//!
//! The one public source (jktjkt/PyKMP) gives no layout for subcommands `08`
//! and `09`; they keep their bytes, as [`LoggerRequest::Other`] and
//! [`LoggerResponse::Other`].

use std::fmt;

use crate::unit::Unit;
use crate::value::{DateTime7, RegisterValue, Value, ValueError};

/// Most registers one logger request or reply can name: the count is a byte.
pub const MAX_LOG_REGISTERS: usize = 255;

/// Most rows one reply can carry: the count is two bytes.
pub const MAX_LOG_ENTRIES: usize = 65_535;

/// A logger of a meter, by its type byte. Every byte is a valid `Logger`;
/// the known ones have names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Logger(pub u8);

impl Logger {
    /// `0`: the configuration logger.
    pub const CONFIGURATION: Logger = Logger(0);
    /// `1`: the info logger (info-code changes).
    pub const INFO: Logger = Logger(1);
    /// `2`: one row a year.
    pub const YEARLY: Logger = Logger(2);
    /// `3`: one row a month.
    pub const MONTHLY: Logger = Logger(3);
    /// `4`: one row a day.
    pub const DAILY: Logger = Logger(4);
    /// `5`: one row an hour.
    pub const HOURLY: Logger = Logger(5);
    /// `6`: minute logger 1.
    pub const MINUTE_1: Logger = Logger(6);
    /// `7`: minute logger 2.
    pub const MINUTE_2: Logger = Logger(7);
    /// `8`: successful software downloads.
    pub const SOFTWARE_DOWNLOAD: Logger = Logger(8);
    /// `9`: the software-download audit.
    pub const SOFTWARE_AUDIT: Logger = Logger(9);

    const NAMES: [(Logger, &'static str); 10] = [
        (Logger::CONFIGURATION, "configuration"),
        (Logger::INFO, "info"),
        (Logger::YEARLY, "yearly"),
        (Logger::MONTHLY, "monthly"),
        (Logger::DAILY, "daily"),
        (Logger::HOURLY, "hourly"),
        (Logger::MINUTE_1, "minute1"),
        (Logger::MINUTE_2, "minute2"),
        (Logger::SOFTWARE_DOWNLOAD, "software_download"),
        (Logger::SOFTWARE_AUDIT, "software_audit"),
    ];

    /// The logger's name (`daily`), `None` for a type byte §3.1 does not name.
    pub fn name(self) -> Option<&'static str> {
        Logger::NAMES
            .iter()
            .find(|(logger, _)| *logger == self)
            .map(|(_, name)| *name)
    }

    /// The logger a name stands for (`hourly`, `daily`, ...).
    pub fn from_name(name: &str) -> Option<Logger> {
        Logger::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(logger, _)| *logger)
    }
}

impl fmt::Display for Logger {
    /// The name, or `logger N` for an unnamed type byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "logger {}", self.0),
        }
    }
}

/// The subcommand byte of the two row queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogQuery {
    /// `06`: rows from a log id backwards.
    IdPastAbs,
    /// `07`: rows from the newest backwards.
    LastEntryPastAbs,
}

impl LogQuery {
    /// The subcommand byte.
    pub fn subcommand(self) -> u8 {
        match self {
            LogQuery::IdPastAbs => GET_LOG_ID_PAST_ABS,
            LogQuery::LastEntryPastAbs => GET_LOG_LAST_ENTRY_PAST_ABS,
        }
    }

    /// The name §3.1 gives it.
    pub fn name(self) -> &'static str {
        match self {
            LogQuery::IdPastAbs => "GetLogIDPastAbs",
            LogQuery::LastEntryPastAbs => "GetLogLastEntryPastAbs",
        }
    }
}

/// Subcommand `05`.
pub const GET_CONFIGURATION: u8 = 0x05;
/// Subcommand `06`.
pub const GET_LOG_ID_PAST_ABS: u8 = 0x06;
/// Subcommand `07`.
pub const GET_LOG_LAST_ENTRY_PAST_ABS: u8 = 0x07;

/// The name of a logger subcommand, `subcommand 0xNN` if unknown.
pub fn subcommand_name(subcommand: u8) -> String {
    match subcommand {
        GET_CONFIGURATION => "GetConfiguration".to_owned(),
        GET_LOG_ID_PAST_ABS => LogQuery::IdPastAbs.name().to_owned(),
        GET_LOG_LAST_ENTRY_PAST_ABS => LogQuery::LastEntryPastAbs.name().to_owned(),
        0x08 => "GetLogID".to_owned(),
        0x09 => "GetLogNextFormat".to_owned(),
        other => format!("subcommand 0x{other:02X}"),
    }
}

/// The registers a row query asks for: 1 to 255 ids, checked on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRegisters(Vec<u16>);

impl LogRegisters {
    /// Checks and wraps `registers`.
    pub fn new(registers: &[u16]) -> Result<LogRegisters, LoggerError> {
        if !(1..=MAX_LOG_REGISTERS).contains(&registers.len()) {
            return Err(LoggerError::RegisterCount {
                count: registers.len(),
            });
        }
        Ok(LogRegisters(registers.to_vec()))
    }
}

impl std::ops::Deref for LogRegisters {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        &self.0
    }
}

/// What the master asks of a meter's logger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoggerRequest {
    /// `05`: the logger's depth, interval and registers.
    GetConfiguration {
        /// The logger asked about.
        logger: Logger,
    },
    /// `06`: `entries` rows from `log_id` backwards: `log_id`, `log_id - 1`, ...
    GetLogIdPastAbs {
        /// The logger read.
        logger: Logger,
        /// The newest row wanted.
        log_id: u32,
        /// How many rows.
        entries: u16,
        /// The registers of each row.
        registers: LogRegisters,
    },
    /// `07`: `entries` rows from the newest backwards.
    GetLogLastEntryPastAbs {
        /// The logger read.
        logger: Logger,
        /// Where to start from the newest; `FF FF` is what the source sends.
        offset: u16,
        /// How many rows.
        entries: u16,
        /// The registers of each row.
        registers: LogRegisters,
    },
    /// Another subcommand (`08`, `09`, ...), its rest kept as sent.
    Other {
        /// The subcommand byte.
        subcommand: u8,
        /// The logger byte.
        logger: Logger,
        /// The rest of the data.
        data: Vec<u8>,
    },
}

impl LoggerRequest {
    /// The subcommand byte.
    pub fn subcommand(&self) -> u8 {
        match self {
            LoggerRequest::GetConfiguration { .. } => GET_CONFIGURATION,
            LoggerRequest::GetLogIdPastAbs { .. } => GET_LOG_ID_PAST_ABS,
            LoggerRequest::GetLogLastEntryPastAbs { .. } => GET_LOG_LAST_ENTRY_PAST_ABS,
            LoggerRequest::Other { subcommand, .. } => *subcommand,
        }
    }

    /// The logger asked.
    pub fn logger(&self) -> Logger {
        match self {
            LoggerRequest::GetConfiguration { logger }
            | LoggerRequest::GetLogIdPastAbs { logger, .. }
            | LoggerRequest::GetLogLastEntryPastAbs { logger, .. }
            | LoggerRequest::Other { logger, .. } => *logger,
        }
    }

    /// The command's data: subcommand, logger, rest.
    pub fn encode(&self) -> Vec<u8> {
        let mut data = vec![self.subcommand(), self.logger().0];
        match self {
            LoggerRequest::GetConfiguration { .. } => {}
            LoggerRequest::GetLogIdPastAbs {
                log_id,
                entries,
                registers,
                ..
            } => {
                data.extend_from_slice(&log_id.to_be_bytes());
                encode_query(&mut data, *entries, registers);
            }
            LoggerRequest::GetLogLastEntryPastAbs {
                offset,
                entries,
                registers,
                ..
            } => {
                data.extend_from_slice(&offset.to_be_bytes());
                encode_query(&mut data, *entries, registers);
            }
            LoggerRequest::Other { data: rest, .. } => data.extend_from_slice(rest),
        }
        data
    }

    /// Reads a request's data.
    pub fn decode(data: &[u8]) -> Result<LoggerRequest, LoggerError> {
        let mut reader = Reader::new(data, "request");
        let subcommand = reader.u8()?;
        let logger = Logger(reader.u8()?);
        let request = match subcommand {
            GET_CONFIGURATION => LoggerRequest::GetConfiguration { logger },
            GET_LOG_ID_PAST_ABS => {
                let log_id = reader.u32()?;
                let (entries, registers) = decode_query(&mut reader)?;
                LoggerRequest::GetLogIdPastAbs {
                    logger,
                    log_id,
                    entries,
                    registers,
                }
            }
            GET_LOG_LAST_ENTRY_PAST_ABS => {
                let offset = reader.u16()?;
                let (entries, registers) = decode_query(&mut reader)?;
                LoggerRequest::GetLogLastEntryPastAbs {
                    logger,
                    offset,
                    entries,
                    registers,
                }
            }
            _ => {
                return Ok(LoggerRequest::Other {
                    subcommand,
                    logger,
                    data: reader.rest().to_vec(),
                });
            }
        };
        reader.finish()?;
        Ok(request)
    }
}

fn encode_query(data: &mut Vec<u8>, entries: u16, registers: &LogRegisters) {
    data.extend_from_slice(&entries.to_be_bytes());
    // LogRegisters holds 1 to 255 ids: the count fits its byte.
    data.push(registers.len() as u8);
    for register in registers.iter() {
        data.extend_from_slice(&register.to_be_bytes());
    }
}

fn decode_query(reader: &mut Reader<'_>) -> Result<(u16, LogRegisters), LoggerError> {
    let entries = reader.u16()?;
    let count = reader.u8()?;
    let registers = (0..count)
        .map(|_| reader.u16())
        .collect::<Result<Vec<u16>, _>>()?;
    Ok((entries, LogRegisters::new(&registers)?))
}

/// The info word of a row reply: one bit per condition (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LogInfo(pub u16);

impl LogInfo {
    /// Bit 0: the logger has no entries.
    pub const NO_ENTRIES: u16 = 1 << 0;
    /// Bit 1: the log id asked for is out of range.
    pub const OUT_OF_RANGE: u16 = 1 << 1;
    /// Bit 3: a register asked for is not in this logger.
    pub const UNSUPPORTED_REGISTER: u16 = 1 << 3;
    /// Bit 4: fewer entries than asked for, to fit the meter's buffer.
    pub const ENTRIES_TRUNCATED: u16 = 1 << 4;
    /// Bit 5: the logger's format changed within the rows.
    pub const FORMAT_CHANGED: u16 = 1 << 5;
    /// Bit 6: the oldest entry is in the reply.
    pub const TAIL_INCLUDED: u16 = 1 << 6;
    /// Bit 7: the newest entry is in the reply.
    pub const HEAD_INCLUDED: u16 = 1 << 7;
    /// Bit 8: the meter found a memory error.
    pub const MEMORY_ERROR: u16 = 1 << 8;
    /// Bit 9: the request is invalid.
    pub const INVALID_REQUEST: u16 = 1 << 9;
    /// Bit 13: fewer registers than asked for.
    pub const REGISTERS_TRUNCATED: u16 = 1 << 13;

    const NAMES: [(u16, &'static str); 10] = [
        (LogInfo::NO_ENTRIES, "no_entries"),
        (LogInfo::OUT_OF_RANGE, "out_of_range"),
        (LogInfo::UNSUPPORTED_REGISTER, "unsupported_register"),
        (LogInfo::ENTRIES_TRUNCATED, "entries_truncated"),
        (LogInfo::FORMAT_CHANGED, "format_changed"),
        (LogInfo::TAIL_INCLUDED, "tail_included"),
        (LogInfo::HEAD_INCLUDED, "head_included"),
        (LogInfo::MEMORY_ERROR, "memory_error"),
        (LogInfo::INVALID_REQUEST, "invalid_request"),
        (LogInfo::REGISTERS_TRUNCATED, "registers_truncated"),
    ];

    /// Whether every bit of `bits` is set.
    pub fn has(self, bits: u16) -> bool {
        self.0 & bits == bits
    }

    /// The names of the bits set, in bit order; a bit §3.1 does not name is
    /// `bit_N`.
    pub fn names(self) -> Vec<String> {
        (0..16)
            .map(|bit| 1u16 << bit)
            .filter(|&mask| self.0 & mask != 0)
            .map(|mask| {
                LogInfo::NAMES
                    .iter()
                    .find(|(known, _)| *known == mask)
                    .map_or_else(
                        || format!("bit_{}", mask.trailing_zeros()),
                        |(_, name)| (*name).to_owned(),
                    )
            })
            .collect()
    }
}

impl fmt::Display for LogInfo {
    /// The names of the bits set, comma-separated; `none` for 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("none")
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

/// The answer to GetConfiguration (`05`). The format bytes are kept as sent:
/// the source names the fields but not the formats' meanings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoggerConfiguration {
    /// The logger described.
    pub logger: Logger,
    /// The format of `date1`.
    pub date1_format: u8,
    /// The first date field.
    pub date1: u16,
    /// The format of `date2`.
    pub date2_format: u8,
    /// The second date field.
    pub date2: u16,
    /// The format of `max_records`.
    pub max_records_format: u8,
    /// Most records per answer, as the meter says.
    pub max_records: u8,
    /// The format of `interval`.
    pub interval_format: u8,
    /// The logging interval, in the unit `interval_format` names.
    pub interval: u8,
    /// How many rows the logger keeps.
    pub depth: u16,
    /// The registers each row holds (at most 255).
    pub registers: LogRegisters,
}

/// The rows of a reply to `06` or `07`, newest first, each with the same
/// registers in the same layout (unit, width, sign and exponent of row 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogTable {
    /// The register count of the header: the rows' width, or what an
    /// answer without rows said.
    register_count: u8,
    rows: Vec<Vec<RegisterValue>>,
}

impl LogTable {
    /// Checks that every row has row 1's registers in row 1's layout (a later
    /// row has no header of its own to say otherwise), and that counts fit
    /// their fields.
    pub fn new(rows: Vec<Vec<RegisterValue>>) -> Result<LogTable, LoggerError> {
        if rows.len() > MAX_LOG_ENTRIES {
            return Err(LoggerError::EntryCount { count: rows.len() });
        }
        let first = rows.first().map_or(&[][..], Vec::as_slice);
        let register_count = u8::try_from(first.len())
            .map_err(|_| LoggerError::RegisterCount { count: first.len() })?;
        if !rows.is_empty() && register_count == 0 {
            return Err(LoggerError::RegisterCount { count: 0 });
        }
        for (index, row) in rows.iter().enumerate().skip(1) {
            let same_layout = row.len() == first.len()
                && row.iter().zip(first).all(|(cell, head)| {
                    cell.register == head.register
                        && cell.unit == head.unit
                        && cell.value.same_layout(&head.value)
                });
            if !same_layout {
                return Err(LoggerError::RowLayout { row: index + 1 });
            }
        }
        Ok(LogTable {
            register_count,
            rows,
        })
    }

    /// A table without rows whose header named `register_count` registers.
    pub fn empty(register_count: u8) -> LogTable {
        LogTable {
            register_count,
            rows: Vec::new(),
        }
    }

    /// The rows, newest first.
    pub fn rows(&self) -> &[Vec<RegisterValue>] {
        &self.rows
    }

    /// The register count the header carries.
    pub fn register_count(&self) -> u8 {
        self.register_count
    }
}

/// The answer to a row query (`06` or `07`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogEntries {
    /// Which query this answers.
    pub query: LogQuery,
    /// The logger read.
    pub logger: Logger,
    /// The log id of the first (newest) row.
    pub first_log_id: u32,
    /// The newest log id the meter holds.
    pub last_log_id: u32,
    /// What the meter says about the answer.
    pub info: LogInfo,
    /// The rows.
    pub table: LogTable,
}

impl LogEntries {
    /// The rows with their log ids: `first_log_id`, one less each row.
    pub fn rows_with_ids(&self) -> impl Iterator<Item = (u32, &[RegisterValue])> {
        (0u32..)
            .map(|back| self.first_log_id.wrapping_sub(back))
            .zip(self.table.rows().iter().map(Vec::as_slice))
    }
}

/// Register 348: a row's date and time (unit `0x4F` in the loggers).
pub const DATE_TIME_REGISTER: u16 = 348;
/// Register 1003: a row's date (`yy:mm:dd`).
pub const DATE_REGISTER: u16 = 1003;
/// Register 1002: a row's time of day (`hh:mm:ss`).
pub const TIME_REGISTER: u16 = 1002;

/// When a row was logged, by the meter's own clock: register 348 where the
/// row has it (unit `0x4F`, or `0x40`), else date 1003 with time 1002 (time
/// 00:00:00 when only the date is there). `None` when the row has neither.
pub fn row_time(row: &[RegisterValue]) -> Option<DateTime7> {
    let find = |id: u16| row.iter().find(|cell| cell.register == id);
    if let Some(stamp) = find(DATE_TIME_REGISTER).and_then(RegisterValue::date_time_7) {
        return Some(stamp);
    }
    let digits = |cell: &RegisterValue, unit: u8| {
        (cell.unit.code() == unit && cell.value.exponent() == 0 && !cell.value.is_negative())
            .then(|| cell.value.mantissa())
    };
    let (date, time) = match find(DATE_TIME_REGISTER).and_then(|cell| digits(cell, 0x40)) {
        Some(stamp) => (stamp / 1_000_000, stamp % 1_000_000),
        None => {
            let date = find(DATE_REGISTER).and_then(|cell| digits(cell, 0x30))?;
            let time = find(TIME_REGISTER).map_or(Some(0), |cell| digits(cell, 0x2F))?;
            (date, time)
        }
    };
    let field = |value: u128| u8::try_from(value % 100).unwrap_or(0);
    let stamp = DateTime7 {
        offset: 0,
        year: 2000 + u16::try_from(date / 10_000 % 100).unwrap_or(0),
        month: field(date / 100),
        day: field(date),
        hour: field(time / 10_000),
        minute: field(time / 100),
        second: field(time),
    };
    let check = RegisterValue {
        register: DATE_TIME_REGISTER,
        unit: Unit(0x4F),
        value: stamp.to_value(),
    };
    check.date_time_7()
}

/// What a meter's logger answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoggerResponse {
    /// Answer to `05`.
    Configuration(LoggerConfiguration),
    /// Answer to `06` or `07`.
    Entries(LogEntries),
    /// Another subcommand's answer, its rest kept as sent.
    Other {
        /// The subcommand byte.
        subcommand: u8,
        /// The logger byte.
        logger: Logger,
        /// The rest of the data.
        data: Vec<u8>,
    },
}

impl LoggerResponse {
    /// The subcommand byte.
    pub fn subcommand(&self) -> u8 {
        match self {
            LoggerResponse::Configuration(_) => GET_CONFIGURATION,
            LoggerResponse::Entries(entries) => entries.query.subcommand(),
            LoggerResponse::Other { subcommand, .. } => *subcommand,
        }
    }

    /// The logger that answered.
    pub fn logger(&self) -> Logger {
        match self {
            LoggerResponse::Configuration(configuration) => configuration.logger,
            LoggerResponse::Entries(entries) => entries.logger,
            LoggerResponse::Other { logger, .. } => *logger,
        }
    }

    /// The response's data: subcommand, logger, rest.
    pub fn encode(&self) -> Vec<u8> {
        let mut data = vec![self.subcommand(), self.logger().0];
        match self {
            LoggerResponse::Configuration(configuration) => {
                let c = configuration;
                data.push(c.date1_format);
                data.extend_from_slice(&c.date1.to_be_bytes());
                data.push(c.date2_format);
                data.extend_from_slice(&c.date2.to_be_bytes());
                data.extend_from_slice(&[
                    c.max_records_format,
                    c.max_records,
                    c.interval_format,
                    c.interval,
                ]);
                data.extend_from_slice(&c.depth.to_be_bytes());
                // LogRegisters holds 1 to 255 ids: the count fits its byte.
                data.push(c.registers.len() as u8);
                for register in c.registers.iter() {
                    data.extend_from_slice(&register.to_be_bytes());
                }
            }
            LoggerResponse::Entries(entries) => {
                let rows = entries.table.rows();
                // LogTable holds at most 65,535 rows.
                data.extend_from_slice(&(rows.len() as u16).to_be_bytes());
                data.push(entries.table.register_count());
                data.extend_from_slice(&entries.first_log_id.to_be_bytes());
                data.extend_from_slice(&entries.last_log_id.to_be_bytes());
                data.extend_from_slice(&entries.info.0.to_be_bytes());
                let mut rows = rows.iter();
                for cell in rows.next().into_iter().flatten() {
                    data.extend_from_slice(&cell.register.to_be_bytes());
                    data.push(cell.unit.code());
                    cell.value.encode_field(&mut data);
                }
                for cell in rows.flatten() {
                    cell.value.encode_mantissa(&mut data);
                }
            }
            LoggerResponse::Other { data: rest, .. } => data.extend_from_slice(rest),
        }
        data
    }

    /// Reads a response's data.
    pub fn decode(data: &[u8]) -> Result<LoggerResponse, LoggerError> {
        let mut reader = Reader::new(data, "response");
        let subcommand = reader.u8()?;
        let logger = Logger(reader.u8()?);
        let response = match subcommand {
            GET_CONFIGURATION => {
                let date1_format = reader.u8()?;
                let date1 = reader.u16()?;
                let date2_format = reader.u8()?;
                let date2 = reader.u16()?;
                let max_records_format = reader.u8()?;
                let max_records = reader.u8()?;
                let interval_format = reader.u8()?;
                let interval = reader.u8()?;
                let depth = reader.u16()?;
                let count = reader.u8()?;
                let registers = (0..count)
                    .map(|_| reader.u16())
                    .collect::<Result<Vec<u16>, _>>()?;
                LoggerResponse::Configuration(LoggerConfiguration {
                    logger,
                    date1_format,
                    date1,
                    date2_format,
                    date2,
                    max_records_format,
                    max_records,
                    interval_format,
                    interval,
                    depth,
                    registers: LogRegisters::new(&registers)?,
                })
            }
            GET_LOG_ID_PAST_ABS | GET_LOG_LAST_ENTRY_PAST_ABS => {
                let query = if subcommand == GET_LOG_ID_PAST_ABS {
                    LogQuery::IdPastAbs
                } else {
                    LogQuery::LastEntryPastAbs
                };
                let entries = reader.u16()?;
                let register_count = reader.u8()?;
                let first_log_id = reader.u32()?;
                let last_log_id = reader.u32()?;
                let info = LogInfo(reader.u16()?);
                let table = decode_rows(&mut reader, entries, register_count)?;
                LoggerResponse::Entries(LogEntries {
                    query,
                    logger,
                    first_log_id,
                    last_log_id,
                    info,
                    table,
                })
            }
            _ => {
                return Ok(LoggerResponse::Other {
                    subcommand,
                    logger,
                    data: reader.rest().to_vec(),
                });
            }
        };
        reader.finish()?;
        Ok(response)
    }
}

fn decode_rows(
    reader: &mut Reader<'_>,
    entries: u16,
    register_count: u8,
) -> Result<LogTable, LoggerError> {
    if entries == 0 {
        return Ok(LogTable::empty(register_count));
    }
    let mut header = Vec::with_capacity(usize::from(register_count));
    for _ in 0..register_count {
        let register = reader.u16()?;
        let unit = Unit(reader.u8()?);
        let offset = reader.offset;
        let (value, used) =
            Value::decode_field(reader.rest()).map_err(|source| LoggerError::Value {
                register,
                offset,
                source,
            })?;
        reader.skip(used);
        header.push(RegisterValue {
            register,
            unit,
            value,
        });
    }
    let mut rows = Vec::with_capacity(usize::from(entries));
    for _ in 1..entries {
        let mut row = Vec::with_capacity(header.len());
        for head in &header {
            let offset = reader.offset;
            let bytes = reader.take(head.value.width())?;
            let value =
                head.value
                    .with_mantissa_bytes(bytes)
                    .map_err(|source| LoggerError::Value {
                        register: head.register,
                        offset,
                        source,
                    })?;
            row.push(RegisterValue { value, ..*head });
        }
        rows.push(row);
    }
    rows.insert(0, header);
    LogTable::new(rows)
}

/// A logger request or reply that does not fit §3.1's layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    /// The data ends before the layout does.
    #[error("logger {direction}: cut short at data byte {offset}: {needed} more bytes needed")]
    Truncated {
        /// `request` or `response`.
        direction: &'static str,
        /// Where the missing field starts (in the command's data).
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
    },
    /// Bytes follow the end of the layout.
    #[error("logger {direction}: {extra} bytes after the end of the layout at data byte {offset}")]
    Trailing {
        /// `request` or `response`.
        direction: &'static str,
        /// Where the layout ended.
        offset: usize,
        /// Bytes left.
        extra: usize,
    },
    /// No or too many registers.
    #[error("a logger request names {count} registers; 1 to {MAX_LOG_REGISTERS} are allowed")]
    RegisterCount {
        /// How many.
        count: usize,
    },
    /// Too many rows for one reply.
    #[error("a logger reply holds {count} rows; at most {MAX_LOG_ENTRIES} fit")]
    EntryCount {
        /// How many.
        count: usize,
    },
    /// A later row that has not row 1's registers in row 1's layout.
    #[error(
        "logger reply row {row} differs from row 1 in its registers, units, widths, signs or exponents"
    )]
    RowLayout {
        /// The row, counting from 1.
        row: usize,
    },
    /// A register's value is invalid.
    #[error("logger reply: register {register} at data byte {offset}: {source}")]
    Value {
        /// The register.
        register: u16,
        /// Where its value starts.
        offset: usize,
        /// What is wrong.
        source: ValueError,
    },
}

/// Reads big-endian fields from the front of the data, naming the offset of
/// whatever is missing.
struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
    direction: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], direction: &'static str) -> Reader<'a> {
        Reader {
            data,
            offset: 0,
            direction,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.offset..).unwrap_or_default()
    }

    fn skip(&mut self, count: usize) {
        self.offset = self.offset.saturating_add(count).min(self.data.len());
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], LoggerError> {
        let bytes = self.rest().get(..count).ok_or(LoggerError::Truncated {
            direction: self.direction,
            offset: self.offset,
            needed: count,
        })?;
        self.offset += count;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LoggerError> {
        let direction = self.direction;
        let offset = self.offset;
        self.take(N)?
            .try_into()
            .map_err(|_| LoggerError::Truncated {
                direction,
                offset,
                needed: N,
            })
    }

    fn u8(&mut self) -> Result<u8, LoggerError> {
        self.array::<1>().map(|[byte]| byte)
    }

    fn u16(&mut self) -> Result<u16, LoggerError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, LoggerError> {
        self.array().map(u32::from_be_bytes)
    }

    fn finish(&self) -> Result<(), LoggerError> {
        let extra = self.data.len().saturating_sub(self.offset);
        if extra == 0 {
            Ok(())
        } else {
            Err(LoggerError::Trailing {
                direction: self.direction,
                offset: self.offset,
                extra,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(register: u16, unit: u8, mantissa: i128, exponent: i8) -> RegisterValue {
        RegisterValue {
            register,
            unit: Unit(unit),
            value: Value::new(mantissa, exponent).unwrap(),
        }
    }

    #[test]
    fn rows_after_the_first_carry_only_mantissas() {
        let table = LogTable::new(vec![
            vec![cell(60, 0x08, 1_234, -3), cell(86, 0x25, 6_666, -2)],
            vec![cell(60, 0x08, 1_200, -3), cell(86, 0x25, 6_001, -2)],
        ])
        .unwrap();
        let response = LoggerResponse::Entries(LogEntries {
            query: LogQuery::IdPastAbs,
            logger: Logger::DAILY,
            first_log_id: 10,
            last_log_id: 12,
            info: LogInfo(0),
            table,
        });
        let data = response.encode();
        #[rustfmt::skip]
        assert_eq!(data, [
            0x06, 0x04, 0x00, 0x02, 0x02,
            0, 0, 0, 10, 0, 0, 0, 12, 0x00, 0x00,
            0x00, 0x3C, 0x08, 0x04, 0x43, 0x00, 0x00, 0x04, 0xD2,
            0x00, 0x56, 0x25, 0x04, 0x42, 0x00, 0x00, 0x1A, 0x0A,
            0x00, 0x00, 0x04, 0xB0,
            0x00, 0x00, 0x17, 0x71,
        ]);
        assert_eq!(LoggerResponse::decode(&data), Ok(response));
    }

    #[test]
    fn a_later_row_in_another_layout_is_refused() {
        assert_eq!(
            LogTable::new(vec![
                vec![cell(60, 0x08, 1, -3)],
                vec![cell(60, 0x08, 1, -2)],
            ]),
            Err(LoggerError::RowLayout { row: 2 })
        );
        assert_eq!(
            LogTable::new(vec![
                vec![cell(60, 0x08, 1, -3)],
                vec![cell(68, 0x08, 1, -3)]
            ]),
            Err(LoggerError::RowLayout { row: 2 })
        );
    }

    #[test]
    fn bad_replies_say_where() {
        // Two entries announced, one register, but the second row is missing.
        let data = [
            0x06, 0x02, 0x00, 0x02, 0x01, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0x03, 0xEB, 0x30, 0x01,
            0x00, 0x05,
        ];
        assert_eq!(
            LoggerResponse::decode(&data),
            Err(LoggerError::Truncated {
                direction: "response",
                offset: 21,
                needed: 1
            })
        );
        assert_eq!(
            LoggerRequest::decode(&[0x05, 0x02, 0xFF]),
            Err(LoggerError::Trailing {
                direction: "request",
                offset: 2,
                extra: 1
            })
        );
        assert_eq!(
            LoggerRequest::decode(&[0x06, 0x02, 0, 0, 0, 1, 0, 1, 0]),
            Err(LoggerError::RegisterCount { count: 0 })
        );
    }

    #[test]
    fn info_bits_by_name() {
        let info = LogInfo(LogInfo::ENTRIES_TRUNCATED | LogInfo::HEAD_INCLUDED | 1 << 14);
        assert_eq!(info.to_string(), "entries_truncated,head_included,bit_14");
        assert!(info.has(LogInfo::ENTRIES_TRUNCATED));
        assert!(!info.has(LogInfo::OUT_OF_RANGE));
        assert_eq!(LogInfo(0).to_string(), "none");
    }

    #[test]
    fn a_row_is_timed_by_348_or_by_1003_and_1002() {
        let stamp = RegisterValue {
            register: 348,
            unit: Unit(0x4F),
            value: Value::from_parts(false, 0x00_1A_0C_01_0A_00_00, 0, 7).unwrap(),
        };
        assert_eq!(
            row_time(&[cell(60, 0x08, 1, 0), stamp]).map(|t| t.to_string()),
            Some("2026-12-01T10:00:00".to_owned())
        );
        let date = cell(1003, 0x30, 261201, 0);
        let time = cell(1002, 0x2F, 235959, 0);
        assert_eq!(
            row_time(&[time, date]).map(|t| t.to_string()),
            Some("2026-12-01T23:59:59".to_owned())
        );
        assert_eq!(
            row_time(&[date]).map(|t| t.to_string()),
            Some("2026-12-01T00:00:00".to_owned())
        );
        assert_eq!(row_time(&[cell(1003, 0x30, 261301, 0)]), None);
        assert_eq!(row_time(&[cell(60, 0x08, 1, 0)]), None);
    }

    #[test]
    fn logger_names() {
        assert_eq!(Logger::from_name("daily"), Some(Logger::DAILY));
        assert_eq!(Logger::HOURLY.to_string(), "hourly");
        assert_eq!(Logger(42).to_string(), "logger 42");
        assert_eq!(subcommand_name(0x07), "GetLogLastEntryPastAbs");
        assert_eq!(subcommand_name(0x0A), "subcommand 0x0A");
    }
}
