//! `kmplog backfill`: read the rows of each meter's own logger over a span
//! and deliver them as readings with status `logged` to sinks, through an
//! outbox, as the logger delivers what it polls. Each reading has a key of
//! its own (see [`crate::backfill::readings`]): backfilling a span twice
//! adds nothing to SQLite or PostgreSQL.
//!
//! The meters are named on the command line (a line, addresses, sinks) or
//! taken from a configuration file (`--config`): its buses with their
//! settings, the addresses and registers of their requests, its sinks, its
//! outbox and its time zone. Through the configuration's outbox, whose lock
//! a running `kmplog run` holds, a backfill never talks over the logger
//! polling the same lines.

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
use crate::backfill::registers::kept_registers;
use crate::bus::MasterSettings;
use crate::bus::Outcome as MeterOutcome;
use crate::bus::events::EventRouter;
use crate::config::BusConfig;
use crate::config::{Config, SinksConfig, TerminalMode};
use crate::outbox::lock::LockError;
use crate::outbox::{Outbox, OutboxError, OutboxReader};
use crate::sink::Sinks;
use crate::sink::mqtt::discovery::Configured;
use crate::sink::url::SinkUrl;
use crate::transport::Endpoint;

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

Without --register, a meter's readings are of the registers its logger
keeps (its answer to GetConfiguration) or, with --config, the registers of
its requests.

With --config the buses, their addresses and settings, the sinks, the
outbox and the time zone are the file's; --bus and --address choose among
them. Its outbox is the one `kmplog run` on the file holds: while that runs
and polls the lines, the backfill is refused. A serial port that another
master holds is refused too.

Otherwise the readings pass through an outbox file of their own (--outbox);
a logger running on it refuses a backfill, and the other way round.

Examples:
  kmplog backfill --tcp 127.0.0.1:7063 --address 63 --since 2d \\
      -r E1 -r V1 --sink sqlite:kmplog.db
  kmplog backfill --tcp 127.0.0.1:7063 --address 63 --since 6h \\
      --sink jsonl:history
  kmplog backfill --serial /dev/ttyUSB0 --address 1 --logger daily \\
      --from 2026-11-01 --to 2026-11-30 -r E1 \\
      --sink jsonl:history
  kmplog backfill --config kmplog.toml --since 1d
  kmplog backfill --config kmplog.toml --bus boiler-room --address 2 \\
      --logger daily --since 7d -r E1"
)]
pub struct Args {
    #[command(flatten)]
    line: MeterArgs,
    /// A configuration file (as for `kmplog run`): its buses, meters, sinks,
    /// outbox and time zone.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["serial", "tcp", "udp", "baud", "framing", "echo", "timeout", "retries", "outbox", "time_zone", "model"])]
    config: Option<PathBuf>,
    /// With --config: backfill only this bus of the file. Repeatable.
    #[arg(long = "bus", value_name = "NAME", requires = "config")]
    buses: Vec<String>,
    /// Meter address 1 to 255. Repeat it for more meters on the line; with
    /// --config, only these of the file's.
    #[arg(long, short, value_name = "A", required_unless_present = "config", value_parser = parse_address)]
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
    /// (E1). Repeat it. Default: what the logger keeps, or with --config
    /// the registers of the meter's requests.
    #[arg(long, short, value_name = "R", value_parser = parse_register)]
    register: Vec<RegisterArg>,
    /// Meter model whose catalogue names the registers (603, 403, ...).
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    model: Option<Model>,
    /// Where the readings go, by URL: sqlite:PATH, csv:DIR, jsonl:DIR,
    /// postgres://user@host/db, mqtt://host:1883,
    /// influx+http://host:8086/api/v2/write?org=ORG&bucket=BUCKET. Repeatable;
    /// with --config, besides the file's.
    #[arg(long = "sink", value_name = "URL", required_unless_present = "config", value_parser = SinkUrl::parse)]
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

    /// The registers given, resolved in `model`'s catalogue; `None` when
    /// none were given.
    fn registers(&self, model: Option<Model>) -> Result<Option<Vec<u16>>, Failure> {
        if self.register.is_empty() {
            return Ok(None);
        }
        let mut registers = Vec::new();
        for register in &self.register {
            add_new(&mut registers, resolve(model, register)?);
        }
        Ok(Some(registers))
    }

    /// The one line and its meters the options name.
    fn line_target(&self) -> Result<Target, Failure> {
        let endpoint = self.line.endpoint().map_err(|failure| {
            Failure::usage(format!(
                "{}, or a configuration file: --config kmplog.toml",
                failure.message
            ))
        })?;
        let registers = self.registers(self.model)?;
        let meters = self
            .address
            .iter()
            .map(|&address| MeterPlan {
                address,
                registers: registers.clone(),
                model: self.model,
                settings: self.line.master_settings(),
            })
            .collect();
        Ok(Target {
            bus: endpoint.to_string(),
            endpoint,
            meters,
        })
    }

    /// The buses and meters of `config` that --bus and --address choose.
    fn config_targets(&self, config: &Config, file_name: &str) -> Result<Vec<Target>, Failure> {
        let names: Vec<&str> = config.buses.iter().map(|bus| bus.name.as_str()).collect();
        for name in &self.buses {
            if !names.contains(&name.as_str()) {
                return Err(Failure::usage(format!(
                    "{file_name} has no bus '{name}'; its buses: {}",
                    names.join(", ")
                )));
            }
        }
        let chosen: Vec<&BusConfig> = config
            .buses
            .iter()
            .filter(|bus| self.buses.is_empty() || self.buses.contains(&bus.name))
            .collect();
        for bus in &chosen {
            if self.buses.contains(&bus.name) && !bus.requests.iter().any(|request| request.send) {
                return Err(Failure::usage(format!(
                    "bus '{}' of {file_name} only listens (send = false): a backfill would talk over the master it listens to",
                    bus.name
                )));
            }
        }
        let mut targets = Vec::new();
        for bus in &chosen {
            let meters = self.config_meters(bus)?;
            if !meters.is_empty() {
                targets.push(Target {
                    bus: bus.name.clone(),
                    endpoint: crate::bus::task::endpoint_of(&bus.endpoint),
                    meters,
                });
            }
        }
        for address in &self.address {
            let found = targets
                .iter()
                .any(|target| target.meters.iter().any(|meter| meter.address == *address));
            if !found {
                let polled: Vec<String> = chosen
                    .iter()
                    .map(|bus| {
                        let addresses: Vec<String> =
                            polled_addresses(bus).iter().map(u8::to_string).collect();
                        format!("{} polls {}", bus.name, or_none(&addresses.join(", ")))
                    })
                    .collect();
                return Err(Failure::usage(format!(
                    "address {address} is in no request of {}; {}",
                    match self.buses.as_slice() {
                        [] => file_name.to_owned(),
                        _ => format!("the buses given of {file_name}"),
                    },
                    polled.join("; ")
                )));
            }
        }
        if targets.is_empty() {
            return Err(Failure::usage(format!(
                "{file_name} polls no meter (every request has send = false): there is nothing to backfill"
            )));
        }
        Ok(targets)
    }

    /// The meters `bus` polls that --address chooses, each with the
    /// registers of its requests (or those given) and the settings of the
    /// first request that polls it.
    fn config_meters(&self, bus: &BusConfig) -> Result<Vec<MeterPlan>, Failure> {
        let mut meters: Vec<MeterPlan> = Vec::new();
        for request in bus.requests.iter().filter(|request| request.send) {
            for &address in &request.addresses {
                if !self.address.is_empty() && !self.address.contains(&address) {
                    continue;
                }
                let meter = match meters.iter().position(|meter| meter.address == address) {
                    Some(index) => &mut meters[index],
                    None => {
                        meters.push(MeterPlan {
                            address,
                            registers: self.registers(request.model)?,
                            model: request.model,
                            settings: MasterSettings {
                                timeout: request.timeout,
                                retries: request.retries,
                                retry_pause: bus.retry_pause,
                                echo: bus.echo,
                                ..MasterSettings::default()
                            },
                        });
                        let last = meters.len() - 1;
                        &mut meters[last]
                    }
                };
                meter.model = meter.model.or(request.model);
                if self.register.is_empty() {
                    let registers = meter.registers.get_or_insert_with(Vec::new);
                    for item in &request.items {
                        add_new(registers, item.register);
                    }
                }
            }
        }
        Ok(meters)
    }
}

/// One line to read from and the meters on it.
struct Target {
    /// The bus name the readings carry: the configuration's, or the line's
    /// (`tcp 127.0.0.1:7063`).
    bus: String,
    endpoint: Endpoint,
    meters: Vec<MeterPlan>,
}

/// One meter to read.
struct MeterPlan {
    address: u8,
    /// The registers to read; `None` for what the logger keeps.
    registers: Option<Vec<u16>>,
    /// The model whose catalogue names the registers.
    model: Option<Model>,
    /// How to talk to it.
    settings: MasterSettings,
}

fn add_new(registers: &mut Vec<u16>, id: u16) {
    if !registers.contains(&id) {
        registers.push(id);
    }
}

/// The addresses the sending requests of `bus` poll, each once.
fn polled_addresses(bus: &BusConfig) -> Vec<u8> {
    let mut addresses = Vec::new();
    for request in bus.requests.iter().filter(|request| request.send) {
        for &address in &request.addresses {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    addresses
}

fn or_none(list: &str) -> &str {
    if list.is_empty() { "none" } else { list }
}

/// The configuration, time zone and lines of a backfill: the file's, or
/// the command line's.
fn setup(args: &Args) -> Result<(Config, TimeZone, Vec<Target>), Failure> {
    let Some(path) = &args.config else {
        let zone = args.time_zone.clone().unwrap_or_else(TimeZone::system);
        return Ok((args.sinks_config(), zone, vec![args.line_target()?]));
    };
    let file_name = path.display().to_string();
    let (mut config, _remarks) = crate::config::load(path)
        .map_err(|diagnostics| super::check::rejected(&file_name, &diagnostics))?;
    let zone = crate::logger::time_zone(&config).map_err(Failure::failed)?;
    let targets = args.config_targets(&config, &file_name)?;
    config.sinks.terminal = TerminalMode::Off;
    config.sinks.urls.extend(args.sinks.iter().cloned());
    Ok((config, zone, targets))
}

/// Opens the outbox, which refuses a backfill on a running logger's
/// outbox before a meter is asked anything.
fn open_outbox(config: &Config, from_file: Option<&str>) -> Result<Outbox, Failure> {
    Outbox::open(&config.sinks.outbox, config.sinks.outbox_max_rows).map_err(|error| match error {
        OutboxError::Lock(LockError::Held { outbox, holder }) if from_file.is_some() => {
            Failure::failed(format!(
                "the outbox {outbox} of {} is held by {holder}, which polls the file's buses; a backfill beside it would talk over it on the same lines: stop it, backfill, and start it again",
                from_file.unwrap_or_default()
            ))
        }
        OutboxError::Lock(lock) => Failure::failed(format!(
            "{lock}; give the backfill an outbox of its own with --outbox"
        )),
        other => Failure::failed(other.to_string()),
    })
}

/// Runs `kmplog backfill`.
pub async fn run(args: Args) -> Outcome {
    let (config, zone, targets) = setup(&args)?;
    let span = args.span(&zone)?;
    let file_name = args.config.as_ref().map(|path| path.display().to_string());
    let mut outbox = open_outbox(&config, file_name.as_deref())?;
    let sinks = crate::logger::open_sinks(
        &config,
        &zone,
        false,
        &EventRouter::for_buses(&[]),
        &watch::channel(Configured::of(&config)).1,
    )
    .map_err(|error| Failure::failed(error.to_string()))?;
    let (appended, appended_receiver) = watch::channel(outbox.last_seq().map_err(failed)?);
    let sinks = Sinks::start(&mut outbox, sinks, &appended_receiver).map_err(Failure::failed)?;
    let mut errors = Vec::new();
    for target in targets {
        let Some(first) = target.meters.first() else {
            continue;
        };
        let mut line = match MeterLine::open(target.endpoint, first.settings.clone()).await {
            Ok(line) => line,
            Err(failure) if file_name.is_some() => {
                errors.push(format!("bus {}: {}", target.bus, failure.message));
                continue;
            }
            Err(failure) => return Err(failure),
        };
        for meter in &target.meters {
            line.set_settings(meter.settings.clone());
            let plan = Plan {
                logger: args.logger,
                registers: meter.registers.clone().unwrap_or_default(),
                span,
            };
            match backfill_meter(&mut line, &target.bus, meter, plan, &zone).await {
                Ok(readings) => {
                    if !readings.is_empty() {
                        appended.send_replace(outbox.append_keyed(&readings).map_err(failed)?);
                    }
                }
                Err(message) => errors.push(message),
            }
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
            config.sinks.outbox.display()
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

/// Reads the meter's serial number, the registers its logger keeps where
/// the plan names none, then the span of its logger, and gives the readings
/// with their keys; says what it read on stderr.
async fn backfill_meter(
    line: &mut MeterLine,
    bus: &str,
    meter: &MeterPlan,
    mut plan: Plan,
    zone: &TimeZone,
) -> Result<Vec<(String, crate::reading::Reading)>, String> {
    let address = meter.address;
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
    let kept = match meter.registers {
        Some(_) => None,
        None => {
            let kept = kept_registers(line.master(), address, plan.logger)
                .await
                .map_err(|error| format!("{error}; name the registers to read with --register"))?;
            plan.registers.clone_from(&kept);
            Some(kept)
        }
    };
    let bar = progress_bar(address, plan.logger);
    let read = read_log(line.master(), address, &plan, |progress| {
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
        logger: plan.logger,
        model: meter.model,
    };
    let (readings, untimed) = logged_readings(&source, &read.rows, zone);
    let mut said = format!(
        "meter {address} (serial {serial}): {} rows of the {} logger, {} readings, in {} requests, {:.1} s",
        read.rows.len(),
        plan.logger,
        readings.len(),
        read.stats.requests,
        started.elapsed().as_secs_f64()
    );
    if let (Some(first), Some(last)) = (
        read.rows.iter().find_map(|row| row.time),
        read.rows.iter().rev().find_map(|row| row.time),
    ) {
        said.push_str(&format!(
            "; logged {first} to {last} by the meter's clock ({})",
            zone.iana_name().unwrap_or("the system's time zone")
        ));
    }
    if let Some(kept) = kept {
        let ids: Vec<String> = kept.iter().map(u16::to_string).collect();
        said.push_str(&format!(
            "; registers {}, what the logger keeps",
            or_none(&ids.join(", "))
        ));
    }
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
