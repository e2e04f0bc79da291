//! `kmplog trigger`: fire a named event in a running logger, through its
//! HTTP API, so that the requests waiting for it run now.

use super::output::print_line;
use super::{Failure, Outcome};
use crate::api::is_event_name;

/// Options of `kmplog trigger`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog trigger morning-read --api 127.0.0.1:7064\n  KMPLOG_API_TOKEN=... kmplog trigger morning-read --api 192.168.1.5:7064"
)]
pub struct Args {
    /// The event's name (letters, digits, '-' and '_').
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    logger: LoggerApi,
}

/// Runs `kmplog trigger`.
pub async fn run(args: Args) -> Outcome {
    if !is_event_name(&args.name) {
        return Err(Failure::usage(format!(
            "'{}' is not an event name: use letters, digits, '-' and '_', such as morning-read",
            args.name
        )));
    }
    let path = format!("/api/events/{}", args.name);
    let response = post(&args.logger.api, &path, args.logger.api_token.clone()).await?;
    match response {
        Ok((200..=299, _)) => {
            print_line(format_args!("event {} fired", args.name));
            Ok(())
        }
        Ok((status, body)) => Err(refused(&args.logger.api, "the event", status, &body)),
        Err(error) => Err(unanswered(&args.logger.api, &error)),
    }
}

/// The running logger a command talks to, shared by `trigger` and `reload`.
#[derive(Debug, clap::Args)]
pub(super) struct LoggerApi {
    /// Where the running logger's API listens.
    #[arg(long, value_name = "HOST:PORT", default_value = super::run::DEFAULT_API)]
    pub api: String,
    /// The token the logger's API wants, when it was started with one.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KMPLOG_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
}

/// POSTs nothing to `path` of the logger API at `api`, with `token`: the
/// status and body of its answer (a refusal too), or why none came.
pub(super) async fn post(
    api: &str,
    path: &str,
    token: Option<String>,
) -> Result<Result<(u16, String), String>, Failure> {
    let url = format!("http://{api}{path}");
    tokio::task::spawn_blocking(move || {
        // Refusals are read as answers, for the API's message.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(&url);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {}", token.trim()));
        }
        request
            .send_empty()
            .map(|mut response| {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                (status, body)
            })
            .map_err(|error| error.to_string())
    })
    .await
    .map_err(|error| Failure::failed(format!("cannot reach the API: {error}")))
}

/// The failure for an API answer `status` with `body` that refused `what`.
pub(super) fn refused(api: &str, what: &str, status: u16, body: &str) -> Failure {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    let hint = match status {
        401 => "; give it with --api-token TOKEN or KMPLOG_API_TOKEN",
        403 => "; check --api-token or KMPLOG_API_TOKEN",
        _ => "",
    };
    Failure::failed(format!(
        "the logger at {api} refused {what} (HTTP {status}: {message}){hint}"
    ))
}

/// The failure when no logger answers at `api`.
pub(super) fn unanswered(api: &str, error: &str) -> Failure {
    Failure::failed(format!(
        "no logger answers at {api}: {error}; start one with `kmplog run FILE` or name its API with --api"
    ))
}
