//! The embedded store: what must survive a restart or a `kill -9`, behind the [`Store`] trait.
//!
//! The one implementation, [`Journal`], is an append-only segmented log in the data directory
//! (docs/STORAGE.md has the format and the recovery algorithm): durable definitions,
//! persistent messages on durable queues and their removal, first deliveries (for the
//! redelivered flag), and retained MQTT messages. One writer thread appends whatever has
//! accumulated while it was busy and makes it durable with one `fdatasync` (group commit), then
//! tells every waiting publisher at once. Queues never wait for it: they hand it records and
//! carry on; only the publisher's acknowledgement waits.

mod codec;
mod journal;
mod ledger;
mod recovery;

use std::sync::Arc;

use bytes::Bytes;
use mqbridge_broker_api::{BindingSpec, Confirm, ExchangeSpec, Message, QueueSpec};
use tokio::sync::oneshot;

pub use journal::{FsyncPolicy, Journal, JournalOptions, JournalStats};
pub use recovery::{Recovered, RecoveredQueue, StoreError};

/// One change to what the broker keeps. Queues and messages are named by store ids, which
/// stay the same across restarts.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    DeclareExchange {
        vhost: String,
        spec: ExchangeSpec,
    },
    DeleteExchange {
        vhost: String,
        name: String,
    },
    DeclareQueue {
        vhost: String,
        id: u64,
        spec: QueueSpec,
    },
    DeleteQueue {
        id: u64,
    },
    Bind {
        vhost: String,
        spec: BindingSpec,
    },
    Unbind {
        vhost: String,
        spec: BindingSpec,
    },
    /// A persistent message entered a durable queue. `delivered`: it was delivered before (a
    /// copy moved by compaction).
    Enqueue {
        queue: u64,
        id: u64,
        delivered: bool,
        message: Arc<Message>,
    },
    /// The message left its queue: acknowledged, dropped, expired, dead-lettered or purged.
    Remove {
        queue: u64,
        id: u64,
    },
    /// The message was delivered for the first time; after a restart it is redelivered.
    Delivered {
        queue: u64,
        id: u64,
    },
    /// Starts a segment's copy of every definition; definitions before it are superseded.
    Snapshot,
    /// Starts one write of the writer: `len` octets of records follow. Replay uses it to tell a
    /// write torn by a crash (the last one, never acknowledged) from corruption.
    Batch {
        len: u64,
    },
    /// The state an MQTT persistent session keeps between connections beyond its queue
    /// (opaque to the store: the adapter encodes it); `None` ends it.
    Session {
        vhost: String,
        client_id: String,
        state: Option<Bytes>,
    },
    /// The retained MQTT message of a topic; `None` clears it.
    Retain {
        vhost: String,
        topic: String,
        message: Option<Arc<Message>>,
    },
    /// An adapter's own data about one of its things (SQS's attributes of a queue), opaque to
    /// the store; `None` forgets it. The latest per (vhost, scope, key) counts.
    Metadata {
        vhost: String,
        scope: String,
        key: String,
        value: Option<Bytes>,
    },
}

/// Who waits for a record to be durable.
#[derive(Debug)]
pub enum Durable {
    /// A publisher confirm (AMQP confirms, and the adapters built on `ConfirmSink`).
    Confirm(Confirm),
    /// Anything else that awaits the answer.
    Notify(oneshot::Sender<bool>),
}

impl Durable {
    /// `true` once the record is on disk.
    pub fn finish(self, stored: bool) {
        match self {
            Durable::Confirm(confirm) => confirm.settle(stored),
            Durable::Notify(sender) => {
                let _ = sender.send(stored);
            }
        }
    }
}

/// What the core asks of the store.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Queues `record` for the journal; `durable` is told when it is on disk. Never blocks.
    fn append(&self, record: Record, durable: Option<Durable>);

    /// A fresh id for a durable queue or a stored message, unique across restarts.
    fn next_id(&self) -> u64;
}

/// A store that keeps nothing, for a broker (or a unit test) without a data directory.
#[derive(Debug, Default)]
pub struct Discard {
    next: std::sync::atomic::AtomicU64,
}

impl Store for Discard {
    fn append(&self, _record: Record, durable: Option<Durable>) {
        if let Some(durable) = durable {
            durable.finish(true);
        }
    }

    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests;
