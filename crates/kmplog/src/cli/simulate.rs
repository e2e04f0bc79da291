//! `kmplog simulate`: simulated meters on TCP ports and pseudo-terminals, for
//! tests and demos without hardware.
//!
//! On start it prints one line per listener to stdout, in a form scripts and
//! tests parse: `tcp 127.0.0.1:40123` (the port actually bound),
//! `udp 127.0.0.1:40124` and `pty /dev/pts/3` (the slave to open as a serial
//! port). Then it logs each
//! exchange to stderr until Ctrl-C or SIGTERM, prints what the lines carried
//! (`traffic in 230 out 830 bytes over 4.857123 s`, see
//! [`Summary`](crate::sim::traffic::Summary)) and exits 0.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use kmp::catalogue::Model;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;

use super::read::{parse_address, parse_model};
use super::{Failure, Outcome};
use crate::sim::line::{Faults, LineConfig};
use crate::sim::meter::Meter;
use crate::sim::pacing::Pacing;
use crate::sim::pty::{self, Pty};
use crate::sim::{Outage, Settings, Simulator, tcp, udp};

/// Where the simulator listens when neither `--tcp` nor `--pty` is given.
const DEFAULT_TCP: &str = "127.0.0.1:7063";
/// The baud rate a pty is paced at without `--baud`: the optical port's.
const DEFAULT_PTY_BAUD: u32 = 1_200;

/// Options of `kmplog simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints one line per listener to stdout, such as 'tcp 127.0.0.1:7063' and 'pty /dev/pts/3', then runs until Ctrl-C.

Examples:
  kmplog simulate
  kmplog simulate --tcp 127.0.0.1:0 --meter 63 --meter 17:403 --meter 5:382
  kmplog simulate --pty --echo --sleep-after 60
  kmplog simulate --bad-crc 0.1 --no-reply 0.05 --seed 7
  kmplog simulate --info-code 2
  kmplog simulate --no-loggers
  kmplog simulate --outage 5s,2s,3h
  kmplog simulate --tcp 127.0.0.1:0 --max-connections 1 \\
    --connection-log connections.log"
)]
pub struct Args {
    /// Listen on HOST:PORT; each connection is a line with all the meters on
    /// it. Repeatable; port 0 picks a free port. Default: 127.0.0.1:7063 when
    /// neither --tcp nor --pty is given.
    #[arg(long, value_name = "HOST:PORT")]
    tcp: Vec<String>,
    /// Listen for UDP datagrams on HOST:PORT, one frame each; every peer is
    /// a line with all the meters on it. Repeatable; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    udp: Vec<String>,
    /// Create a pseudo-terminal whose slave the logger opens as a serial
    /// port; repeat for more.
    #[arg(long, action = clap::ArgAction::Count)]
    pty: u8,
    /// A meter on every line: address 1 to 255 and optionally a model (603,
    /// 403, 382, ...), such as 17:403. Repeatable. Default: 63:603.
    #[arg(long = "meter", value_name = "ADDRESS[:MODEL]", value_parser = parse_meter)]
    meters: Vec<MeterArg>,
    /// The info code every heat meter reports in register 99 (INFO), such as
    /// 2 (low battery on a 603); 0, no flags, by default.
    #[arg(long, value_name = "N", default_value_t = 0)]
    info_code: u32,
    /// Heat meters without loggers: they stay silent to the logger command
    /// 0xB8, as meters of older generations do. By default every heat meter
    /// keeps hourly, daily, monthly and yearly loggers, full from the start.
    #[arg(long)]
    no_loggers: bool,
    /// Pace the bytes sent as a serial line at this baud rate (11 bits a
    /// byte, 8N2), 300 to 115200. Default: 1200 on a pty, unpaced on TCP.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(300..=115_200))]
    baud: Option<u32>,
    /// With --baud on TCP: send each byte as soon as it is through the
    /// line (a gateway that forwards at once, as ser2net with `chardelay:
    /// false`). By default the bytes are held as ser2net holds them: until
    /// the line is quiet for two byte times, or for at most 20 ms.
    #[arg(long, requires = "baud")]
    no_chardelay: bool,
    /// Echo every byte received before replying, as optical heads do.
    #[arg(long)]
    echo: bool,
    /// The meter's think time before it replies, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    reply_delay: u64,
    /// Probability (0 to 1) that a meter does not reply.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    no_reply: f64,
    /// Probability (0 to 1) that a reply has a wrong CRC.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    bad_crc: f64,
    /// Probability (0 to 1) of random bytes before or inside a reply.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    garbage: f64,
    /// Probability (0 to 1) that a reply is cut short.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    truncate: f64,
    /// Probability (0 to 1) that a reply comes after --late-ms instead.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    late: f64,
    /// Delay of a late reply in milliseconds: past the logger's default
    /// timeout of 1600 ms.
    #[arg(long, value_name = "MS", default_value_t = 2_500)]
    late_ms: u64,
    /// Seed of the fault dice, for reproducible runs (line n uses SEED + n).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Optical ports fall asleep after this many idle seconds and miss the
    /// frame that wakes them, as battery meters do. Default: never.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    sleep_after: Option<Duration>,
    /// Stage a gateway outage: AFTER the start the TCP listeners close
    /// every connection and refuse new ones FOR that long; the meters live
    /// through SKIP meanwhile (default: FOR), their clocks and counters that
    /// much further on afterwards, so that 3h of outage take 2 s:
    /// --outage 5s,2s,3h.
    #[arg(long, value_name = "AFTER,FOR[,SKIP]", value_parser = parse_outage)]
    outage: Option<Outage>,
    /// Serve at most N connections at once on each TCP listener, as
    /// ser2net's max-connections: one more is closed at once and counted
    /// as refused (printed at the end: 'refused 0 connections').
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Append each TCP connection's opening, closing and refusal to FILE,
    /// as '<unix µs> open|close|refused <listener> <peer>'.
    #[arg(long, value_name = "FILE")]
    connection_log: Option<std::path::PathBuf>,
    /// Log nothing to stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Parses `AFTER,FOR[,SKIP]`, each a duration such as 5s, 2s or 3h.
fn parse_outage(text: &str) -> Result<Outage, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let duration = |part: &str| {
        kmp_schedule::Interval::parse(part)
            .map(|interval| interval.duration())
            .map_err(|error| {
                format!("'{part}' in --outage {text}: {error}; for example --outage 5s,2s,3h")
            })
    };
    match parts[..] {
        [after, lasts] => Ok(Outage {
            after: duration(after)?,
            lasts: duration(lasts)?,
            skips: duration(lasts)?,
        }),
        [after, lasts, skips] => Ok(Outage {
            after: duration(after)?,
            lasts: duration(lasts)?,
            skips: duration(skips)?,
        }),
        _ => Err(format!(
            "'{text}' is not AFTER,FOR[,SKIP]: give two or three durations, such as 5s,2s,3h"
        )),
    }
}

/// A `--meter` option: an address and a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterArg {
    address: u8,
    model: Model,
}

/// Parses `ADDRESS[:MODEL]`, such as `63` or `17:403`; the model defaults to
/// the MULTICAL 603.
fn parse_meter(text: &str) -> Result<MeterArg, String> {
    let (address, model) = match text.split_once(':') {
        Some((address, model)) => (address, parse_model(model)?),
        None => (text, Model::Multical603),
    };
    Ok(MeterArg {
        address: parse_address(address)?,
        model,
    })
}

/// Parses a probability from 0 to 1.
fn parse_probability(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "'{text}' is not a probability: give a number from 0 to 1, such as 0.1"
        )),
    }
}

/// Parses a positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| *seconds > 0.0)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| {
            format!("'{text}' is not a duration: give seconds above 0, such as 60 or 0.5")
        })
}

impl Args {
    fn settings(&self) -> Result<Settings, Failure> {
        let mut meters: Vec<MeterArg> = self.meters.clone();
        if meters.is_empty() {
            meters.push(MeterArg {
                address: 63,
                model: Model::Multical603,
            });
        }
        let mut addresses: Vec<u8> = meters.iter().map(|meter| meter.address).collect();
        addresses.sort_unstable();
        if let Some(pair) = addresses.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Failure::usage(format!(
                "two meters at address {}: addresses on a line must differ (example: --meter 63 --meter 17:403)",
                pair[0]
            )));
        }
        Ok(Settings {
            meters: meters
                .iter()
                .map(|meter| {
                    let meter =
                        Meter::new(meter.address, meter.model).with_info_code(self.info_code);
                    if self.no_loggers {
                        meter.without_loggers()
                    } else {
                        meter
                    }
                })
                .collect(),
            line: LineConfig {
                echo: self.echo,
                reply_delay: Duration::from_millis(self.reply_delay),
                faults: Faults {
                    no_reply: self.no_reply,
                    bad_crc: self.bad_crc,
                    garbage: self.garbage,
                    truncate: self.truncate,
                    late: self.late,
                    late_delay: Duration::from_millis(self.late_ms),
                },
                sleep_after: self.sleep_after,
            },
            seed: self.seed,
            quiet: self.quiet,
            outage: self.outage,
        })
    }

    /// A gate for one listener, when --max-connections or
    /// --connection-log asks for one.
    fn gate(&self) -> Result<Option<tcp::Gate>, Failure> {
        if self.max_connections.is_none() && self.connection_log.is_none() {
            return Ok(None);
        }
        let journal = match &self.connection_log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| {
                        Failure::failed(format!("cannot open {}: {error}", path.display()))
                    })?,
            ),
            None => None,
        };
        let max = self.max_connections.map_or(usize::MAX, |max| max as usize);
        Ok(Some(tcp::Gate::new(max, journal)))
    }

    fn tcp_addresses(&self) -> Vec<String> {
        if self.tcp.is_empty() && self.udp.is_empty() && self.pty == 0 {
            vec![DEFAULT_TCP.to_owned()]
        } else {
            self.tcp.clone()
        }
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> Outcome {
    let simulator = Simulator::new(args.settings()?);
    // Before the listener lines go out: whoever reads them may signal at once.
    let mut shutdown = Shutdown::listen()?;
    let mut listeners = Vec::new();
    for address in args.tcp_addresses() {
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|error| Failure::failed(format!("cannot listen on {address}: {error}")))?;
        listeners.push(listener);
    }
    let mut sockets = Vec::new();
    for address in &args.udp {
        let socket = UdpSocket::bind(address)
            .await
            .map_err(|error| Failure::failed(format!("cannot listen on udp {address}: {error}")))?;
        sockets.push(socket);
    }
    let ptys = (0..args.pty)
        .map(|_| Pty::open())
        .collect::<Result<Vec<Pty>, _>>()
        .map_err(|error| Failure::failed(format!("cannot create a pseudo-terminal: {error}")))?;
    announce(&listeners, &sockets, &ptys)
        .map_err(|error| Failure::failed(format!("cannot write to stdout: {error}")))?;
    describe_meters(&simulator);

    let mut tasks = JoinSet::new();
    let tcp_pacing = args.baud.map(|baud| match args.no_chardelay {
        true => Pacing::new(baud),
        false => Pacing::new(baud).held(),
    });
    for socket in sockets {
        let name = socket
            .local_addr()
            .map_or_else(|_| "udp".to_owned(), |address| format!("udp {address}"));
        let served = udp::serve(socket, Arc::clone(&simulator));
        tasks.spawn(async move { (name, served.await) });
    }
    let mut gates = Vec::new();
    for listener in listeners {
        let name = listener_name(&listener);
        let gate = match args.gate() {
            Ok(gate) => gate.map(Arc::new),
            Err(failure) => return Err(failure),
        };
        gates.extend(gate.clone());
        let served = tcp::serve_gated(listener, Arc::clone(&simulator), tcp_pacing, gate);
        tasks.spawn(async move { (name, served.await) });
    }
    let pty_pacing = Some(Pacing::new(args.baud.unwrap_or(DEFAULT_PTY_BAUD)));
    for pty in ptys {
        let name = format!("pty {}", pty.path().display());
        let served = pty::serve(pty, Arc::clone(&simulator), pty_pacing);
        tasks.spawn(async move { (name, served.await) });
    }

    tokio::select! {
        () = shutdown.wait() => {
            simulator.log("simulate", "stopped by a signal");
            // On stdout, beside the listener lines, for benchmark scripts;
            // a reader that has gone away is no reason to fail.
            let _ = writeln!(std::io::stdout(), "{}", simulator.traffic().summary());
            if args.max_connections.is_some() {
                let refused: u64 = gates.iter().map(|gate| gate.refused()).sum();
                let _ = writeln!(std::io::stdout(), "refused {refused} connections");
            }
            Ok(())
        }
        Some(ended) = tasks.join_next() => Err(match ended {
            Ok((name, Err(error))) => Failure::failed(format!("{name}: {error}")),
            Ok((name, Ok(()))) => Failure::failed(format!("{name}: stopped")),
            Err(error) => Failure::failed(format!("a listener failed: {error}")),
        }),
    }
}

fn listener_name(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "tcp".to_owned(), |address| format!("tcp {address}"))
}

/// Prints the machine-readable listener lines and flushes them, so that a
/// script waiting for them sees them at once.
fn announce(listeners: &[TcpListener], sockets: &[UdpSocket], ptys: &[Pty]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for listener in listeners {
        writeln!(stdout, "tcp {}", listener.local_addr()?)?;
    }
    for socket in sockets {
        writeln!(stdout, "udp {}", socket.local_addr()?)?;
    }
    for pty in ptys {
        writeln!(stdout, "pty {}", pty.path().display())?;
    }
    stdout.flush()
}

fn describe_meters(simulator: &Simulator) {
    for meter in simulator.meters() {
        simulator.log(
            "meter",
            format_args!(
                "address {} {} serial {}",
                meter.address(),
                meter.model(),
                meter.serial()
            ),
        );
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from creation on.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    fn listen() -> Result<Shutdown, Failure> {
        let listen = |kind| {
            signal(kind)
                .map_err(|error| Failure::failed(format!("cannot listen for signals: {error}")))
        };
        Ok(Shutdown {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &[&str]) -> Result<Args, String> {
        Command::try_parse_from([&["simulate"], line].concat())
            .map(|command| command.args)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn meters_parse_with_an_optional_model() {
        for (text, expected) in [
            ("63", Ok((63, Model::Multical603))),
            ("17:403", Ok((17, Model::Multical403))),
            ("5:382", Ok((5, Model::Kamstrup382))),
            ("0", Err("out of range")),
            ("256:603", Err("out of range")),
            ("x:603", Err("not an address")),
            ("17:604", Err("known models: 601")),
        ] {
            let parsed = parse_meter(text).map(|meter| (meter.address, meter.model));
            match (parsed, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{text}"),
                (Err(error), Err(part)) => assert!(error.contains(part), "{text}: {error}"),
                (got, expected) => panic!("{text}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn probabilities_and_durations_are_checked() {
        for (text, ok) in [
            ("0", true),
            ("1", true),
            ("0.25", true),
            ("1.5", false),
            ("-0.1", false),
            ("NaN", false),
            ("x", false),
        ] {
            assert_eq!(parse_probability(text).is_ok(), ok, "{text}");
        }
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "inf", "x"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_become_settings() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.tcp_addresses(), [DEFAULT_TCP]);
        let settings = args.settings().unwrap();
        assert_eq!(settings.meters.len(), 1);
        assert_eq!(
            (settings.meters[0].address(), settings.meters[0].model()),
            (63, Model::Multical603)
        );
        assert_eq!(settings.line, LineConfig::default());

        let args = parse(&[
            "--pty",
            "--meter",
            "1",
            "--meter",
            "2:382",
            "--bad-crc",
            "0.5",
            "--late-ms",
            "3000",
            "--echo",
            "--sleep-after",
            "30",
        ])
        .unwrap();
        assert!(args.tcp_addresses().is_empty());
        let settings = args.settings().unwrap();
        assert_eq!(settings.meters.len(), 2);
        assert!(settings.line.echo);
        assert_eq!(settings.line.faults.bad_crc, 0.5);
        assert_eq!(settings.line.faults.late_delay, Duration::from_secs(3));
        assert_eq!(settings.line.sleep_after, Some(Duration::from_secs(30)));

        let twice = parse(&["--meter", "7", "--meter", "7:403"])
            .unwrap()
            .settings();
        assert!(twice.is_err_and(|failure| failure.message.contains("two meters at address 7")));
        for bad in [
            &["--baud", "299"][..],
            &["--baud", "115201"],
            &["--no-reply", "2"],
            &["--outage", "5s"],
            &["--outage", "5s,2x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_outage_skips_as_long_as_it_lasts_unless_told() {
        let outage = |text: &str| parse(&["--outage", text]).unwrap().outage.unwrap();
        assert_eq!(
            outage("5s,2s,3h"),
            Outage {
                after: Duration::from_secs(5),
                lasts: Duration::from_secs(2),
                skips: Duration::from_secs(3 * 3600),
            }
        );
        assert_eq!(outage("1min,30s").skips, Duration::from_secs(30));
        assert!(
            parse_outage("5s,2s,3h,1s")
                .unwrap_err()
                .contains("give two or three durations, such as 5s,2s,3h")
        );
    }
}
