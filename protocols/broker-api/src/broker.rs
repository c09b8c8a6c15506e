//! The broker as a whole: who may connect, which virtual hosts exist, whether publishers must
//! pause.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::{BrokerError, VirtualHost};

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
}

/// Identifies one client connection, of any protocol. Exclusive queues belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl ConnectionId {
    /// A fresh id, unique for the life of the process.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The entry point an adapter is given. Implemented by the core.
pub trait Broker: Send + Sync + 'static {
    /// Checks a username and password for a client at `peer`.
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError>;

    /// Opens a virtual host for `user`: `NotFound` if it does not exist, `NotAllowed` if the user
    /// has no access to it.
    fn vhost(&self, name: &str, user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError>;

    /// `true` while publishers must pause (memory or disk alarm). Consumers keep draining.
    fn publish_blocked(&self) -> watch::Receiver<bool>;

    /// Product name and version for handshakes (e.g. AMQP server-properties).
    fn product(&self) -> (&str, &str) {
        ("mqbridge", env!("CARGO_PKG_VERSION"))
    }
}
