//! What the interop matrix needs beyond the other helpers: MQTT 5 over WebSocket, STOMP over
//! WebSocket with the adapter's codec, and one protocol-neutral view of a received message
//! ([`Received`]) built from what each client library hands over.
//!
//! The views name properties by their text names (ARCHITECTURE.md, "the text form"): a
//! receiver's view says what that protocol showed, not what the core holds, so the matrix can
//! compare it with what the table says this receiver must see. Header values are text in the
//! table's text form; typed AMQP values are rendered here independently of the broker.

use std::collections::{BTreeMap, VecDeque};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use lapin::message::Delivery;
use lapin::types::AMQPValue;
use mqbridge_stomp::codec::{self, Command, Decoder, Frame, Version};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{self, WebSocket};
use super::{Broker, within};

/// What the client accepts from the broker in one frame.
const FRAME_SIZE_MAX: usize = 16 * 1024 * 1024;
/// AWS delivers at most this many message attributes with one message.
const SQS_ATTRIBUTES_MAX: usize = 10;
/// The SQS attribute (and the field of an SQS receiver's view) that marks a base64 body.
pub const TRANSFER_ENCODING: &str = "content-transfer-encoding";

impl Broker {
    /// rumqttc v5 options for MQTT 5 over `ws://` on `path`.
    pub fn mqtt5_ws_options(&self, client_id: &str, path: &str) -> rumqttc::v5::MqttOptions {
        let address = self.server.ws_addr;
        let url = format!("ws://{address}{path}");
        let mut options = rumqttc::v5::MqttOptions::new(client_id, url, address.port());
        options.set_transport(rumqttc::Transport::Ws);
        options.set_keep_alive(std::time::Duration::from_secs(30));
        options
    }
}

/// A task that ends when this is dropped (an MQTT event loop kept polling so that QoS 0
/// publishes leave and acks go out).
pub struct Background(pub tokio::task::AbortHandle);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A STOMP 1.2 session over WebSocket (`/ws`, subprotocol `v12.stomp`), frames written and
/// read with the adapter's codec: text WebSocket frames for UTF-8, binary ones otherwise.
pub struct StompWs {
    socket: WebSocket,
    input: BytesMut,
    decoder: Decoder,
    next_receipt: u32,
    /// Frames that arrived while [`StompWs::request`] waited for its receipt.
    held: VecDeque<Frame>,
}

impl StompWs {
    /// Connects as guest and waits for CONNECTED.
    pub async fn open(broker: &Broker) -> StompWs {
        let socket = websocket::open(broker.server.ws_addr, "/ws", "v12.stomp")
            .await
            .expect("upgrade");
        let mut decoder = Decoder::new(FRAME_SIZE_MAX);
        decoder.configure(Version::V1_2, FRAME_SIZE_MAX);
        let mut client = StompWs {
            socket,
            input: BytesMut::new(),
            decoder,
            next_receipt: 0,
            held: VecDeque::new(),
        };
        client.send(&super::stomp::connect_frame("1.2")).await;
        let connected = client.next().await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        client
    }

    pub async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        codec::encode(frame, Version::V1_2, &mut out);
        let message = match String::from_utf8(out.to_vec()) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(out.freeze()),
        };
        within(self.socket.send(message)).await.expect("send");
    }

    /// The next frame, bounded by [`super::WAIT`].
    pub async fn next(&mut self) -> Frame {
        if let Some(frame) = self.held.pop_front() {
            return frame;
        }
        within(async {
            loop {
                if let Some(frame) = self.decoder.decode(&mut self.input).expect("a frame") {
                    return frame;
                }
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => self.input.extend_from_slice(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => self.input.extend_from_slice(&bytes),
                    Some(Ok(_)) => {}
                    other => panic!("the STOMP WebSocket ended: {other:?}"),
                }
            }
        })
        .await
    }

    /// Sends `frame` with a receipt and waits for it, keeping MESSAGEs that come first.
    pub async fn request(&mut self, frame: Frame) {
        self.next_receipt += 1;
        let receipt = format!("r-{}", self.next_receipt);
        self.send(&frame.with("receipt", receipt.clone())).await;
        let mut early = VecDeque::new();
        loop {
            let frame = self.next().await;
            match frame.command {
                Command::Message => early.push_back(frame),
                Command::Receipt if frame.header("receipt-id") == Some(receipt.as_str()) => break,
                _ => panic!("expected RECEIPT {receipt}, got {frame:?}"),
            }
        }
        self.held.extend(early);
    }
}

/// One received message as its protocol showed it.
#[derive(Debug, Default)]
pub struct Received {
    pub body: Vec<u8>,
    /// Properties by text name (`persistent`, `message-id`, `correlation-id`, `reply-to`,
    /// `expiration`, ...), in this protocol's own units and address forms.
    pub fields: BTreeMap<&'static str, String>,
    /// Every other header, in text form; a repeated MQTT user property as a JSON array.
    pub headers: BTreeMap<String, String>,
    /// SQS only: the message came with AWS's maximum number of attributes, so the table
    /// allows further headers to be missing.
    pub attributes_full: bool,
}

/// Property text names that STOMP headers, MQTT 5 user properties and SQS attributes share.
/// `amqp-message-id` is the property `message-id`; MQTT 5 carries expiration in a field.
const TEXT_NAMES: &[(&str, &str)] = &[
    ("amqp-message-id", "message-id"),
    ("correlation-id", "correlation-id"),
    ("content-type", "content-type"),
    ("content-encoding", "content-encoding"),
    ("reply-to", "reply-to"),
    ("expiration", "expiration"),
    ("priority", "priority"),
    ("timestamp", "timestamp"),
    ("type", "type"),
    ("app-id", "app-id"),
    ("user-id", "user-id"),
];

fn field_name(text_name: &str) -> Option<&'static str> {
    TEXT_NAMES
        .iter()
        .find(|(name, _)| *name == text_name)
        .map(|(_, field)| *field)
}

impl Received {
    pub fn from_amqp(delivery: &Delivery) -> Received {
        let props = &delivery.properties;
        let mut received = Received {
            body: delivery.data.clone(),
            ..Received::default()
        };
        let persistent = *props.delivery_mode() == Some(2);
        received.field("persistent", Some(persistent.to_string()));
        let short = |value: &Option<lapin::types::ShortString>| {
            value.as_ref().map(|v| v.as_str().to_owned())
        };
        received.field("message-id", short(props.message_id()));
        received.field("correlation-id", short(props.correlation_id()));
        received.field("content-type", short(props.content_type()));
        received.field("content-encoding", short(props.content_encoding()));
        received.field("reply-to", short(props.reply_to()));
        received.field("expiration", short(props.expiration()));
        received.field("priority", props.priority().map(|p| p.to_string()));
        received.field("timestamp", props.timestamp().map(|t| t.to_string()));
        received.field("type", short(props.kind()));
        received.field("app-id", short(props.app_id()));
        received.field("user-id", short(props.user_id()));
        if let Some(headers) = props.headers() {
            for (name, value) in headers.inner() {
                received
                    .headers
                    .insert(name.as_str().to_owned(), amqp_text(value));
            }
        }
        received
    }

    pub fn from_mqtt311(publish: &rumqttc::Publish) -> Received {
        let mut received = Received {
            body: publish.payload.to_vec(),
            ..Received::default()
        };
        let persistent = publish.qos != rumqttc::QoS::AtMostOnce;
        received.field("persistent", Some(persistent.to_string()));
        received
    }

    pub fn from_mqtt5(publish: &rumqttc::v5::mqttbytes::v5::Publish) -> Received {
        let mut received = Received {
            body: publish.payload.to_vec(),
            ..Received::default()
        };
        let persistent = publish.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce;
        received.field("persistent", Some(persistent.to_string()));
        let Some(props) = &publish.properties else {
            return received;
        };
        let correlation = props.correlation_data.as_ref();
        let correlation = correlation.map(|data| String::from_utf8_lossy(data).into_owned());
        received.field("correlation-id", correlation);
        received.field("content-type", props.content_type.clone());
        received.field("reply-to", props.response_topic.clone());
        let expiry = props.message_expiry_interval.map(|s| s.to_string());
        received.field("expiration", expiry);
        if let Some(format) = props.payload_format_indicator {
            let name = "x-mqtt-payload-format".to_owned();
            received.headers.insert(name, format.to_string());
        }
        let mut repeated: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in &props.user_properties {
            repeated.entry(name).or_default().push(value);
        }
        for (name, values) in repeated {
            let text = match values.as_slice() {
                [one] => (*one).to_owned(),
                many => Value::from(many.to_vec()).to_string(),
            };
            match field_name(name).filter(|field| *field != "expiration") {
                Some(field) => received.field(field, Some(text)),
                None => {
                    received.headers.insert(name.to_owned(), text);
                }
            }
        }
        received
    }

    pub fn from_stomp(frame: &Frame) -> Received {
        /// Headers of the MESSAGE frame itself.
        const FRAME_HEADERS: &[&str] = &[
            "destination",
            "message-id",
            "subscription",
            "ack",
            "redelivered",
            "content-length",
        ];
        let mut received = Received {
            body: frame.body.to_vec(),
            ..Received::default()
        };
        let persistent = frame.header("persistent") == Some("true");
        received.field("persistent", Some(persistent.to_string()));
        for (name, value) in &frame.headers {
            if FRAME_HEADERS.contains(&name.as_str()) || name == "persistent" {
                continue;
            }
            match field_name(name) {
                Some(field) => received.field(field, Some(value.clone())),
                None => {
                    received.headers.insert(name.clone(), value.clone());
                }
            }
        }
        received
    }

    /// An SQS message received with all message and system attributes: a base64 body is
    /// decoded when `content-transfer-encoding: base64` says it is; the priority and the
    /// expiration must be Numbers (a String shows up as a mismatch).
    pub fn from_sqs(message: &aws_sdk_sqs::types::Message) -> Received {
        use aws_sdk_sqs::types::MessageSystemAttributeName as System;
        let mut received = Received::default();
        let attributes = message.message_attributes().cloned().unwrap_or_default();
        received.attributes_full = attributes.len() >= SQS_ATTRIBUTES_MAX;
        for (name, attribute) in &attributes {
            let text = match attribute.binary_value() {
                Some(blob) => bytes_text(blob.as_ref()),
                None => attribute.string_value().unwrap_or_default().to_owned(),
            };
            let numeric = attribute.data_type().starts_with("Number");
            match name.as_str() {
                TRANSFER_ENCODING => received.field(TRANSFER_ENCODING, Some(text)),
                "priority" | "expiration" if !numeric => {
                    let shown = format!("{text} (data type {})", attribute.data_type());
                    received.field(field_name(name).unwrap_or("?"), Some(shown));
                }
                _ => match field_name(name).filter(|f| !["message-id", "user-id"].contains(f)) {
                    Some(field) => received.field(field, Some(text)),
                    None => {
                        received.headers.insert(name.clone(), text);
                    }
                },
            }
        }
        let body = message.body().unwrap_or_default();
        received.body = match received.fields.get(TRANSFER_ENCODING).map(String::as_str) {
            Some("base64") => BASE64.decode(body).unwrap_or_else(|_| body.into()),
            _ => body.as_bytes().to_vec(),
        };
        received.field("message-id", message.message_id().map(str::to_owned));
        let system = message.attributes().cloned().unwrap_or_default();
        received.field("user-id", system.get(&System::SenderId).cloned());
        let sent_ms = system.get(&System::SentTimestamp);
        let sent = sent_ms
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| ms / 1000);
        received.field("timestamp", sent.map(|s| s.to_string()));
        received
    }

    fn field(&mut self, name: &'static str, value: Option<String>) {
        if let Some(value) = value {
            self.fields.insert(name, value);
        }
    }
}

/// Whether a body is SQS text (AWS's allowed characters), so that SQS delivers it as it is.
pub fn is_sqs_text(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|text| {
        text.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                || c >= '\u{10000}'
        })
    })
}

/// Bytes in text form: UTF-8 when they are, else base64.
pub fn bytes_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => BASE64.encode(bytes),
    }
}

/// An AMQP field value in the table's text form.
pub fn amqp_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::FieldArray(_) | AMQPValue::FieldTable(_) => amqp_json(value).to_string(),
        AMQPValue::Void => String::new(),
        // Shortest decimal that reads back as the same float of that width.
        AMQPValue::Float(v) => v.to_string(),
        AMQPValue::Double(v) => v.to_string(),
        other => match amqp_json(other) {
            Value::String(text) => text,
            json => json.to_string(),
        },
    }
}

/// An AMQP field value as JSON: the text form inside arrays and tables.
fn amqp_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(v) => Value::from(*v),
        AMQPValue::ShortShortInt(v) => Value::from(*v),
        AMQPValue::ShortShortUInt(v) => Value::from(*v),
        AMQPValue::ShortInt(v) => Value::from(*v),
        AMQPValue::ShortUInt(v) => Value::from(*v),
        AMQPValue::LongInt(v) => Value::from(*v),
        AMQPValue::LongUInt(v) => Value::from(*v),
        AMQPValue::LongLongInt(v) => Value::from(*v),
        AMQPValue::Timestamp(v) => Value::from(*v),
        AMQPValue::Float(v) => Value::from(*v),
        AMQPValue::Double(v) => Value::from(*v),
        AMQPValue::DecimalValue(d) => Value::from(decimal_text(d.scale, d.value)),
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(bytes_text(s.as_bytes())),
        AMQPValue::ByteArray(b) => Value::from(bytes_text(b.as_slice())),
        AMQPValue::FieldArray(items) => items.as_slice().iter().map(amqp_json).collect(),
        AMQPValue::FieldTable(table) => table
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), amqp_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        AMQPValue::Void => Value::Null,
    }
}

/// `value` / 10^`scale` in plain notation.
fn decimal_text(scale: u8, value: u32) -> String {
    let scale = usize::from(scale);
    let digits = format!("{value:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    match fraction {
        "" => whole.to_owned(),
        _ => format!("{whole}.{fraction}"),
    }
}
