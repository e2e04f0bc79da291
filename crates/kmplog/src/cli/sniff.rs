//! `kmplog sniff`: decode and print all KMP traffic on a line, without
//! sending anything: one line per frame, ACK, garbage run or bad frame.

use std::path::PathBuf;

use kmp::message::{Message, cid_name};
use kmp::splitter::{Event, Splitter};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::decode::{frame_json, frame_text, hex};
use super::line::LineArgs;
use super::output::print_line;
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

/// Runs `kmplog sniff` until the input ends or Ctrl-C.
pub async fn run(args: Args) -> Outcome {
    let from_stdin =
        args.stdin.is_some() || args.file.as_deref() == Some(std::path::Path::new("-"));
    if from_stdin {
        return sniff(tokio::io::stdin(), args.json).await;
    }
    if let Some(path) = &args.file {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| Failure::failed(format!("cannot open {}: {error}", path.display())))?;
        return sniff(file, args.json).await;
    }
    let line = args
        .line
        .endpoint()?
        .open()
        .await
        .map_err(|error| Failure::failed(error.to_string()))?;
    sniff(line, args.json).await
}

async fn sniff(mut input: impl AsyncRead + Unpin, json: bool) -> Outcome {
    let mut splitter = Splitter::new();
    let mut buffer = [0u8; 4096];
    loop {
        let count = input
            .read(&mut buffer)
            .await
            .map_err(|error| Failure::failed(format!("reading: {error}")))?;
        if count == 0 {
            break;
        }
        for event in splitter.feed(buffer.get(..count).unwrap_or_default()) {
            print_event(&event, json);
        }
    }
    for event in splitter.finish() {
        print_event(&event, json);
    }
    Ok(())
}

fn print_event(event: &Event, json: bool) {
    let time = jiff::Timestamp::now();
    let line = match event {
        Event::Frame(frame) => match Message::decode(frame) {
            Ok(message) if json => {
                let mut object = frame_json(frame, &message);
                if let Some(map) = object.as_object_mut() {
                    map.insert("ts".to_owned(), json!(time.to_string()));
                }
                object.to_string()
            }
            Ok(message) => format!("{time} {}", frame_text(frame, &message)),
            Err(error) if json => json!({
                "ts": time.to_string(),
                "direction": frame.direction.as_str(),
                "address": frame.address,
                "cid": frame.cid,
                "error": format!("invalid {}: {error}", cid_name(frame.cid)),
            })
            .to_string(),
            Err(error) => format!(
                "{time} invalid {} frame for meter {}: {error}",
                cid_name(frame.cid),
                frame.address
            ),
        },
        Event::Ack if json => json!({ "ts": time.to_string(), "ack": true }).to_string(),
        Event::Ack => format!("{time} ACK"),
        Event::Garbage(bytes) if json => {
            json!({ "ts": time.to_string(), "garbage": hex(bytes) }).to_string()
        }
        Event::Garbage(bytes) => format!("{time} garbage, {} bytes: {}", bytes.len(), hex(bytes)),
        Event::Malformed { error, bytes } if json => {
            json!({ "ts": time.to_string(), "error": error.to_string(), "bytes": hex(bytes) })
                .to_string()
        }
        Event::Malformed { error, bytes } => {
            format!("{time} invalid frame: {error}; bytes {}", hex(bytes))
        }
    };
    print_line(&line);
}
