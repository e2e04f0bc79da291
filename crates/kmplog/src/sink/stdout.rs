//! JSON lines on standard output: one reading per line, for pipes and for
//! terminals when asked with `--json`.

use std::io::Write;

use super::{Sink, SinkError};
use crate::reading::Reading;

/// Prints readings as JSON lines.
pub struct JsonLinesStdout;

impl Sink for JsonLinesStdout {
    fn describe(&self) -> String {
        "stdout (JSON lines)".to_owned()
    }

    fn write(&mut self, readings: &[Reading]) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        for reading in readings {
            writeln!(out, "{}", reading.to_json())
                .map_err(|error| SinkError::context("writing to stdout", error))?;
        }
        out.flush()
            .map_err(|error| SinkError::context("writing to stdout", error))
    }
}
