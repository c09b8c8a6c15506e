//! Read access to a vhost's definitions for the management API and metrics: plain snapshots,
//! copied under the read lock and sorted by name, so the caller holds no lock while it renders.
//! Costs one read lock and a copy of the listed definitions per call; never touches a queue
//! task (counters are the ones each task publishes once per batch).

use mqbridge_broker_api::{BindingSpec, ExchangeSpec};

use super::{QueueEntry, VHost};
use crate::core::inspect::{MessageEvents, QueueSnapshot};
use crate::core::queue::{ConsumerInfo, QueueRef};

impl VHost {
    /// Every queue, by name.
    pub fn queue_snapshots(&self) -> Vec<QueueSnapshot> {
        let definitions = self.read();
        let mut queues: Vec<QueueSnapshot> = definitions.queues.values().map(snapshot).collect();
        queues.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        queues
    }

    pub fn queue_snapshot(&self, name: &str) -> Option<QueueSnapshot> {
        self.read().queues.get(name).map(snapshot)
    }

    /// Every exchange, by name (the default exchange `""` first).
    pub fn exchange_specs(&self) -> Vec<ExchangeSpec> {
        let definitions = self.read();
        let mut exchanges: Vec<ExchangeSpec> = definitions
            .exchanges
            .values()
            .map(|x| x.spec.clone())
            .collect();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        exchanges
    }

    pub fn exchange_spec(&self, name: &str) -> Option<ExchangeSpec> {
        self.read().exchanges.get(name).map(|x| x.spec.clone())
    }

    /// Every explicit binding, ordered by source, destination and key. The default exchange's
    /// implied bindings are not among them (they are no binding in the core).
    pub fn binding_specs(&self) -> Vec<BindingSpec> {
        let definitions = self.read();
        let mut bindings: Vec<BindingSpec> = definitions
            .bindings_to
            .iter()
            .flat_map(|(destination, list)| {
                list.iter().map(|entry| BindingSpec {
                    source: entry.source.clone(),
                    destination: destination.clone(),
                    routing_key: entry.key.clone(),
                    arguments: entry.arguments.clone(),
                })
            })
            .collect();
        bindings.sort_by(|a, b| {
            (&a.source, &a.destination, &a.routing_key).cmp(&(
                &b.source,
                &b.destination,
                &b.routing_key,
            ))
        });
        bindings
    }

    /// Every queue's consumers, by queue name. Asks each queue with consumers in turn, so it
    /// waits for each queue task's answer; no lock is held meanwhile.
    pub async fn consumers(&self) -> Vec<(String, ConsumerInfo)> {
        let queues: Vec<(String, std::sync::Arc<QueueRef>)> = {
            let definitions = self.read();
            let with_consumers = definitions
                .queues
                .iter()
                .filter(|(_, q)| q.handle.counts().consumers > 0);
            with_consumers
                .map(|(name, q)| (name.clone(), std::sync::Arc::clone(&q.handle)))
                .collect()
        };
        let mut listed = Vec::new();
        for (name, handle) in queues {
            let consumers = handle.consumers().await;
            listed.extend(consumers.into_iter().map(|c| (name.clone(), c)));
        }
        listed.sort_by(|a, b| (&a.0, &a.1.tag).cmp(&(&b.0, &b.1.tag)));
        listed
    }

    /// Messages published, delivered and acknowledged by every queue this vhost has had.
    pub fn message_totals(&self) -> MessageEvents {
        self.totals.read()
    }
}

fn snapshot(entry: &QueueEntry) -> QueueSnapshot {
    QueueSnapshot {
        spec: entry.spec.clone(),
        owner: entry.owner,
        counts: entry.handle.counts(),
        policy: entry.policy.clone(),
    }
}
