//! `kmplog reload`: make a running logger read its configuration file
//! again, through its HTTP API, as SIGHUP does; it prints what changed.

use super::Outcome;
use super::output::print_line;
use super::trigger::{LoggerApi, post, refused, unanswered};

/// Options of `kmplog reload`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Check the file first (kmplog check FILE); a file with mistakes, or a changed\nbus whose new serial port cannot be opened, is refused and the logger goes on\nwith the configuration it has.\n\nExamples:\n  kmplog reload --api 127.0.0.1:7064\n  KMPLOG_API_TOKEN=... kmplog reload --api 192.168.1.5:7064"
)]
pub struct Args {
    #[command(flatten)]
    logger: LoggerApi,
}

/// Runs `kmplog reload`.
pub async fn run(args: Args) -> Outcome {
    match post(
        &args.logger.api,
        "/api/reload",
        args.logger.api_token.clone(),
    )
    .await?
    {
        Ok((200..=299, body)) => {
            print_line(summary(&body));
            Ok(())
        }
        Ok((status, body)) => {
            // Each mistake with its place, as `kmplog check` words it.
            if let Ok(answer) = serde_json::from_str::<serde_json::Value>(&body) {
                for mistake in answer["diagnostics"].as_array().into_iter().flatten() {
                    eprintln!(
                        "{}: {}: {} ({})",
                        mistake["at"].as_str().unwrap_or_default(),
                        mistake["severity"].as_str().unwrap_or_default(),
                        mistake["message"].as_str().unwrap_or_default(),
                        mistake["hint"].as_str().unwrap_or_default()
                    );
                }
            }
            Err(refused(&args.logger.api, "the reload", status, &body))
        }
        Err(error) => Err(unanswered(&args.logger.api, &error)),
    }
}

/// What the logger's answer says, a line per change: `changed heat:
/// request 'Main' added`, `unchanged: water`.
fn summary(body: &str) -> String {
    let Ok(answer) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    let answer = &answer["reload"];
    let names = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect()
    };
    let mut lines = vec!["reloaded".to_owned()];
    for bus in answer["changed"].as_array().into_iter().flatten() {
        let name = bus["bus"].as_str().unwrap_or_default();
        for change in bus["changes"].as_array().into_iter().flatten() {
            lines.push(format!(
                "changed {name}: {}",
                change.as_str().unwrap_or_default()
            ));
        }
    }
    for (key, label) in [
        ("added", "added"),
        ("removed", "removed"),
        ("unchanged", "unchanged"),
    ] {
        let names = names(key);
        if !names.is_empty() {
            lines.push(format!("{label}: {}", names.join(", ")));
        }
    }
    for change in names("restart_needed") {
        lines.push(format!("not applied until a restart: {change}"));
    }
    lines.join("\n")
}
