//! The hot path: publishing into a queue, consuming from it, settling deliveries.
//!
//! A queue is reached through an `Arc<dyn QueueHandle>` obtained from
//! [`VirtualHost::route`](crate::VirtualHost::route) or [`VirtualHost::queue`](crate::VirtualHost::queue).
//! Consumers receive [`ConsumerEvent`]s on a [`DeliverySink`] that the adapter owns (one per
//! connection is typical). The queue never blocks on a full sink: it stops delivering to that
//! consumer until the sink has room, and keeps serving the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::{BoxFuture, BrokerError, Confirm, ConnectionId, Message};

/// Identifies a consumer (or a basic.get caller) to a queue. Unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(pub u64);

impl ConsumerId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConsumerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Where a queue sends deliveries. Bounded: its capacity is the connection's outbound window.
pub type DeliverySink = mpsc::Sender<ConsumerEvent>;

/// What a queue tells a consumer.
#[derive(Debug)]
pub enum ConsumerEvent {
    Deliver(Delivery),
    /// The queue cancelled the consumer (e.g. the queue was deleted). Its unsettled deliveries
    /// are gone with the queue.
    Cancelled(ConsumerId),
}

/// One message handed to one consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub consumer: ConsumerId,
    /// The queue's own id for this delivery, used to settle it. Not an AMQP delivery tag: the
    /// adapter numbers deliveries its own way and maps back.
    pub tag: u64,
    pub message: Arc<Message>,
    /// Whether the message was delivered before (to anyone) and not acknowledged.
    pub redelivered: bool,
    /// How many times the message was delivered before this delivery.
    pub delivery_count: u32,
}

/// A consumer's registration.
#[derive(Debug, Clone)]
pub struct ConsumeSpec {
    pub consumer: ConsumerId,
    pub connection: ConnectionId,
    /// The adapter's tag for this consumer (AMQP consumer tag); used in error texts.
    pub tag: String,
    /// Deliveries are settled on sending; nothing to acknowledge.
    pub no_ack: bool,
    pub exclusive: bool,
    /// Unsettled deliveries allowed at once; 0 means no limit.
    pub prefetch: u32,
    pub sink: DeliverySink,
}

/// What happens to a settled delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Done: the message leaves the queue.
    Ack,
    /// Back to the queue, in its original position where possible, marked redelivered.
    Requeue,
    /// Refused: dead-lettered if the queue has a dead-letter exchange, else dropped.
    Reject,
    /// Refused without saying what next (a STOMP NACK): dead-lettered if the queue has a
    /// dead-letter exchange, else back to the queue like [`Settlement::Requeue`]. Only the queue
    /// knows its dead-letter exchange, so only the queue can choose.
    DeadLetterOrRequeue,
}

/// The answer to a basic.get.
#[derive(Debug)]
pub struct GetOk {
    pub delivery: Delivery,
    /// Messages left in the queue after this one.
    pub message_count: u32,
}

/// One queue. Implemented by the core; every method is safe to call from any task.
pub trait QueueHandle: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// Enqueues a message. Waits while the queue's inbox is full (backpressure); never fails:
    /// if the queue went away meanwhile the message is dropped, as if routed before the delete,
    /// and the confirm (if any) says accepted.
    fn publish(&self, message: Arc<Message>, confirm: Option<Confirm>) -> BoxFuture<'_, ()>;

    /// Registers a consumer. Fails if the queue has an exclusive consumer or the request is for
    /// exclusive use while others consume (`AccessRefused`), or the queue is gone (`NotFound`).
    fn consume(&self, spec: ConsumeSpec) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Removes a consumer. Its unsettled deliveries stay its own, so that they can still be
    /// acknowledged (AMQP allows an ack after basic.cancel); the adapter settles or requeues
    /// them, including those still in its sink. Returns whether the consumer existed.
    fn cancel(&self, consumer: ConsumerId) -> BoxFuture<'_, bool>;

    /// Settles deliveries made to `owner` (a consumer, or a basic.get caller).
    fn settle(
        &self,
        owner: ConsumerId,
        tags: Vec<u64>,
        settlement: Settlement,
    ) -> BoxFuture<'_, ()>;

    /// Takes one message, if any. With `no_ack` the message is settled at once; otherwise it is
    /// owned by `owner` until settled.
    fn get(
        &self,
        owner: ConsumerId,
        no_ack: bool,
    ) -> BoxFuture<'_, Result<Option<GetOk>, BrokerError>>;

    /// Takes up to `max` messages as [`get`](Self::get) takes one, in one request to the
    /// queue (an SQS receive takes up to ten).
    fn get_many(
        &self,
        owner: ConsumerId,
        no_ack: bool,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<GetOk>, BrokerError>>;

    /// Drops every ready message (not those delivered and unsettled); returns how many.
    fn purge(&self) -> BoxFuture<'_, Result<u32, BrokerError>>;

    /// Ready messages right now (approximate while publishes are in flight).
    fn message_count(&self) -> u32;

    /// Consumers right now.
    fn consumer_count(&self) -> u32;
}
