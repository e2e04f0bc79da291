//! Named events, from wherever they come (a request's `on_complete` or
//! `on_failure`, a threshold, `POST /api/events/NAME`, `kmplog trigger`, an
//! MQTT command), to the buses whose requests wait for them.
//!
//! The [`EventRouter`] is built from the configuration, so it knows which
//! bus listens for which name before anything runs: firing a name no bus
//! listens for says so at once, instead of being accepted and dropped. A
//! reload routes its clones anew ([`EventRouter::reroute`]); a bus keeps its
//! inbox across it, with the events waiting in it.
//! Each bus has an [`Inbox`], a queue in the order the events came. An
//! event already waiting in an inbox is not queued twice: events that came
//! together run their requests once, as ticks missed while a bus is busy
//! do. The queue therefore never holds more names than its bus listens for.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::Notify;

use crate::config::BusConfig;

/// The events waiting for one bus, oldest first.
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<VecDeque<String>>,
    arrived: Notify,
}

impl Inbox {
    /// Queues `name` unless it is waiting already.
    fn push(&self, name: &str) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if !queue.iter().any(|waiting| waiting == name) {
            queue.push_back(name.to_owned());
        }
        drop(queue);
        self.arrived.notify_one();
    }

    /// Takes every event waiting, oldest first.
    pub fn take(&self) -> Vec<String> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }

    /// Resolves when an event has been queued since the last wake-up (at
    /// once if one was queued while nobody waited).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }
}

/// An event that no request of the configuration waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoListener {
    name: String,
    known: Vec<String>,
}

impl std::fmt::Display for NoListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no request waits for event '{}'", self.name)?;
        if self.known.is_empty() {
            f.write_str(
                "; no request of the configuration waits for any event (give one with event = \"NAME\")",
            )
        } else {
            write!(f, "; the requests wait for: {}", self.known.join(", "))
        }
    }
}

impl std::error::Error for NoListener {}

/// Knows which buses wait for which event and hands events to them. Its
/// clones share their routes.
#[derive(Debug, Clone, Default)]
pub struct EventRouter(Arc<RwLock<Routes>>);

/// Which inboxes wait for which event.
#[derive(Debug, Default)]
struct Routes {
    /// The inboxes of the buses that wait for each name.
    listeners: HashMap<String, Vec<Arc<Inbox>>>,
    /// Every bus's inbox, by bus name.
    inboxes: HashMap<String, Arc<Inbox>>,
}

/// The `(bus, event)` pairs of `buses`: a bus listens for the events of its
/// requests that send (a listen-only bus runs nothing).
fn routes_of(buses: &[BusConfig]) -> impl Iterator<Item = (String, String)> + '_ {
    buses.iter().flat_map(|bus| {
        bus.requests
            .iter()
            .filter(|request| request.send)
            .filter_map(|request| match &request.method {
                Some(kmp_schedule::Method::Event(name)) => Some((bus.name.clone(), name.clone())),
                _ => None,
            })
    })
}

impl Routes {
    /// The routes of `pairs`, with the inboxes of `kept` for their buses.
    fn new(
        pairs: impl IntoIterator<Item = (String, String)>,
        kept: &HashMap<String, Arc<Inbox>>,
    ) -> Self {
        let mut inboxes: HashMap<String, Arc<Inbox>> = HashMap::new();
        let mut listeners: HashMap<String, Vec<Arc<Inbox>>> = HashMap::new();
        for (bus, event) in pairs {
            let inbox = Arc::clone(
                inboxes
                    .entry(bus)
                    .or_insert_with_key(|bus| kept.get(bus).cloned().unwrap_or_default()),
            );
            let buses = listeners.entry(event).or_default();
            if !buses.iter().any(|known| Arc::ptr_eq(known, &inbox)) {
                buses.push(inbox);
            }
        }
        Routes { listeners, inboxes }
    }
}

impl EventRouter {
    /// The router of `buses`: a bus listens for the events of its requests
    /// that send (a listen-only bus runs nothing).
    pub fn for_buses(buses: &[BusConfig]) -> Self {
        Self::from_routes(routes_of(buses))
    }

    /// The router for `(bus, event)` pairs.
    pub fn from_routes(routes: impl IntoIterator<Item = (String, String)>) -> Self {
        EventRouter(Arc::new(RwLock::new(Routes::new(routes, &HashMap::new()))))
    }

    /// Routes this router and its clones for `buses` from now on. A bus
    /// that was routed before keeps its inbox, so that a task that goes on
    /// running across a reload still gets its events.
    pub fn reroute(&self, buses: &[BusConfig]) {
        let mut routes = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let kept = std::mem::take(&mut routes.inboxes);
        *routes = Routes::new(routes_of(buses), &kept);
    }

    /// Queues `name` for every bus that waits for it; how many buses that is.
    ///
    /// # Errors
    /// [`NoListener`] when no bus waits for `name`.
    pub fn fire(&self, name: &str) -> Result<usize, NoListener> {
        let routes = self.0.read().unwrap_or_else(PoisonError::into_inner);
        match routes.listeners.get(name) {
            Some(inboxes) => {
                for inbox in inboxes {
                    inbox.push(name);
                }
                Ok(inboxes.len())
            }
            None => {
                let mut known: Vec<String> = routes.listeners.keys().cloned().collect();
                known.sort();
                Err(NoListener {
                    name: name.to_owned(),
                    known,
                })
            }
        }
    }

    /// The inbox of bus `bus`; an inbox that nothing fills when the bus
    /// waits for no event.
    pub fn inbox(&self, bus: &str) -> Arc<Inbox> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .inboxes
            .get(bus)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(pairs: &[(&str, &str)]) -> EventRouter {
        EventRouter::from_routes(
            pairs
                .iter()
                .map(|(bus, event)| ((*bus).to_owned(), (*event).to_owned())),
        )
    }

    #[test]
    fn events_go_to_the_buses_that_wait_for_them_in_order_and_once() {
        let router = routes(&[("heat", "go"), ("heat", "hot"), ("water", "go")]);
        assert_eq!(router.fire("hot"), Ok(1));
        assert_eq!(router.fire("go"), Ok(2));
        // Still waiting in the queue: run once with the first.
        assert_eq!(router.fire("hot"), Ok(1));
        assert_eq!(router.inbox("heat").take(), ["hot", "go"]);
        assert_eq!(router.inbox("water").take(), ["go"]);
        assert!(router.inbox("heat").take().is_empty());
        // Taken: a new event is queued again.
        assert_eq!(router.fire("hot"), Ok(1));
        assert_eq!(router.inbox("heat").take(), ["hot"]);
    }

    #[test]
    fn an_event_nobody_waits_for_is_refused_with_the_known_names() {
        let router = routes(&[("heat", "morning-read"), ("heat", "go")]);
        let refused = router.fire("nope").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "no request waits for event 'nope'; the requests wait for: go, morning-read"
        );
        let none = EventRouter::default().fire("go").unwrap_err().to_string();
        assert!(
            none.contains("no request of the configuration waits for any event"),
            "{none}"
        );
        assert!(router.inbox("heat").take().is_empty());
    }

    #[test]
    fn a_reroute_reaches_every_clone_and_keeps_the_inboxes_with_their_events() {
        let router = routes(&[("heat", "go")]);
        let clone = router.clone();
        let inbox = router.inbox("heat");
        assert_eq!(router.fire("go"), Ok(1));
        let config = crate::config::parse(
            r#"
[[bus]]
name = "heat"
tcp = "127.0.0.1:4001"
[[bus.request]]
description = "on hot"
addresses = "1"
items = ["E1"]
event = "hot"
"#,
            "kmplog.toml",
        )
        .expect("valid")
        .0;
        router.reroute(&config.buses);
        assert!(
            clone.fire("go").is_err(),
            "the old route is gone in the clone too"
        );
        assert_eq!(clone.fire("hot"), Ok(1));
        assert!(Arc::ptr_eq(&inbox, &clone.inbox("heat")));
        assert_eq!(inbox.take(), ["go", "hot"]);
    }
}
