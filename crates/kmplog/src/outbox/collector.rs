//! The collector: the one thread that writes the outbox. It takes every
//! batch the buses read, writes it to the outbox, and only then tells the
//! sinks (through `appended`) and the live views.
//!
//! A batch the outbox cannot take (a full disk) is kept in memory and tried
//! again, so nothing read is lost while the logger runs, and writing resumes
//! by itself once there is room. Once the buses have stopped, the collector
//! keeps trying only for a grace time: then it gives up on what it holds and
//! says how many readings and why, so that a full disk cannot keep the
//! logger from stopping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{error, info};

use super::Outbox;
use crate::live::Latest;
use crate::reading::{Batch, LiveBatch, Reading};

/// Pause between attempts to write to an outbox that fails.
const RETRY: Duration = Duration::from_secs(1);

/// Readings the outbox could not take before the collector gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stopped with {readings} readings that the outbox {outbox} could not take ({reason}); they are lost. Make room on its disk before the next start"
)]
pub struct Unwritten {
    /// How many readings were lost.
    pub readings: usize,
    /// The outbox file.
    pub outbox: String,
    /// The outbox's last error.
    pub reason: String,
}

/// Takes readings from the buses into the outbox, then tells the sinks and
/// the live views, until the buses hang up. Once they have, an outbox that
/// still fails is given `grace`; what it has not taken by then is lost, and
/// returned as the error.
pub fn collect(
    mut readings: mpsc::UnboundedReceiver<Batch>,
    mut outbox: Outbox,
    appended: watch::Sender<u64>,
    latest: Arc<Mutex<Latest>>,
    live: broadcast::Sender<LiveBatch>,
    grace: Duration,
) -> Result<(), Unwritten> {
    let mut pending: VecDeque<Batch> = VecDeque::new();
    let mut failing: Option<String> = None;
    let mut hung_up: Option<Instant> = None;
    loop {
        if pending.is_empty() {
            if hung_up.is_some() {
                return Ok(());
            }
            match readings.blocking_recv() {
                Some(batch) => pending.push_back(batch),
                None => return Ok(()),
            }
        }
        // Also while the outbox fails: the buses hanging up is what lets
        // the grace time start.
        loop {
            match readings.try_recv() {
                Ok(batch) => pending.push_back(batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    hung_up.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        let waiting: usize = pending.iter().map(Batch::len).sum();
        let outcome = write(&mut outbox, &mut pending, &appended, &latest, &live);
        let outbox_name = outbox.path().display().to_string();
        match outcome {
            Ok(()) => {
                if failing.take().is_some() {
                    info!(outbox = %outbox_name, written = waiting, "outbox writable again");
                }
            }
            Err(reason) => {
                let waiting: usize = pending.iter().map(Batch::len).sum();
                if failing.is_none() {
                    error!(
                        outbox = %outbox_name,
                        %reason,
                        waiting,
                        "outbox cannot be written; readings wait in memory"
                    );
                }
                let pause = match hung_up {
                    Some(since) => {
                        let left = grace.saturating_sub(since.elapsed());
                        if left.is_zero() {
                            return Err(Unwritten {
                                readings: waiting,
                                outbox: outbox_name,
                                reason,
                            });
                        }
                        left.min(RETRY)
                    }
                    None => RETRY,
                };
                failing = Some(reason);
                std::thread::sleep(pause);
            }
        }
    }
}

/// Writes the pending batches in order, each in turn passed on to the sinks
/// and the live views; stops at the first the outbox refuses, with why.
fn write(
    outbox: &mut Outbox,
    pending: &mut VecDeque<Batch>,
    appended: &watch::Sender<u64>,
    latest: &Mutex<Latest>,
    live: &broadcast::Sender<LiveBatch>,
) -> Result<(), String> {
    while let Some(batch) = pending.front() {
        let written = match batch {
            Batch::Polled(readings) => outbox.append(readings),
            Batch::Logged(readings) => outbox.append_keyed(readings),
        };
        let last = written.map_err(|error| match error {
            super::OutboxError::Database { source, .. } => source.to_string(),
            other => other.to_string(),
        })?;
        let Some(batch) = pending.pop_front() else {
            break;
        };
        // A logger's rows are history: the latest values stay the polled
        // ones. The live stream has them all, numbered as the outbox does.
        let polled = matches!(batch, Batch::Polled(_));
        let batch: Arc<[Reading]> = batch.into_readings().into();
        if polled {
            latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .update(&batch);
        }
        let _ = live.send(LiveBatch {
            last_seq: last,
            readings: batch,
        });
        appended.send_replace(last);
    }
    Ok(())
}
