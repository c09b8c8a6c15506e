//! STOMP destinations and what they mean in the core, in RabbitMQ's conventions
//! (ARCHITECTURE.md, "Naming across protocols"):
//!
//! | destination | SEND goes to | SUBSCRIBE consumes |
//! |---|---|---|
//! | `/queue/q` | default exchange, key `q`; queue `q` declared durable on first use | queue `q`, declared likewise |
//! | `/amq/queue/q` | default exchange, key `q`; `q` must exist | queue `q`, which must exist |
//! | `/topic/a.b` | `amq.topic`, key `a.b` | its own queue bound to `amq.topic` with `a.b` |
//! | `/exchange/x/rk` | exchange `x`, key `rk` | its own queue bound to `x` with `rk` |
//! | `/reply-queue/q` | default exchange, key `q` (the real name of a temp queue) | not allowed |
//! | `/temp-queue/n` | not allowed (only in `reply-to`) | not allowed |
//!
//! Pure functions: no broker calls happen here.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

/// The exchange `/topic/` destinations use.
pub const TOPIC_EXCHANGE: &str = "amq.topic";
/// The AMQP default exchange, which routes to the queue named by the key.
pub const DEFAULT_EXCHANGE: &str = "";

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Queue(String),
    AmqQueue(String),
    Topic(String),
    Exchange { exchange: String, key: String },
    ReplyQueue(String),
    TempQueue(String),
}

/// Why a destination header is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    #[error(
        "'{0}' is not a valid destination (use /queue/, /topic/, /exchange/, /amq/queue/ or \
         /reply-queue/)"
    )]
    Unknown(String),
    #[error("destination '{0}' names no queue, topic or exchange")]
    Empty(String),
}

impl Destination {
    pub fn parse(text: &str) -> Result<Destination, DestinationError> {
        let named = |rest: &str| match rest.is_empty() {
            true => Err(DestinationError::Empty(text.to_owned())),
            false => Ok(rest.to_owned()),
        };
        if let Some(rest) = text.strip_prefix("/queue/") {
            return Ok(Destination::Queue(named(rest)?));
        }
        if let Some(rest) = text.strip_prefix("/amq/queue/") {
            return Ok(Destination::AmqQueue(named(rest)?));
        }
        if let Some(rest) = text.strip_prefix("/topic/") {
            return Ok(Destination::Topic(named(rest)?));
        }
        if let Some(rest) = text.strip_prefix("/exchange/") {
            let (exchange, key) = rest.split_once('/').unwrap_or((rest, ""));
            return Ok(Destination::Exchange {
                exchange: named(exchange)?,
                key: key.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("/reply-queue/") {
            return Ok(Destination::ReplyQueue(named(rest)?));
        }
        if let Some(rest) = text.strip_prefix("/temp-queue/") {
            return Ok(Destination::TempQueue(named(rest)?));
        }
        Err(DestinationError::Unknown(text.to_owned()))
    }

    /// Where a SEND to this destination is published: (exchange, routing key). `None` for
    /// `/temp-queue/`, which only a `reply-to` may name.
    pub fn publish_target(&self) -> Option<(&str, &str)> {
        match self {
            Destination::Queue(q) | Destination::AmqQueue(q) | Destination::ReplyQueue(q) => {
                Some((DEFAULT_EXCHANGE, q))
            }
            Destination::Topic(key) => Some((TOPIC_EXCHANGE, key)),
            Destination::Exchange { exchange, key } => Some((exchange, key)),
            Destination::TempQueue(_) => None,
        }
    }
}

/// The `destination` header of a MESSAGE for a message published to `exchange` with
/// `routing_key`: the destination a STOMP client would SEND to for the same effect.
pub fn render(exchange: &str, routing_key: &str) -> String {
    match exchange {
        DEFAULT_EXCHANGE => format!("/queue/{routing_key}"),
        TOPIC_EXCHANGE => format!("/topic/{routing_key}"),
        exchange => format!("/exchange/{exchange}/{routing_key}"),
    }
}

/// The `reply-to` header a STOMP client sees for the core's `reply_to`. A bare name is an AMQP
/// queue name (what AMQP clients put there, and what a `/temp-queue/` becomes), which a STOMP
/// client reaches through `/reply-queue/`; a value that is already a destination is kept.
pub fn render_reply_to(reply_to: &str) -> String {
    if reply_to.starts_with('/') {
        reply_to.to_owned()
    } else {
        format!("/reply-queue/{reply_to}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_parses() {
        let cases = [
            ("/queue/q", Destination::Queue("q".into())),
            ("/amq/queue/q", Destination::AmqQueue("q".into())),
            ("/topic/a.b", Destination::Topic("a.b".into())),
            (
                "/reply-queue/amq.gen-x",
                Destination::ReplyQueue("amq.gen-x".into()),
            ),
            ("/temp-queue/t", Destination::TempQueue("t".into())),
            (
                "/exchange/x/a/b",
                Destination::Exchange {
                    exchange: "x".into(),
                    key: "a/b".into(),
                },
            ),
            (
                "/exchange/x",
                Destination::Exchange {
                    exchange: "x".into(),
                    key: String::new(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Destination::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn unknown_and_empty_destinations_are_refused() {
        assert!(matches!(
            Destination::parse("orders"),
            Err(DestinationError::Unknown(_))
        ));
        assert!(matches!(
            Destination::parse("/queue/"),
            Err(DestinationError::Empty(_))
        ));
        assert!(matches!(
            Destination::parse("/exchange//k"),
            Err(DestinationError::Empty(_))
        ));
    }

    #[test]
    fn publish_targets_follow_rabbitmq() {
        let target = |text: &str| {
            Destination::parse(text)
                .expect("valid")
                .publish_target()
                .map(|(x, k)| (x.to_owned(), k.to_owned()))
        };
        assert_eq!(target("/queue/q"), Some(("".into(), "q".into())));
        assert_eq!(
            target("/topic/a.b"),
            Some(("amq.topic".into(), "a.b".into()))
        );
        assert_eq!(target("/exchange/x/rk"), Some(("x".into(), "rk".into())));
        assert_eq!(target("/temp-queue/t"), None);
    }

    #[test]
    fn messages_render_as_the_destination_a_client_would_send_to() {
        assert_eq!(render("", "q"), "/queue/q");
        assert_eq!(render("amq.topic", "a.b"), "/topic/a.b");
        assert_eq!(render("x", "rk"), "/exchange/x/rk");
        assert_eq!(render_reply_to("amq.gen-1"), "/reply-queue/amq.gen-1");
        assert_eq!(render_reply_to("/queue/replies"), "/queue/replies");
    }
}
