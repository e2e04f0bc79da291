//! `kmplog man`: the manual page in roff, generated from the same clap
//! definitions as `--help`.

use super::output::print_line;
use super::{Failure, Outcome};

/// Options of `kmplog man`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog man | man -l -\n  kmplog man > kmplog.1\n\nInstalled as /usr/local/share/man/man1/kmplog.1, `man kmplog` shows it."
)]
pub struct Args {}

/// Runs `kmplog man`.
pub fn run(_args: &Args) -> Outcome {
    let mut page = Vec::new();
    clap_mangen::Man::new(super::command())
        .render(&mut page)
        .map_err(|error| Failure::failed(format!("cannot render the manual page: {error}")))?;
    print_line(String::from_utf8_lossy(page.trim_ascii_end()));
    Ok(())
}
