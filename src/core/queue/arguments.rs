//! Queue arguments (`x-message-ttl`, `x-max-length`, ...): parsed and validated once at declare
//! time into a [`QueueConfig`], so the queue task never reads the raw table.

use std::time::Duration;

use mqbridge_broker_api::{BrokerError, HeaderValue, Headers};

/// Arguments whose values must match when a queue is redeclared; unknown arguments are kept
/// but not compared, as RabbitMQ does.
pub const COMPARED_ARGUMENTS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-queue-type",
    "x-message-groups",
];

/// The largest `x-max-priority` RabbitMQ accepts; each level is a separate list in memory.
const PRIORITY_MAX: i64 = 255;

/// What a full queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest message to make room.
    #[default]
    DropHead,
    /// Refuse the new message (publisher confirm: nack).
    RejectPublish,
    /// Refuse the new message and dead-letter it.
    RejectPublishDlx,
}

impl Overflow {
    /// RabbitMQ's names: `drop-head`, `reject-publish`, `reject-publish-dlx`.
    pub fn parse(name: &str) -> Option<Overflow> {
        match name {
            "drop-head" => Some(Overflow::DropHead),
            "reject-publish" => Some(Overflow::RejectPublish),
            "reject-publish-dlx" => Some(Overflow::RejectPublishDlx),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueConfig {
    pub message_ttl: Option<Duration>,
    pub expires: Option<Duration>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    /// `None` when not given: drop-head, unless a policy says otherwise.
    pub overflow: Option<Overflow>,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub max_priority: Option<u8>,
    /// `x-message-groups`: a message group goes to one owner at a time (`groups.rs`).
    pub message_groups: bool,
}

impl QueueConfig {
    /// Parses the arguments of queue `queue` in vhost `vhost`; errors name the argument.
    pub fn parse(arguments: &Headers, queue: &str, vhost: &str) -> Result<Self, BrokerError> {
        let invalid = |name: &str, why: &str| {
            let target = BrokerError::describe("queue", queue, vhost);
            BrokerError::PreconditionFailed(format!("invalid arg '{name}' for {target}: {why}"))
        };
        let integer = |name: &str, min: i64| -> Result<Option<u64>, BrokerError> {
            let Some(value) = arguments.get(name) else {
                return Ok(None);
            };
            let number = value
                .as_i64()
                .ok_or_else(|| invalid(name, &format!("expected an integer, got {value:?}")))?;
            if number < min {
                return Err(invalid(
                    name,
                    &format!("must be at least {min}, got {number}"),
                ));
            }
            Ok(u64::try_from(number).ok())
        };
        let text = |name: &str| -> Result<Option<String>, BrokerError> {
            let Some(value) = arguments.get(name) else {
                return Ok(None);
            };
            let text = value
                .as_str()
                .ok_or_else(|| invalid(name, "expected a string"))?;
            Ok(Some(text.to_owned()))
        };
        let message_groups = match arguments.get("x-message-groups") {
            None => false,
            Some(HeaderValue::Bool(on)) => *on,
            Some(other) => {
                return Err(invalid(
                    "x-message-groups",
                    &format!("expected a boolean, got {other:?}"),
                ));
            }
        };
        let overflow = text("x-overflow")?
            .map(|name| {
                Overflow::parse(&name)
                    .ok_or_else(|| invalid("x-overflow", &format!("unknown policy '{name}'")))
            })
            .transpose()?;
        if let Some(kind) = text("x-queue-type")?.filter(|kind| kind != "classic") {
            return Err(invalid(
                "x-queue-type",
                &format!("queue type '{kind}' is not supported"),
            ));
        }
        let max_priority = match integer("x-max-priority", 0)? {
            Some(p) if p > PRIORITY_MAX.unsigned_abs() => {
                return Err(invalid(
                    "x-max-priority",
                    &format!("must be at most {PRIORITY_MAX}"),
                ));
            }
            p => p.and_then(|p| u8::try_from(p).ok()),
        };
        Ok(QueueConfig {
            message_ttl: integer("x-message-ttl", 0)?.map(Duration::from_millis),
            expires: integer("x-expires", 1)?.map(Duration::from_millis),
            max_length: integer("x-max-length", 0)?,
            max_length_bytes: integer("x-max-length-bytes", 0)?,
            overflow,
            dead_letter_exchange: text("x-dead-letter-exchange")?,
            dead_letter_routing_key: text("x-dead-letter-routing-key")?,
            max_priority,
            message_groups,
        })
    }
}

/// The first compared argument whose value differs between two declarations, as the text
/// RabbitMQ uses: `received '100' but current is 'none'`.
pub fn first_difference(current: &Headers, received: &Headers) -> Option<(&'static str, String)> {
    COMPARED_ARGUMENTS.iter().find_map(|&name| {
        let (a, b) = (current.get(name), received.get(name));
        let same = match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.as_i64()
                    .zip(b.as_i64())
                    .map(|(x, y)| x == y)
                    .unwrap_or(false)
                    || a.as_str()
                        .zip(b.as_str())
                        .map(|(x, y)| x == y)
                        .unwrap_or(false)
                    || a == b
            }
            _ => false,
        };
        (!same).then(|| {
            (
                name,
                format!("received '{}' but current is '{}'", show(b), show(a)),
            )
        })
    })
}

fn show(value: Option<&HeaderValue>) -> String {
    match value {
        None => "none".to_owned(),
        Some(v) => v
            .as_i64()
            .map(|n| n.to_string())
            .or_else(|| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, HeaderValue)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn parses_every_known_argument() {
        let config = QueueConfig::parse(
            &args(&[
                ("x-message-ttl", HeaderValue::I32(1500)),
                ("x-expires", HeaderValue::I64(60_000)),
                ("x-max-length", HeaderValue::U16(10)),
                (
                    "x-overflow",
                    HeaderValue::String("reject-publish-dlx".into()),
                ),
                ("x-dead-letter-exchange", HeaderValue::Bytes("dlx".into())),
                ("x-max-priority", HeaderValue::U8(9)),
            ]),
            "q",
            "/",
        )
        .expect("valid");
        assert_eq!(config.message_ttl, Some(Duration::from_millis(1500)));
        assert_eq!(config.expires, Some(Duration::from_secs(60)));
        assert_eq!(config.max_length, Some(10));
        assert_eq!(config.overflow, Some(Overflow::RejectPublishDlx));
        assert_eq!(config.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(config.max_priority, Some(9));
    }

    #[test]
    fn refuses_bad_values_naming_the_argument() {
        let error = QueueConfig::parse(&args(&[("x-message-ttl", HeaderValue::I32(-1))]), "q", "/")
            .expect_err("negative ttl");
        assert!(
            error
                .to_string()
                .contains("'x-message-ttl' for queue 'q' in vhost '/'")
        );
        assert!(
            QueueConfig::parse(&args(&[("x-expires", HeaderValue::I32(0))]), "q", "/").is_err()
        );
        assert!(
            QueueConfig::parse(
                &args(&[("x-overflow", HeaderValue::String("x".into()))]),
                "q",
                "/"
            )
            .is_err()
        );
    }

    #[test]
    fn differences_ignore_integer_width_and_unknown_arguments() {
        let a = args(&[
            ("x-max-length", HeaderValue::I32(5)),
            ("x-custom", HeaderValue::Bool(true)),
        ]);
        let b = args(&[("x-max-length", HeaderValue::I64(5))]);
        assert_eq!(first_difference(&a, &b), None);
        let c = args(&[("x-max-length", HeaderValue::I64(6))]);
        let (name, text) = first_difference(&a, &c).expect("differs");
        assert_eq!(name, "x-max-length");
        assert_eq!(text, "received '6' but current is '5'");
    }
}
