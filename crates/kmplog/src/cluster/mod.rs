//! Several instances sharing the buses of one configuration file, each bus
//! polled by at most one of them at any moment (SPEC §8).
//!
//! - `coordinator.rs`: the lease and member tables in PostgreSQL.
//! - `lease.rs`: deadlines and the [`Permit`] a bus task asks before each
//!   transaction.
//! - `spread.rs`: which live instance should own which bus.
//! - `member.rs`: this instance's loop: heartbeat, renew, release what
//!   should move, acquire what it should own; it tells the logger which
//!   buses to run ([`Ownership`]), which runs them through
//!   [`crate::reload::RunningBuses`].
//!
//! ARCHITECTURE.md (Cluster) has why a lease table and not advisory locks,
//! and why no bus is ever polled by two instances.

pub mod coordinator;
pub mod lease;
pub mod member;
pub mod spread;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use lease::Permit;
use tokio::sync::oneshot;

use crate::config::BusConfig;

/// The buses to run from now on, each under its permit; `done` is answered
/// once the buses no longer owned have stopped (their transaction in
/// flight ended and their line closed).
#[derive(Debug)]
pub struct Ownership {
    /// One permit per bus to run.
    pub permits: Vec<Permit>,
    /// Answered when applied.
    pub done: oneshot::Sender<()>,
}

/// How much a bus weighs when buses are spread: its meters, at least 1.
pub fn weighted(buses: &[BusConfig]) -> Vec<spread::Weighted> {
    buses
        .iter()
        .map(|bus| {
            let mut addresses: Vec<u8> = bus
                .requests
                .iter()
                .flat_map(|request| request.addresses.iter().copied())
                .collect();
            addresses.sort_unstable();
            addresses.dedup();
            spread::Weighted {
                bus: bus.name.clone(),
                weight: (addresses.len() as u64).max(1),
            }
        })
        .collect()
}

/// A bus and its lease as this instance last read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusOwner {
    /// The bus.
    pub bus: String,
    /// Its holder; `None` when nobody holds it.
    pub owner: Option<String>,
    /// The fencing token of the holder's acquisition.
    pub token: Option<i64>,
}

/// What this instance knows of the cluster, for the API and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// This instance's name.
    pub instance: String,
    /// The live members, by name, as last read.
    pub members: Vec<String>,
    /// The buses this instance holds, with their fencing tokens.
    pub owned: BTreeMap<String, i64>,
    /// Every configured bus and its holder, as last read.
    pub buses: Vec<BusOwner>,
    /// `None` when the last exchange with the coordinator went well, else
    /// what failed.
    pub coordinator_error: Option<String>,
    /// Leases acquired.
    pub acquisitions: u64,
    /// Acquisitions of a bus another instance held last.
    pub takeovers: u64,
    /// Leases renewed.
    pub renewals: u64,
    /// Rounds whose renewal failed (no answer, an error).
    pub renewal_failures: u64,
    /// Leases lost: not renewed before their deadline.
    pub lost: u64,
}

impl Status {
    /// The answer of `GET /api/cluster`.
    pub fn to_json(&self) -> serde_json::Value {
        let buses: Vec<serde_json::Value> = self
            .buses
            .iter()
            .map(
                |bus| serde_json::json!({ "bus": bus.bus, "owner": bus.owner, "token": bus.token }),
            )
            .collect();
        serde_json::json!({
            "instance": self.instance,
            "members": self.members,
            "owned": self.owned.keys().collect::<Vec<_>>(),
            "coordinator": self.coordinator_error.as_deref().unwrap_or("ok"),
            "buses": buses,
        })
    }
}

/// The status, shared by the member loop (which writes it) and the API.
#[derive(Debug, Clone, Default)]
pub struct ClusterView(Arc<Mutex<Status>>);

impl ClusterView {
    /// A view for `instance`.
    pub fn new(instance: &str) -> ClusterView {
        ClusterView(Arc::new(Mutex::new(Status {
            instance: instance.to_owned(),
            ..Status::default()
        })))
    }

    /// A view holding `status`, for tests of what shows it.
    #[cfg(test)]
    pub(crate) fn of(status: Status) -> ClusterView {
        ClusterView(Arc::new(Mutex::new(status)))
    }

    /// A copy of the status now.
    pub fn snapshot(&self) -> Status {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The instance name when `--instance` gives none: the host name and the
/// process id, `meters-1-4711`.
pub fn default_instance() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "kmplog".to_owned());
    format!("{host}-{}", std::process::id())
}
