//! A vhost's policies (see `core::policy`): kept with the definitions, under the same lock, so
//! that a queue declared while a policy changes gets either the old policy or the new one,
//! never neither. Setting or clearing one reconfigures every queue and exchange it touches.
//!
//! Stored as the vhost's metadata records of scope `policy`, keyed by name, and taken back
//! before the vhost's queues are restored, so that recovered queues start with their policy.

use bytes::Bytes;
use mqbridge_broker_api::ExchangeSpec;

use super::exchange::Exchange;
use super::{Definitions, VHost};
use crate::core::policy::{self, Policy, PolicyRecord, Target};
use crate::core::queue::QueueConfig;
use crate::store::Record;

/// The metadata scope policies are stored under.
pub const POLICY_SCOPE: &str = "policy";

impl VHost {
    /// Sets a policy (new or replacing one of the same name) and applies it; `true` if new.
    pub fn put_policy(&self, policy: Policy) -> bool {
        let mut definitions = self.write();
        let value = serde_json::to_vec(&policy.record).ok().map(Bytes::from);
        self.journal_policy(&definitions, policy.name(), value);
        let created = definitions
            .policies
            .insert(policy.name().to_owned(), policy)
            .is_none();
        definitions.apply_policies();
        created
    }

    /// Removes a policy; what it applied to falls back to the next match or none. `false` if
    /// there was none by that name.
    pub fn clear_policy(&self, name: &str) -> bool {
        let mut definitions = self.write();
        if definitions.policies.remove(name).is_none() {
            return false;
        }
        self.journal_policy(&definitions, name, None);
        definitions.apply_policies();
        true
    }

    /// Every policy, by name.
    pub fn policy_records(&self) -> Vec<PolicyRecord> {
        let definitions = self.read();
        let records = definitions.policies.values().map(|p| p.record.clone());
        records.collect()
    }

    /// Takes the policies out of the recovered metadata, before queues are restored.
    pub(super) fn restore_policies(&self, metadata: &mut Vec<(String, String, Bytes)>) {
        let mut definitions = self.write();
        metadata.retain(|(scope, key, value)| {
            if scope != POLICY_SCOPE {
                return true;
            }
            let parsed = serde_json::from_slice::<PolicyRecord>(value)
                .map_err(|error| error.to_string())
                .and_then(|record| Policy::parse(record).map_err(|error| error.to_string()));
            match parsed {
                Ok(policy) => {
                    definitions.policies.insert(key.clone(), policy);
                }
                Err(error) => tracing::warn!(policy = key, %error, "stored policy ignored"),
            }
            false
        });
    }

    /// Forgets every policy, as the vhost goes.
    pub(super) fn clear_policies(&self) {
        let mut definitions = self.write();
        let names: Vec<String> = definitions.policies.keys().cloned().collect();
        for name in names {
            self.journal_policy(&definitions, &name, None);
        }
        definitions.policies.clear();
    }

    fn journal_policy(&self, definitions: &Definitions, name: &str, value: Option<Bytes>) {
        definitions.journal.record(Record::Metadata {
            vhost: self.name.clone(),
            scope: POLICY_SCOPE.to_owned(),
            key: name.to_owned(),
            value,
        });
    }
}

impl Definitions {
    /// A new queue's configuration: its arguments with the policy that applies, if any.
    pub(super) fn configure(
        &self,
        name: &str,
        arguments: &QueueConfig,
    ) -> (QueueConfig, Option<String>) {
        match policy::choose(self.policies.values(), Target::Queue, name) {
            Some(chosen) => (
                policy::apply(arguments, &chosen.queue),
                Some(chosen.name().to_owned()),
            ),
            None => (arguments.clone(), None),
        }
    }

    /// Adds an exchange with the policy that applies to it.
    pub(super) fn insert_exchange(&mut self, spec: ExchangeSpec) {
        let mut exchange = Exchange::new(spec);
        exchange.policy = exchange_policy(&self.policies, &exchange.spec.name);
        self.exchanges.insert(exchange.spec.name.clone(), exchange);
    }

    /// Gives every queue and exchange the policy that now applies to it. A queue that had no
    /// policy and still has none is left alone; every other is sent its configuration anew
    /// (the policy it had may have changed its definition).
    fn apply_policies(&mut self) {
        self.policy_generation += 1;
        let generation = self.policy_generation;
        for entry in self.queues.values_mut() {
            let chosen = policy::choose(self.policies.values(), Target::Queue, &entry.spec.name);
            if chosen.is_none() && entry.policy.is_none() {
                continue;
            }
            // Arguments were checked when the queue was declared (or restored without them).
            let arguments = QueueConfig::parse(&entry.spec.arguments, "", "").unwrap_or_default();
            let config = match chosen {
                Some(chosen) => policy::apply(&arguments, &chosen.queue),
                None => arguments,
            };
            entry.policy = chosen.map(|p| p.name().to_owned());
            entry.handle.reconfigure(config, generation);
        }
        for exchange in self.exchanges.values_mut() {
            exchange.policy = exchange_policy(&self.policies, &exchange.spec.name);
        }
    }
}

fn exchange_policy(
    policies: &std::collections::BTreeMap<String, Policy>,
    name: &str,
) -> Option<(String, Option<String>)> {
    policy::choose(policies.values(), Target::Exchange, name)
        .map(|p| (p.name().to_owned(), p.alternate_exchange.clone()))
}
