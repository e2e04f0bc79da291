//! `kmplog sniff`: decode and print all KMP traffic on a line, without
//! sending anything: one line per frame, ACK, garbage run or bad frame.
//!
//! A recording is decoded at the speed of the codec: frames are serialized
//! straight into one reused output buffer ([`FrameJson::write`]), which goes to
//! stdout once per chunk read, and a file or stdin is read with blocking
//! reads of [`CHUNK`] bytes (no async round trip per read). A live line is
//! read as its bytes come, and each chunk is printed at once. A line's time
//! stamp is when the bytes that completed it were read: the clock is read
//! once per chunk, not once per line.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use kmp::message::{Message, cid_name};
use kmp::splitter::{Event, Splitter};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::decode::{FrameJson, frame_text, hex};
use super::line::LineArgs;
use super::{Failure, Outcome};

/// Options of `kmplog sniff`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmplog sniff --serial /dev/ttyUSB0\n  kmplog sniff --file capture.bin --json\n  cat capture.bin | kmplog sniff -"
)]
pub struct Args {
    /// A recorded byte stream to decode, or `-` for standard input.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["serial", "tcp", "udp"])]
    file: Option<PathBuf>,
    /// Read standard input (same as --file -).
    #[arg(value_name = "-", value_parser = clap::builder::PossibleValuesParser::new(["-"]), conflicts_with_all = ["serial", "tcp", "udp", "file"])]
    stdin: Option<String>,
    #[command(flatten)]
    line: LineArgs,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Bytes read from a file or stdin at a time.
const CHUNK: usize = 64 * 1024;

/// Runs `kmplog sniff` until the input ends or Ctrl-C.
pub async fn run(args: Args) -> Outcome {
    let from_stdin =
        args.stdin.is_some() || args.file.as_deref() == Some(std::path::Path::new("-"));
    let mut printer = Printer::new(args.json);
    if from_stdin {
        return printer.read_all(io::stdin().lock());
    }
    if let Some(path) = &args.file {
        let file = std::fs::File::open(path)
            .map_err(|error| Failure::failed(format!("cannot open {}: {error}", path.display())))?;
        return printer.read_all(file);
    }
    let line = args
        .line
        .endpoint()?
        .open()
        .await
        .map_err(|error| Failure::failed(error.to_string()))?;
    printer.read_line(line).await
}

/// Splits the input into events and prints them, one line each.
struct Printer {
    splitter: Splitter,
    json: bool,
    stamps: Stamps,
    /// The lines not yet written to stdout: JSON lines take about ten times
    /// the bytes of the frames they show.
    out: Vec<u8>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            splitter: Splitter::new(),
            json,
            stamps: Stamps::default(),
            out: Vec::with_capacity(16 * CHUNK),
        }
    }

    /// Prints a file or stdin to its end.
    fn read_all(&mut self, mut input: impl Read) -> Outcome {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let count = match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(Failure::failed(format!("reading: {error}"))),
            };
            if !self.print(buffer.get(..count).unwrap_or_default())? {
                return Ok(());
            }
        }
        self.finish()
    }

    /// Prints a line's traffic until it closes.
    async fn read_line(&mut self, mut input: impl AsyncRead + Unpin) -> Outcome {
        let mut buffer = [0u8; 4096];
        loop {
            let count = input
                .read(&mut buffer)
                .await
                .map_err(|error| Failure::failed(format!("reading: {error}")))?;
            if count == 0 {
                break;
            }
            if !self.print(buffer.get(..count).unwrap_or_default())? {
                return Ok(());
            }
        }
        self.finish()
    }

    /// Prints the events `bytes` complete; `false` when stdout was closed
    /// (`kmplog sniff ... | head`), which ends the command quietly.
    fn print(&mut self, bytes: &[u8]) -> Result<bool, Failure> {
        self.emit(Some(bytes))
    }

    /// Prints what the input left unfinished.
    fn finish(&mut self) -> Outcome {
        self.emit(None).map(|_| ())
    }

    /// Prints the events `bytes` complete, or with `None` those the end of
    /// the input completes, all stamped with the time they were read.
    fn emit(&mut self, bytes: Option<&[u8]>) -> Result<bool, Failure> {
        let Printer {
            splitter,
            json,
            stamps,
            out,
        } = self;
        let time = stamps.now();
        match bytes {
            Some(bytes) => splitter
                .feed(bytes)
                .for_each(|event| write_event(out, &event, *json, time)),
            None => splitter
                .finish()
                .for_each(|event| write_event(out, &event, *json, time)),
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<bool, Failure> {
        let mut stdout = io::stdout().lock();
        let written = stdout.write_all(&self.out).and_then(|()| stdout.flush());
        self.out.clear();
        match written {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(error) => Err(Failure::failed(format!("writing to stdout: {error}"))),
        }
    }
}

/// The time stamps of the lines, as `jiff::Timestamp` displays them
/// (`2026-12-01T10:15:18.3233565Z`: UTC, the fraction of a second without
/// trailing zeros), with the date and time of day formatted once a second.
#[derive(Debug, Default)]
struct Stamps {
    /// The whole second of `text`.
    second: Option<i64>,
    /// The length of its date and time of day, up to the fraction.
    whole_len: usize,
    text: String,
}

impl Stamps {
    /// The time stamp of now.
    fn now(&mut self) -> &str {
        self.of(jiff::Timestamp::now())
    }

    fn of(&mut self, time: jiff::Timestamp) -> &str {
        let nanos = time.subsec_nanosecond();
        if time.as_second() < 0 || nanos < 0 {
            // Before 1970 the fraction counts backwards: leave it to jiff.
            self.second = None;
            self.text = time.to_string();
            return &self.text;
        }
        if self.second != Some(time.as_second()) {
            let whole = jiff::Timestamp::from_second(time.as_second()).unwrap_or(time);
            self.text = whole.to_string();
            self.text.pop(); // The `Z`, written after the fraction.
            self.whole_len = self.text.len();
            self.second = Some(time.as_second());
        }
        self.text.truncate(self.whole_len);
        if nanos > 0 {
            let _ = write!(self.text, ".{nanos:09}");
            let fraction_end = self.text.trim_end_matches('0').len();
            self.text.truncate(fraction_end);
        }
        self.text.push('Z');
        &self.text
    }
}

/// Appends the line of one event to `out`, stamped `time`. Writing into a
/// `Vec` cannot fail.
fn write_event(out: &mut Vec<u8>, event: &Event, json: bool, time: &str) {
    let _ = match event {
        Event::Frame(frame) => match Message::decode(frame) {
            Ok(message) if json => {
                FrameJson {
                    frame,
                    message: &message,
                    ts: Some(time),
                }
                .write(out);
                Ok(())
            }
            Ok(message) => write!(out, "{time} {}", frame_text(frame, &message)),
            Err(error) if json => serde_json::to_writer(
                &mut *out,
                &json!({
                    "ts": time,
                    "direction": frame.direction.as_str(),
                    "address": frame.address,
                    "cid": frame.cid,
                    "error": format!("invalid {}: {error}", cid_name(frame.cid)),
                }),
            )
            .map_err(io::Error::from),
            Err(error) => write!(
                out,
                "{time} invalid {} frame for meter {}: {error}",
                cid_name(frame.cid),
                frame.address
            ),
        },
        Event::Ack if json => write!(out, "{}", json!({ "ts": time, "ack": true })),
        Event::Ack => write!(out, "{time} ACK"),
        Event::Garbage(bytes) if json => {
            write!(out, "{}", json!({ "ts": time, "garbage": hex(bytes) }))
        }
        Event::Garbage(bytes) => {
            write!(out, "{time} garbage, {} bytes: {}", bytes.len(), hex(bytes))
        }
        Event::Malformed { error, bytes } if json => write!(
            out,
            "{}",
            json!({ "ts": time, "error": error.to_string(), "bytes": hex(bytes) })
        ),
        Event::Malformed { error, bytes } => {
            write!(out, "{time} invalid frame: {error}; bytes {}", hex(bytes))
        }
    };
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_written_as_jiff_displays_them() {
        let mut stamps = Stamps::default();
        for (second, nanos) in [
            (1_764_584_118, 323_356_579),
            (1_764_584_118, 0),
            (1_764_584_118, 500_000_000),
            (1_764_584_118, 780_000),
            (1_764_584_119, 5),
            (1_764_584_119, 999_999_999),
            (0, 1),
            (-1, 250_000_000),
            (1_764_584_119, 10),
        ] {
            let time = jiff::Timestamp::new(second, nanos).unwrap();
            assert_eq!(stamps.of(time), time.to_string(), "{second} s {nanos} ns");
        }
    }
}
