//! Telling systemd how the logger is, for a `Type=notify` unit
//! (`dist/kmplog.service`): READY=1 once the buses and the API are up,
//! WATCHDOG=1 at half the interval systemd asks for (`WatchdogSec=`) for as
//! long as the logger is healthy, and STOPPING=1 when its stop begins (the
//! stop itself, with the sinks' grace time, is the logger's). A logger that
//! hangs, or whose bus loops or collector have died, stops pinging and
//! systemd restarts it. Outside systemd (no
//! `NOTIFY_SOCKET`) all of it does nothing.

use std::time::Duration;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::bus::state::BusState;
use crate::config::{BusConfig, BusEndpoint};

/// How far past the longest run of its whole queue a bus may be behind
/// before its loop counts as dead: leaves room for a slow machine and a
/// reconnect, so that a busy bus is never taken for a hung one.
const SLACK: Duration = Duration::from_secs(30);

/// The logger as systemd sees it: ready, watched, then stopping.
pub struct Service {
    watchdog: Option<JoinHandle<()>>,
}

impl Service {
    /// Tells systemd that the logger is up, and when it asks for a watchdog
    /// pings it for as long as `healthy` says so.
    pub fn ready(healthy: impl Fn() -> bool + Send + 'static) -> Service {
        notify(&[NotifyState::Ready]);
        let watchdog =
            sd_notify::watchdog_enabled().map(|interval| tokio::spawn(ping(interval / 2, healthy)));
        Service { watchdog }
    }

    /// Tells systemd that the logger is going; no more pings.
    pub fn stopping(self) {
        if let Some(watchdog) = self.watchdog {
            watchdog.abort();
        }
        notify(&[NotifyState::Stopping]);
    }
}

/// Pings the watchdog every `period` while `healthy`, and says so once when
/// that changes.
async fn ping(period: Duration, healthy: impl Fn() -> bool) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_healthy = true;
    loop {
        tick.tick().await;
        let is_healthy = healthy();
        if is_healthy {
            notify(&[NotifyState::Watchdog]);
        }
        match (was_healthy, is_healthy) {
            (true, false) => error!(
                "a bus loop has stopped running its requests, or the collector has stopped: no more watchdog pings, so systemd restarts the logger"
            ),
            (false, true) => {
                info!("the bus loops and the collector run again: pinging the watchdog again")
            }
            _ => {}
        }
        was_healthy = is_healthy;
    }
}

/// Sends `state`; a failure is logged, not fatal: systemd then restarts a
/// logger that should have pinged, which is what a broken socket deserves.
fn notify(state: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(state) {
        warn!(reason = %error, "cannot notify systemd");
    }
}

/// Whether the loop of every bus that polls is alive at `now`: none of its
/// requests is overdue by more than the longest its whole queue can take to
/// run once (every address, every retry timing out), plus [`SLACK`]. A
/// listening bus runs when another master speaks, so it is never overdue.
pub fn bus_loops_alive(buses: &[BusConfig], states: &[BusState], now: Timestamp) -> bool {
    buses.iter().zip(states).all(|(bus, state)| {
        if bus.requests.iter().all(|request| !request.send) {
            return true;
        }
        let allowed = longest_run(bus) + SLACK;
        state
            .requests
            .iter()
            .filter_map(|request| request.next_run)
            .all(|due| {
                let overdue = now.duration_since(due);
                overdue.is_negative() || overdue.unsigned_abs() <= allowed
            })
    })
}

/// The longest one run of every request of `bus` can take: each address
/// times out on every attempt, with the pause between attempts, after a
/// connection attempt that takes its whole timeout.
fn longest_run(bus: &BusConfig) -> Duration {
    let connect = match &bus.endpoint {
        BusEndpoint::Tcp(settings) => settings.connect_timeout,
        BusEndpoint::Serial(_) | BusEndpoint::Udp { .. } => Duration::ZERO,
    };
    bus.requests
        .iter()
        .map(|request| {
            let attempts = request.retries + 1;
            let per_address = (request.timeout + bus.retry_pause) * attempts;
            per_address * u32::try_from(request.addresses.len()).unwrap_or(u32::MAX)
        })
        .fold(connect, |total, run| total.saturating_add(run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::state::RequestState;
    use crate::config::parse;

    fn bus() -> BusConfig {
        let text = "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nconnect_timeout_ms = 2000\n[[bus.request]]\ndescription = \"r\"\naddresses = \"1;2\"\ntimeout_ms = 1000\nretries = 1\nitems = [\"E1\"]\npolling = \"1s\"\n";
        let (config, _) = parse(text, "test.toml").expect("valid");
        config.buses[0].clone()
    }

    fn state(next_run: Option<Timestamp>) -> BusState {
        let mut state = crate::bus::task::initial_state(&bus());
        state.requests = vec![RequestState {
            description: "r".to_owned(),
            method: "polling 1s".to_owned(),
            method_words: "every 1 s".to_owned(),
            last_run: None,
            next_run,
            last_result: None,
        }];
        state
    }

    #[test]
    fn a_bus_behind_by_more_than_its_longest_run_is_dead() {
        let bus = bus();
        // Connect 2 s, then 2 addresses × 2 attempts × (1 s + 200 ms pause).
        assert_eq!(longest_run(&bus), Duration::from_millis(6_800));
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let behind = |seconds: i64| state(Some(now - jiff::SignedDuration::from_secs(seconds)));
        let buses = std::slice::from_ref(&bus);
        assert!(bus_loops_alive(buses, &[state(None)], now));
        assert!(bus_loops_alive(buses, &[behind(-5)], now));
        assert!(bus_loops_alive(buses, &[behind(36)], now));
        assert!(!bus_loops_alive(buses, &[behind(37)], now));
    }
}
