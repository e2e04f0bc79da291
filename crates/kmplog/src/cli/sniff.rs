//! `kmplog sniff`: decode and print all KMP traffic on a line, without
//! sending anything: one line per frame, ACK, garbage run or bad frame.
//!
//! A recording is decoded at the speed of the codec: frames are serialized
//! straight into one reused output buffer ([`FrameJson`]), which goes to
//! stdout once per chunk read, and a file or stdin is read with blocking
//! reads of [`CHUNK`] bytes (no async round trip per read). A live line is
//! read as its bytes come, and each chunk is printed at once.

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
    /// The lines not yet written to stdout.
    out: Vec<u8>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            splitter: Splitter::new(),
            json,
            out: Vec::with_capacity(4 * CHUNK),
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
        let Printer {
            splitter,
            json,
            out,
        } = self;
        for event in splitter.feed(bytes) {
            write_event(out, &event, *json);
        }
        self.flush()
    }

    /// Prints what the input left unfinished.
    fn finish(&mut self) -> Outcome {
        let Printer {
            splitter,
            json,
            out,
        } = self;
        for event in splitter.finish() {
            write_event(out, &event, *json);
        }
        self.flush().map(|_| ())
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

/// Appends the line of one event to `out`. Writing into a `Vec` cannot fail.
fn write_event(out: &mut Vec<u8>, event: &Event, json: bool) {
    let time = jiff::Timestamp::now();
    let _ = match event {
        Event::Frame(frame) => match Message::decode(frame) {
            Ok(message) if json => serde_json::to_writer(
                &mut *out,
                &FrameJson {
                    frame,
                    message: &message,
                    ts: Some(time),
                },
            )
            .map_err(io::Error::from),
            Ok(message) => write!(out, "{time} {}", frame_text(frame, &message)),
            Err(error) if json => serde_json::to_writer(
                &mut *out,
                &json!({
                    "ts": time.to_string(),
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
        Event::Ack if json => write!(out, "{}", json!({ "ts": time.to_string(), "ack": true })),
        Event::Ack => write!(out, "{time} ACK"),
        Event::Garbage(bytes) if json => write!(
            out,
            "{}",
            json!({ "ts": time.to_string(), "garbage": hex(bytes) })
        ),
        Event::Garbage(bytes) => {
            write!(out, "{time} garbage, {} bytes: {}", bytes.len(), hex(bytes))
        }
        Event::Malformed { error, bytes } if json => write!(
            out,
            "{}",
            json!({ "ts": time.to_string(), "error": error.to_string(), "bytes": hex(bytes) })
        ),
        Event::Malformed { error, bytes } => {
            write!(out, "{time} invalid frame: {error}; bytes {}", hex(bytes))
        }
    };
    out.push(b'\n');
}
