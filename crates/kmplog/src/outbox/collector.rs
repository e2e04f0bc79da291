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
/// A write waits until this long after the one before began, so that the
/// meters read meanwhile by many buses go in one transaction (one commit,
/// one prune) instead of one each; a batch after a quiet spell is written
/// at once. The sinks and live views hear of a reading this much later at
/// most.
const GATHER: Duration = Duration::from_millis(100);

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
    let mut last_write: Option<Instant> = None;
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
        if let Some(wait) = last_write.and_then(|last| GATHER.checked_sub(last.elapsed()))
            && failing.is_none()
        {
            std::thread::sleep(wait);
        }
        last_write = Some(Instant::now());
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

/// The most readings written in one outbox transaction. The buses hand on
/// each meter's readings as soon as they are read, a few at a time; when
/// many buses read at once the collector writes what has gathered in one
/// transaction (one commit, one prune) instead of one per meter, and this
/// bound keeps each transaction, and the batch the live views get, short.
const MAX_TRANSACTION: usize = 5_000;

/// Writes the pending batches in order, as few transactions as the bound
/// allows, each in turn passed on to the sinks and the live views; stops at
/// the first the outbox refuses, with why, keeping it first in `pending`.
fn write(
    outbox: &mut Outbox,
    pending: &mut VecDeque<Batch>,
    appended: &watch::Sender<u64>,
    latest: &Mutex<Latest>,
    live: &broadcast::Sender<LiveBatch>,
) -> Result<(), String> {
    while let Some(batch) = merge_front(pending) {
        let written = match &batch {
            Batch::Polled(readings) => outbox.append(readings),
            Batch::Logged(readings) => outbox.append_keyed(readings),
        };
        let last = match written {
            Ok(last) => last,
            Err(error) => {
                pending.push_front(batch);
                return Err(match error {
                    super::OutboxError::Database { source, .. } => source.to_string(),
                    other => other.to_string(),
                });
            }
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

/// Takes the first batch of `pending` and joins the ones of its kind after
/// it to it, in order, while they fit in [`MAX_TRANSACTION`] readings. A
/// batch over the bound by itself stays whole.
fn merge_front(pending: &mut VecDeque<Batch>) -> Option<Batch> {
    let mut merged = pending.pop_front()?;
    while let Some(next) = pending.front()
        && merged.len() + next.len() <= MAX_TRANSACTION
    {
        match (&mut merged, next) {
            (Batch::Polled(into), Batch::Polled(_)) => {
                if let Some(Batch::Polled(more)) = pending.pop_front() {
                    into.extend(more);
                }
            }
            (Batch::Logged(into), Batch::Logged(_)) => {
                if let Some(Batch::Logged(more)) = pending.pop_front() {
                    into.extend(more);
                }
            }
            _ => break,
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmp::unit::Unit;

    use crate::reading::Status;

    fn reading(address: u8, register: u16) -> Reading {
        Reading {
            time: "2026-12-01T08:00:00Z".parse().unwrap(),
            bus: "heat".to_owned(),
            address,
            request: "Main".to_owned(),
            register,
            name: format!("R{register}"),
            value: Some(("12.5".parse().unwrap(), Unit(0x25))),
            status: Status::Ok,
        }
    }

    /// Four registers of each of `meters` meters, a batch per meter, as a
    /// bus hands them on.
    fn per_meter(meters: u8) -> Vec<Vec<Reading>> {
        (1..=meters)
            .map(|address| (1..=4).map(|register| reading(address, register)).collect())
            .collect()
    }

    #[test]
    fn batches_waiting_together_go_in_one_transaction_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db"), 100_000).unwrap();
        let reader = outbox.reader().unwrap();
        let (sender, readings) = mpsc::unbounded_channel();
        let sent = per_meter(20);
        for batch in &sent {
            sender.send(Batch::Polled(batch.clone())).unwrap();
        }
        drop(sender);
        let (appended, _) = watch::channel(0);
        let (live, mut seen) = broadcast::channel(64);
        let latest = Arc::new(Mutex::new(Latest::default()));
        collect(readings, outbox, appended, latest, live, Duration::ZERO).unwrap();

        let expected: Vec<Reading> = sent.into_iter().flatten().collect();
        let batch = seen.try_recv().expect("one live batch");
        assert_eq!(batch.last_seq, 80);
        assert_eq!(&*batch.readings, expected.as_slice());
        assert!(
            seen.try_recv().is_err(),
            "the 20 batches were written as one"
        );
        let stored = reader.after(0, 1000).unwrap();
        let stored: Vec<(u64, Reading)> = stored
            .readings
            .into_iter()
            .map(|stored| (stored.seq, stored.reading))
            .collect();
        let numbered: Vec<(u64, Reading)> = (1..).zip(expected).collect();
        assert_eq!(stored, numbered);
    }

    #[test]
    fn batches_coming_one_at_a_time_are_gathered() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db"), 100_000).unwrap();
        let (sender, readings) = mpsc::unbounded_channel();
        let (appended, _) = watch::channel(0);
        let (live, mut seen) = broadcast::channel(64);
        let latest = Arc::new(Mutex::new(Latest::default()));
        let collector = std::thread::spawn(move || {
            collect(readings, outbox, appended, latest, live, Duration::ZERO)
        });
        // 20 meters over 200 ms, as a bus reads them.
        for batch in per_meter(20) {
            sender.send(Batch::Polled(batch)).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(sender);
        collector.join().unwrap().unwrap();
        let mut sizes = Vec::new();
        while let Ok(batch) = seen.try_recv() {
            sizes.push(batch.readings.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 80);
        // The first at once, then about one transaction per 100 ms.
        assert!(sizes.len() <= 5, "a transaction per meter or so: {sizes:?}");
    }

    #[test]
    fn a_transaction_stays_within_its_bound_and_a_big_batch_whole() {
        let big = vec![reading(1, 1); MAX_TRANSACTION + 1];
        let quarter = vec![reading(2, 1); MAX_TRANSACTION / 4];
        let mut pending: VecDeque<Batch> = [
            big,
            quarter.clone(),
            quarter.clone(),
            quarter.clone(),
            quarter.clone(),
            quarter,
        ]
        .into_iter()
        .map(Batch::Polled)
        .collect();
        let sizes: Vec<usize> = std::iter::from_fn(|| merge_front(&mut pending))
            .map(|merged| merged.len())
            .collect();
        assert_eq!(
            sizes,
            [MAX_TRANSACTION + 1, MAX_TRANSACTION, MAX_TRANSACTION / 4]
        );
    }

    #[test]
    fn logged_rows_are_not_joined_to_polled_readings() {
        let logged = |register| (format!("logged-{register}"), reading(3, register));
        let mut pending: VecDeque<Batch> = [
            Batch::Polled(vec![reading(1, 1)]),
            Batch::Polled(vec![reading(2, 1)]),
            Batch::Logged(vec![logged(1)]),
            Batch::Logged(vec![logged(2)]),
            Batch::Polled(vec![reading(1, 2)]),
        ]
        .into_iter()
        .collect();
        let kinds: Vec<(bool, usize)> = std::iter::from_fn(|| merge_front(&mut pending))
            .map(|merged| (matches!(merged, Batch::Logged(_)), merged.len()))
            .collect();
        assert_eq!(kinds, [(false, 2), (true, 2), (false, 1)]);
    }
}
