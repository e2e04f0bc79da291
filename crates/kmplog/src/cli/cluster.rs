//! `kmplog cluster status`: the members and every bus's owner, read from
//! the coordinator itself, so it answers even when no instance runs here.

use std::path::PathBuf;

use clap::Subcommand;

use super::output::print_line;
use super::{Failure, Outcome};
use crate::cluster::coordinator::Coordinator;
use crate::config;

/// Options of `kmplog cluster`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kmplog cluster status --config kmplog.toml")]
pub struct Args {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Print the live instances and who owns each bus, from the coordinator.
    #[command(
        after_help = "Example:\n  kmplog cluster status --config kmplog.toml\n\nA bus without owner is free: an instance takes it within a third of the lease. Without [cluster] in the file, it says so and exits 0."
    )]
    Status(StatusArgs),
}

/// Options of `kmplog cluster status`.
#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The configuration file the instances run.
    #[arg(long, value_name = "FILE", default_value = "kmplog.toml")]
    config: PathBuf,
}

/// Runs `kmplog cluster`.
pub async fn run(args: Args) -> Outcome {
    let ClusterCommand::Status(args) = args.command;
    let file_name = args.config.display().to_string();
    let (config, _) = config::load(&args.config)
        .map_err(|diagnostics| super::check::rejected(&file_name, &diagnostics))?;
    let Some(cluster) = &config.cluster else {
        print_line(format_args!(
            "{file_name} has no [cluster]: each logger on it polls every bus alone"
        ));
        return Ok(());
    };
    let coordinator = Coordinator::open(&cluster.coordinator, None).map_err(Failure::usage)?;
    let limit = std::time::Duration::from_secs(10);
    let read = async {
        let session = coordinator.connect().await?;
        Ok::<_, String>((session.members().await?, session.leases().await?))
    };
    let (members, leases) = tokio::time::timeout(limit, read)
        .await
        .map_err(|_| {
            Failure::failed(format!(
                "{} did not answer within 10 s",
                coordinator.server()
            ))
        })?
        .map_err(Failure::failed)?;
    print_line(format_args!("coordinator {}", coordinator.name()));
    print_line(format_args!(
        "members ({}): {}",
        members.len(),
        if members.is_empty() {
            "none alive".to_owned()
        } else {
            members.join(", ")
        }
    ));
    let width = config
        .buses
        .iter()
        .map(|bus| bus.name.len())
        .max()
        .unwrap_or(3)
        .max(3);
    print_line(format_args!(
        "{:width$}  {:20}  {:>6}  LEASE",
        "BUS", "OWNER", "TOKEN"
    ));
    for bus in &config.buses {
        let row = leases.iter().find(|row| row.bus == bus.name);
        let (owner, token, lease) = match row {
            Some(row) if row.live => (
                row.owner.clone(),
                row.token.to_string(),
                format!("{:.1} s left", row.expires_in_ms as f64 / 1000.0),
            ),
            Some(row) => (
                "-".to_owned(),
                "-".to_owned(),
                format!("free (last {} with token {})", row.owner, row.token),
            ),
            None => (
                "-".to_owned(),
                "-".to_owned(),
                "free (never owned)".to_owned(),
            ),
        };
        print_line(format_args!(
            "{:width$}  {owner:20}  {token:>6}  {lease}",
            bus.name
        ));
    }
    Ok(())
}
