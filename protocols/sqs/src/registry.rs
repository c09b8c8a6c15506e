//! What SQS knows about a queue beyond the core's queue: its attributes, tags and timestamps.
//!
//! Kept in memory and written through to the broker's journal as metadata (scope
//! [`METADATA_SCOPE`], key the queue name, value the JSON of [`QueueMeta`]), so a restart
//! brings back every SQS queue with its attributes and tags, as the core brings back the queue
//! and its messages. A `std::sync::Mutex` guards the table; it is never held across an
//! `.await`. Each change is journaled while the table is locked, so the journal sees changes
//! of one queue in the order they were made.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use mqbridge_broker_api::VirtualHost;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, SqsError};

/// The scope of SQS's queue metadata in the broker's journal.
pub const METADATA_SCOPE: &str = "sqs-queue";

/// One settable queue attribute: its name, default and valid range (SQS API reference,
/// SetQueueAttributes). `None` bounds mean a free-form value.
struct AttributeRule {
    name: &'static str,
    default: Option<&'static str>,
    range: Option<(i64, i64)>,
}

/// The attributes a client may set on any queue.
const SETTABLE: &[AttributeRule] = &[
    rule("DelaySeconds", Some("0"), Some((0, 900))),
    rule(
        "MaximumMessageSize",
        Some("1048576"),
        Some((1024, 1_048_576)),
    ),
    rule(
        "MessageRetentionPeriod",
        Some("345600"),
        Some((60, 1_209_600)),
    ),
    rule("ReceiveMessageWaitTimeSeconds", Some("0"), Some((0, 20))),
    rule("VisibilityTimeout", Some("30"), Some((0, 43_200))),
    rule("SqsManagedSseEnabled", Some("true"), None),
    rule("RedrivePolicy", None, None),
    rule("RedriveAllowPolicy", None, None),
    rule("Policy", None, None),
    rule("KmsMasterKeyId", None, None),
    rule("KmsDataKeyReusePeriodSeconds", None, Some((60, 86_400))),
];

/// The attributes a client may set on FIFO queues only.
const FIFO_SETTABLE: &[AttributeRule] = &[
    rule("ContentBasedDeduplication", Some("false"), None),
    rule("DeduplicationScope", Some("queue"), None),
    rule("FifoThroughputLimit", Some("perQueue"), None),
];

/// Set once, when CreateQueue makes a FIFO queue; never changed.
pub const FIFO_QUEUE: &str = "FifoQueue";

const fn rule(
    name: &'static str,
    default: Option<&'static str>,
    range: Option<(i64, i64)>,
) -> AttributeRule {
    AttributeRule {
        name,
        default,
        range,
    }
}

/// The attributes GetQueueAttributes computes rather than stores.
pub const COMPUTED: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// SQS's view of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMeta {
    /// Every settable attribute with a value, defaults included.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub created_secs: u64,
    pub modified_secs: u64,
}

impl QueueMeta {
    pub fn new(now_secs: u64, fifo: bool) -> Self {
        let fifo_rules = if fifo { FIFO_SETTABLE } else { &[] };
        let mut attributes: BTreeMap<String, String> = SETTABLE
            .iter()
            .chain(fifo_rules)
            .filter_map(|r| Some((r.name.to_owned(), r.default?.to_owned())))
            .collect();
        if fifo {
            attributes.insert(FIFO_QUEUE.to_owned(), "true".to_owned());
        }
        QueueMeta {
            attributes,
            tags: BTreeMap::new(),
            created_secs: now_secs,
            modified_secs: now_secs,
        }
    }

    pub fn is_fifo(&self) -> bool {
        self.attributes.get(FIFO_QUEUE).is_some_and(|v| v == "true")
    }

    /// Whether a boolean attribute is `true`.
    pub fn flag(&self, name: &str) -> bool {
        self.attributes.get(name).is_some_and(|v| v == "true")
    }

    /// An integer attribute, or its default.
    pub fn integer(&self, name: &str) -> i64 {
        self.attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Whether `name` is an attribute a client may set or was set at creation (and so may ask
/// for).
pub fn is_settable(name: &str) -> bool {
    name == FIFO_QUEUE || SETTABLE.iter().chain(FIFO_SETTABLE).any(|r| r.name == name)
}

/// Checks attributes a client wants to set on a queue (a FIFO queue if `fifo`), returning them
/// normalised. `FifoQueue` is not among them: CreateQueue takes it out first.
pub fn validate(
    attributes: &[(String, String)],
    fifo: bool,
) -> Result<Vec<(String, String)>, SqsError> {
    let fifo_rules = if fifo { FIFO_SETTABLE } else { &[] };
    attributes
        .iter()
        .map(|(name, value)| {
            let rule = SETTABLE
                .iter()
                .chain(fifo_rules)
                .find(|r| r.name == name)
                .ok_or_else(|| {
                    SqsError::new(
                        ErrorKind::InvalidAttributeName,
                        format!("Unknown Attribute {name}."),
                    )
                })?;
            let value = normalise(rule, value).ok_or_else(|| {
                SqsError::new(
                    ErrorKind::InvalidAttributeValue,
                    format!("Invalid value for the parameter {name}."),
                )
            })?;
            Ok((name.clone(), value))
        })
        .collect()
}

fn normalise(rule: &AttributeRule, value: &str) -> Option<String> {
    if let Some((low, high)) = rule.range {
        let number: i64 = value.trim().parse().ok()?;
        return (low..=high).contains(&number).then(|| number.to_string());
    }
    match rule.name {
        "RedrivePolicy" => redrive_policy(value).map(|_| value.to_owned()),
        "SqsManagedSseEnabled" | "ContentBasedDeduplication" => {
            matches!(value, "true" | "false").then(|| value.to_owned())
        }
        "DeduplicationScope" => matches!(value, "queue" | "messageGroup").then(|| value.to_owned()),
        "FifoThroughputLimit" => {
            matches!(value, "perQueue" | "perMessageGroupId").then(|| value.to_owned())
        }
        _ => Some(value.to_owned()),
    }
}

/// The dead-letter queue name and `maxReceiveCount` of a RedrivePolicy JSON document.
pub fn redrive_policy(value: &str) -> Option<(String, u32)> {
    let policy: serde_json::Value = serde_json::from_str(value).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?;
    let count = match policy.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let name = arn.rsplit(':').next()?;
    let count = u32::try_from(count)
        .ok()
        .filter(|c| (1..=1000).contains(c))?;
    Some((name.to_owned(), count))
}

/// AWS: "up to 80 characters ... alphanumeric characters, hyphens (-), and underscores (_)",
/// and "a FIFO queue name must end with the .fifo suffix" (which counts in the 80).
pub fn valid_queue_name(name: &str, fifo: bool) -> bool {
    let base = match fifo {
        true => name.strip_suffix(".fifo"),
        false => Some(name),
    };
    (1..=80).contains(&name.len())
        && base.is_some_and(|base| {
            !base.is_empty()
                && base
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Every queue SQS has named, by name (so ListQueues is sorted).
pub struct Registry {
    /// Shared with the requests that resolved each queue: every request reads its queue's
    /// attributes, and a copy of the maps per request cost more than the request's own work.
    queues: Mutex<BTreeMap<String, Arc<QueueMeta>>>,
    /// Where changes are journaled.
    vhost: Arc<dyn VirtualHost>,
}

impl Registry {
    /// The registry of `vhost`, with the metadata kept from before a restart of every queue
    /// the core still has.
    pub fn restore(vhost: Arc<dyn VirtualHost>, exists: impl Fn(&str) -> bool) -> Self {
        let mut queues = BTreeMap::new();
        for (name, value) in vhost.take_metadata(METADATA_SCOPE) {
            match serde_json::from_slice::<QueueMeta>(&value) {
                Ok(meta) if exists(&name) => {
                    queues.insert(name, Arc::new(meta));
                }
                // Deleted by another protocol while SQS looked away, or unreadable.
                Ok(_) | Err(_) => vhost.set_metadata(METADATA_SCOPE, &name, None),
            }
        }
        Registry {
            queues: Mutex::new(queues),
            vhost,
        }
    }

    /// The table, for reading; changes go through the methods below, which journal them.
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<QueueMeta>>> {
        // Every update is a single insert or field write; a panic cannot leave one half done.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, name: &str) -> Option<Arc<QueueMeta>> {
        self.lock().get(name).cloned()
    }

    /// The queue's metadata, made (with defaults) and kept if SQS had none.
    pub fn adopt(&self, name: &str, make: impl FnOnce() -> QueueMeta) -> Arc<QueueMeta> {
        let mut queues = self.lock();
        if let Some(meta) = queues.get(name) {
            return Arc::clone(meta);
        }
        let meta = Arc::new(make());
        self.save(name, &meta);
        queues.insert(name.to_owned(), Arc::clone(&meta));
        meta
    }

    /// Adds a queue, unless SQS has one of that name; returns the existing one if so.
    pub fn insert(&self, name: &str, meta: QueueMeta) -> Option<Arc<QueueMeta>> {
        let mut queues = self.lock();
        if let Some(existing) = queues.get(name) {
            return Some(Arc::clone(existing));
        }
        self.save(name, &meta);
        queues.insert(name.to_owned(), Arc::new(meta));
        None
    }

    /// Changes a queue's metadata; the change is kept only if `change` succeeds.
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut QueueMeta) -> Result<(), SqsError>,
    ) -> Result<(), SqsError> {
        let mut queues = self.lock();
        let meta = queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        let mut changed = QueueMeta::clone(meta);
        change(&mut changed)?;
        self.save(name, &changed);
        *meta = Arc::new(changed);
        Ok(())
    }

    /// Forgets a queue (deleted, by SQS or another protocol).
    pub fn remove(&self, name: &str) {
        if self.lock().remove(name).is_some() {
            self.vhost.set_metadata(METADATA_SCOPE, name, None);
        }
    }

    fn save(&self, name: &str, meta: &QueueMeta) {
        match serde_json::to_vec(meta) {
            Ok(json) => self
                .vhost
                .set_metadata(METADATA_SCOPE, name, Some(Bytes::from(json))),
            Err(error) => tracing::error!(queue = name, %error, "queue metadata not kept"),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("queues", &self.lock().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn attributes_are_range_checked_and_unknown_names_refused() {
        let ok = validate(&[pair("VisibilityTimeout", " 60")], false).expect("valid");
        assert_eq!(ok, [pair("VisibilityTimeout", "60")]);
        let error = validate(&[pair("VisibilityTimeout", "43201")], false).expect_err("range");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeValue);
        let error = validate(&[pair("Colour", "red")], false).expect_err("unknown");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeName);
        let error = validate(&[pair("QueueArn", "x")], false).expect_err("read-only");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeName);
    }

    #[test]
    fn fifo_attributes_are_for_fifo_queues_only() {
        let dedup = [pair("ContentBasedDeduplication", "true")];
        assert_eq!(validate(&dedup, true).expect("fifo"), dedup);
        let error = validate(&dedup, false).expect_err("standard");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeName);
        let scope = [pair("DeduplicationScope", "group")];
        let error = validate(&scope, true).expect_err("bad scope");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeValue);
        let meta = QueueMeta::new(0, true);
        assert!(meta.is_fifo());
        assert_eq!(
            meta.attributes
                .get("FifoThroughputLimit")
                .map(String::as_str),
            Some("perQueue")
        );
        assert!(!QueueMeta::new(0, false).is_fifo());
    }

    #[test]
    fn a_redrive_policy_names_its_queue_and_count() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#;
        assert_eq!(redrive_policy(policy), Some(("dlq".to_owned(), 3)));
        assert!(validate(&[pair("RedrivePolicy", "{}")], false).is_err());
    }

    #[test]
    fn queue_names_follow_aws_rules() {
        assert!(valid_queue_name("orders_v2-a", false));
        assert!(!valid_queue_name("", false));
        assert!(!valid_queue_name("a.b", false));
        assert!(!valid_queue_name(&"x".repeat(81), false));
        assert!(valid_queue_name("orders.fifo", true));
        assert!(!valid_queue_name("orders.fifo", false));
        assert!(!valid_queue_name("orders", true));
        assert!(!valid_queue_name(".fifo", true));
        assert!(!valid_queue_name(&format!("{}.fifo", "x".repeat(76)), true));
    }
}
