//! The matrix's vocabulary: the protocols, a destination per (publisher, receiver) pair, and
//! the two samples each publisher sends: a rich one with every property and header its
//! protocol can set, and a lean one.

use lapin::types::{AMQPValue, DecimalValue};

use crate::common::{table, text};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Amqp,
    Mqtt311,
    Mqtt5,
    Stomp,
    /// MQTT 5 over WebSocket (`/mqtt`), so that the whole table crosses the WebSocket framing.
    MqttWs,
    StompWs,
    Sqs,
    Sns,
}

pub const RECEIVERS: [Protocol; 7] = [
    Protocol::Amqp,
    Protocol::Mqtt311,
    Protocol::Mqtt5,
    Protocol::Stomp,
    Protocol::MqttWs,
    Protocol::StompWs,
    Protocol::Sqs,
];

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Amqp => "amqp",
            Protocol::Mqtt311 => "mqtt311",
            Protocol::Mqtt5 => "mqtt5",
            Protocol::Stomp => "stomp",
            Protocol::MqttWs => "mqtt5-ws",
            Protocol::StompWs => "stomp-ws",
            Protocol::Sqs => "sqs",
            Protocol::Sns => "sns",
        }
    }

    pub fn is_mqtt(self) -> bool {
        matches!(self, Protocol::Mqtt311 | Protocol::Mqtt5 | Protocol::MqttWs)
    }

    pub fn is_mqtt5(self) -> bool {
        matches!(self, Protocol::Mqtt5 | Protocol::MqttWs)
    }
}

/// Where one publisher sends to one receiver.
pub struct Destination {
    pub publisher: Protocol,
    pub receiver: Protocol,
    /// Routing key on `amq.topic`; for SNS also the topic's name (which allows no dots).
    pub key: String,
    /// The receiver's queue, or for MQTT receivers the dead-letter hop to the key.
    pub queue: String,
}

impl Destination {
    pub fn new(publisher: Protocol, receiver: Protocol) -> Destination {
        let (from, to) = (publisher.name(), receiver.name());
        let key = match publisher {
            Protocol::Sns => format!("sns-to-{to}"),
            _ => format!("{from}.to.{to}"),
        };
        Destination {
            publisher,
            receiver,
            key,
            queue: format!("matrix-{from}-to-{to}"),
        }
    }

    pub fn topic(&self) -> String {
        self.key.replace('.', "/")
    }

    /// The MQTT client id of the publisher, which AMQP consumers see as `x-mqtt-client-id`.
    pub fn client_id(&self) -> String {
        format!("{}-to-{}", self.publisher.name(), self.receiver.name())
    }

    pub fn pair(&self) -> String {
        format!("{} -> {}", self.publisher.name(), self.receiver.name())
    }
}

/// One message as its publisher means it, in the core's terms.
pub struct Sample {
    pub label: &'static str,
    pub body: Vec<u8>,
    pub persistent: bool,
    /// Properties by text name, in the core's form: `reply-to` as a reply address,
    /// `expiration` in ms. Each publisher maps them to its protocol's fields.
    pub properties: Vec<(&'static str, String)>,
    /// User headers; protocols that carry only text send the text form.
    pub headers: Vec<(&'static str, AMQPValue)>,
    /// MQTT 5 Payload Format Indicator.
    pub payload_format: Option<u8>,
}

/// A rich sample with everything `publisher` can set, and a lean one.
pub fn samples(publisher: Protocol) -> [Sample; 2] {
    let name = publisher.name();
    let (rich_body, content_type) = match publisher {
        // SQS and SNS bodies are text; SQS's binary body is the lean sample, whose attributes
        // leave room for `content-transfer-encoding` within AWS's limit of 10.
        Protocol::Sqs | Protocol::Sns => (
            format!("rich text from {name}: \u{2713} <&>").into_bytes(),
            "text/plain; charset=utf-8",
        ),
        _ => {
            let body = [
                &[0x00, 0xff, 0xfe, 0x80][..],
                b"rich ",
                name.as_bytes(),
                &[0],
            ];
            (body.concat(), "application/octet-stream")
        }
    };
    let lean_body = match publisher {
        Protocol::Sqs => [&[0xff, 0x00][..], b"lean sqs bytes"].concat(),
        _ => format!("lean text from {name}").into_bytes(),
    };
    let lean_headers = match publisher {
        Protocol::Mqtt311 => Vec::new(),
        _ => vec![("tenant", text("acme"))],
    };
    let rich = Sample {
        label: "rich",
        body: rich_body,
        persistent: true,
        properties: rich_properties(publisher, content_type),
        headers: rich_headers(publisher),
        payload_format: None,
    };
    let lean = Sample {
        label: "lean",
        body: lean_body,
        persistent: matches!(publisher, Protocol::Sqs | Protocol::Sns),
        properties: Vec::new(),
        headers: lean_headers,
        payload_format: publisher.is_mqtt5().then_some(1),
    };
    [rich, lean]
}

fn rich_properties(publisher: Protocol, content_type: &str) -> Vec<(&'static str, String)> {
    if publisher == Protocol::Mqtt311 {
        return Vec::new();
    }
    let name = publisher.name();
    let mut properties = vec![
        ("correlation-id", format!("corr-{name}")),
        ("content-type", content_type.to_owned()),
        ("content-encoding", "identity".to_owned()),
        ("reply-to", reply_address(publisher).to_owned()),
        ("priority", "5".to_owned()),
        ("type", "matrix.sample".to_owned()),
        ("app-id", "interop-matrix".to_owned()),
    ];
    // SQS and SNS assign the message id and the timestamp, and have no per-message expiry
    // (SendMessage uses the queue's retention period). The user is the login; AMQP and STOMP
    // may also state it.
    if !matches!(publisher, Protocol::Sqs | Protocol::Sns) {
        properties.push(("message-id", format!("id-{name}")));
        properties.push(("expiration", "60000".to_owned()));
        properties.push(("timestamp", "1700000000".to_owned()));
    }
    if matches!(
        publisher,
        Protocol::Amqp | Protocol::Stomp | Protocol::StompWs
    ) {
        properties.push(("user-id", "guest".to_owned()));
    }
    properties
}

/// The reply address each publisher asks for (core form); together they cover a queue name,
/// `/topic/RK` and `/exchange/X/RK`, and MQTT's `$queue/` and `$exchange/` on the way in.
fn reply_address(publisher: Protocol) -> &'static str {
    match publisher {
        Protocol::Amqp => "amqp-replies",
        Protocol::Mqtt5 => "/topic/replies.mqtt5",
        Protocol::MqttWs => "ws-replies",
        Protocol::Stomp => "/exchange/amq.direct/stomp-replies",
        Protocol::StompWs => "/topic/replies.stomp-ws",
        Protocol::Sqs => "sqs-replies",
        Protocol::Sns | Protocol::Mqtt311 => "/exchange/amq.direct/sns-replies",
    }
}

fn rich_headers(publisher: Protocol) -> Vec<(&'static str, AMQPValue)> {
    match publisher {
        Protocol::Mqtt311 => Vec::new(),
        Protocol::Amqp => vec![
            ("tenant", text("acme")),
            ("retries", AMQPValue::LongInt(3)),
            ("urgent", AMQPValue::Boolean(true)),
            ("ratio", AMQPValue::Double(0.25)),
            (
                "price",
                AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 5 }),
            ),
            ("raw", AMQPValue::ByteArray(vec![0xff, 0x00].into())),
            ("sent", AMQPValue::Timestamp(1_700_000_000)),
            (
                "tags",
                AMQPValue::FieldArray(vec![text("a"), AMQPValue::LongInt(1)].into()),
            ),
            (
                "meta",
                AMQPValue::FieldTable(table(&[("k", text("v")), ("none", AMQPValue::Void)])),
            ),
        ],
        // A repeated user property is one header holding an array of strings.
        Protocol::Mqtt5 | Protocol::MqttWs => {
            vec![
                ("tenant", text("acme")),
                ("tag", text("a")),
                ("tag", text("b")),
            ]
        }
        Protocol::Stomp | Protocol::StompWs => {
            vec![("tenant", text("acme")), ("region", text("eu"))]
        }
        Protocol::Sqs | Protocol::Sns => vec![
            ("tenant", text("acme")),
            ("retries", AMQPValue::LongInt(3)),
            ("blob", AMQPValue::ByteArray(vec![0xff, 0x00, 0x01].into())),
        ],
    }
}
