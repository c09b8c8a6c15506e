//! The broker as a whole: who may connect, which virtual hosts exist, whether publishers must
//! pause.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, watch};

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

    /// Where this connection reports what operators see of it, when the broker was handed to
    /// one accepted connection (see [`ConnectionReport`]); `None` otherwise. Adapters take it
    /// once, when the connection starts.
    fn report(&self) -> Option<Arc<ConnectionReport>> {
        None
    }
}

/// Where a connection came from, as the listener that accepted it saw it.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// The listener's name: `amqp`, `mqtt`, `stomp`, `ws`, `sqs`, or a TLS twin (`amqps`, ...).
    pub listener: &'static str,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub connected_at: SystemTime,
}

/// What one client connection tells operators about itself (the management API's connection
/// list, per-protocol message totals). The listener records where it came from; the broker
/// fills in the user and vhost when the connection opens one; the adapter adds its client id,
/// channels and message counts.
/// Written by the connection's task, read at any time by others: fields are set once, counted
/// with relaxed atomics (a reader may see a count one message behind) or, for the channel
/// list that changes only on channel open and close, behind a mutex.
///
/// Every open connection has one, idle ones included, so it is kept small: set-once text is
/// boxed `str`, the channel list a boxed slice.
#[derive(Debug)]
pub struct ConnectionReport {
    pub origin: Origin,
    /// The id the adapter gave the connection, which its consumers carry.
    connection: OnceLock<ConnectionId>,
    /// The user and vhost, set together.
    opened: OnceLock<(Box<str>, Box<str>)>,
    /// Shared with the adapter, which keeps it too (an MQTT client id).
    client_id: OnceLock<Arc<str>>,
    /// The numbers of the connection's open channels (AMQP), in order. Changed only when a
    /// channel opens or closes, so a mutex costs nothing on the message path.
    channels: Mutex<Box<[u16]>>,
    published: AtomicU64,
    delivered: AtomicU64,
    acknowledged: AtomicU64,
    /// The connection waits without a task of its own (an idle MQTT connection in the
    /// parking lot).
    parked: AtomicBool,
    /// Set by an operator's close (or the user's deletion); the adapter closes the connection
    /// with the protocol's own words for it.
    close_reason: OnceLock<Box<str>>,
    close: Notify,
}

impl ConnectionReport {
    /// The report of a connection just accepted, with nothing reported yet.
    pub fn new(origin: Origin) -> Self {
        ConnectionReport {
            origin,
            connection: OnceLock::new(),
            opened: OnceLock::new(),
            client_id: OnceLock::new(),
            channels: Mutex::default(),
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            close_reason: OnceLock::new(),
            close: Notify::new(),
        }
    }

    /// Asks the connection to close, saying why (RabbitMQ's "Closed via management plugin").
    pub fn close(&self, reason: &str) {
        let _ = self.close_reason.set(reason.into());
        // A stored permit: the adapter sees it even if it is not waiting at this moment.
        self.close.notify_one();
    }

    /// Completes once [`close`](Self::close) was called, with its reason.
    pub async fn closed(&self) -> &str {
        self.close.notified().await;
        self.close_reason.get().map_or("closed", |reason| reason)
    }

    /// The connection left its task to wait (`true`), or has one again.
    pub fn set_parked(&self, parked: bool) {
        self.parked.store(parked, Ordering::Relaxed);
    }

    pub fn parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed)
    }

    /// Whether [`close`](Self::close) was called, without waiting.
    pub fn close_asked(&self) -> bool {
        self.close_reason.get().is_some()
    }

    /// The connection opened `vhost` as `user`; only the first vhost opened is kept.
    pub fn opened(&self, user: &str, vhost: &str) {
        let _ = self.opened.set((user.into(), vhost.into()));
    }

    /// The adapter's id for the connection (see [`ConsumeSpec::connection`](crate::ConsumeSpec)).
    pub fn set_connection(&self, id: ConnectionId) {
        let _ = self.connection.set(id);
    }

    pub fn connection(&self) -> Option<ConnectionId> {
        self.connection.get().copied()
    }

    /// The client's own name for itself: an MQTT client id, an AMQP `connection_name`.
    pub fn set_client_id(&self, client_id: impl Into<Arc<str>>) {
        let _ = self.client_id.set(client_id.into());
    }

    /// The connection's open channels are now `numbers`.
    pub fn set_channels(&self, numbers: impl IntoIterator<Item = u16>) {
        let mut numbers: Box<[u16]> = numbers.into_iter().collect();
        numbers.sort_unstable();
        *self.channels.lock().unwrap_or_else(PoisonError::into_inner) = numbers;
    }

    /// A message the client published was accepted.
    pub fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was sent to the client.
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a request's worth of counts at once (an SQS batch).
    pub fn add(&self, counts: MessageCounts) {
        self.published
            .fetch_add(counts.published, Ordering::Relaxed);
        self.delivered
            .fetch_add(counts.delivered, Ordering::Relaxed);
        self.acknowledged
            .fetch_add(counts.acknowledged, Ordering::Relaxed);
    }

    /// The client acknowledged `count` deliveries (not counting those it took without
    /// acknowledgement, as RabbitMQ's `ack` does not).
    pub fn acknowledged(&self, count: usize) {
        self.acknowledged.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn user(&self) -> Option<&str> {
        self.opened.get().map(|(user, _)| &**user)
    }

    pub fn vhost(&self) -> Option<&str> {
        self.opened.get().map(|(_, vhost)| &**vhost)
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client_id.get().map(|id| &**id)
    }

    /// The numbers of the open channels, in order.
    pub fn channels(&self) -> Vec<u16> {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_vec()
    }

    /// Messages published, delivered and acknowledged so far.
    pub fn messages(&self) -> MessageCounts {
        MessageCounts {
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
        }
    }
}

/// Message counts of a connection, or a sum of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MessageCounts {
    pub published: u64,
    pub delivered: u64,
    pub acknowledged: u64,
}

impl std::ops::AddAssign for MessageCounts {
    fn add_assign(&mut self, other: MessageCounts) {
        self.published += other.published;
        self.delivered += other.delivered;
        self.acknowledged += other.acknowledged;
    }
}

/// [`ConnectionReport::closed`] for a connection that may have no report (one not accepted by
/// a listener): then it never completes.
pub async fn close_requested(report: Option<&ConnectionReport>) -> String {
    match report {
        Some(report) => report.closed().await.to_owned(),
        None => std::future::pending().await,
    }
}
