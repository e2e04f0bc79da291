//! Sinks: where readings go. Each sink runs on its own thread behind an
//! unbounded channel, so a slow disk never holds up a bus (DESIGN invariant
//! 4), and a batch a sink fails to write is kept and retried, never dropped.

pub mod files;
pub mod sqlite;
pub mod stdout;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::reading::Reading;

/// A destination for readings.
pub trait Sink: Send + 'static {
    /// What the sink is, for messages (`sqlite kmplog.db`).
    fn describe(&self) -> String;

    /// Writes a batch durably (or as durably as the sink can).
    fn write(&mut self, readings: &[Reading]) -> Result<(), SinkError>;
}

/// A sink that cannot take readings now; the batch is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// Wraps any error with what was being done.
    pub fn context(doing: &str, error: impl std::fmt::Display) -> Self {
        SinkError(format!("{doing}: {error}"))
    }
}

/// How long a failing sink waits before it tries its oldest batch again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A batch of readings, shared by every sink that writes it.
type Batch = Arc<[Reading]>;

/// Fans readings out to every sink's thread.
pub struct Dispatcher {
    sinks: Vec<(Sender<Batch>, JoinHandle<()>)>,
}

impl Dispatcher {
    /// Starts one thread per sink.
    pub fn start(sinks: Vec<Box<dyn Sink>>) -> std::io::Result<Self> {
        let sinks = sinks
            .into_iter()
            .map(|sink| {
                let (sender, receiver) = mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name(format!("sink {}", sink.describe()))
                    .spawn(move || drain(sink, receiver))?;
                Ok((sender, thread))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Dispatcher { sinks })
    }

    /// Hands a batch to every sink without waiting for any of them.
    pub fn send(&self, readings: Vec<Reading>) {
        if readings.is_empty() {
            return;
        }
        let batch: Batch = readings.into();
        for (sender, _) in &self.sinks {
            // A sink thread only ends when its sender is dropped (in `close`).
            let _ = sender.send(Arc::clone(&batch));
        }
    }

    /// Waits until every sink has written everything it was given.
    pub fn close(self) {
        for (sender, thread) in self.sinks {
            drop(sender);
            let _ = thread.join();
        }
    }
}

/// A sink's thread: writes batches in order; a failed batch stays first in
/// line and is retried until it is written or the logger stops.
fn drain(mut sink: Box<dyn Sink>, receiver: Receiver<Batch>) {
    let mut pending: VecDeque<Batch> = VecDeque::new();
    let mut last_error: Option<String> = None;
    let mut open = true;
    while open || !pending.is_empty() {
        let wait = if pending.is_empty() {
            Duration::from_secs(3600)
        } else {
            RETRY_PAUSE
        };
        match receiver.recv_timeout(wait) {
            Ok(batch) => pending.push_back(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        pending.extend(receiver.try_iter());
        while let Some(batch) = pending.front() {
            match sink.write(batch) {
                Ok(()) => {
                    pending.pop_front();
                    if last_error.take().is_some() {
                        eprintln!("kmplog: {}: writing again", sink.describe());
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    if last_error.as_deref() != Some(&message) {
                        eprintln!(
                            "kmplog: {}: {message}; {} readings wait",
                            sink.describe(),
                            pending.iter().map(|b| b.len()).sum::<usize>()
                        );
                    }
                    last_error = Some(message);
                    if !open {
                        // Stopping: one more try per pause, so that a
                        // recovering disk still gets the readings.
                        std::thread::sleep(RETRY_PAUSE);
                    }
                    break;
                }
            }
        }
    }
}
