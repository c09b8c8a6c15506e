//! Policies, as RabbitMQ has them: a named pattern over queue or exchange names in one vhost,
//! with a definition (`message-ttl`, `max-length`, `dead-letter-exchange`, ...) that applies to
//! every matching queue or exchange, those that exist when the policy is set and those
//! declared later. Of the policies matching a name, the one with the highest priority applies
//! (ties go to the name that sorts first); at most one applies.
//!
//! Where a queue's own arguments say the same thing, RabbitMQ's rules hold: for the limits
//! (`message-ttl`, `expires`, `max-length`, `max-length-bytes`) the smaller value wins; for
//! `overflow` and the dead-letter target the argument wins. `alternate-exchange` from an
//! exchange's arguments wins over the policy's.

use std::time::Duration;

use mqbridge_broker_api::BrokerError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::access::pattern::Pattern;
use super::queue::{Overflow, QueueConfig};

/// A policy as stored, listed and exported: RabbitMQ's JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Absent in RabbitMQ's per-vhost exports; filled by the importer.
    #[serde(default)]
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to", default = "all")]
    pub apply_to: String,
    pub definition: Map<String, Value>,
    #[serde(default)]
    pub priority: i64,
}

fn all() -> String {
    "all".to_owned()
}

/// Keys RabbitMQ uses for replication and storage layout across a cluster. A single node has
/// nothing for them to do; they are accepted so that a RabbitMQ export imports, and ignored.
const IGNORED_KEYS: &[&str] = &[
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "queue-mode",
    "queue-version",
    "queue-master-locator",
    "queue-leader-locator",
];

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub record: PolicyRecord,
    pattern: Pattern,
    to_queues: bool,
    to_exchanges: bool,
    /// What it sets on a queue: only the fields a policy may set (not priorities or groups).
    pub queue: QueueConfig,
    pub alternate_exchange: Option<String>,
}

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Queue,
    Exchange,
}

impl Policy {
    /// Checks a policy as RabbitMQ does before storing it; the error names what is wrong.
    pub fn parse(record: PolicyRecord) -> Result<Policy, BrokerError> {
        let invalid = |why: String| {
            BrokerError::PreconditionFailed(format!("policy '{}': {why}", record.name))
        };
        if record.name.is_empty() {
            return Err(invalid("a policy needs a name".to_owned()));
        }
        let pattern = Pattern::parse(&record.pattern).map_err(invalid)?;
        let (to_queues, to_exchanges) = match record.apply_to.as_str() {
            "all" => (true, true),
            "queues" | "classic_queues" => (true, false),
            "exchanges" => (false, true),
            // There are only classic queues here, so these match nothing.
            "quorum_queues" | "streams" => (false, false),
            other => return Err(invalid(format!("'{other}' is not a valid apply-to value"))),
        };
        if record.definition.is_empty() {
            return Err(invalid("the definition is empty".to_owned()));
        }
        let (queue, alternate_exchange) = effects(&record.definition).map_err(invalid)?;
        Ok(Policy {
            pattern,
            to_queues,
            to_exchanges,
            queue,
            alternate_exchange,
            record,
        })
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn applies(&self, target: Target, name: &str) -> bool {
        let kind = match target {
            Target::Queue => self.to_queues,
            Target::Exchange => self.to_exchanges,
        };
        kind && self.pattern.matches(name)
    }
}

/// The policy that applies to `name`: the highest priority among those that match.
pub fn choose<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    target: Target,
    name: &str,
) -> Option<&'a Policy> {
    policies
        .into_iter()
        .filter(|p| p.applies(target, name))
        // `max_by` keeps the last of equals; comparing names in reverse keeps the first name.
        .max_by(|a, b| {
            (a.record.priority, &b.record.name).cmp(&(b.record.priority, &a.record.name))
        })
}

/// A queue's configuration from its own arguments and the policy that applies to it.
pub fn apply(arguments: &QueueConfig, effects: &QueueConfig) -> QueueConfig {
    fn smaller<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    let mut config = arguments.clone();
    config.message_ttl = smaller(arguments.message_ttl, effects.message_ttl);
    config.expires = smaller(arguments.expires, effects.expires);
    config.max_length = smaller(arguments.max_length, effects.max_length);
    config.max_length_bytes = smaller(arguments.max_length_bytes, effects.max_length_bytes);
    config.overflow = arguments.overflow.or(effects.overflow);
    if arguments.dead_letter_exchange.is_none() {
        config
            .dead_letter_exchange
            .clone_from(&effects.dead_letter_exchange);
    }
    if arguments.dead_letter_routing_key.is_none() {
        config
            .dead_letter_routing_key
            .clone_from(&effects.dead_letter_routing_key);
    }
    config
}

/// Reads a definition's keys; unknown keys are refused, as RabbitMQ refuses them.
fn effects(definition: &Map<String, Value>) -> Result<(QueueConfig, Option<String>), String> {
    let integer = |key: &str, value: &Value, min: u64| match value.as_u64() {
        Some(n) if n >= min => Ok(n),
        _ => Err(format!(
            "'{key}' must be an integer of at least {min}, got {value}"
        )),
    };
    let text = |key: &str, value: &Value| match value.as_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(format!("'{key}' must be a string, got {value}")),
    };
    let mut queue = QueueConfig::default();
    let mut alternate = None;
    for (key, value) in definition {
        match key.as_str() {
            "message-ttl" => {
                queue.message_ttl = Some(Duration::from_millis(integer(key, value, 0)?));
            }
            "expires" => queue.expires = Some(Duration::from_millis(integer(key, value, 1)?)),
            "max-length" => queue.max_length = Some(integer(key, value, 0)?),
            "max-length-bytes" => queue.max_length_bytes = Some(integer(key, value, 0)?),
            "overflow" => {
                let name = text(key, value)?;
                let overflow = Overflow::parse(&name)
                    .ok_or_else(|| format!("'{name}' is not a valid overflow value"))?;
                queue.overflow = Some(overflow);
            }
            "dead-letter-exchange" => queue.dead_letter_exchange = Some(text(key, value)?),
            "dead-letter-routing-key" => queue.dead_letter_routing_key = Some(text(key, value)?),
            "alternate-exchange" => alternate = Some(text(key, value)?),
            ignored if IGNORED_KEYS.contains(&ignored) => {}
            other => return Err(format!("'{other}' is not a recognised policy key")),
        }
    }
    Ok((queue, alternate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, pattern: &str, priority: i64, definition: Value) -> Policy {
        let Value::Object(definition) = definition else {
            panic!("a definition is an object");
        };
        Policy::parse(PolicyRecord {
            vhost: "/".to_owned(),
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            apply_to: "queues".to_owned(),
            definition,
            priority,
        })
        .expect("valid policy")
    }

    #[test]
    fn the_highest_priority_applies_and_ties_go_to_the_first_name() {
        let low = policy("low", "^orders", 0, json!({"max-length": 5}));
        let high = policy("high", "^orders\\.eu", 10, json!({"max-length": 1}));
        let twin = policy("a-twin", "^orders", 0, json!({"max-length": 7}));
        let all = [&low, &high, &twin];
        let chosen = |name| choose(all, Target::Queue, name).map(Policy::name);
        assert_eq!(chosen("orders.eu"), Some("high"));
        assert_eq!(chosen("orders.us"), Some("a-twin"));
        assert_eq!(chosen("invoices"), None);
        assert_eq!(
            choose(all, Target::Exchange, "orders.eu").map(Policy::name),
            None
        );
    }

    #[test]
    fn limits_take_the_smaller_and_arguments_keep_their_dead_letter_target() {
        let effects = policy(
            "p",
            ".*",
            0,
            json!({"max-length": 10, "message-ttl": 500, "dead-letter-exchange": "policy-dlx",
                   "overflow": "reject-publish"}),
        )
        .queue;
        let arguments = QueueConfig {
            max_length: Some(3),
            message_ttl: Some(Duration::from_secs(5)),
            dead_letter_exchange: Some("own-dlx".to_owned()),
            ..QueueConfig::default()
        };
        let config = apply(&arguments, &effects);
        assert_eq!(config.max_length, Some(3));
        assert_eq!(config.message_ttl, Some(Duration::from_millis(500)));
        assert_eq!(config.dead_letter_exchange.as_deref(), Some("own-dlx"));
        assert_eq!(config.overflow, Some(Overflow::RejectPublish));
        let plain = apply(&QueueConfig::default(), &effects);
        assert_eq!(plain.dead_letter_exchange.as_deref(), Some("policy-dlx"));
        assert_eq!(plain.max_length, Some(10));
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let refused = |definition: Value, apply_to: &str, pattern: &str| {
            let Value::Object(definition) = definition else {
                panic!("object");
            };
            let record = PolicyRecord {
                vhost: "/".to_owned(),
                name: "p".to_owned(),
                pattern: pattern.to_owned(),
                apply_to: apply_to.to_owned(),
                definition,
                priority: 0,
            };
            Policy::parse(record).expect_err("refused").to_string()
        };
        assert!(refused(json!({"max-length": -1}), "all", ".*").contains("max-length"));
        assert!(refused(json!({"message-ttl": "soon"}), "all", ".*").contains("message-ttl"));
        assert!(refused(json!({"expires": 0}), "all", ".*").contains("expires"));
        assert!(refused(json!({"overflow": "explode"}), "all", ".*").contains("explode"));
        assert!(refused(json!({"federation-upstream": "x"}), "all", ".*").contains("recognised"));
        assert!(refused(json!({}), "all", ".*").contains("empty"));
        assert!(refused(json!({"max-length": 1}), "topics", ".*").contains("apply-to"));
        assert!(refused(json!({"max-length": 1}), "all", "(").contains("regular expression"));
        let ha = policy("ha", ".*", 0, json!({"ha-mode": "all"}));
        assert_eq!(ha.queue, QueueConfig::default(), "cluster keys are ignored");
    }
}
