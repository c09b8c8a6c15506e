//! Dead-lettering: the copy of a message that leaves a queue for its dead-letter exchange, with
//! the `x-death` history RabbitMQ clients read.
//!
//! `x-death` is an array of tables, newest first, one per (queue, reason): `count`, `reason`,
//! `queue`, `time`, `exchange`, `routing-keys` and, when the message had a per-message TTL,
//! `original-expiration`. The first death is also summarised in `x-first-death-*` headers and
//! the latest in `x-last-death-*`. The body is shared, never copied.

use std::time::{SystemTime, UNIX_EPOCH};

use mqbridge_broker_api::{HeaderValue, Headers, Message};

/// Why a message was dead-lettered; the text is what `x-death.reason` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    MaxLength,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::MaxLength => "maxlen",
        }
    }
}

/// Where dead letters of one queue go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub queue: &'a str,
    pub exchange: &'a str,
    /// `x-dead-letter-routing-key`; the message's own key when unset.
    pub routing_key: Option<&'a str>,
}

/// Whether a message dead-lettered from `queue` for `reason` has been here before for a reason
/// other than rejection: a cycle with no client in it, which RabbitMQ breaks by dropping.
pub fn is_cycle(message: &Message, queue: &str, reason: Reason) -> bool {
    reason != Reason::Rejected
        && deaths(&message.properties.headers)
            .iter()
            .any(|death| field(death, "queue") == Some(queue))
}

/// The message as it leaves for the dead-letter exchange.
pub fn dead_letter(message: &Message, target: &Target<'_>, reason: Reason) -> Message {
    let mut out = message.clone();
    let original_expiration = out.properties.expiration_ms.take();
    let headers = &mut out.properties.headers;
    let mut history = deaths(headers);
    let existing = history.iter().position(|death| {
        field(death, "queue") == Some(target.queue)
            && field(death, "reason") == Some(reason.as_str())
    });
    let entry = match existing {
        Some(index) => {
            let mut death = history.remove(index);
            let count = death
                .get("count")
                .and_then(HeaderValue::as_i64)
                .unwrap_or(0);
            death.insert("count", HeaderValue::I64(count + 1));
            death.insert("time", HeaderValue::Timestamp(now_seconds()));
            death
        }
        None => new_death(message, target, reason, original_expiration),
    };
    history.insert(0, entry);
    for (prefix, death) in [
        ("x-first-death", history.last()),
        ("x-last-death", history.first()),
    ] {
        let Some(death) = death else { continue };
        if prefix == "x-first-death" && headers.get("x-first-death-reason").is_some() {
            continue;
        }
        for name in ["reason", "queue", "exchange"] {
            if let Some(value) = death.get(name) {
                headers.insert(format!("{prefix}-{name}"), value.clone());
            }
        }
    }
    headers.insert(
        "x-death",
        HeaderValue::Array(history.into_iter().map(HeaderValue::Table).collect()),
    );
    out.exchange = target.exchange.to_owned();
    if let Some(key) = target.routing_key {
        out.routing_key = key.to_owned();
    }
    out
}

fn new_death(message: &Message, target: &Target<'_>, reason: Reason, ttl: Option<u64>) -> Headers {
    let text = |s: &str| HeaderValue::String(s.to_owned());
    let mut death = Headers::new();
    death.insert("count", HeaderValue::I64(1));
    death.insert("reason", text(reason.as_str()));
    death.insert("queue", text(target.queue));
    death.insert("time", HeaderValue::Timestamp(now_seconds()));
    death.insert("exchange", text(&message.exchange));
    death.insert(
        "routing-keys",
        HeaderValue::Array(vec![text(&message.routing_key)]),
    );
    if let Some(ttl) = ttl {
        death.insert("original-expiration", text(&ttl.to_string()));
    }
    death
}

fn deaths(headers: &Headers) -> Vec<Headers> {
    match headers.get("x-death") {
        Some(HeaderValue::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                HeaderValue::Table(table) => Some(table.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(death: &'a Headers, name: &str) -> Option<&'a str> {
    death.get(name).and_then(HeaderValue::as_str)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            exchange: "orders".into(),
            routing_key: "new".into(),
            ..Message::default()
        }
    }

    const TARGET: Target<'static> = Target {
        queue: "work",
        exchange: "dlx",
        routing_key: None,
    };

    #[test]
    fn first_death_records_origin() {
        let mut m = message();
        m.properties.expiration_ms = Some(500);
        let dead = dead_letter(&m, &TARGET, Reason::Expired);
        assert_eq!(dead.exchange, "dlx");
        assert_eq!(dead.routing_key, "new");
        assert_eq!(dead.properties.expiration_ms, None);
        let h = &dead.properties.headers;
        let Some(HeaderValue::Array(deaths)) = h.get("x-death") else {
            panic!("no x-death")
        };
        let HeaderValue::Table(death) = &deaths[0] else {
            panic!("not a table")
        };
        assert_eq!(death.get("count"), Some(&HeaderValue::I64(1)));
        assert_eq!(field(death, "reason"), Some("expired"));
        assert_eq!(field(death, "exchange"), Some("orders"));
        assert_eq!(field(death, "original-expiration"), Some("500"));
        assert_eq!(
            h.get("x-first-death-queue").and_then(HeaderValue::as_str),
            Some("work")
        );
    }

    #[test]
    fn same_queue_and_reason_counts_up() {
        let once = dead_letter(&message(), &TARGET, Reason::Rejected);
        let twice = dead_letter(&once, &TARGET, Reason::Rejected);
        let Some(HeaderValue::Array(deaths)) = twice.properties.headers.get("x-death") else {
            panic!("no x-death")
        };
        assert_eq!(deaths.len(), 1);
        let HeaderValue::Table(death) = &deaths[0] else {
            panic!("not a table")
        };
        assert_eq!(death.get("count"), Some(&HeaderValue::I64(2)));
        assert!(!is_cycle(&twice, "work", Reason::Rejected));
        assert!(is_cycle(&twice, "work", Reason::Expired));
    }
}
