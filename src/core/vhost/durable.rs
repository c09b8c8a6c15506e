//! Durable definitions: what the vhost writes to the store as it changes, and how it is rebuilt
//! from the store at start-up.
//!
//! Records are appended while the definitions' write lock is held, so the journal sees changes
//! in the order they happened. Appending never blocks (the store's writer does the I/O), and the
//! store's own lock is a leaf, so the vhost lock's place in the lock order does not change.
//! Declarations are not waited for: a declare-ok does not promise durability in AMQP, and a
//! message published to the queue afterwards is journaled after its declaration.

use std::sync::Arc;

use mqbridge_broker_api::{BindingSpec, Destination, ExchangeSpec, Headers, Message, QueueSpec};

use super::{BindingEntry, Definitions, QueueEntry, VHost};
use crate::core::queue::{self, QueueConfig, QueueStore};
use crate::store::{Record, RecoveredQueue, Store};

/// The store and the name its records give this vhost.
pub struct Journaled {
    pub vhost: String,
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for Journaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journaled")
            .field("vhost", &self.vhost)
            .finish()
    }
}

impl Journaled {
    pub fn record(&self, record: Record) {
        self.store.append(record, None);
    }

    pub fn declare_exchange(&self, spec: &ExchangeSpec) {
        self.record(Record::DeclareExchange {
            vhost: self.vhost.clone(),
            spec: spec.clone(),
        });
    }

    pub fn declare_queue(&self, id: u64, spec: &QueueSpec) {
        self.record(Record::DeclareQueue {
            vhost: self.vhost.clone(),
            id,
            spec: spec.clone(),
        });
    }
}

impl Definitions {
    /// A binding survives a restart when both its ends do.
    pub(super) fn is_durable(&self, binding: &BindingSpec) -> bool {
        let durable_exchange =
            |name: &str| self.exchanges.get(name).is_some_and(|x| x.spec.durable);
        durable_exchange(&binding.source)
            && match &binding.destination {
                Destination::Queue(name) => {
                    self.queues.get(name).is_some_and(|q| q.stored.is_some())
                }
                Destination::Exchange(name) => durable_exchange(name),
            }
    }

    pub(super) fn journal_unbind(
        &self,
        source: &str,
        key: &str,
        arguments: &Headers,
        destination: &Destination,
    ) {
        let spec = BindingSpec {
            source: source.to_owned(),
            destination: destination.clone(),
            routing_key: key.to_owned(),
            arguments: arguments.clone(),
        };
        if self.is_durable(&spec) {
            self.journal.record(Record::Unbind {
                vhost: self.journal.vhost.clone(),
                spec,
            });
        }
    }
}

impl VHost {
    /// Keeps the adapters' recovered metadata until each adapter takes its scope.
    /// Policies are the vhost's own and are taken first.
    pub fn restore_metadata(&self, mut metadata: Vec<(String, String, bytes::Bytes)>) {
        self.restore_policies(&mut metadata);
        *self
            .recovered_metadata
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = metadata;
    }

    /// Rebuilds the durable definitions and messages the store recovered, without writing
    /// them again.
    pub fn restore(
        &self,
        exchanges: Vec<ExchangeSpec>,
        queues: Vec<RecoveredQueue>,
        bindings: Vec<BindingSpec>,
        retained: Vec<(String, Arc<Message>)>,
        sessions: Vec<(String, bytes::Bytes)>,
    ) {
        *self
            .recovered_retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = retained;
        *self
            .recovered_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sessions;
        let mut definitions = self.write();
        for spec in exchanges {
            if !definitions.exchanges.contains_key(&spec.name) {
                definitions.insert_exchange(spec);
            }
        }
        for recovered in queues {
            self.restore_queue(&mut definitions, recovered);
        }
        for binding in bindings {
            definitions.restore_binding(binding);
        }
    }

    fn restore_queue(&self, definitions: &mut Definitions, recovered: RecoveredQueue) {
        let spec = recovered.spec;
        let arguments = match QueueConfig::parse(&spec.arguments, &spec.name, &self.name) {
            Ok(arguments) => arguments,
            Err(error) => {
                // Arguments it was declared with are valid by construction; a newer version's
                // stricter check must not lose the queue's messages, so say so and use none.
                tracing::warn!(queue = %spec.name, %error, "stored queue arguments refused; restoring without them");
                QueueConfig::default()
            }
        };
        let (config, policy) = definitions.configure(&spec.name, &arguments);
        let store = QueueStore {
            id: recovered.id,
            store: Arc::clone(&definitions.journal.store),
        };
        let handle = queue::spawn(queue::QueueSetup {
            name: spec.name.clone(),
            vhost: self.me.clone(),
            vhost_name: self.name.clone(),
            config,
            auto_delete: spec.auto_delete,
            gauge: Arc::clone(&self.gauge),
            totals: Arc::clone(&self.totals),
            store: Some(store),
            recovered: recovered.messages,
            limits: definitions.usage.limits,
        });
        let entry = QueueEntry {
            handle,
            spec: spec.clone(),
            owner: None,
            stored: Some(recovered.id),
            policy,
            // Counted, never refused: a lowered limit must not lose stored messages.
            _slot: definitions.usage.queues.force(),
        };
        definitions.queues.insert(spec.name, entry);
    }
}

impl Definitions {
    /// Adds a recovered binding without journaling it again; counted, never refused.
    fn restore_binding(&mut self, binding: BindingSpec) {
        let Some(source) = self.exchanges.get_mut(&binding.source) else {
            return;
        };
        if source.bind(
            &binding.routing_key,
            &binding.arguments,
            binding.destination.clone(),
        ) {
            let entry = BindingEntry {
                source: binding.source,
                key: binding.routing_key,
                arguments: binding.arguments,
                _slot: self.usage.bindings.force(),
            };
            self.bindings_to
                .entry(binding.destination)
                .or_default()
                .push(entry);
        }
    }
}
