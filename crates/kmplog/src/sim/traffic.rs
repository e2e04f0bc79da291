//! What the simulated lines carried, for benchmarks: the bytes the masters
//! sent, the bytes the meters sent, and the span of time from the first byte
//! received to the end of the last byte on any line. `kmplog simulate` prints
//! it on exit, so that a benchmark can tell how busy a line was without
//! trusting the logger's own account.
//!
//! Counters are atomics because every line of a simulator adds to the same
//! totals from its own task; a benchmark runs one line at a time, so the span
//! is that line's busy span.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Byte counts and the busy span of all lines, since `start`.
#[derive(Debug)]
pub struct Traffic {
    start: Instant,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Nanoseconds from `start` to the first byte received; `u64::MAX` until then.
    first_ns: AtomicU64,
    /// Nanoseconds from `start` to the end of the last byte carried.
    last_ns: AtomicU64,
}

/// A copy of the counts, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bytes the masters sent.
    pub bytes_in: u64,
    /// Bytes the meters sent (echo included).
    pub bytes_out: u64,
    /// From the first byte received to the end of the last byte carried;
    /// zero when nothing came.
    pub span: Duration,
}

impl Traffic {
    /// Counts from `start` on.
    pub fn new(start: Instant) -> Traffic {
        Traffic {
            start,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            first_ns: AtomicU64::new(u64::MAX),
            last_ns: AtomicU64::new(0),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// `bytes` from a master began to arrive at `at`.
    pub fn received(&self, bytes: usize, at: Instant) {
        self.bytes_in
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.first_ns.fetch_min(self.nanos(at), Ordering::Relaxed);
    }

    /// `bytes` from a meter were sent, the last of them at `at`.
    pub fn sent(&self, bytes: usize, at: Instant) {
        self.bytes_out
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.busy_until(at);
    }

    /// The line carried bytes until `at`.
    pub fn busy_until(&self, at: Instant) {
        self.last_ns.fetch_max(self.nanos(at), Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        let first = self.first_ns.load(Ordering::Relaxed);
        let last = self.last_ns.load(Ordering::Relaxed);
        Summary {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            span: Duration::from_nanos(last.saturating_sub(first)),
        }
    }
}

impl fmt::Display for Summary {
    /// `traffic in 230 out 830 bytes over 4.857123 s`: one line that
    /// scripts split on spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "traffic in {} out {} bytes over {:.6} s",
            self.bytes_in,
            self.bytes_out,
            self.span.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_the_span_from_first_byte_in_to_last_byte_out() {
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let traffic = Traffic::new(start);
        assert_eq!(traffic.summary().span, Duration::ZERO);
        traffic.received(23, at(100));
        traffic.busy_until(at(205));
        traffic.sent(83, at(600));
        // A second line, whose bytes came earlier and ended earlier.
        traffic.received(23, at(50));
        traffic.sent(10, at(400));
        let summary = traffic.summary();
        assert_eq!(
            summary,
            Summary {
                bytes_in: 46,
                bytes_out: 93,
                span: Duration::from_millis(550),
            }
        );
        assert_eq!(
            summary.to_string(),
            "traffic in 46 out 93 bytes over 0.550000 s"
        );
    }
}
