//! `kmplog completions`: the shell completion script, generated from the
//! same clap definitions as the command line, so it never lags behind.

use clap_complete::Shell;

use super::Outcome;
use super::output::print_line;

/// Options of `kmplog completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  source <(kmplog completions bash)\n  kmplog completions zsh > _kmplog\n  kmplog completions fish > kmplog.fish\n\nFor good: bash reads ~/.local/share/bash-completion/completions/kmplog, zsh a\n_kmplog in a directory of $fpath, fish ~/.config/fish/completions/kmplog.fish."
)]
pub struct Args {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

/// Runs `kmplog completions`.
pub fn run(args: &Args) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "kmplog", &mut script);
    print_line(String::from_utf8_lossy(script.trim_ascii_end()));
    Ok(())
}
