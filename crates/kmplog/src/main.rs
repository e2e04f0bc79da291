//! The `kmplog` binary: parses the command line and hands over to [`kmplog::cli`].

fn main() -> std::process::ExitCode {
    kmplog::cli::main()
}
