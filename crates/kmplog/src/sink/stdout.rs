//! JSON lines on standard output: one reading per line, for pipes and for
//! terminals when asked with `--json`.

use std::io::Write;

use super::{Sink, SinkError, SinkFuture};
use crate::outbox::Stored;

/// Prints readings as JSON lines.
pub struct JsonLinesStdout;

impl Sink for JsonLinesStdout {
    fn name(&self) -> String {
        "stdout".to_owned()
    }

    /// The terminal shows what is read from now on, not what earlier runs
    /// left undelivered.
    fn durable(&self) -> bool {
        false
    }

    /// Someone may be watching: each reading is shown as it comes.
    fn gather(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            for stored in batch {
                writeln!(out, "{}", stored.reading.to_json())
                    .map_err(|error| SinkError::context("writing to stdout", error))?;
            }
            out.flush()
                .map_err(|error| SinkError::context("writing to stdout", error))
        })
    }
}
