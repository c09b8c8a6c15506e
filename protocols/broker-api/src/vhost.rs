//! A virtual host: exchanges, queues and the bindings between them, in AMQP 0-9-1's model.
//! Every protocol's destinations map onto it (ARCHITECTURE.md, "One destination, every
//! protocol").
//!
//! Definitions (declare, bind, delete) are synchronous and cheap; [`VirtualHost::route`] runs on
//! the publishing connection's task against a read-mostly table.

use std::fmt;
use std::sync::Arc;

use crate::{BoxFuture, BrokerError, Confirm, ConnectionId, Headers, Message, QueueHandle};

/// How an exchange matches routing keys against bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// The binding key equals the routing key.
    Direct,
    /// Every binding matches.
    Fanout,
    /// Dot-separated words; `*` matches one word, `#` zero or more.
    Topic,
    /// Binding arguments match message headers (`x-match` all / any).
    Headers,
}

impl ExchangeKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exchange declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    /// Deleted when its last binding (as a source) is removed.
    pub auto_delete: bool,
    /// Only other exchanges may publish to it.
    pub internal: bool,
    /// `alternate-exchange` and other extensions.
    pub arguments: Headers,
}

/// A queue declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Empty asks the broker to choose a name (`amq.gen-...`).
    pub name: String,
    pub durable: bool,
    /// Owned by the declaring connection: others get `Locked`, and it goes when that closes.
    pub exclusive: bool,
    /// Deleted when its last consumer is cancelled.
    pub auto_delete: bool,
    /// `x-message-ttl`, `x-expires`, `x-max-length`, `x-dead-letter-exchange` and the rest.
    pub arguments: Headers,
}

/// The answer to a queue declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDeclared {
    pub name: String,
    pub message_count: u32,
    pub consumer_count: u32,
}

/// What a binding points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    Queue(String),
    Exchange(String),
}

/// A binding from an exchange to a queue or exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingSpec {
    pub source: String,
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: Headers,
}

/// The kinds of access a user's permissions grant, RabbitMQ's three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create, change and delete the object.
    Configure,
    /// Put messages into it (publish, bind to it as a destination).
    Write,
    /// Take messages from it (consume, get, purge; bind from it as a source).
    Read,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Configure => "configure",
            Permission::Write => "write",
            Permission::Read => "read",
        }
    }
}

/// One virtual host. Implemented by the core. `connection` arguments identify the caller so that
/// exclusive queues can be checked and cleaned up.
pub trait VirtualHost: Send + Sync {
    fn name(&self) -> &str;

    /// Declares (or with `passive`, only checks) an exchange. Redeclaring with other settings is
    /// `PreconditionFailed`; new names starting `amq.` are `AccessRefused`.
    fn declare_exchange(&self, spec: ExchangeSpec, passive: bool) -> Result<(), BrokerError>;

    /// Whether the user who opened this vhost has `permission` on `object`: `AccessRefused`
    /// if not. The other methods check for themselves; this is for adapters whose operations
    /// have no counterpart here (an SQS SendMessage names its queue, not an exchange).
    fn authorize(&self, permission: Permission, object: &Destination) -> Result<(), BrokerError> {
        let _ = (permission, object);
        Ok(())
    }

    fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), BrokerError>;

    /// Declares (or with `passive`, only checks) a queue.
    fn declare_queue(
        &self,
        spec: QueueSpec,
        passive: bool,
        connection: ConnectionId,
    ) -> Result<QueueDeclared, BrokerError>;

    /// Deletes a queue, cancelling its consumers; returns how many messages it held.
    fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection: ConnectionId,
    ) -> BoxFuture<'_, Result<u32, BrokerError>>;

    fn bind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError>;

    fn unbind(&self, binding: BindingSpec, connection: ConnectionId) -> Result<(), BrokerError>;

    /// Appends to `out` every queue a message published to `exchange` with `routing_key` and
    /// `headers` reaches, each once, following exchange-to-exchange bindings and alternate
    /// exchanges. `NotFound` if the exchange does not exist; `AccessRefused` if it is internal.
    fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: &Headers,
        out: &mut Vec<Arc<dyn QueueHandle>>,
    ) -> Result<(), BrokerError>;

    /// Every binding that points at `destination` (for example the subscriptions of an MQTT
    /// session queue, which a reconnecting client gets back).
    fn bindings_to(&self, destination: &Destination) -> Vec<BindingSpec>;

    /// Looks up a queue for consuming or getting; `Locked` if another connection owns it.
    fn queue(
        &self,
        name: &str,
        connection: ConnectionId,
    ) -> Result<Arc<dyn QueueHandle>, BrokerError>;

    /// Called once when a connection ends: its exclusive queues are deleted.
    fn connection_closed(&self, connection: ConnectionId);

    /// Keeps the retained MQTT message of `topic` (or with `None`, clears it) across restarts;
    /// `confirm` is settled once it is stored. The adapter keeps its own copy for matching.
    fn set_retained(&self, topic: &str, message: Option<Arc<Message>>, confirm: Option<Confirm>) {
        let _ = (topic, message);
        if let Some(confirm) = confirm {
            confirm.settle(true);
        }
    }

    /// The retained messages kept from before a restart, handed over once (later calls get
    /// none): the MQTT listener loads them at start.
    fn take_retained(&self) -> Vec<(String, Arc<Message>)> {
        Vec::new()
    }

    /// Keeps what an MQTT persistent session holds between connections beyond its queue (the
    /// adapter's own encoding) across restarts; `None` when the session ends or resumes.
    fn set_session_state(&self, client_id: &str, state: Option<bytes::Bytes>) {
        let _ = (client_id, state);
    }

    /// The session states kept from before a restart, handed over once.
    fn take_session_states(&self) -> Vec<(String, bytes::Bytes)> {
        Vec::new()
    }

    /// Keeps an adapter's own data about `key` (its encoding) across restarts, in the adapter's
    /// `scope` (`sqs-queue`, say); `None` forgets it. Written with the next journal sync, not
    /// waited for: like a declaration, it is as durable as what the next confirm covers.
    fn set_metadata(&self, scope: &str, key: &str, value: Option<bytes::Bytes>) {
        let _ = (scope, key, value);
    }

    /// The metadata of `scope` kept from before a restart, handed over once.
    fn take_metadata(&self, scope: &str) -> Vec<(String, bytes::Bytes)> {
        let _ = scope;
        Vec::new()
    }
}
