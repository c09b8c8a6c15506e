//! What a protocol adapter may ask of the broker, and nothing about how the broker does it.
//!
//! Layout:
//! - [`message`]: the one internal [`Message`] every protocol converts to and from at its edge.
//! - [`broker`]: [`Broker`], the entry point (authentication, virtual hosts, flow alarms).
//! - [`vhost`]: [`VirtualHost`], the AMQP-shaped model of exchanges, queues and bindings.
//! - [`queue`]: [`QueueHandle`], the hot path: publish, consume, settle.
//! - [`confirm`]: [`ConfirmSink`], how queues tell a publisher its message was accepted.
//! - [`error`]: [`BrokerError`], which knows no wire protocol; adapters map it to theirs.
//! - [`text`] and [`reply`]: the parts of the cross-protocol mapping every adapter shares: the
//!   text form of typed values and properties, and reply addresses.
//!
//! This crate does no I/O. The core in the `mqbridge` crate implements the traits; adapters in
//! `protocols/*` depend on this crate only, never on the core or on each other.
//!
//! Invariants callers rely on:
//! - A queue never awaits a channel owned by a connection: deliveries and confirms reach the
//!   connection without blocking the queue, so a connection may always await a queue.
//! - Every [`Delivery`] that needs an acknowledgement stays owned by its queue until it is settled
//!   or its consumer is cancelled; a cancelled consumer's unsettled deliveries are requeued.

pub mod broker;
pub mod confirm;
pub mod error;
pub mod message;
pub mod queue;
pub mod reply;
pub mod text;
pub mod vhost;

pub use broker::{
    Broker, Closed, ConnectionId, ConnectionReport, MessageCounts, Origin, User, close_requested,
};
pub use confirm::{Confirm, ConfirmSink};
pub use error::BrokerError;
pub use message::{
    BODY_COPY_MAX, BodyMd5, HeaderValue, Headers, MESSAGE_GROUP_HEADER, MESSAGE_OVERHEAD_BYTES,
    Message, Properties, own_body,
};
pub use queue::{
    ConsumeSpec, ConsumerEvent, ConsumerId, Delivery, DeliverySink, GetOk, QueueHandle, Settlement,
};
pub use reply::ReplyAddress;
pub use vhost::{
    BindingSpec, Destination, ExchangeKind, ExchangeSpec, Permission, QueueDeclared, QueueSpec,
    VirtualHost,
};

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that the contract's traits stay object-safe (`Arc<dyn VirtualHost>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
