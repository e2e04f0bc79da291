//! What kmplog says to its operator while it runs: one `tracing` subscriber
//! writing to stderr, as text for a person or as JSON lines for a log
//! collector (held while the live table is on that terminal, see
//! [`crate::live`]). The logger logs changes of state (a line down and up again, a
//! meter silent and back, a sink down and delivering again), not every poll,
//! so that under systemd the journal tells what happened.
//!
//! What is logged is chosen with `--log-level` or `KMPLOG_LOG`: a level
//! (`warn`) or per-module directives as tracing's `EnvFilter` reads them
//! (`debug,kmplog::bus=trace`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event for a person: time, level, message, fields.
    Text,
    /// One JSON object per event, for journald, Loki or Elasticsearch.
    Json,
}

/// The filter used unless told otherwise.
pub const DEFAULT_FILTER: &str = "info";

/// Checks a filter given on the command line or in `KMPLOG_LOG`, keeping
/// its text (an `EnvFilter` cannot be cloned, as clap needs).
///
/// # Errors
/// What is wrong with the directives, with an example of good ones.
pub fn parse_filter(text: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|error| {
            format!("{error}; give a level (error, warn, info, debug, trace) or directives such as `info,kmplog::bus=debug`")
        })
}

/// Installs the subscriber for the rest of the process. A second call (tests
/// that run several commands in one process) keeps the first.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed: the first subscriber stays, which is what a test
    // process running several loggers wants.
    drop(installed);
}

/// Runs `body` with what it logs on this thread captured as text (no
/// time, no colour), for tests that check what an operator would read.
#[cfg(test)]
pub(crate) fn capture<T>(body: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, body);
    let text = String::from_utf8_lossy(
        &buffer
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    (result, text)
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_are_levels_or_directives() {
        for good in ["info", "warn", "debug,kmplog::bus=trace", "kmplog=debug"] {
            assert_eq!(parse_filter(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["debug,kmplog=loud", "kmplog::bus=loud"] {
            let error = parse_filter(bad).expect_err(bad);
            assert!(error.contains("directives such as"), "{bad}: {error}");
        }
    }
}
