//! Errors of the core, by meaning. Each adapter maps a kind to its own wire error (for AMQP a
//! reply code, for MQTT a reason code, for SQS an error code); the text goes to the peer as is.

/// A request the broker refused. The message is written for the peer: it names the object and
/// the vhost, as RabbitMQ's reply texts do, and never contains internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object is owned exclusively by another connection.
    #[error("{0}")]
    Locked(String),
    /// The caller may not do this (reserved names, exclusive consumers, credentials).
    #[error("{0}")]
    AccessRefused(String),
    /// The request conflicts with the object's current state or declaration.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request is not allowed in this context (e.g. a vhost the user cannot open).
    #[error("{0}")]
    NotAllowed(String),
    /// A configured limit would be exceeded.
    #[error("{0}")]
    ResourceLimit(String),
    /// The broker is shutting down or the object went away while the request was in flight.
    #[error("{0}")]
    Unavailable(String),
}

impl BrokerError {
    /// `"queue 'q' in vhost '/'"`: the object naming RabbitMQ uses in every reply text.
    pub fn describe(kind: &str, name: &str, vhost: &str) -> String {
        format!("{kind} '{name}' in vhost '{vhost}'")
    }
}
