//! The command line: one file per command, each with its `Args` (clap) and a
//! `run` that parses, calls the library and prints.

mod backfill;
mod check;
mod cluster;
mod completions;
pub(crate) mod cron;
mod decode;
mod demo;
mod identify;
mod line;
mod log;
mod man;
mod meter_info;
mod output;
mod queue;
mod read;
mod registers;
mod reload;
mod run;
mod scan;
mod simulate;
mod sniff;
mod trigger;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::logging::{self, LogFormat};

/// Exit status of a command that ran but failed (a meter did not answer, a
/// frame was invalid).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for bad input (arguments, hex text): the same as clap's.
pub const EXIT_USAGE: u8 = 2;

/// The version with the commit and the build date, `0.1.0 (1326b9d
/// 2026-12-01)`, from build.rs.
pub const VERSION: &str = env!("KMPLOG_VERSION");

/// kmplog: reads Kamstrup meters over KMP (serial lines and TCP gateways).
#[derive(Debug, Parser)]
#[command(name = "kmplog", version = VERSION, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Try it without hardware: the whole logger on simulated meters, or one read of a\nsimulated meter.\n\nExamples:\n  kmplog demo\n  kmplog simulate &\n  kmplog read --tcp 127.0.0.1:7063 --address 63 --register E1 --register T1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// What to log on stderr: a level (error, warn, info, debug, trace) or
    /// directives per module, such as `info,kmplog::bus=debug`.
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        env = "KMPLOG_LOG",
        default_value = crate::logging::DEFAULT_FILTER,
        value_parser = crate::logging::parse_filter
    )]
    log_level: String,
    /// How to write log lines: `text` for a person, `json` for a log
    /// collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read registers from one or more meters once and print them.
    Read(read::Args),
    /// Read rows of a meter's own logger (hourly, daily, monthly, yearly).
    Log(log::Args),
    /// Deliver rows of meters' own loggers to sinks, as readings `logged`.
    Backfill(backfill::Args),
    /// Read the meter type and software revision.
    #[command(after_help = "Example:\n  kmplog type --tcp 127.0.0.1:7063 --address 63")]
    Type(meter_info::Args),
    /// Read the serial number.
    #[command(after_help = "Example:\n  kmplog serial --tcp 127.0.0.1:7063 --address 63")]
    Serial(meter_info::Args),
    /// Tell what meter answers: type, revision, serial, identifying registers, model.
    Identify(identify::Args),
    /// Find the addresses that answer on a line.
    Scan(scan::Args),
    /// Decode one KMP frame given in hex (either direction).
    Decode(decode::Args),
    /// List the register catalogue of each meter model.
    Registers(registers::Args),
    /// Run simulated meters on TCP ports and pseudo-terminals.
    Simulate(simulate::Args),
    /// Run the logger on a configuration file.
    Run(run::Args),
    /// Run the logger on simulated meters: no hardware, no set-up.
    Demo(demo::Args),
    /// Check a configuration file and point at every mistake.
    Check(check::Args),
    /// List and edit the request queues of a configuration file.
    Queue(queue::Args),
    /// Print the next fire times of a cron expression.
    Cron(cron::Args),
    /// Fire a named event in a running logger.
    Trigger(trigger::Args),
    /// Make a running logger read its configuration file again.
    Reload(reload::Args),
    /// See the instances sharing the buses ([cluster]) and who owns each bus.
    Cluster(cluster::Args),
    /// Decode and print all KMP traffic on a line or in a recording.
    Sniff(sniff::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(completions::Args),
    /// Print the manual page (roff), to install or to read with `man -l`.
    Man(man::Args),
}

/// The whole command line as clap defines it: for completions, the manual
/// page and tests that go through every command's help.
pub fn command() -> clap::Command {
    Cli::command()
}

/// A failure to report: the message goes to stderr, the code is the exit status.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What went wrong, for a person.
    pub message: String,
}

impl Failure {
    /// A command that ran but failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    /// Bad input from the user.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

/// What each command's `run` returns.
pub type Outcome = Result<(), Failure>;

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kmplog: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Read(args) => read::run(args).await,
            Command::Log(args) => log::run(args).await,
            Command::Backfill(args) => backfill::run(args).await,
            Command::Type(args) => meter_info::run_type(args).await,
            Command::Serial(args) => meter_info::run_serial(args).await,
            Command::Identify(args) => identify::run(args).await,
            Command::Scan(args) => scan::run(args).await,
            Command::Decode(args) => decode::run(args),
            Command::Registers(args) => registers::run(args),
            Command::Simulate(args) => simulate::run(args).await,
            Command::Run(args) => run::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Check(args) => check::run(args),
            Command::Queue(args) => queue::run(args),
            Command::Cron(args) => cron::run(args),
            Command::Trigger(args) => trigger::run(args).await,
            Command::Reload(args) => reload::run(args).await,
            Command::Cluster(args) => cluster::run(args).await,
            Command::Sniff(args) => sniff::run(args).await,
            Command::Completions(args) => completions::run(&args),
            Command::Man(args) => man::run(&args),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("kmplog: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        super::command().debug_assert();
    }
}
