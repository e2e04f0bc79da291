//! `kmplog run`: the logger, on a configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Failure, Outcome};
use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::cluster::coordinator::Coordinator;
use crate::cluster::lease::Timing;
use crate::cluster::member::Member;
use crate::cluster::{self, ClusterView, Ownership};
use crate::config::{self, Config, Diagnostics, Severity};
use crate::logger::{Logger, Options};
use crate::outbox::OutboxReader;
use crate::reload::{Hangups, ReloadOrder, ReloadSource, Reloader, reload_logger};
use crate::service::{self, Service};
use crate::sink::url::SinkUrl;

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
    /// Where the HTTP API listens, or `off`: the API, /metrics, and where
    /// `kmplog trigger` sends events. Other than a loopback address only
    /// with --api-token.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_API, value_parser = parse_api)]
    api: ApiAddress,
    /// The token every API request must bear (`Authorization: Bearer
    /// TOKEN`); needed to listen on other than a loopback address.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KMPLOG_API_TOKEN",
        hide_env_values = true
    )]
    api_token: Option<String>,
    /// A host name the API answers to besides its address and, on a
    /// loopback address, localhost: the name a reverse proxy or a DNS entry
    /// gives it, such as --api-name kmplog.example.net. Other names are
    /// refused (421), so that a web page cannot reach the API through a
    /// name of its own (DNS rebinding). Repeatable.
    #[arg(long = "api-name", value_name = "NAME", value_parser = parse_api_name)]
    api_names: Vec<String>,
    /// Another sink, by URL, besides those of the configuration: sqlite:PATH,
    /// csv:DIR, jsonl:DIR, postgres://user@host/db, mqtt://host:1883,
    /// influx+http://host:8086/api/v2/write?org=ORG&bucket=BUCKET. Repeatable.
    #[arg(long = "sink", value_name = "URL", value_parser = SinkUrl::parse)]
    sinks: Vec<SinkUrl>,
    /// This instance's name in a [cluster]: letters, digits, '-', '_' and
    /// '.'; unique among the instances. Default: the host name and the
    /// process id (meters-1-4711).
    #[arg(long, value_name = "NAME", value_parser = parse_instance)]
    instance: Option<String>,
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
    // Whether a non-loopback address is allowed depends on --api-token,
    // which `serve` checks before anything starts.
    let address: SocketAddr = text.parse().map_err(|_| {
        format!("'{text}' is not HOST:PORT with an IP address, such as 127.0.0.1:7064, or off")
    })?;
    Ok(ApiAddress(Some(address)))
}

fn parse_instance(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not an instance name: use up to 63 letters, digits, '-', '_' and '.', such as --instance meters-1"
        ))
    }
}

fn parse_api_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{text}' is not a host name: give a name without scheme or port, such as kmplog.example.net"
        ))
    }
}

/// Runs `kmplog run`.
pub async fn run(args: Args) -> Outcome {
    let file_name = args.file.display().to_string();
    let (config, remarks) = config::load(&args.file)
        .map_err(|diagnostics| super::check::rejected(&file_name, &diagnostics))?;
    log_remarks(&file_name, &remarks);
    serve(&config, Some(&args.file), &args.run, Clock::System).await
}

/// Each warning and note about the file as one log event with its place
/// (`kmplog.toml:8:11`), so that under systemd the journal keeps them;
/// `kmplog check` shows them with their source lines instead.
fn log_remarks(file_name: &str, remarks: &Diagnostics) {
    for remark in remarks.list() {
        let at = match &remark.location {
            Some(at) => format!("{file_name}:{}:{}", at.line, at.column),
            None => file_name.to_owned(),
        };
        match remark.severity {
            Severity::Note => info!(at = %at, hint = ?remark.hint, "{}", remark.message),
            Severity::Warning | Severity::Error => {
                warn!(at = %at, hint = ?remark.hint, "{}", remark.message);
            }
        }
    }
}

/// The database `/api/readings` reads: the SQLite sink's, named in
/// `[sinks]` or by a `sqlite:` URL.
fn sqlite_database(config: &Config) -> Option<PathBuf> {
    config.sinks.sqlite.clone().or_else(|| {
        config.sinks.urls.iter().find_map(|url| match url {
            SinkUrl::Sqlite(path) => Some(path.clone()),
            _ => None,
        })
    })
}

/// The next reload the API asks for; never without an API (whose
/// reloader is then gone).
async fn next_order(orders: &mut Option<mpsc::Receiver<ReloadOrder>>) -> ReloadOrder {
    if let Some(receiver) = orders
        && let Some(order) = receiver.recv().await
    {
        return order;
    }
    *orders = None;
    std::future::pending().await
}

/// This instance's membership while it runs: the member loop's task and
/// what the run loop talks to it through.
struct Joined {
    view: ClusterView,
    buses: watch::Sender<Vec<cluster::spread::Weighted>>,
    orders: mpsc::Receiver<Ownership>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Joined {
    fn start(name: String, timing: Timing, coordinator: Coordinator, logger: &Logger) -> Joined {
        info!(instance = %name, coordinator = %coordinator.name(), "joining the cluster");
        let view = ClusterView::new(&name);
        let (buses, watched) = watch::channel(cluster::weighted(logger.configured()));
        let (sender, orders) = mpsc::channel(4);
        let member = Member::new(&name, timing, coordinator, watched, sender, view.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(member.run(stop.clone()));
        Joined {
            view,
            buses,
            orders,
            stop,
            task,
        }
    }

    /// The next ownership order; never without a cluster.
    async fn next(joined: Option<&mut Joined>) -> Ownership {
        if let Some(joined) = joined
            && let Some(order) = joined.orders.recv().await
        {
            return order;
        }
        std::future::pending().await
    }

    /// Tells the member loop the buses after a reload.
    fn reloaded(joined: Option<&Joined>, logger: &Logger) {
        if let Some(joined) = joined {
            joined
                .buses
                .send_replace(cluster::weighted(logger.configured()));
        }
    }

    /// A clean stop: the member stops every bus (through the orders it
    /// still sends) and releases their leases before the sinks' grace.
    async fn leave(mut self, logger: &mut Logger) {
        self.stop.cancel();
        let mut task = self.task;
        loop {
            tokio::select! {
                _ = &mut task => return,
                Some(ownership) = self.orders.recv() => {
                    logger.own(ownership.permits).await;
                    let _ = ownership.done.send(());
                }
            }
        }
    }
}

/// Runs the logger on `config`, read from `file` (`None`: from no file, as
/// the demo), until the duration passes or it is stopped. SIGHUP and `POST
/// /api/reload` reload the file.
pub async fn serve(
    config: &Config,
    file: Option<&std::path::Path>,
    args: &RunArgs,
    clock: Clock,
) -> Outcome {
    let mut config = config.clone();
    config.sinks.urls.extend(args.sinks.iter().cloned());
    let config = &config;
    let instance = args
        .instance
        .clone()
        .unwrap_or_else(cluster::default_instance);
    let options = Options {
        json: args.json,
        duration: args.duration,
        clock,
        instance: config.cluster.as_ref().map(|_| instance.clone()),
    };
    let token = match args.api_token.as_deref().map(str::trim) {
        Some("") => {
            return Err(Failure::usage(
                "--api-token (or KMPLOG_API_TOKEN) is empty; give a long random token, such as the output of `openssl rand -hex 32`",
            ));
        }
        token => token.map(Arc::<str>::from),
    };
    if let ApiAddress(Some(address)) = args.api {
        api::check_bind(address, token.as_deref()).map_err(Failure::usage)?;
    }
    let coordinator = match &config.cluster {
        Some(cluster) => {
            Some(Coordinator::open(&cluster.coordinator, Some(&instance)).map_err(Failure::usage)?)
        }
        None => None,
    };
    // Before the start: from now on SIGHUP reloads, and never ends the logger.
    let mut hangups = Hangups::new();
    let mut logger = Logger::start(config, &options).map_err(Failure::failed)?;
    let mut cluster = match (&config.cluster, coordinator) {
        (Some(settings), Some(coordinator)) => Some(Joined::start(
            instance,
            Timing {
                lease: settings.lease,
            },
            coordinator,
            &logger,
        )),
        _ => None,
    };
    let source = file.map(|file| ReloadSource {
        file: file.to_path_buf(),
        extra_sinks: args.sinks.clone(),
    });
    let (reloader, mut orders) = match file {
        Some(file) => {
            let (reloader, orders) = Reloader::new(file);
            (Some(reloader), Some(orders))
        }
        None => (None, None),
    };
    let stop_api = CancellationToken::new();
    if let ApiAddress(Some(address)) = args.api {
        let mut state = ApiState::new(
            logger.events.clone(),
            logger.buses.clone(),
            Arc::clone(&logger.latest),
            logger.live.clone(),
        );
        state.token = token;
        state.reloader = reloader;
        state.host_names = args.api_names.clone();
        state.cluster = cluster.as_ref().map(|joined| joined.view.clone());
        state.database = sqlite_database(config);
        // The logger has created the outbox by now; without it /metrics
        // only lacks the depths.
        state.outbox = match OutboxReader::open(&config.sinks.outbox) {
            Ok(reader) => Some(Arc::new(Mutex::new(reader))),
            Err(error) => {
                tracing::warn!(reason = %error, "/metrics will not show outbox depths");
                None
            }
        };
        match api::serve(address, state, stop_api.clone()).await {
            Ok(bound) => tracing::info!(address = %bound, "API on http://{bound}"),
            Err(error) => {
                // The buses have started: stop them so that the sinks keep
                // what they have read already.
                // What stopping loses it says on stderr; the API is the
                // failure to report.
                let _ = logger.stop().await;
                return Err(Failure::failed(format!(
                    "cannot listen for the API on {address}: {error}; choose another with --api"
                )));
            }
        }
    }
    let service = {
        let buses = logger.buses.clone();
        let clock = options.clock.clone();
        let collector_alive = logger.collector_probe();
        Service::ready(move || {
            let (configs, states) = buses.configs_and_snapshots();
            collector_alive() && service::bus_loops_alive(&configs, &states, clock.now())
        })
    };
    let asked_to_stop = Logger::until_asked_to_stop(&options);
    tokio::pin!(asked_to_stop);
    loop {
        tokio::select! {
            () = &mut asked_to_stop => break,
            order = next_order(&mut orders) => {
                let outcome = reload_logger(&mut logger, source.as_ref(), order.trigger).await;
                // A caller that went away has the log.
                let _ = order.answer.send(outcome);
                Joined::reloaded(cluster.as_ref(), &logger);
            }
            () = hangups.next() => {
                let _ = reload_logger(&mut logger, source.as_ref(), "SIGHUP").await;
                Joined::reloaded(cluster.as_ref(), &logger);
            }
            ownership = Joined::next(cluster.as_mut()) => {
                logger.own(ownership.permits).await;
                let _ = ownership.done.send(());
            }
        }
    }
    // Before the stop, which can take the sinks' grace time: systemd then
    // waits for it rather than taking a slow stop for a hang.
    service.stopping();
    if let Some(joined) = cluster {
        joined.leave(&mut logger).await;
    }
    let stopped = logger.stop().await;
    stop_api.cancel();
    stopped.map_err(|unwritten| Failure::failed(unwritten.to_string()))
}
