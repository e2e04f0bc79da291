//! `kmplog run`: the logger, on a configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};
use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::logger::{Logger, Options};

/// Where the API listens unless told otherwise.
pub const DEFAULT_API: &str = "127.0.0.1:7064";

/// Options of `kmplog run`, also taken by `kmplog demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Print readings as JSON lines on stdout, also on a terminal.
    #[arg(long)]
    json: bool,
    /// Stop after this long (30s, 5min, 2h); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Where the HTTP API listens (loopback only), or `off`. `kmplog trigger`
    /// sends events there.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_API, value_parser = parse_api)]
    api: ApiAddress,
}

/// Options of `kmplog run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kmplog check kmplog.toml && kmplog run kmplog.toml")]
pub struct Args {
    /// The configuration file (see examples/kmplog.toml).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// The API's address, or none.
#[derive(Debug, Clone, Copy)]
pub struct ApiAddress(Option<SocketAddr>);

fn parse_duration(text: &str) -> Result<Duration, String> {
    kmp_schedule::Interval::parse(text)
        .map(|interval| interval.duration())
        .map_err(|error| error.to_string())
}

fn parse_api(text: &str) -> Result<ApiAddress, String> {
    if text == "off" {
        return Ok(ApiAddress(None));
    }
    let address: SocketAddr = text.parse().map_err(|_| {
        format!("'{text}' is not HOST:PORT with an IP address, such as 127.0.0.1:7064, or off")
    })?;
    if !address.ip().is_loopback() {
        return Err(format!(
            "{address} is not a loopback address: the API has no authentication yet, so it binds to 127.0.0.1 or [::1] only"
        ));
    }
    Ok(ApiAddress(Some(address)))
}

/// Runs `kmplog run`.
pub async fn run(args: Args) -> Outcome {
    let (config, remarks) =
        config::load(&args.file).map_err(|diagnostics| Failure::failed(diagnostics.to_string()))?;
    if !remarks.list().is_empty() {
        eprintln!("{remarks}");
    }
    serve(&config, &args.run, Clock::System).await
}

/// Runs the logger on `config` until the duration passes or it is stopped.
pub async fn serve(config: &Config, args: &RunArgs, clock: Clock) -> Outcome {
    let options = Options {
        json: args.json,
        duration: args.duration,
        clock,
    };
    let logger = Logger::start(config, &options).map_err(Failure::failed)?;
    let stop_api = CancellationToken::new();
    if let ApiAddress(Some(address)) = args.api {
        let state = ApiState {
            events: logger.events.clone(),
            buses: logger.buses.clone(),
        };
        match api::serve(address, state, stop_api.clone()).await {
            Ok(bound) => eprintln!("kmplog: API on http://{bound}"),
            Err(error) => {
                // The buses have started: stop them so that the sinks keep
                // what they have read already.
                logger.stop().await;
                return Err(Failure::failed(format!(
                    "cannot listen for the API on {address}: {error}; choose another with --api"
                )));
            }
        }
    }
    logger.run_until_stopped(&options).await;
    stop_api.cancel();
    Ok(())
}
