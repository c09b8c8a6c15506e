//! What SNS knows beyond the core's exchanges and queues: topics' attributes and tags, and
//! subscriptions. Kept in memory and written through to the broker's journal as metadata
//! (scopes [`TOPIC_SCOPE`] and [`SUBSCRIPTION_SCOPE`], keyed by name or ARN, valued by JSON),
//! so topics and subscriptions survive a restart with the exchanges and queues they use.
//! Each change is journaled while its table is locked, so the journal sees one key's changes
//! in order; the lock is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use mqbridge_broker_api::VirtualHost;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize as SerializeDerive};

pub const TOPIC_SCOPE: &str = "sns-topic";
pub const SUBSCRIPTION_SCOPE: &str = "sns-subscription";

/// A topic: exchange `name`.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Topic {
    pub name: String,
    /// Settable attributes as set (DisplayName, Policy, DeliveryPolicy, SignatureVersion,
    /// FifoTopic, ContentBasedDeduplication, ...).
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

impl Topic {
    pub fn is_fifo(&self) -> bool {
        self.attributes
            .get("FifoTopic")
            .is_some_and(|v| v == "true")
    }

    pub fn flag(&self, name: &str) -> bool {
        self.attributes
            .get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A subscription of a topic.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDerive, Deserialize)]
pub struct Subscription {
    pub arn: String,
    pub topic: String,
    /// `sqs`, `http` or `https`.
    pub protocol: String,
    pub endpoint: String,
    /// RawMessageDelivery, FilterPolicy, FilterPolicyScope, RedrivePolicy, DeliveryPolicy.
    pub attributes: BTreeMap<String, String>,
    /// The token an HTTP endpoint confirms with (`None` for `sqs`). Kept after confirmation,
    /// so that confirming again answers as the first time did.
    pub token: Option<String>,
    pub confirmed: bool,
    /// The `Host` the subscription was made through: the base of the URLs subscribers get.
    pub host: String,
}

impl Subscription {
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    pub fn flag(&self, name: &str) -> bool {
        self.attributes
            .get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The core queue that holds this subscription's deliveries until they are made.
    pub fn queue_name(&self) -> String {
        let id = self.arn.rsplit(':').next().unwrap_or(&self.arn);
        format!("{DELIVERY_QUEUE_PREFIX}{id}")
    }
}

/// Names of the adapter's own queues, one per confirmed subscription.
pub const DELIVERY_QUEUE_PREFIX: &str = mqbridge_sqs::service::SNS_QUEUE_PREFIX;

/// One journaled table.
pub struct Table<T> {
    scope: &'static str,
    vhost: Arc<dyn VirtualHost>,
    entries: Mutex<BTreeMap<String, T>>,
}

impl<T: Clone + Serialize + DeserializeOwned> Table<T> {
    /// The table as the journal left it; entries that no longer parse are logged and dropped.
    pub fn restore(vhost: Arc<dyn VirtualHost>, scope: &'static str) -> Self {
        let mut entries = BTreeMap::new();
        for (key, value) in vhost.take_metadata(scope) {
            match serde_json::from_slice(&value) {
                Ok(entry) => {
                    entries.insert(key, entry);
                }
                Err(error) => {
                    tracing::warn!(scope, key, %error, "dropping unreadable SNS metadata")
                }
            }
        }
        Table {
            scope,
            vhost,
            entries: Mutex::new(entries),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, T>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<T> {
        self.lock().get(key).cloned()
    }

    pub fn values(&self) -> Vec<T> {
        self.lock().values().cloned().collect()
    }

    /// Inserts unless `key` is taken; returns what is there afterwards and whether it is new.
    pub fn insert_new(&self, key: &str, entry: T) -> (T, bool) {
        let mut entries = self.lock();
        if let Some(existing) = entries.get(key) {
            return (existing.clone(), false);
        }
        self.journal(key, Some(&entry));
        entries.insert(key.to_owned(), entry.clone());
        (entry, true)
    }

    /// Changes an entry in place; `None` if there is none.
    pub fn update<R>(&self, key: &str, change: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut entries = self.lock();
        let entry = entries.get_mut(key)?;
        let result = change(entry);
        self.journal(key, Some(entry));
        Some(result)
    }

    pub fn remove(&self, key: &str) -> Option<T> {
        let mut entries = self.lock();
        let removed = entries.remove(key);
        if removed.is_some() {
            self.journal(key, None);
        }
        removed
    }

    fn journal(&self, key: &str, entry: Option<&T>) {
        let value = entry
            .and_then(|e| serde_json::to_vec(e).ok())
            .map(Bytes::from);
        self.vhost.set_metadata(self.scope, key, value);
    }
}
