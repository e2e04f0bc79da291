//! `kmplog backfill`: read the rows of each meter's own logger over a span
//! and deliver them as readings with status `logged` to sinks, through an
//! outbox, as the logger delivers what it polls. Each reading has a key of
//! its own (see [`crate::backfill::readings`]): backfilling a span twice
//! adds nothing to SQLite or PostgreSQL.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kmp::catalogue::Model;
use kmp::logger::Logger;
use kmp::message::{Request, Response};
use tokio::sync::watch;

use super::line::{MeterArgs, MeterLine};
use super::log::{parse_logger, parse_time};
use super::read::{RegisterArg, parse_address, parse_model, parse_register, resolve};
use super::{Failure, Outcome};
use crate::backfill::paging::{Plan, Span, read_log};
use crate::backfill::readings::{Source, logged_readings};
use crate::bus::Outcome as MeterOutcome;
use crate::bus::events::EventRouter;
use crate::config::{Config, SinksConfig, TerminalMode};
use crate::outbox::{Outbox, OutboxError, OutboxReader};
use crate::sink::Sinks;
use crate::sink::url::SinkUrl;

/// The outbox of `kmplog backfill` unless told otherwise: not the logger's
/// (`kmplog-outbox.db`), which a running logger holds.
const DEFAULT_OUTBOX: &str = "kmplog-backfill-outbox.db";

/// How long the sinks get to deliver the backfilled readings; what they
/// have not by then waits in the outbox for the next backfill.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// Options of `kmplog backfill`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each logger row becomes readings with status `logged`, stamped with the
meter's time of the row: civil time on the meter's clock, placed in the
system's time zone (or --time-zone). Backfilling the same span again adds
no duplicates: each reading's key is the meter's serial number, the logger,
the log id and the register.

The readings pass through an outbox file of their own (--outbox); a
logger running on it refuses a backfill, and the other way round.

Examples:
  kmplog backfill --tcp 127.0.0.1:7063 --address 63 --since 2d \\
      -r E1 -r V1 --sink sqlite:kmplog.db
  kmplog backfill --serial /dev/ttyUSB0 --address 1 --logger daily \\
      --from 2026-11-01 --to 2026-11-30 -r E1 \\
      --sink jsonl:history"
)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// Meter address 1 to 255. Repeat it for more meters on the line.
    #[arg(long, short, value_name = "A", required = true, value_parser = parse_address)]
    address: Vec<u8>,
    /// The logger: hourly, daily, monthly or yearly (or another type number
    /// 0 to 255).
    #[arg(long, value_name = "LOGGER", default_value = "hourly", value_parser = parse_logger)]
    logger: Logger,
    /// Rows logged within this long before now: 2d, 12h, 30min.
    #[arg(long, value_name = "DURATION", required_unless_present = "from", conflicts_with_all = ["from", "to"], value_parser = parse_duration)]
    since: Option<Duration>,
    /// Rows logged from this time on, by the meter's clock: 2026-11-30 or
    /// 2026-11-30T06:00.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Option<DateTime>,
    /// Rows logged up to this time (included), by the meter's clock;
    /// default: the newest.
    #[arg(long, value_name = "TIME", requires = "from", value_parser = parse_time)]
    to: Option<DateTime>,
    /// Register of each row: a number (60), hex (0x3C) or an export name
    /// (E1). Repeat it.
    #[arg(long, short, value_name = "R", required = true, value_parser = parse_register)]
    register: Vec<RegisterArg>,
    /// Meter model whose catalogue names the registers (603, 403, ...).
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    model: Option<Model>,
    /// Where the readings go, by URL: sqlite:PATH, csv:DIR, jsonl:DIR,
    /// postgres://user@host/db, mqtt://host:1883,
    /// influx+http://host:8086/api/v2/write?org=ORG&bucket=BUCKET. Repeatable.
    #[arg(long = "sink", value_name = "URL", required = true, value_parser = SinkUrl::parse)]
    sinks: Vec<SinkUrl>,
    /// The outbox file the readings pass through.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_OUTBOX)]
    outbox: PathBuf,
    /// The IANA time zone of the meters' clocks, such as Europe/Copenhagen;
    /// default: the system's.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    time_zone: Option<TimeZone>,
}

/// A span back from now: days (`2d`), or what a schedule's interval takes
/// (`12h`, `30min`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(days) = text.strip_suffix('d') {
        return days
            .trim()
            .parse::<u16>()
            .map(|days| Duration::from_secs(u64::from(days) * 86_400))
            .map_err(|_| format!("'{text}' is not a number of days, such as 2d"));
    }
    kmp_schedule::Interval::parse(text)
        .map(|interval| interval.duration())
        .map_err(|error| format!("{error}, or d (days), such as 2d"))
}

fn parse_zone(text: &str) -> Result<TimeZone, String> {
    TimeZone::get(text.trim()).map_err(|error| {
        format!("time zone '{text}': {error}; give an IANA name such as Europe/Copenhagen")
    })
}

impl Args {
    /// The span to read, in the meters' time.
    fn span(&self, zone: &TimeZone) -> Result<Span, Failure> {
        if let Some(since) = self.since {
            let since = SignedDuration::try_from(since)
                .ok()
                .and_then(|since| Timestamp::now().checked_sub(since).ok())
                .ok_or_else(|| Failure::usage("--since reaches too far back"))?;
            return Ok(Span::Time {
                from: Some(zone.to_datetime(since)),
                to: None,
            });
        }
        match (self.from, self.to) {
            (Some(from), Some(to)) if from > to => Err(Failure::usage(format!(
                "--from {from} is after --to {to}; give the earlier time to --from"
            ))),
            (from, to) => Ok(Span::Time { from, to }),
        }
    }

    /// The sinks as a configuration of no buses, to open them as `run` does.
    fn sinks_config(&self) -> Config {
        Config {
            time_zone: None,
            sinks: SinksConfig {
                sqlite: None,
                terminal: TerminalMode::Off,
                outbox: self.outbox.clone(),
                urls: self.sinks.clone(),
                ..SinksConfig::default()
            },
            buses: Vec::new(),
            models: kmp::catalogue::ModelTable::default(),
            cluster: None,
        }
    }
}

/// Runs `kmplog backfill`.
pub async fn run(args: Args) -> Outcome {
    let mut registers = Vec::new();
    for register in &args.register {
        let id = resolve(args.model, register)?;
        if !registers.contains(&id) {
            registers.push(id);
        }
    }
    let zone = args.time_zone.clone().unwrap_or_else(TimeZone::system);
    let plan = Plan {
        logger: args.logger,
        registers,
        span: args.span(&zone)?,
    };
    let config = args.sinks_config();
    // The outbox first: its lock refuses a backfill on a running logger's
    // outbox before a meter is asked anything.
    let mut outbox =
        Outbox::open(&config.sinks.outbox, config.sinks.outbox_max_rows).map_err(|error| {
            match error {
                OutboxError::Lock(lock) => Failure::failed(format!(
                    "{lock}; give the backfill an outbox of its own with --outbox"
                )),
                other => Failure::failed(other.to_string()),
            }
        })?;
    let sinks = crate::logger::open_sinks(&config, &zone, false, &EventRouter::for_buses(&[]))
        .map_err(|error| Failure::failed(error.to_string()))?;
    let (appended, appended_receiver) = watch::channel(outbox.last_seq().map_err(failed)?);
    let sinks = Sinks::start(&mut outbox, sinks, &appended_receiver).map_err(Failure::failed)?;
    let bus = args.line.endpoint()?.to_string();
    let mut line = args.line.connect().await?;
    let mut errors = Vec::new();
    for &address in &args.address {
        match backfill_meter(&mut line, &bus, address, &args, &plan, &zone).await {
            Ok(readings) => {
                if !readings.is_empty() {
                    appended.send_replace(outbox.append_keyed(&readings).map_err(failed)?);
                }
            }
            Err(message) => errors.push(message),
        }
    }
    let reader = outbox.reader().map_err(failed)?;
    let undelivered = tokio::task::spawn_blocking(move || {
        let undelivered = wait_for_delivery(&reader);
        sinks.stop(Duration::ZERO);
        undelivered
    })
    .await
    .map_err(|error| Failure::failed(error.to_string()))?;
    if !undelivered.is_empty() {
        errors.push(format!(
            "not delivered within {} s: {}; they wait in {} for the next backfill with it",
            DELIVERY_WAIT.as_secs(),
            undelivered.join(", "),
            args.outbox.display()
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("\nkmplog: ")))
    }
}

fn failed(error: OutboxError) -> Failure {
    Failure::failed(error.to_string())
}

/// Reads the meter's serial number, then the span of its logger, and gives
/// the readings with their keys; says what it read on stderr.
async fn backfill_meter(
    line: &mut MeterLine,
    bus: &str,
    address: u8,
    args: &Args,
    plan: &Plan,
    zone: &TimeZone,
) -> Result<Vec<(String, crate::reading::Reading)>, String> {
    let exchange = line
        .transact(address, &Request::GetSerialNo)
        .await
        .map_err(|failure| failure.message)?;
    let serial = match &exchange.outcome {
        MeterOutcome::Response(Response::SerialNo { serial }) => *serial,
        MeterOutcome::Response(other) => {
            return Err(format!(
                "meter {address}: unexpected reply {other:?} to GetSerialNo"
            ));
        }
        _ => return Err(line.explain(address, &exchange)),
    };
    let started = Instant::now();
    let bar = progress_bar(address, args.logger);
    let read = read_log(line.master(), address, plan, |progress| {
        bar.set_length(u64::from(progress.expected.max(progress.rows)));
        bar.set_position(u64::from(progress.rows));
    })
    .await;
    bar.finish_and_clear();
    let read = read.map_err(|error| error.to_string())?;
    let source = Source {
        bus,
        address,
        serial,
        logger: args.logger,
        model: args.model,
    };
    let (readings, untimed) = logged_readings(&source, &read.rows, zone);
    let mut said = format!(
        "meter {address} (serial {serial}): {} rows of the {} logger, {} readings, in {} requests, {:.1} s",
        read.rows.len(),
        args.logger,
        readings.len(),
        read.stats.requests,
        started.elapsed().as_secs_f64()
    );
    if untimed > 0 {
        said.push_str(&format!("; {untimed} rows without a time left out"));
    }
    if !read.unsupported.is_empty() {
        let ids: Vec<String> = read.unsupported.iter().map(u16::to_string).collect();
        said.push_str(&format!(
            "; the logger does not keep register {}",
            ids.join(", ")
        ));
    }
    eprintln!("{said}");
    Ok(readings)
}

/// A bar of the rows read on a terminal; nothing elsewhere.
fn progress_bar(address: u8, logger: Logger) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} rows {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("meter {address}, {logger} logger"));
    bar
}

/// Waits until every sink has delivered everything, at most
/// [`DELIVERY_WAIT`]; gives the sinks that have not, with how many
/// readings they lack.
fn wait_for_delivery(reader: &OutboxReader) -> Vec<String> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let behind: Vec<String> = match reader.depths() {
            Ok(depths) => depths
                .into_iter()
                .filter(|(_, depth)| *depth > 0)
                .map(|(sink, depth)| format!("{depth} readings for sink {sink}"))
                .collect(),
            Err(error) => vec![error.to_string()],
        };
        if behind.is_empty() || Instant::now() >= deadline {
            return behind;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_days_hours_and_minutes() {
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30min"), Ok(Duration::from_secs(1_800)));
        assert!(parse_duration("xd").unwrap_err().contains("such as 2d"));
        assert!(parse_duration("2w").unwrap_err().contains("such as 2d"));
    }
}
