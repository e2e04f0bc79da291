//! `kmplog log`: read rows of a meter's own logger (hourly, daily, monthly,
//! yearly; CID 0xB8) and print them as a table or as JSON lines, each row
//! with its log id and the meter's time. The paging is
//! [`crate::backfill::paging`]'s.

use jiff::civil::{Date, DateTime};
use kmp::catalogue::Model;
use kmp::logger::Logger;
use serde_json::json;

use super::line::MeterArgs;
use super::output::{log_row_json, log_table};
use super::read::{RegisterArg, parse_address, parse_model, parse_register, resolve};
use super::{Failure, Outcome};
use crate::backfill::paging::{LogRead, Plan, Span, read_log};

/// Rows read when no span is given.
const DEFAULT_LAST: u32 = 10;

/// Options of `kmplog log`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Rows print oldest first; --id N --count K reads log ids N to N+K-1. \
Times are the meter's clock.

Examples:
  kmplog log --tcp 127.0.0.1:7063 --address 63 --logger daily --last 10 \\
      --register E1 --register V1
  kmplog log --tcp 127.0.0.1:7063 --logger hourly --last 24 -r E1 --json
  kmplog log --tcp 127.0.0.1:7063 --logger monthly --id 240 --count 3 -r 60"
)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// Meter address 1 to 255.
    #[arg(long, short, value_name = "A", default_value = "63", value_parser = parse_address)]
    address: u8,
    /// The logger: hourly, daily, monthly or yearly (or another type number
    /// 0 to 255).
    #[arg(long, value_name = "LOGGER", value_parser = parse_logger)]
    logger: Logger,
    /// Register of each row: a number (60), hex (0x3C) or an export name
    /// (E1). Repeat it.
    #[arg(long, short, value_name = "R", required = true, value_parser = parse_register)]
    register: Vec<RegisterArg>,
    /// The newest N rows (10 when no span is given).
    #[arg(long, value_name = "N", conflicts_with_all = ["from", "to", "id"], value_parser = clap::value_parser!(u32).range(1..))]
    last: Option<u32>,
    /// Rows logged from this time on, by the meter's clock: 2026-11-30 or
    /// 2026-11-30T06:00.
    #[arg(long, value_name = "TIME", conflicts_with = "id", value_parser = parse_time)]
    from: Option<DateTime>,
    /// Rows logged up to this time (included), by the meter's clock.
    #[arg(long, value_name = "TIME", conflicts_with = "id", value_parser = parse_time)]
    to: Option<DateTime>,
    /// The oldest log id to read; with --count.
    #[arg(long, value_name = "N", requires = "count")]
    id: Option<u32>,
    /// How many rows from --id on.
    #[arg(long, value_name = "K", requires = "id", value_parser = clap::value_parser!(u32).range(1..))]
    count: Option<u32>,
    /// Meter model whose catalogue names the registers (603, 403, ...).
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    model: Option<Model>,
    /// Print one JSON object per row instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parses a logger name or type number.
pub fn parse_logger(text: &str) -> Result<Logger, String> {
    let text = text.trim();
    if let Some(logger) = Logger::from_name(&text.to_ascii_lowercase()) {
        return Ok(logger);
    }
    text.parse::<u8>().map(Logger).map_err(|_| {
        format!("unknown logger '{text}'; give hourly, daily, monthly or yearly (or a type number 0 to 255)")
    })
}

/// Parses a time of the meter's clock: a date, or a date and time.
pub fn parse_time(text: &str) -> Result<DateTime, String> {
    let text = text.trim();
    text.parse::<DateTime>()
        .or_else(|_| text.parse::<Date>().map(DateTime::from))
        .map_err(|_| {
            format!(
                "'{text}' is not a time: give a date such as 2026-11-30, or a date and time such as 2026-11-30T06:00"
            )
        })
}

impl Args {
    fn span(&self) -> Result<Span, Failure> {
        Ok(match (self.id, self.count, self.from, self.to) {
            (Some(first), Some(count), _, _) => Span::Ids { first, count },
            (_, _, None, None) => Span::Last(self.last.unwrap_or(DEFAULT_LAST)),
            (_, _, Some(from), Some(to)) if from > to => {
                return Err(Failure::usage(format!(
                    "--from {from} is after --to {to}; give the earlier time to --from"
                )));
            }
            (_, _, from, to) => Span::Time { from, to },
        })
    }
}

/// Runs `kmplog log`.
pub async fn run(args: Args) -> Outcome {
    let mut registers = Vec::new();
    for register in &args.register {
        let id = resolve(args.model, register)?;
        if !registers.contains(&id) {
            registers.push(id);
        }
    }
    let plan = Plan {
        logger: args.logger,
        registers,
        span: args.span()?,
    };
    let mut line = args.line.connect().await?;
    let read = read_log(line.master(), args.address, &plan, |_| {})
        .await
        .map_err(|error| Failure::failed(error.to_string()))?;
    print(&args, &read);
    eprintln!("{}", summary(&args, &read));
    Ok(())
}

fn print(args: &Args, read: &LogRead) {
    if args.json {
        for row in &read.rows {
            let mut object = log_row_json(
                args.model,
                row.log_id,
                row.time.map(|time| time.to_string()),
                &row.values,
            );
            if let Some(map) = object.as_object_mut() {
                map.insert("address".to_owned(), json!(args.address));
                map.insert("logger".to_owned(), json!(args.logger.to_string()));
            }
            println!("{object}");
        }
    } else {
        let rows = read.rows.iter().map(|row| {
            (
                row.log_id,
                row.time.map(|time| time.to_string()),
                row.values.as_slice(),
            )
        });
        println!("{}", log_table(args.model, rows));
    }
}

/// What was read, for stderr: `10 rows of the daily logger of meter 63
/// (newest log id 1234) in 2 requests, 1 answer cut short, 0 retries`.
fn summary(args: &Args, read: &LogRead) -> String {
    let plural = |count: u32, one: &str, many: &str| {
        if count == 1 {
            format!("1 {one}")
        } else {
            format!("{count} {many}")
        }
    };
    let rows = u32::try_from(read.rows.len()).unwrap_or(u32::MAX);
    let mut text = format!(
        "{} of the {} logger of meter {} (newest log id {}) in {}, {} cut short, {}",
        plural(rows, "row", "rows"),
        args.logger,
        args.address,
        read.head,
        plural(read.stats.requests, "request", "requests"),
        plural(read.stats.cut_short, "answer", "answers"),
        plural(read.stats.retries, "retry", "retries"),
    );
    if !read.unsupported.is_empty() {
        let ids: Vec<String> = read.unsupported.iter().map(u16::to_string).collect();
        text.push_str(&format!(
            "; the logger does not keep register {}",
            ids.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggers_and_times_parse_with_examples_when_wrong() {
        assert_eq!(parse_logger("Daily"), Ok(Logger::DAILY));
        assert_eq!(parse_logger("5"), Ok(Logger::HOURLY));
        assert!(
            parse_logger("weekly")
                .unwrap_err()
                .contains("hourly, daily")
        );
        assert_eq!(
            parse_time("2026-11-30").map(|time| time.to_string()),
            Ok("2026-11-30T00:00:00".to_owned())
        );
        assert_eq!(
            parse_time("2026-11-30T06:00").map(|time| time.to_string()),
            Ok("2026-11-30T06:00:00".to_owned())
        );
        assert!(
            parse_time("yesterday")
                .unwrap_err()
                .contains("2026-11-30T06:00")
        );
    }
}
