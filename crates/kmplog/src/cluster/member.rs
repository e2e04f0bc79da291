//! This instance in the cluster: a loop that, every third of a lease,
//! renews what it holds, heartbeats, reads the members and the leases,
//! stops and releases the buses that should move to another member, and
//! acquires the free ones that should be its own; and at a clean stop
//! hands everything over at once.
//!
//! The loop tells the logger which buses to run through [`Ownership`]
//! orders and waits until each is applied, so that a bus is released only
//! after its task has ended (its transaction in flight done, its line
//! closed). Safety does not rest on the loop: every permit stops its bus by
//! itself when its deadline passes ([`super::lease`]), however slow the
//! coordinator or this loop.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::coordinator::{Coordinator, Heartbeat, LeaseRow, Session};
use super::lease::{Permit, Timing};
use super::spread::{Weighted, spread};
use super::{BusOwner, ClusterView, Ownership};

/// This instance's part in the cluster.
pub struct Member {
    name: String,
    nonce: i64,
    timing: Timing,
    coordinator: Coordinator,
    /// The buses of the configuration, which follow reloads.
    buses: watch::Receiver<Vec<Weighted>>,
    held: BTreeMap<String, Permit>,
    orders: mpsc::Sender<Ownership>,
    view: ClusterView,
    /// Said once per episode, not every round.
    name_taken_said: bool,
}

impl Member {
    /// A member named `name` on `coordinator`, sending its orders to
    /// `orders`.
    pub fn new(
        name: &str,
        timing: Timing,
        coordinator: Coordinator,
        buses: watch::Receiver<Vec<Weighted>>,
        orders: mpsc::Sender<Ownership>,
        view: ClusterView,
    ) -> Member {
        Member {
            name: name.to_owned(),
            nonce: fastrand::i64(..),
            timing,
            coordinator,
            buses,
            held: BTreeMap::new(),
            orders,
            view,
            name_taken_said: false,
        }
    }

    /// Runs until `stop`, then gives every bus up at once: stops them all,
    /// releases their leases and leaves.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut session: Option<Session<'_>> = None;
        let coordinator = &self.coordinator;
        let mut rounds = tokio::time::interval(self.timing.renew_every());
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut state = Round {
            name: &self.name,
            nonce: self.nonce,
            timing: self.timing,
            held: &mut self.held,
            orders: &self.orders,
            view: &self.view,
            name_taken_said: &mut self.name_taken_said,
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = rounds.tick() => {}
            }
            let buses = self.buses.borrow_and_update().clone();
            state.round(coordinator, &mut session, &buses).await;
        }
        state.hand_over(coordinator, session).await;
    }
}

/// What one round works on (the member's fields, borrowed apart from its
/// coordinator, which the session borrows).
struct Round<'m> {
    name: &'m str,
    nonce: i64,
    timing: Timing,
    held: &'m mut BTreeMap<String, Permit>,
    orders: &'m mpsc::Sender<Ownership>,
    view: &'m ClusterView,
    name_taken_said: &'m mut bool,
}

impl Round<'_> {
    /// The buses held, with their tokens.
    fn pairs(&self) -> Vec<(String, i64)> {
        self.held
            .values()
            .map(|permit| (permit.bus().to_owned(), permit.token()))
            .collect()
    }

    /// Tells the logger to run exactly the buses held, and waits until it has.
    async fn order(&self) {
        let (done, applied) = oneshot::channel();
        let permits = self.held.values().cloned().collect();
        if self.orders.send(Ownership { permits, done }).await.is_ok() {
            // A logger that has gone runs no bus.
            let _ = applied.await;
        }
        let owned = self
            .held
            .values()
            .map(|permit| (permit.bus().to_owned(), permit.token()))
            .collect();
        self.view.update(|status| status.owned = owned);
    }

    /// Drops the permits whose deadline passed: their buses have stopped.
    async fn forget_lapsed(&mut self) {
        let lapsed: Vec<String> = self
            .held
            .values()
            .filter(|permit| permit.is_revoked() || Instant::now() >= permit.deadline())
            .map(|permit| permit.bus().to_owned())
            .collect();
        if lapsed.is_empty() {
            return;
        }
        for bus in &lapsed {
            if let Some(permit) = self.held.remove(bus) {
                permit.revoke();
                warn!(bus = %bus, token = permit.token(), "lease lost: the bus stopped before it lapsed");
            }
        }
        self.view
            .update(|status| status.lost += lapsed.len() as u64);
        self.order().await;
    }

    async fn round<'c>(
        &mut self,
        coordinator: &'c Coordinator,
        session: &mut Option<Session<'c>>,
        buses: &[Weighted],
    ) {
        self.forget_lapsed().await;
        if session.as_ref().is_none_or(Session::is_closed) {
            *session = match self.timed(coordinator, coordinator.connect()).await {
                Ok(connected) => Some(connected),
                Err(error) => return self.failed(error),
            };
        }
        let Some(connected) = session.as_ref() else {
            return;
        };
        match self.exchange(coordinator, connected, buses).await {
            Ok(()) => self.view.update(|status| status.coordinator_error = None),
            Err(error) => {
                *session = None;
                self.failed(error);
            }
        }
    }

    /// `statement`, given at most a third of a lease, so that a slow
    /// coordinator does not hold up the next renewal. (Stopping the buses
    /// that move is not timed: it waits for their transactions in flight.)
    async fn timed<T>(
        &self,
        coordinator: &Coordinator,
        statement: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let limit = self.timing.renew_every();
        tokio::time::timeout(limit, statement)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{} did not answer within {} ms",
                    coordinator.server(),
                    limit.as_millis()
                ))
            })
    }

    fn failed(&self, error: String) {
        warn!(reason = %error, "cluster coordinator");
        self.view.update(|status| {
            status.coordinator_error = Some(error);
            status.renewal_failures += 1;
        });
    }

    /// One exchange with the coordinator.
    async fn exchange(
        &mut self,
        coordinator: &Coordinator,
        session: &Session<'_>,
        buses: &[Weighted],
    ) -> Result<(), String> {
        let lease = self.timing.lease;
        if !self.held.is_empty() {
            let sent = Instant::now();
            let renewed: BTreeSet<(String, i64)> = self
                .timed(coordinator, session.renew(self.name, &self.pairs(), lease))
                .await?
                .into_iter()
                .collect();
            let deadline = self.timing.deadline(sent);
            for permit in self.held.values() {
                if renewed.contains(&(permit.bus().to_owned(), permit.token())) {
                    permit.extend(deadline);
                } else {
                    // Lapsed on the server: whoever holds it now, not us.
                    permit.revoke();
                }
            }
            let count = renewed.len() as u64;
            self.view.update(|status| status.renewals += count);
            self.forget_lapsed().await;
        }
        let heartbeat = session.heartbeat(self.name, self.nonce, lease);
        if self.timed(coordinator, heartbeat).await? == Heartbeat::NameTaken {
            if !*self.name_taken_said {
                *self.name_taken_said = true;
                warn!(
                    instance = %self.name,
                    "another live instance has this name: this one takes no bus until it is gone; give each instance its own --instance"
                );
            }
            return Ok(());
        }
        *self.name_taken_said = false;
        let members = self.timed(coordinator, session.members()).await?;
        let leases = self.timed(coordinator, session.leases()).await?;
        let desired = spread(buses, &members);
        let mine = |bus: &str| desired.get(bus).is_some_and(|owner| owner == self.name);
        let moving: Vec<String> = self.held.keys().filter(|bus| !mine(bus)).cloned().collect();
        if !moving.is_empty() {
            let given: Vec<(String, i64)> = moving
                .iter()
                .filter_map(|bus| self.held.remove(bus))
                .map(|permit| (permit.bus().to_owned(), permit.token()))
                .collect();
            // Stopped first, released only once their tasks have ended.
            self.order().await;
            self.timed(coordinator, session.release(self.name, &given))
                .await?;
            for (bus, token) in &given {
                info!(bus = %bus, token, "bus handed over");
            }
        }
        let live: BTreeMap<&str, &LeaseRow> = leases
            .iter()
            .filter(|row| row.live)
            .map(|row| (row.bus.as_str(), row))
            .collect();
        let wanted: Vec<String> = buses
            .iter()
            .map(|bus| bus.bus.clone())
            .filter(|bus| {
                mine(bus) && !self.held.contains_key(bus) && !live.contains_key(bus.as_str())
            })
            .collect();
        if !wanted.is_empty() {
            let sent = Instant::now();
            let acquired = self
                .timed(coordinator, session.acquire(self.name, &wanted, lease))
                .await?;
            let deadline = self.timing.deadline(sent);
            let before: BTreeMap<&str, &str> = leases
                .iter()
                .map(|row| (row.bus.as_str(), row.owner.as_str()))
                .collect();
            let mut takeovers = 0;
            for (bus, token) in &acquired {
                let from = before.get(bus.as_str()).copied();
                if from.is_some_and(|owner| owner != self.name) {
                    takeovers += 1;
                }
                info!(bus = %bus, token, from = from.unwrap_or("nobody"), "bus acquired");
                self.held
                    .insert(bus.clone(), Permit::new(bus, *token, deadline));
            }
            let count = acquired.len() as u64;
            self.view.update(|status| {
                status.acquisitions += count;
                status.takeovers += takeovers;
            });
            if !acquired.is_empty() {
                self.order().await;
            }
        }
        let owners: Vec<BusOwner> = buses
            .iter()
            .map(|bus| {
                let held = self.held.get(&bus.bus);
                let row = live.get(bus.bus.as_str());
                BusOwner {
                    bus: bus.bus.clone(),
                    owner: held
                        .map(|_| self.name.to_owned())
                        .or_else(|| row.map(|row| row.owner.clone())),
                    token: held.map(Permit::token).or_else(|| row.map(|row| row.token)),
                }
            })
            .collect();
        self.view.update(|status| {
            status.members = members;
            status.buses = owners;
        });
        Ok(())
    }

    /// A clean stop: every bus stopped, then every lease released and the
    /// membership ended, so that the others take over at their next round.
    async fn hand_over<'c>(self, coordinator: &'c Coordinator, session: Option<Session<'c>>) {
        let given = self.pairs();
        self.held.clear();
        self.order().await;
        let limit = self.timing.renew_every();
        let released = async {
            let session = match session.filter(|session| !session.is_closed()) {
                Some(session) => session,
                None => coordinator.connect().await?,
            };
            session.release(self.name, &given).await?;
            session.leave(self.name, self.nonce).await
        };
        match tokio::time::timeout(limit.max(Duration::from_secs(1)), released).await {
            Ok(Ok(())) => info!(buses = given.len(), "left the cluster, leases released"),
            Ok(Err(error)) => {
                warn!(reason = %error, "leases not released: they lapse within the lease");
            }
            Err(_) => warn!("the coordinator did not answer: the leases lapse within the lease"),
        }
    }
}
