//! The meter simulator behind `kmplog simulate`: emulated Kamstrup meters on
//! TCP ports and pseudo-terminals, speaking real KMP at serial-line speed, for
//! the tests and the demo.
//!
//! The parts, pure ones first:
//! - [`meter`]: one meter, its identity and its register values at a moment;
//! - [`loggers`]: its hourly, daily, monthly and yearly history, computed
//!   from the same values, answered through 0xB8;
//! - [`line`]: a line with several meters on it, bytes in and bytes out, with
//!   echo, faults and sleeping optical ports;
//! - [`pacing`]: serial-line timing of the bytes written;
//! - [`session`]: drives one line over any byte stream;
//! - [`tcp`] and [`pty`]: the front ends, one line per TCP connection and
//!   per pseudo-terminal;
//! - [`traffic`]: bytes carried and for how long, printed on exit for
//!   benchmarks.
//!
//! Every line has all the meters on it. Their values are computed from the
//! time since the [`Simulator`] started, so counters keep growing across lines
//! and connections, and the meters' optical ports fall asleep and wake up
//! whichever line talks to them; only the fault dice are per line.

pub mod line;
pub mod loggers;
pub mod meter;
pub mod pacing;
pub mod pty;
pub mod session;
pub mod tcp;
pub mod traffic;
pub mod udp;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use line::{Line, LineConfig, Ports};
use meter::{Meter, Moment};

/// Everything a simulator is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The meters on every line; their addresses are distinct.
    pub meters: Vec<Meter>,
    /// How the lines behave.
    pub line: LineConfig,
    /// Seed of the fault dice: line `n` (counting from 0 in the order lines
    /// open) uses `seed + n`. `None`: a random seed.
    pub seed: Option<u64>,
    /// Log nothing to stderr.
    pub quiet: bool,
    /// A gateway outage to stage, if any.
    pub outage: Option<Outage>,
}

/// An outage of the TCP front end, the gateway in front of the meters:
/// `after` the start it closes every connection and refuses new ones for
/// `lasts`; the meters live through `skips` meanwhile (their clocks and
/// counters are that much further on afterwards), so that a night's outage
/// takes a test seconds. The meters' clocks then run ahead of the host's by
/// the difference, as a meter's clock that was set would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// From the start to the outage.
    pub after: Duration,
    /// How long the front end is down.
    pub lasts: Duration,
    /// How much time passes for the meters meanwhile.
    pub skips: Duration,
}

/// The state all lines share: the meters, the start time and the settings.
#[derive(Debug)]
pub struct Simulator {
    meters: Arc<[Meter]>,
    ports: Ports,
    line: Arc<LineConfig>,
    seed: u64,
    lines_opened: AtomicU64,
    /// The simulator's clock for values and sleeping ports: tokio's, so that
    /// tests on paused time see meters age and optical ports fall asleep.
    clock_start: tokio::time::Instant,
    traffic: traffic::Traffic,
    start_unix_seconds: i64,
    quiet: bool,
    outage: Option<Outage>,
}

impl Simulator {
    /// A simulator whose clock starts now.
    pub fn new(settings: Settings) -> Arc<Simulator> {
        let start = Instant::now();
        let start_unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        Arc::new(Simulator {
            ports: Ports::new(settings.meters.len()),
            meters: settings.meters.into(),
            line: Arc::new(settings.line),
            seed: settings.seed.unwrap_or_else(|| fastrand::u64(..)),
            lines_opened: AtomicU64::new(0),
            clock_start: tokio::time::Instant::now(),
            traffic: traffic::Traffic::new(start),
            start_unix_seconds,
            quiet: settings.quiet,
            outage: settings.outage,
        })
    }

    /// The meters on every line.
    pub fn meters(&self) -> &[Meter] {
        &self.meters
    }

    /// A new line with all the meters on it and its own fault dice.
    pub fn open_line(&self) -> Line {
        let index = self.lines_opened.fetch_add(1, Ordering::Relaxed);
        Line::new(
            Arc::clone(&self.meters),
            self.ports.clone(),
            Arc::clone(&self.line),
            self.seed.wrapping_add(index),
        )
    }

    /// The bytes all lines carried so far.
    pub fn traffic(&self) -> &traffic::Traffic {
        &self.traffic
    }

    /// The current moment on the simulator's clock.
    pub fn now(&self) -> Moment {
        let mut elapsed = self.clock_start.elapsed();
        if let Some(outage) = self.outage
            && elapsed >= outage.after + outage.lasts
        {
            elapsed += outage.skips.saturating_sub(outage.lasts);
        }
        Moment::after(self.start_unix_seconds, elapsed)
    }

    /// When the outage begins and ends, while it is still to begin.
    pub fn outage_ahead(&self) -> Option<(tokio::time::Instant, tokio::time::Instant)> {
        let outage = self.outage?;
        let begins = self.clock_start + outage.after;
        (tokio::time::Instant::now() < begins).then_some((begins, begins + outage.lasts))
    }

    /// Logs `what` happened on line `name` to stderr, unless quiet.
    pub fn log(&self, name: &str, what: impl fmt::Display) {
        if !self.quiet {
            eprintln!("{name}: {what}");
        }
    }
}

/// Helpers for the front ends' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::time::Duration;

    use kmp::{Event, Response, Splitter};
    use tokio::io::{AsyncRead, AsyncReadExt};

    use super::line::LineConfig;
    use super::meter::Meter;
    use super::{Settings, Simulator};

    /// A quiet simulator with `meters` on lines that behave as `line` says.
    pub(crate) fn simulator(meters: Vec<Meter>, line: LineConfig) -> Arc<Simulator> {
        Simulator::new(Settings {
            meters,
            line,
            seed: Some(1),
            quiet: true,
            outage: None,
        })
    }

    /// Reads from `stream` until a whole frame has come, and decodes it.
    pub(crate) async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> Response {
        let mut splitter = Splitter::new();
        let mut buffer = [0; 256];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("a reply within 10 s")
                .unwrap();
            assert_ne!(read, 0, "closed before a reply");
            for event in splitter.feed(&buffer[..read]) {
                if let Event::Frame(frame) = event {
                    return Response::decode(&frame).unwrap();
                }
            }
        }
    }
}
