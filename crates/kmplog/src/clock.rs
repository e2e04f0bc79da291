//! The wall clock the scheduler reads. In production it is the system's; in
//! tests it follows tokio's paused time, so that schedules of hours or days
//! run in milliseconds and every time stamp is known in advance.

use std::time::Duration;

use jiff::Timestamp;

/// Where "now" comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// `origin` plus the tokio time elapsed since `since`: moves with
    /// `tokio::time::pause` and `advance`.
    Tokio {
        /// The wall time at `since`.
        origin: Timestamp,
        /// The tokio instant that corresponds to `origin`.
        since: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that starts at `origin` now and runs with tokio time.
    pub fn tokio_from(origin: Timestamp) -> Clock {
        Clock::Tokio {
            origin,
            since: tokio::time::Instant::now(),
        }
    }

    /// The current wall time.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Tokio { origin, since } => {
                let elapsed = jiff::SignedDuration::try_from(since.elapsed())
                    .unwrap_or(jiff::SignedDuration::MAX);
                origin.checked_add(elapsed).unwrap_or(Timestamp::MAX)
            }
        }
    }

    /// Sleeps until the wall time `when` (returns at once if it has passed).
    pub async fn sleep_until(&self, when: Timestamp) {
        let left = self.now().duration_until(when);
        if let Ok(left) = Duration::try_from(left) {
            tokio::time::sleep(left).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let origin: Timestamp = "2026-03-29T00:30:00Z".parse().unwrap();
        let clock = Clock::tokio_from(origin);
        clock
            .sleep_until("2026-03-29T02:00:00Z".parse().unwrap())
            .await;
        assert_eq!(clock.now().to_string(), "2026-03-29T02:00:00Z");
    }
}
