//! What SQS knows about a queue beyond the core's queue: its attributes, tags and timestamps.
//!
//! Held in this adapter's memory for now: after a restart the broker's durable queues and their
//! messages are back, but SQS attributes and tags return to their defaults, and a queue is
//! listed by ListQueues again once it is named (GetQueueUrl, CreateQueue, or any action).
//! A `std::sync::Mutex` guards the table; it is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{ErrorKind, SqsError};

/// One settable queue attribute: its name, default and valid range (SQS API reference,
/// SetQueueAttributes). `None` bounds mean a free-form value.
struct AttributeRule {
    name: &'static str,
    default: Option<&'static str>,
    range: Option<(i64, i64)>,
}

/// The attributes a client may set. FIFO attributes are refused until FIFO queues exist.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMeta {
    /// Every settable attribute with a value, defaults included.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub created_secs: u64,
    pub modified_secs: u64,
}

impl QueueMeta {
    pub fn new(now_secs: u64) -> Self {
        let attributes = SETTABLE
            .iter()
            .filter_map(|r| Some((r.name.to_owned(), r.default?.to_owned())))
            .collect();
        QueueMeta {
            attributes,
            tags: BTreeMap::new(),
            created_secs: now_secs,
            modified_secs: now_secs,
        }
    }

    /// An integer attribute, or its default.
    pub fn integer(&self, name: &str) -> i64 {
        self.attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Whether `name` is an attribute a client may set (and so may ask for).
pub fn is_settable(name: &str) -> bool {
    SETTABLE.iter().any(|r| r.name == name)
}

/// Checks attributes a client wants to set, returning them normalised.
pub fn validate(attributes: &[(String, String)]) -> Result<Vec<(String, String)>, SqsError> {
    attributes
        .iter()
        .map(|(name, value)| {
            if name == "FifoQueue" || name == "ContentBasedDeduplication" {
                return Err(SqsError::new(
                    ErrorKind::UnsupportedOperation,
                    "FIFO queues are not supported yet.",
                ));
            }
            let rule = SETTABLE.iter().find(|r| r.name == name).ok_or_else(|| {
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
        "SqsManagedSseEnabled" => matches!(value, "true" | "false").then(|| value.to_owned()),
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

/// AWS: "up to 80 characters ... alphanumeric characters, hyphens (-), and underscores (_)".
pub fn valid_queue_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Every queue SQS has named, by name (so ListQueues is sorted).
#[derive(Debug, Default)]
pub struct Registry {
    queues: Mutex<BTreeMap<String, QueueMeta>>,
}

impl Registry {
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, QueueMeta>> {
        // Every update is a single insert or field write; a panic cannot leave one half done.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, name: &str) -> Option<QueueMeta> {
        self.lock().get(name).cloned()
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
        let ok = validate(&[pair("VisibilityTimeout", " 60")]).expect("valid");
        assert_eq!(ok, [pair("VisibilityTimeout", "60")]);
        let error = validate(&[pair("VisibilityTimeout", "43201")]).expect_err("range");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeValue);
        let error = validate(&[pair("Colour", "red")]).expect_err("unknown");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeName);
        let error = validate(&[pair("QueueArn", "x")]).expect_err("read-only");
        assert_eq!(error.kind, ErrorKind::InvalidAttributeName);
    }

    #[test]
    fn a_redrive_policy_names_its_queue_and_count() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#;
        assert_eq!(redrive_policy(policy), Some(("dlq".to_owned(), 3)));
        assert!(validate(&[pair("RedrivePolicy", "{}")]).is_err());
    }

    #[test]
    fn queue_names_follow_aws_rules() {
        assert!(valid_queue_name("orders_v2-a"));
        assert!(!valid_queue_name(""));
        assert!(!valid_queue_name("a.b"));
        assert!(!valid_queue_name(&"x".repeat(81)));
    }
}
