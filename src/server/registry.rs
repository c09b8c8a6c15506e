//! The connections the broker has accepted, of every protocol, for the management API and the
//! metrics. An accepted socket registers before its adapter runs and unregisters when the
//! adapter lets go of the broker handle it was given (see below), so the list is exactly the
//! sockets being served.
//!
//! Each connection's adapter is handed the broker wrapped in [`Reporting`], which records the
//! user and vhost it opens in the connection's [`ConnectionReport`]; the adapter adds its
//! client id, channels and message counts there. That handle owns the connection's
//! [`Registration`] and its permit under the connection cap: a connection is listed and
//! counted for as long as its adapter holds it, which is not always as long as a task (an
//! idle MQTT connection waits in the parking lot without one). When a connection goes, its message counts
//! are added to its protocol's totals, so the totals cover closed connections too.
//!
//! It also holds the per-address connection cap (`max_connections_per_address`): the open
//! connections are counted by peer IP, and [`ConnectionRegistry::register`] refuses one over
//! the cap before anything is allocated for it. And it counts what the connection guards did:
//! slow consumers disconnected by the send timeout, connections refused by the cap.
//!
//! Concurrency: one `std::sync::Mutex`, taken once at accept, once at close and once per
//! listing; never held across an `.await`, and a leaf (nothing else is locked under it). The
//! guards' counters are atomics outside it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use mqbridge_broker_api::{
    Broker, BrokerError, ConnectionReport, MessageCounts, Origin, User, VirtualHost,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// One open connection as listed: what its listener saw and its adapter reported.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub report: Arc<ConnectionReport>,
}

impl ConnectionInfo {
    pub fn origin(&self) -> &Origin {
        &self.report.origin
    }

    /// Its name in the management API, RabbitMQ's form: `peer -> local`.
    pub fn name(&self) -> String {
        format!("{} -> {}", self.origin().peer, self.origin().local)
    }

    /// The protocol in RabbitMQ's words (`AMQP 0-9-1`, `MQTT`, `STOMP`, ...).
    pub fn protocol(&self) -> &'static str {
        protocol_of(self.origin().listener)
    }

    /// Whether the listener is a TLS one.
    pub fn tls(&self) -> bool {
        matches!(self.origin().listener, "amqps" | "mqtts" | "stomps" | "wss")
    }
}

/// The protocol a listener serves, in RabbitMQ's words where RabbitMQ has them.
pub fn protocol_of(listener: &str) -> &'static str {
    match listener {
        "amqp" | "amqps" => "AMQP 0-9-1",
        "mqtt" | "mqtts" => "MQTT",
        "stomp" | "stomps" => "STOMP",
        "ws" | "wss" => "Web MQTT/STOMP",
        "sqs" => "SQS/SNS",
        _ => "unknown",
    }
}

#[derive(Debug)]
pub struct ConnectionRegistry {
    /// The broker-wide connection cap (`max_connections`): an acceptor takes a permit before
    /// it accepts, and a connection gives it back when its adapter lets go of its handle.
    slots: Arc<Semaphore>,
    /// Keys of `connections`, unique for the life of the process.
    next_id: AtomicU64,
    connections: Mutex<Connections>,
    slow_consumer_disconnects: AtomicU64,
    refused_per_address: AtomicU64,
}

#[derive(Debug, Default)]
struct Connections {
    /// Each open connection's report, which holds its origin. A hash map of pointers: every
    /// connection, idle ones included, has an entry, and a B-tree filled in key order keeps
    /// its nodes half empty.
    open: HashMap<u64, Arc<ConnectionReport>>,
    /// How many of `open` each peer address has; addresses with none are removed.
    per_address: HashMap<IpAddr, usize>,
    /// Messages counted by closed connections, by protocol.
    closed: BTreeMap<&'static str, MessageCounts>,
    /// The user and vhost names the open connections' reports hold, one copy of each.
    names: HashSet<Arc<str>>,
}

impl Default for ConnectionRegistry {
    fn default() -> Self {
        ConnectionRegistry::new(Semaphore::MAX_PERMITS)
    }
}

impl ConnectionRegistry {
    /// A registry for at most `max_connections` open connections.
    pub fn new(max_connections: usize) -> Self {
        ConnectionRegistry {
            slots: Arc::new(Semaphore::new(max_connections)),
            next_id: AtomicU64::default(),
            connections: Mutex::default(),
            slow_consumer_disconnects: AtomicU64::default(),
            refused_per_address: AtomicU64::default(),
        }
    }

    /// The permits of the connection cap, one per open connection.
    pub fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// Records an accepted connection until the returned registration is dropped, unless its
    /// peer address already has `per_address_max` open (0: no cap); a refusal is counted and
    /// allocates nothing.
    pub fn register(
        self: &Arc<Self>,
        listener: &'static str,
        peer: SocketAddr,
        local: SocketAddr,
        per_address_max: usize,
    ) -> Option<Registration> {
        let mut connections = self.lock();
        let from_address = connections.per_address.get(&peer.ip()).copied();
        if per_address_max > 0 && from_address.unwrap_or(0) >= per_address_max {
            drop(connections);
            self.refused_per_address.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *connections.per_address.entry(peer.ip()).or_default() += 1;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let report = Arc::new(ConnectionReport::new(Origin {
            listener,
            peer,
            local,
            connected_at: SystemTime::now(),
        }));
        connections.open.insert(id, report);
        Some(Registration {
            registry: Arc::clone(self),
            id,
        })
    }

    /// Counts a connection closed because its client stopped reading (the send timeout).
    pub fn slow_consumer_disconnected(&self) {
        self.slow_consumer_disconnects
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed because their client stopped reading, since the broker started.
    pub fn slow_consumer_disconnects(&self) -> u64 {
        self.slow_consumer_disconnects.load(Ordering::Relaxed)
    }

    /// Connections refused by `max_connections_per_address`, since the broker started.
    pub fn refused_per_address(&self) -> u64 {
        self.refused_per_address.load(Ordering::Relaxed)
    }

    /// Every connection, oldest first.
    pub fn list(&self) -> Vec<ConnectionInfo> {
        let mut open: Vec<(u64, Arc<ConnectionReport>)> = {
            let connections = self.lock();
            let open = connections.open.iter();
            open.map(|(id, report)| (*id, Arc::clone(report))).collect()
        };
        open.sort_unstable_by_key(|(id, _)| *id);
        let listed = open.into_iter();
        listed
            .map(|(_, report)| ConnectionInfo { report })
            .collect()
    }

    /// Messages published, delivered and acknowledged over each protocol since the broker
    /// started, open and closed connections together, by protocol name (`AMQP 0-9-1`, ...).
    pub fn message_totals(&self) -> BTreeMap<&'static str, MessageCounts> {
        let connections = self.lock();
        let mut totals = connections.closed.clone();
        for report in connections.open.values() {
            *totals
                .entry(protocol_of(report.origin.listener))
                .or_default() += report.messages();
        }
        totals
    }

    /// Asks every open connection that `matches` to close, with `reason`; how many did.
    pub fn close_where(&self, reason: &str, matches: impl Fn(&ConnectionInfo) -> bool) -> usize {
        let chosen = self.list().into_iter().filter(|info| matches(info));
        chosen.map(|info| info.report.close(reason)).count()
    }

    /// `name`, shared with every report that holds it.
    fn intern(&self, name: &str) -> Arc<str> {
        let mut connections = self.lock();
        if let Some(name) = connections.names.get(name) {
            return Arc::clone(name);
        }
        let names = &mut connections.names;
        if names.len() == names.capacity() {
            // Before the set would grow: names no report holds any more go, at a cost spread
            // over the insertions that filled it.
            names.retain(|name| Arc::strong_count(name) > 1);
        }
        let name: Arc<str> = Arc::from(name);
        names.insert(Arc::clone(&name));
        name
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        // A map of plain records: a panic elsewhere cannot leave it half-updated.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by a connection's task; unregisters the connection when dropped.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<ConnectionRegistry>,
    id: u64,
}

impl Registration {
    /// The connection's report, which the registry keeps (the registration does not hold it
    /// too: an idle connection's handle is 16 bytes smaller).
    pub fn report(&self) -> Option<Arc<ConnectionReport>> {
        self.registry.lock().open.get(&self.id).cloned()
    }

    /// `broker` as this connection's adapter is to see it: reporting what it opens, and
    /// keeping this registration and the connection's `permit` (one of [`slots`]) until the
    /// adapter drops it.
    ///
    /// [`slots`]: ConnectionRegistry::slots
    pub fn into_reporting(
        self,
        broker: Arc<dyn Broker>,
        permit: OwnedSemaphorePermit,
    ) -> Arc<dyn Broker> {
        // Given back by `Reporting`'s drop through the registry's semaphore: the handle of
        // every connection, idle ones included, is then 16 bytes smaller.
        permit.forget();
        Arc::new(Reporting {
            broker,
            registration: self,
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut connections = self.registry.lock();
        if let Some(report) = connections.open.remove(&self.id) {
            let protocol = protocol_of(report.origin.listener);
            *connections.closed.entry(protocol).or_default() += report.messages();
            let address = report.origin.peer.ip();
            if let Some(count) = connections.per_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    connections.per_address.remove(&address);
                }
            }
        }
    }
}

/// The broker as one connection sees it: the same, plus its report.
struct Reporting {
    broker: Arc<dyn Broker>,
    registration: Registration,
}

impl Drop for Reporting {
    fn drop(&mut self) {
        self.registration.registry.slots.add_permits(1);
    }
}

impl Broker for Reporting {
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        self.broker.authenticate(username, password, peer)
    }

    fn vhost(&self, name: &str, user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
        let vhost = self.broker.vhost(name, user)?;
        if let Some(report) = self.registration.report() {
            let registry = &self.registration.registry;
            report.opened(registry.intern(&user.name), registry.intern(name));
        }
        Ok(vhost)
    }

    fn publish_blocked(&self) -> watch::Receiver<bool> {
        self.broker.publish_blocked()
    }

    fn product(&self) -> (&str, &str) {
        self.broker.product()
    }

    fn report(&self) -> Option<Arc<ConnectionReport>> {
        self.registration.report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_listed_until_its_registration_drops() {
        let registry = Arc::new(ConnectionRegistry::default());
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let local: SocketAddr = "127.0.0.1:5672".parse().expect("address");
        let first = registry.register("amqp", peer, local, 0).expect("no cap");
        let second = registry.register("mqtts", peer, local, 0).expect("no cap");
        let listed = registry.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].protocol(), "AMQP 0-9-1");
        assert!(listed[1].tls());
        drop(first);
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].origin().listener, "mqtts");
        drop(second);
        assert!(registry.list().is_empty());
    }

    #[test]
    fn message_totals_keep_what_closed_connections_counted() {
        let registry = Arc::new(ConnectionRegistry::default());
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let (first, second) = (
            registry.register("mqtt", peer, peer, 0).expect("no cap"),
            registry.register("mqtts", peer, peer, 0).expect("no cap"),
        );
        let first_report = first.report().expect("registered");
        let second_report = second.report().expect("registered");
        first_report.published();
        first_report.delivered();
        second_report.delivered();
        second_report.acknowledged(1);
        let expected = MessageCounts {
            published: 1,
            delivered: 2,
            acknowledged: 1,
        };
        drop(first);
        assert_eq!(registry.message_totals().get("MQTT"), Some(&expected));
        drop(second);
        assert_eq!(registry.message_totals().get("MQTT"), Some(&expected));
    }

    /// A broker that lets nobody in: the handle's own behaviour is what is tested.
    struct Closed;

    impl Broker for Closed {
        fn authenticate(&self, _: &str, _: &str, _: IpAddr) -> Result<User, BrokerError> {
            Err(BrokerError::AccessRefused("closed".into()))
        }

        fn vhost(&self, _: &str, _: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
            Err(BrokerError::AccessRefused("closed".into()))
        }

        fn publish_blocked(&self) -> watch::Receiver<bool> {
            watch::channel(false).1
        }
    }

    #[test]
    fn a_connection_holds_its_slot_and_its_entry_until_its_handle_goes() {
        let registry = Arc::new(ConnectionRegistry::new(1));
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let slot = Arc::clone(registry.slots())
            .try_acquire_owned()
            .expect("one slot");
        let registration = registry.register("mqtt", peer, peer, 0).expect("no cap");
        let handle = registration.into_reporting(Arc::new(Closed), slot);
        let report = handle.report().expect("a handle reports");
        assert_eq!(report.origin.listener, "mqtt");
        assert_eq!(registry.slots().available_permits(), 0);
        assert_eq!(registry.list().len(), 1);
        drop(handle);
        assert_eq!(registry.slots().available_permits(), 1);
        assert!(registry.list().is_empty());
    }

    #[test]
    fn an_address_over_its_cap_is_refused_until_one_of_its_connections_goes() {
        let registry = Arc::new(ConnectionRegistry::default());
        let peer: SocketAddr = "192.0.2.1:40000".parse().expect("address");
        let other: SocketAddr = "192.0.2.2:40000".parse().expect("address");
        let first = registry
            .register("amqp", peer, peer, 2)
            .expect("under the cap");
        let _second = registry
            .register("stomp", peer, peer, 2)
            .expect("at the cap");
        assert!(registry.register("mqtt", peer, peer, 2).is_none());
        assert!(
            registry.register("mqtt", other, peer, 2).is_some(),
            "per address"
        );
        assert_eq!(registry.refused_per_address(), 1);
        drop(first);
        assert!(registry.register("mqtt", peer, peer, 2).is_some());
    }
}
