//! `kmplog demo`: the whole logger with no hardware and no set-up. It starts
//! simulated meters in this process (a gateway with three heat meters on one
//! line, a serial line with an electricity meter and a heat meter), runs the
//! sample configuration `examples/demo.toml` against them, shows the live
//! table and stores every reading in `./kmplog.db`.

use std::sync::Arc;

use jiff::tz::TimeZone;
use kmp::catalogue::Model;
use tokio::net::TcpListener;

use super::run::{RunArgs, serve};
use super::{Failure, Outcome};
use crate::clock::Clock;
use crate::config;
use crate::sim::line::LineConfig;
use crate::sim::meter::Meter;
use crate::sim::pacing::Pacing;
use crate::sim::pty::Pty;
use crate::sim::{Settings, Simulator, pty, tcp};

/// The sample configuration, with stand-ins for the simulated lines.
const DEMO_CONFIG: &str = include_str!("../../../../examples/demo.toml");
const GATEWAY_STAND_IN: &str = "127.0.0.1:17063";
const SERIAL_STAND_IN: &str = "/dev/kmplog-demo-line";
const TIME_STAND_IN: &str = "23:59:59";
/// Baud rate of the demo's serial line, as in the sample configuration.
const SERIAL_BAUD: u32 = 2400;

/// Options of `kmplog demo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog demo\n  kmplog demo --for 1min --json > readings.jsonl"
)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn simulator(meters: &[(u8, Model)]) -> Arc<Simulator> {
    Simulator::new(Settings {
        meters: meters
            .iter()
            .map(|&(address, model)| Meter::new(address, model))
            .collect(),
        line: LineConfig::default(),
        seed: None,
        quiet: true,
        outage: None,
    })
}

/// Runs `kmplog demo`.
pub async fn run(args: Args) -> Outcome {
    let fail = |what: &str, error: std::io::Error| {
        Failure::failed(format!("demo: cannot {what}: {error}"))
    };
    let gateway = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| fail("open a TCP port", error))?;
    let gateway_address = gateway
        .local_addr()
        .map_err(|error| fail("open a TCP port", error))?;
    let boiler_room = simulator(&[
        (1, Model::Multical603),
        (2, Model::Multical603),
        (3, Model::Multical403),
    ]);
    tokio::spawn(tcp::serve(gateway, boiler_room, None));

    let line = Pty::open().map_err(|error| fail("open a pseudo-terminal", error))?;
    let line_path = line.path().display().to_string();
    let substation = simulator(&[(10, Model::Kamstrup382), (11, Model::Multical602)]);
    tokio::spawn(pty::serve(line, substation, Some(Pacing::new(SERIAL_BAUD))));

    let soon = jiff::Timestamp::now().to_zoned_datetime(TimeZone::system())
        + jiff::SignedDuration::from_secs(20);
    let text = DEMO_CONFIG
        .replace(GATEWAY_STAND_IN, &gateway_address.to_string())
        .replace(SERIAL_STAND_IN, &line_path)
        .replace(TIME_STAND_IN, &soon.strftime("%H:%M:%S").to_string());
    let (config, _notes) = config::parse(&text, "demo.toml")
        .map_err(|diagnostics| Failure::failed(format!("demo configuration: {diagnostics}")))?;
    eprintln!(
        "kmplog demo: simulated gateway on tcp {gateway_address} (meters 1, 2, 3), serial line {line_path} at {SERIAL_BAUD} baud (meters 10, 11); readings go to ./kmplog.db"
    );
    serve(&config, None, &args.run, Clock::System).await
}
