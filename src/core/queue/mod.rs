//! Queues: one tokio task per queue owns its messages and consumers; everyone else holds a
//! [`QueueRef`] and talks to the task through its bounded inbox.
//!
//! Task topology and the one rule that keeps it deadlock-free: a queue task never awaits a
//! channel that another task drains. It sends deliveries with `try_send` (and waits for room in
//! `select!`, see `task.rs`), settles confirms through `ConfirmSink` (a mutex, never held across
//! an await), and publishes dead letters with `try_send`, falling back to a spawned send. So a
//! connection may always `await` a queue's inbox: the queue keeps draining it.

mod arguments;
mod dead_letter;
mod groups;
mod ready;
mod state;
mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use mqbridge_broker_api::{
    BoxFuture, BrokerError, Confirm, ConnectionId, ConsumeSpec, ConsumerEvent, ConsumerId,
    DeliverySink, GetOk, Message, QueueHandle, Settlement,
};
use tokio::sync::{mpsc, oneshot};

pub use arguments::{Overflow, QueueConfig, first_difference};
pub use task::{QueueSetup, spawn};

/// A durable queue's place in the store: persistent messages published to it are journaled
/// under its id, and their publishers confirmed once the journal has them on disk.
#[derive(Debug, Clone)]
pub struct QueueStore {
    pub id: u64,
    pub store: Arc<dyn crate::store::Store>,
}

/// Commands a queue task accepts. Replies go back on oneshot channels, which never block.
#[derive(Debug)]
enum Command {
    Publish(Arc<Message>, Option<Confirm>),
    Consume(ConsumeSpec, oneshot::Sender<Result<(), BrokerError>>),
    Cancel(ConsumerId, oneshot::Sender<bool>),
    Settle(ConsumerId, Vec<u64>, Settlement),
    /// Takes up to `usize` ready messages for a caller that is not a consumer (`basic.get`, an
    /// SQS receive).
    Get(ConsumerId, bool, usize, oneshot::Sender<Vec<GetOk>>),
    Purge(oneshot::Sender<u32>),
    /// A redeclaration: the queue counts as used (for `x-expires`).
    Touch,
    /// The consumers, for the management API.
    Consumers(oneshot::Sender<Vec<ConsumerInfo>>),
    /// A policy changed what the queue is configured with. The generation orders changes
    /// that may arrive out of order (see [`QueueRef::reconfigure`]).
    Reconfigure(Box<QueueConfig>, u64),
    /// Stop the queue. With a reply, only if the `queue.delete` conditions hold.
    Delete {
        if_unused: bool,
        if_empty: bool,
        reply: Option<oneshot::Sender<Result<u32, BrokerError>>>,
    },
}

/// Counts published by the task once per batch, read by anyone (declare-ok, management).
/// Relaxed atomics: a reader may see one batch's counts half-updated, never a torn number.
#[derive(Debug, Default)]
pub struct QueueCounters {
    messages: AtomicU32,
    unacknowledged: AtomicU32,
    consumers: AtomicU32,
    /// Since the queue started: messages accepted, delivered (to consumers and `get`), acked.
    published: AtomicU64,
    delivered: AtomicU64,
    acknowledged: AtomicU64,
}

/// One batch's message events, counted by the queue task in plain integers and added to the
/// shared counters once per batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MessageEvents {
    pub published: u64,
    pub delivered: u64,
    pub acknowledged: u64,
}

impl MessageEvents {
    fn is_empty(&self) -> bool {
        *self == MessageEvents::default()
    }
}

/// A vhost's message totals over all its queues, past and present; monotonic, so they make
/// Prometheus counters. Each queue task adds its batch's events here.
#[derive(Debug, Default)]
pub struct MessageTotals {
    published: AtomicU64,
    delivered: AtomicU64,
    acknowledged: AtomicU64,
}

impl MessageTotals {
    fn add(&self, events: MessageEvents) {
        self.published
            .fetch_add(events.published, Ordering::Relaxed);
        self.delivered
            .fetch_add(events.delivered, Ordering::Relaxed);
        self.acknowledged
            .fetch_add(events.acknowledged, Ordering::Relaxed);
    }

    pub fn read(&self) -> MessageEvents {
        MessageEvents {
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
        }
    }
}

/// One consumer of a queue, as the management API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The connection it belongs to.
    pub connection: ConnectionId,
    pub tag: String,
    pub ack_required: bool,
    pub exclusive: bool,
    /// 0: no limit.
    pub prefetch: u32,
    /// Deliveries it has not settled yet.
    pub unacknowledged: u32,
}

/// A queue's counters as read at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub messages_ready: u32,
    pub messages_unacknowledged: u32,
    pub consumers: u32,
    pub events: MessageEvents,
}

impl QueueCounters {
    fn store(&self, messages: usize, unacknowledged: usize, consumers: usize) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.messages.store(clamp(messages), Ordering::Relaxed);
        self.unacknowledged
            .store(clamp(unacknowledged), Ordering::Relaxed);
        self.consumers.store(clamp(consumers), Ordering::Relaxed);
    }

    fn add(&self, events: MessageEvents) {
        self.published
            .fetch_add(events.published, Ordering::Relaxed);
        self.delivered
            .fetch_add(events.delivered, Ordering::Relaxed);
        self.acknowledged
            .fetch_add(events.acknowledged, Ordering::Relaxed);
    }

    fn read(&self) -> QueueCounts {
        QueueCounts {
            messages_ready: self.messages.load(Ordering::Relaxed),
            messages_unacknowledged: self.unacknowledged.load(Ordering::Relaxed),
            consumers: self.consumers.load(Ordering::Relaxed),
            events: MessageEvents {
                published: self.published.load(Ordering::Relaxed),
                delivered: self.delivered.load(Ordering::Relaxed),
                acknowledged: self.acknowledged.load(Ordering::Relaxed),
            },
        }
    }
}

/// A handle to a queue task. Cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct QueueRef {
    name: String,
    /// Distinguishes this queue from a later one with the same name.
    pub id: u64,
    inbox: mpsc::Sender<Command>,
    counters: Arc<QueueCounters>,
}

impl QueueRef {
    /// Publishes without waiting: used by queue tasks for dead letters, which must not block
    /// on another queue. If the inbox is full the send moves to its own task.
    pub fn publish_detached(&self, message: Arc<Message>) {
        if let Err(mpsc::error::TrySendError::Full(command)) =
            self.inbox.try_send(Command::Publish(message, None))
        {
            let inbox = self.inbox.clone();
            tokio::spawn(async move { inbox.send(command).await });
        }
    }

    /// The queue's counters as its task last published them.
    pub fn counts(&self) -> QueueCounts {
        self.counters.read()
    }

    /// The queue's consumers now; none if the queue is gone.
    pub async fn consumers(&self) -> Vec<ConsumerInfo> {
        let (reply, answer) = oneshot::channel();
        self.call(Command::Consumers(reply), answer)
            .await
            .unwrap_or_default()
    }

    /// Tells the queue it was redeclared.
    pub fn touch(&self) {
        // Losing a touch to a full inbox only shortens an `x-expires` lease by one use.
        let _ = self.inbox.try_send(Command::Touch);
    }

    /// Gives the queue a new configuration, without waiting: called under the vhost's lock.
    /// If the inbox is full the send moves to its own task, so a later change may overtake
    /// it; the queue applies a change only if its generation is newer than the last one.
    pub fn reconfigure(&self, config: QueueConfig, generation: u64) {
        let command = Command::Reconfigure(Box::new(config), generation);
        if let Err(mpsc::error::TrySendError::Full(command)) = self.inbox.try_send(command) {
            let inbox = self.inbox.clone();
            tokio::spawn(async move { inbox.send(command).await });
        }
    }

    /// Stops the queue if the conditions hold; the caller then removes its definition.
    pub async fn delete(&self, if_unused: bool, if_empty: bool) -> Result<u32, BrokerError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Delete {
            if_unused,
            if_empty,
            reply: Some(reply),
        };
        self.call(command, answer).await?
    }

    /// Stops the queue unconditionally (its owner connection closed).
    pub fn stop(&self) {
        let command = Command::Delete {
            if_unused: false,
            if_empty: false,
            reply: None,
        };
        if let Err(mpsc::error::TrySendError::Full(command)) = self.inbox.try_send(command) {
            let inbox = self.inbox.clone();
            tokio::spawn(async move { inbox.send(command).await });
        }
    }

    async fn call<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, BrokerError> {
        let gone = || BrokerError::NotFound(format!("queue '{}' was deleted", self.name));
        self.inbox.send(command).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }
}

impl QueueHandle for QueueRef {
    fn name(&self) -> &str {
        &self.name
    }

    fn publish(&self, message: Arc<Message>, confirm: Option<Confirm>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(mpsc::error::SendError(Command::Publish(_, Some(confirm)))) =
                self.inbox.send(Command::Publish(message, confirm)).await
            {
                // Deleted after routing: the message was routed, so it counts as accepted.
                confirm.settle(true);
            }
        })
    }

    fn consume(&self, spec: ConsumeSpec) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.call(Command::Consume(spec, reply), answer).await?
        })
    }

    fn cancel(&self, consumer: ConsumerId) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.call(Command::Cancel(consumer, reply), answer)
                .await
                .unwrap_or(false)
        })
    }

    fn settle(
        &self,
        owner: ConsumerId,
        tags: Vec<u64>,
        settlement: Settlement,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A deleted queue has nothing left to settle.
            let _ = self
                .inbox
                .send(Command::Settle(owner, tags, settlement))
                .await;
        })
    }

    fn get(
        &self,
        owner: ConsumerId,
        no_ack: bool,
    ) -> BoxFuture<'_, Result<Option<GetOk>, BrokerError>> {
        Box::pin(async move {
            let taken = self.get_many(owner, no_ack, 1).await?;
            Ok(taken.into_iter().next())
        })
    }

    fn get_many(
        &self,
        owner: ConsumerId,
        no_ack: bool,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<GetOk>, BrokerError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.call(Command::Get(owner, no_ack, max, reply), answer)
                .await
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<u32, BrokerError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.call(Command::Purge(reply), answer).await
        })
    }

    fn message_count(&self) -> u32 {
        self.counters.messages.load(Ordering::Relaxed)
    }

    fn consumer_count(&self) -> u32 {
        self.counters.consumers.load(Ordering::Relaxed)
    }
}

/// Tells consumers of a deleted queue they are cancelled, without blocking the caller.
fn notify_cancelled(consumers: Vec<(ConsumerId, DeliverySink)>) {
    for (consumer, sink) in consumers {
        if let Err(mpsc::error::TrySendError::Full(event)) =
            sink.try_send(ConsumerEvent::Cancelled(consumer))
        {
            tokio::spawn(async move { sink.send(event).await });
        }
    }
}
