//! `kmplog trigger`: fire a named event in a running logger, through its
//! HTTP API, so that the requests waiting for it run now.

use super::{Failure, Outcome};
use crate::api::is_event_name;

/// Options of `kmplog trigger`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kmplog trigger morning-read --api 127.0.0.1:7064")]
pub struct Args {
    /// The event's name (letters, digits, '-' and '_').
    #[arg(value_name = "NAME")]
    name: String,
    /// Where the running logger's API listens.
    #[arg(long, value_name = "HOST:PORT", default_value = super::run::DEFAULT_API)]
    api: String,
}

/// Runs `kmplog trigger`.
pub async fn run(args: Args) -> Outcome {
    if !is_event_name(&args.name) {
        return Err(Failure::usage(format!(
            "'{}' is not an event name: use letters, digits, '-' and '_', such as morning-read",
            args.name
        )));
    }
    let url = format!("http://{}/api/events/{}", args.api, args.name);
    let api = args.api.clone();
    let response = tokio::task::spawn_blocking(move || ureq::post(&url).send_empty())
        .await
        .map_err(|error| Failure::failed(format!("trigger: {error}")))?;
    match response {
        Ok(_) => {
            println!("event {} fired", args.name);
            Ok(())
        }
        Err(ureq::Error::StatusCode(code)) => Err(Failure::failed(format!(
            "the logger at {api} refused the event (HTTP {code})"
        ))),
        Err(error) => Err(Failure::failed(format!(
            "no logger answers at {api}: {error}; start one with `kmplog run FILE` or name its API with --api"
        ))),
    }
}
