//! The broker as a whole: who may connect, which virtual hosts exist, whether publishers must
//! pause.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

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
/// Written by the connection's task, read at any time by others: counted with relaxed atomics
/// (a reader may see a count one message behind); what changes rarely or never (names, the
/// channel list, a close request) is behind one mutex, off the message path.
///
/// Every open connection has one, idle ones included, so it is kept small (240 bytes).
#[derive(Debug)]
pub struct ConnectionReport {
    pub origin: Origin,
    /// The id the adapter gave the connection, which its consumers carry; 0 until then.
    connection: AtomicU64,
    rare: Mutex<Rare>,
    published: AtomicU64,
    delivered: AtomicU64,
    acknowledged: AtomicU64,
    /// The connection waits without a task of its own (an idle MQTT connection in the
    /// parking lot).
    parked: AtomicBool,
}

/// [`ConnectionReport::closed`]. Dropped, it takes its task's waker back out of the report:
/// a waker keeps its whole task's memory, and the task may end while the connection lives on
/// (an MQTT connection in the parking lot).
#[derive(Debug)]
pub struct Closed<'a> {
    report: &'a ConnectionReport,
}

impl Future for Closed<'_> {
    type Output = String;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<String> {
        let mut rare = self.report.rare();
        if let Some(reason) = &rare.close_reason {
            return Poll::Ready(reason.to_string());
        }
        let waker = context.waker();
        if !rare
            .close_waiter
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
        {
            rare.close_waiter = Some(waker.clone());
        }
        Poll::Pending
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.report.rare().close_waiter = None;
    }
}

/// What a report says that changes rarely or never.
#[derive(Debug, Default)]
struct Rare {
    /// Shared: every connection of a user on a vhost names the same two.
    user: Option<Arc<str>>,
    vhost: Option<Arc<str>>,
    /// Shared with the adapter, which keeps it too (an MQTT client id).
    client_id: Option<Arc<str>>,
    /// The numbers of the connection's open channels (AMQP), in order.
    channels: Box<[u16]>,
    /// Set by an operator's close (or the user's deletion); the adapter closes the connection
    /// with the protocol's own words for it.
    close_reason: Option<Box<str>>,
    /// The task waiting in [`ConnectionReport::closed`]: the adapter's, one per connection.
    close_waiter: Option<Waker>,
}

impl ConnectionReport {
    /// The report of a connection just accepted, with nothing reported yet.
    pub fn new(origin: Origin) -> Self {
        ConnectionReport {
            origin,
            connection: AtomicU64::new(0),
            rare: Mutex::default(),
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            parked: AtomicBool::new(false),
        }
    }

    fn rare(&self) -> MutexGuard<'_, Rare> {
        // Plain values, each set whole: a panic elsewhere cannot leave them half-written.
        self.rare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the connection to close, saying why (RabbitMQ's "Closed via management plugin").
    /// The first reason given is kept.
    pub fn close(&self, reason: &str) {
        let waiter = {
            let mut rare = self.rare();
            rare.close_reason.get_or_insert_with(|| reason.into());
            rare.close_waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Completes once [`close`](Self::close) was called (before or after this), with its
    /// reason. One task at a time waits: the adapter's.
    pub fn closed(&self) -> Closed<'_> {
        Closed { report: self }
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
        self.rare().close_reason.is_some()
    }

    /// The connection opened `vhost` as `user`; only the first vhost opened is kept.
    pub fn opened(&self, user: Arc<str>, vhost: Arc<str>) {
        let mut rare = self.rare();
        if rare.user.is_none() {
            rare.user = Some(user);
            rare.vhost = Some(vhost);
        }
    }

    /// The adapter's id for the connection (see [`ConsumeSpec::connection`](crate::ConsumeSpec)).
    pub fn set_connection(&self, id: ConnectionId) {
        self.connection.store(id.0, Ordering::Relaxed);
    }

    pub fn connection(&self) -> Option<ConnectionId> {
        // Ids count from 1 (`ConnectionId::next`).
        let id = self.connection.load(Ordering::Relaxed);
        (id != 0).then_some(ConnectionId(id))
    }

    /// The client's own name for itself: an MQTT client id, an AMQP `connection_name`. Only
    /// the first is kept.
    pub fn set_client_id(&self, client_id: impl Into<Arc<str>>) {
        self.rare()
            .client_id
            .get_or_insert_with(|| client_id.into());
    }

    /// The connection's open channels are now `numbers`.
    pub fn set_channels(&self, numbers: impl IntoIterator<Item = u16>) {
        let mut numbers: Box<[u16]> = numbers.into_iter().collect();
        numbers.sort_unstable();
        self.rare().channels = numbers;
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

    pub fn user(&self) -> Option<String> {
        self.rare().user.as_deref().map(str::to_owned)
    }

    pub fn vhost(&self) -> Option<String> {
        self.rare().vhost.as_deref().map(str::to_owned)
    }

    pub fn client_id(&self) -> Option<Arc<str>> {
        self.rare().client_id.clone()
    }

    /// The numbers of the open channels, in order.
    pub fn channels(&self) -> Vec<u16> {
        self.rare().channels.to_vec()
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
        Some(report) => report.closed().await,
        None => std::future::pending().await,
    }
}
