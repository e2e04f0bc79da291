//! Sleeping optical ports (SPEC §1). A battery meter puts its optical port to
//! sleep some time after its last use, and the first frame after that only
//! wakes it. The master's first retry is the wake-up; this module learns, per
//! meter, after how long idle the port was found asleep, so that the bus
//! spends only a short wait on the frame that wakes a port it expects asleep
//! instead of the whole timeout.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// How long the bus waits for a reply to a frame it expects only to wake
/// the port. If the port was awake after all, its reply arrives during the
/// retry and is dropped as stale; the retry then reads it again.
pub const WAKE_TIMEOUT: Duration = Duration::from_millis(250);

/// What the bus knows of one meter's optical port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Port {
    /// When the meter last answered.
    last_answer: Option<Timestamp>,
    /// The shortest idle time after which the port was found asleep, unless
    /// a longer idle time has since been answered at once.
    asleep_after: Option<SignedDuration>,
}

/// The ports of the meters of one bus.
#[derive(Debug, Default)]
pub struct Wakefulness {
    ports: HashMap<u8, Port>,
}

/// How a transaction went, as far as waking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The meter answered the first frame.
    AtOnce,
    /// The first frame got no reply; a retry got one.
    AfterWaking,
    /// No usable reply at all.
    None,
}

impl Wakefulness {
    /// Whether the port of `address` is expected to be asleep at `now`.
    pub fn expects_asleep(&self, address: u8, now: Timestamp) -> bool {
        self.ports
            .get(&address)
            .is_some_and(|port| match (port.last_answer, port.asleep_after) {
                (Some(last), Some(asleep_after)) => now.duration_since(last) >= asleep_after,
                _ => false,
            })
    }

    /// Learns from a transaction with `address` that started at `start` and
    /// ended at `end`.
    pub fn record(&mut self, address: u8, start: Timestamp, end: Timestamp, answer: Answer) {
        let port = self.ports.entry(address).or_default();
        let idle = port.last_answer.map(|last| start.duration_since(last));
        match (answer, idle) {
            (Answer::AfterWaking, Some(idle)) => {
                port.asleep_after = Some(port.asleep_after.map_or(idle, |known| known.min(idle)));
            }
            (Answer::AtOnce, Some(idle))
                if port.asleep_after.is_some_and(|known| idle >= known) =>
            {
                // Awake after longer than we thought: the estimate was wrong.
                port.asleep_after = None;
            }
            _ => {}
        }
        if answer != Answer::None {
            port.last_answer = Some(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn learns_when_a_port_sleeps_and_unlearns_when_wrong() {
        let mut ports = Wakefulness::default();
        // (start second, answer, expected asleep at the next start)
        let steps = [
            (0, Answer::AfterWaking, false), // no earlier answer: no idle time to learn from
            (10, Answer::AtOnce, false),
            (100, Answer::AfterWaking, false), // asleep after 90 s idle; 50 s later still awake
            (150, Answer::AtOnce, true),       // 250 s later it will be asleep
            (400, Answer::AtOnce, false),      // it was not: forget the 90 s
            (800, Answer::AfterWaking, true),  // asleep after 400 s; 500 s later asleep
        ];
        let mut next_start = steps.iter().skip(1).map(|step| step.0).chain([1300]);
        for (start, answer, expected) in steps {
            ports.record(63, at(start), at(start), answer);
            let next = next_start.next().unwrap();
            assert_eq!(
                ports.expects_asleep(63, at(next)),
                expected,
                "after the run at {start} s, at {next} s"
            );
        }
        assert!(
            !ports.expects_asleep(17, at(10_000)),
            "unknown meters are not expected asleep"
        );
    }

    #[test]
    fn a_meter_without_answers_teaches_nothing() {
        let mut ports = Wakefulness::default();
        ports.record(63, at(0), at(1), Answer::None);
        ports.record(63, at(100), at(101), Answer::None);
        assert!(!ports.expects_asleep(63, at(1000)));
    }
}
