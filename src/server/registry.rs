//! The connections the broker has accepted, of every protocol, for the management API and the
//! metrics. An accepted socket registers before its adapter runs and unregisters when the
//! adapter's task ends (the [`Registration`] is dropped with it), so the list is exactly the
//! sockets being served.
//!
//! Concurrency: one `std::sync::Mutex`, taken once at accept, once at close and once per
//! listing; never held across an `.await`, and a leaf (nothing else is locked under it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// One accepted connection, as the listener saw it. The adapter's own view (user, vhost,
/// client id, channels) is not here yet.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The listener's name: `amqp`, `mqtt`, `stomp`, `ws`, `sqs`, or a TLS twin (`amqps`, ...).
    pub listener: &'static str,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub connected_at: SystemTime,
}

impl ConnectionInfo {
    /// The protocol in RabbitMQ's words (`AMQP 0-9-1`, `MQTT`, `STOMP`, ...).
    pub fn protocol(&self) -> &'static str {
        protocol_of(self.listener)
    }

    /// Whether the listener is a TLS one.
    pub fn tls(&self) -> bool {
        matches!(self.listener, "amqps" | "mqtts" | "stomps" | "wss")
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

#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    /// Keys of `connections`, unique for the life of the process.
    next_id: AtomicU64,
    connections: Mutex<BTreeMap<u64, ConnectionInfo>>,
}

impl ConnectionRegistry {
    /// Records an accepted connection until the returned registration is dropped.
    pub fn register(
        self: &Arc<Self>,
        listener: &'static str,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = ConnectionInfo {
            listener,
            peer,
            local,
            connected_at: SystemTime::now(),
        };
        self.lock().insert(id, info);
        Registration {
            registry: Arc::clone(self),
            id,
        }
    }

    /// Every connection, oldest first.
    pub fn list(&self) -> Vec<ConnectionInfo> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, ConnectionInfo>> {
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

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
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
        let first = registry.register("amqp", peer, local);
        let second = registry.register("mqtts", peer, local);
        let listed = registry.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].protocol(), "AMQP 0-9-1");
        assert!(listed[1].tls());
        drop(first);
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].listener, "mqtts");
        drop(second);
        assert!(registry.list().is_empty());
    }
}
