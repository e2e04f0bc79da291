//! `kmplog check`: validate a configuration file and point at the line and
//! column of every mistake, like a compiler.

use std::path::PathBuf;

use super::output::print_line;
use super::{Failure, Outcome};
use crate::config::{self, Diagnostics, Severity};

/// Options of `kmplog check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  kmplog check examples/kmplog.toml\n\nPrints `FILE: OK (N buses, M requests)` and any warnings and exits 0, or prints every mistake with its line and column and exits 1."
)]
pub struct Args {
    /// The configuration file, such as kmplog.toml.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `kmplog check`.
pub fn run(args: Args) -> Outcome {
    let file_name = args.file.display().to_string();
    match config::load(&args.file) {
        Ok((config, remarks)) => {
            print_line(format_args!(
                "{file_name}: OK ({}, {})",
                plural(config.buses.len(), "bus", "buses"),
                plural(config.request_count(), "request", "requests")
            ));
            if !remarks.list().is_empty() {
                eprintln!("{remarks}");
            }
            Ok(())
        }
        Err(diagnostics) => Err(rejected(&file_name, &diagnostics)),
    }
}

/// Shows why a configuration file was refused, for `check` and `run`
/// alike: every mistake, each with its place, on stderr, and the failure
/// that sums them up. A file that cannot be read at all is one line.
pub(super) fn rejected(file_name: &str, diagnostics: &Diagnostics) -> Failure {
    if let [unreadable] = diagnostics.list()
        && unreadable.location.is_none()
    {
        return Failure::failed(format!("{}; {}", unreadable.message, unreadable.hint));
    }
    eprintln!("{diagnostics}\n");
    let errors = diagnostics.count(Severity::Error);
    Failure::failed(format!(
        "{file_name}: {}",
        plural(errors, "mistake", "mistakes")
    ))
}

/// `1 bus`, `2 buses`.
fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
