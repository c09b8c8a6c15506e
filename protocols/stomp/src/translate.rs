//! SEND frames <-> the core's `Message`, and `Message` -> MESSAGE frames, at the adapter's edge.
//! The mapping is RabbitMQ's (its STOMP guide, "Queue Properties"), so AMQP clients see what
//! they would see there:
//!
//! | STOMP header | core (AMQP 0-9-1 names) |
//! |---|---|
//! | `content-type`, `content-encoding` | `content_type`, `content_encoding` |
//! | `persistent:true` / `false` | `delivery_mode` 2 / 1 |
//! | `priority` (0-255) | `priority` |
//! | `correlation-id` | `correlation_id` |
//! | `reply-to` | `reply_to` (a `/temp-queue/` becomes its real queue name first) |
//! | `expiration` (ms) | `expiration` (ms) |
//! | `amqp-message-id` (or `message-id` on SEND) | `message_id` |
//! | `timestamp` (s), `type`, `app-id` | `timestamp`, `type`, `app_id` |
//! | (the login) | `user_id`; a `user-id` header must equal the login (RabbitMQ's rule) |
//! | any other header | a string header of the same name |
//!
//! On MESSAGE, `message-id` is ours (the acknowledgement id), so the core's `message_id` goes
//! out as `amqp-message-id`. Headers of other types go in the text form of `broker-api`
//! (numbers in decimal, booleans as `true`/`false`, tables and arrays as JSON), so nothing is
//! dropped silently; a header whose name STOMP reserves for the frame itself
//! (`destination`, `content-length`, ...) is not delivered, since it would change the frame.

use mqbridge_broker_api::{HeaderValue, Headers, Message, Properties, own_body};

use crate::codec::{Command, Frame};
use crate::destination;

/// Headers that describe the SEND frame itself rather than the message.
const FRAME_HEADERS: &[&str] = &["destination", "receipt", "transaction", "content-length"];
/// Headers that describe the MESSAGE frame itself; a message header with one of these names
/// is not delivered.
const MESSAGE_FRAME_HEADERS: &[&str] = &[
    "destination",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
    "content-length",
    "receipt",
    "transaction",
];
/// Headers that map to properties, both ways.
const PROPERTY_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "persistent",
    "priority",
    "correlation-id",
    "reply-to",
    "expiration",
    "amqp-message-id",
    "message-id",
    "timestamp",
    "type",
    "app-id",
    "user-id",
];
/// Headers that configure the queue a SEND or SUBSCRIBE declares (RabbitMQ's set), not the
/// message.
pub const QUEUE_ARGUMENT_HEADERS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-overflow",
    "x-queue-name",
];

/// A SEND header whose value the core cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header '{name}' has the invalid value '{value}': {expected}")]
pub struct InvalidHeader {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Where a SEND goes and who sent it.
#[derive(Debug, Clone)]
pub struct Sent<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// The frame's `reply-to` after any temp queue was resolved.
    pub reply_to: Option<String>,
    /// The connection's login.
    pub user: &'a str,
}

/// Converts a SEND frame into the message it publishes.
pub fn message_in(frame: &Frame, sent: Sent<'_>) -> Result<Message, InvalidHeader> {
    if let Some(claimed) = frame.header("user-id").filter(|id| *id != sent.user) {
        return Err(InvalidHeader {
            name: "user-id",
            value: claimed.to_owned(),
            expected: "the login of this connection",
        });
    }
    let text = |name: &str| frame.header(name).map(str::to_owned);
    let delivery_mode = frame.header("persistent").map(|value| {
        if value.eq_ignore_ascii_case("true") {
            2
        } else {
            1
        }
    });
    let properties = Properties {
        content_type: text("content-type"),
        content_encoding: text("content-encoding"),
        headers: custom_headers(frame),
        delivery_mode,
        priority: number(frame, "priority", "an integer from 0 to 255")?,
        correlation_id: text("correlation-id"),
        reply_to: sent.reply_to,
        expiration_ms: number(frame, "expiration", "a number of milliseconds")?,
        message_id: text("amqp-message-id").or_else(|| text("message-id")),
        timestamp: number(frame, "timestamp", "seconds since the Unix epoch")?,
        kind: text("type"),
        app_id: text("app-id"),
        user_id: Some(sent.user.to_owned()),
        ..Properties::default()
    };
    Ok(Message {
        exchange: sent.exchange.to_owned(),
        routing_key: sent.routing_key.to_owned(),
        properties,
        body: own_body(&frame.body),
        body_md5: Default::default(),
    })
}

fn number<T: std::str::FromStr>(
    frame: &Frame,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, InvalidHeader> {
    let Some(value) = frame.header(name) else {
        return Ok(None);
    };
    value.trim().parse().map(Some).map_err(|_| InvalidHeader {
        name,
        value: value.to_owned(),
        expected,
    })
}

fn custom_headers(frame: &Frame) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in &frame.headers {
        let name = name.as_str();
        let skipped = FRAME_HEADERS.contains(&name)
            || PROPERTY_HEADERS.contains(&name)
            || QUEUE_ARGUMENT_HEADERS.contains(&name);
        // The first of repeated headers wins (STOMP 1.2, "Repeated Header Entries").
        if !skipped && headers.get(name).is_none() {
            headers.insert(name, HeaderValue::String(value.clone()));
        }
    }
    headers
}

/// What the connection knows about one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    /// Our acknowledgement id: the `message-id` header, and `ack` when one is needed.
    pub message_id: &'a str,
    pub subscription: &'a str,
    /// STOMP 1.2 and a client ack mode: repeat the id in an `ack` header.
    pub ack_header: bool,
    pub redelivered: bool,
}

/// The MESSAGE frame for a delivery.
pub fn message_out(message: &Message, delivered: Delivered<'_>) -> Frame {
    let props = &message.properties;
    let mut frame = Frame::new(Command::Message)
        .with(
            "destination",
            destination::render(&message.exchange, &message.routing_key),
        )
        .with("message-id", delivered.message_id)
        .with("subscription", delivered.subscription);
    if delivered.ack_header {
        frame = frame.with("ack", delivered.message_id);
    }
    frame = frame.with("redelivered", bool_text(delivered.redelivered));
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            frame.headers.push((name.to_owned(), value));
        }
    };
    add("content-type", props.content_type.clone());
    add("content-encoding", props.content_encoding.clone());
    add(
        "persistent",
        props.is_persistent().then(|| "true".to_owned()),
    );
    add("priority", props.priority.map(|p| p.to_string()));
    add("correlation-id", props.correlation_id.clone());
    add(
        "reply-to",
        props.reply_to.as_deref().map(destination::render_reply_to),
    );
    add("expiration", props.expiration_ms.map(|ms| ms.to_string()));
    add("amqp-message-id", props.message_id.clone());
    add("timestamp", props.timestamp.map(|t| t.to_string()));
    add("type", props.kind.clone());
    add("user-id", props.user_id.clone());
    add("app-id", props.app_id.clone());
    for (name, value) in props.headers.iter() {
        let reserved = MESSAGE_FRAME_HEADERS.contains(&name) || PROPERTY_HEADERS.contains(&name);
        if !reserved {
            frame.headers.push((name.to_owned(), value.to_text()));
        }
    }
    frame.body = message.body.clone();
    frame
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn to<'a>(exchange: &'a str, routing_key: &'a str, reply_to: Option<String>) -> Sent<'a> {
        Sent {
            exchange,
            routing_key,
            reply_to,
            user: "guest",
        }
    }

    #[test]
    fn the_login_is_the_publisher_and_cannot_be_claimed_otherwise() {
        let frame = Frame::new(Command::Send).with("user-id", "guest");
        let message = message_in(&frame, to("", "q", None)).expect("own login");
        assert_eq!(message.properties.user_id.as_deref(), Some("guest"));
        assert!(message.properties.headers.is_empty());
        let frame = Frame::new(Command::Send).with("user-id", "admin");
        let error = message_in(&frame, to("", "q", None)).expect_err("someone else");
        assert_eq!(error.name, "user-id");
    }

    fn send() -> Frame {
        Frame::new(Command::Send)
            .with("destination", "/queue/q")
            .with("receipt", "r1")
            .with("persistent", "true")
            .with("priority", "7")
            .with("correlation-id", "c-1")
            .with("expiration", "60000")
            .with("content-type", "text/plain")
            .with("amqp-message-id", "m-1")
            .with("x-max-priority", "9")
            .with("custom", "one")
            .with("custom", "two")
            .with_body(Bytes::from_static(b"hi"))
    }

    #[test]
    fn send_headers_become_properties_and_headers() {
        let message = message_in(&send(), to("", "q", Some("amq.gen-r".into()))).expect("valid");
        let props = &message.properties;
        assert_eq!(props.delivery_mode, Some(2));
        assert_eq!(props.priority, Some(7));
        assert_eq!(props.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(props.expiration_ms, Some(60_000));
        assert_eq!(props.content_type.as_deref(), Some("text/plain"));
        assert_eq!(props.message_id.as_deref(), Some("m-1"));
        assert_eq!(props.reply_to.as_deref(), Some("amq.gen-r"));
        let names: Vec<_> = props.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["custom"]);
        assert_eq!(
            props.headers.get("custom"),
            Some(&HeaderValue::String("one".into()))
        );
        assert_eq!(message.body, Bytes::from_static(b"hi"));
    }

    #[test]
    fn invalid_numbers_are_refused() {
        let frame = Frame::new(Command::Send).with("priority", "high");
        let error = message_in(&frame, to("", "q", None)).expect_err("invalid");
        assert_eq!(error.name, "priority");
        let frame = Frame::new(Command::Send).with("expiration", "-1");
        assert!(message_in(&frame, to("", "q", None)).is_err());
    }

    #[test]
    fn a_delivery_carries_properties_and_typed_headers_as_text() {
        let mut message =
            message_in(&send(), to("amq.topic", "a.b", Some("amq.gen-r".into()))).expect("valid");
        let headers = &mut message.properties.headers;
        headers.insert("count", HeaderValue::I32(-3));
        headers.insert("flag", HeaderValue::Bool(true));
        headers.insert("price", HeaderValue::Decimal { scale: 2, value: 5 });
        headers.insert("destination", HeaderValue::String("/queue/evil".into()));
        let delivered = Delivered {
            message_id: "7-1",
            subscription: "s",
            ack_header: true,
            redelivered: false,
        };
        let frame = message_out(&message, delivered);
        assert_eq!(frame.header("destination"), Some("/topic/a.b"));
        assert_eq!(frame.header("message-id"), Some("7-1"));
        assert_eq!(frame.header("ack"), Some("7-1"));
        assert_eq!(frame.header("redelivered"), Some("false"));
        assert_eq!(frame.header("persistent"), Some("true"));
        assert_eq!(frame.header("reply-to"), Some("/reply-queue/amq.gen-r"));
        assert_eq!(frame.header("amqp-message-id"), Some("m-1"));
        assert_eq!(frame.header("count"), Some("-3"));
        assert_eq!(frame.header("flag"), Some("true"));
        assert_eq!(frame.header("price"), Some("0.05"));
        let destinations = frame.headers.iter().filter(|(n, _)| n == "destination");
        assert_eq!(destinations.count(), 1);
    }
}
