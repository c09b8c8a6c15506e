//! MQTT PUBLISH <-> the core's `Message`, at the adapter's edge, by the table in
//! ARCHITECTURE.md ("One message, every protocol"). In short:
//!
//! | MQTT | core (AMQP 0-9-1 names) |
//! |---|---|
//! | topic `a/b` | exchange `amq.topic`, routing key `a.b`; `$queue/q` and `$exchange/x/rk` are addresses (see `topic.rs`) |
//! | QoS 0 / QoS 1, 2 | `delivery_mode` 1 / 2, and header `x-mqtt-publish-qos` |
//! | Message Expiry Interval (s) | `expiration` (ms) |
//! | Content Type | `content_type` |
//! | Correlation Data | `correlation_id` when it is UTF-8, else header `x-correlation-id` (bytes) |
//! | Response Topic | `reply_to`, a reply address (`a/b` is `/topic/a.b`, `$queue/q` is `q`) |
//! | Payload Format Indicator | header `x-mqtt-payload-format` |
//! | RETAIN set by the publisher | header `x-mqtt-retain` (for Retain As Published) |
//! | user properties named `content-encoding`, `priority`, `amqp-message-id`, `timestamp`, `type`, `app-id` | those properties (when the value is valid for them) |
//! | other user properties | headers, as strings |
//! | publishing client id, username | headers `x-mqtt-client-id`, `x-mqtt-username`; `user_id` is the username |
//!
//! MQTT subscribers are not told who published (`user_id` and the two headers stay behind), as
//! with Mosquitto. Headers that are not strings reach MQTT 5 clients in the text form of
//! `broker-api` (JSON for tables and arrays), never dropped.

use bytes::Bytes;
use mqbridge_broker_api::text::{self, names};
use mqbridge_broker_api::{HeaderValue, Headers, Message, Properties, own_body};

use crate::codec::{PacketId, Publish, PublishProperties, QoS};
use crate::topic;

/// The exchange every MQTT topic lives on.
pub const TOPIC_EXCHANGE: &str = mqbridge_broker_api::reply::TOPIC_EXCHANGE;
/// The QoS the message was published with (RabbitMQ's header name).
pub const PUBLISH_QOS_HEADER: &str = "x-mqtt-publish-qos";
pub const CLIENT_ID_HEADER: &str = "x-mqtt-client-id";
pub const USERNAME_HEADER: &str = "x-mqtt-username";
const CORRELATION_HEADER: &str = "x-correlation-id";
const PAYLOAD_FORMAT_HEADER: &str = "x-mqtt-payload-format";
/// Set on messages published with RETAIN, so that a Retain As Published subscription can
/// forward the flag [MQTT-3.3.1-13].
const RETAIN_HEADER: &str = "x-mqtt-retain";

/// Headers this adapter sets itself; they are not echoed back as MQTT user properties. The
/// publisher's identity is for AMQP consumers; MQTT subscribers never saw it from Mosquitto and
/// should not learn it from us.
const OWN_HEADERS: &[&str] = &[
    PUBLISH_QOS_HEADER,
    CLIENT_ID_HEADER,
    USERNAME_HEADER,
    CORRELATION_HEADER,
    PAYLOAD_FORMAT_HEADER,
    RETAIN_HEADER,
];

/// Who published, as AMQP consumers see it.
#[derive(Debug, Clone, Copy)]
pub struct Publisher<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
}

/// Converts a client's PUBLISH into the core's message.
pub fn message_in(publish: &Publish, publisher: Publisher<'_>) -> Message {
    let props = &publish.properties;
    let mut properties = Properties {
        content_type: props.content_type.clone(),
        delivery_mode: Some(if publish.qos == QoS::AtMostOnce { 1 } else { 2 }),
        reply_to: props
            .response_topic
            .as_deref()
            .map(topic::response_topic_to_reply_to),
        expiration_ms: props.message_expiry_interval.map(|s| u64::from(s) * 1000),
        user_id: publisher.username.map(str::to_owned),
        ..Properties::default()
    };
    for (name, value) in &props.user_properties {
        // `user-id` says who published, which the login decides. A name repeated after it set
        // its property stays a header, so no value is lost.
        if name == names::USER_ID || !text::set_named_property(&mut properties, name, value) {
            add_user_property(&mut properties.headers, name, value);
        }
    }
    let headers = &mut properties.headers;
    headers.insert(PUBLISH_QOS_HEADER, HeaderValue::U8(publish.qos as u8));
    headers.insert(
        CLIENT_ID_HEADER,
        HeaderValue::String(publisher.client_id.to_owned()),
    );
    if let Some(username) = publisher.username {
        headers.insert(USERNAME_HEADER, HeaderValue::String(username.to_owned()));
    }
    if publish.retain {
        headers.insert(RETAIN_HEADER, HeaderValue::Bool(true));
    }
    if let Some(format) = props.payload_format_indicator {
        headers.insert(PAYLOAD_FORMAT_HEADER, HeaderValue::U8(format));
    }
    properties.correlation_id =
        props
            .correlation_data
            .as_ref()
            .and_then(|data| match std::str::from_utf8(data) {
                Ok(text) => Some(text.to_owned()),
                Err(_) => {
                    headers.insert(CORRELATION_HEADER, HeaderValue::Bytes(own_body(data)));
                    None
                }
            });
    let (exchange, routing_key) = topic::publish_route(&publish.topic);
    Message {
        exchange,
        routing_key,
        properties,
        body: own_body(&publish.payload),
        body_md5: Default::default(),
    }
}

/// The QoS a message was published with, whatever protocol published it: MQTT's own header,
/// else persistent messages count as QoS 1 (RabbitMQ's rule).
pub fn published_qos(message: &Message) -> QoS {
    let header = message
        .properties
        .headers
        .get(PUBLISH_QOS_HEADER)
        .and_then(HeaderValue::as_i64);
    match header {
        Some(2) => QoS::ExactlyOnce,
        Some(1) => QoS::AtLeastOnce,
        Some(_) => QoS::AtMostOnce,
        None if message.properties.is_persistent() => QoS::AtLeastOnce,
        None => QoS::AtMostOnce,
    }
}

/// Whether the message was published with RETAIN set (by an MQTT client).
pub fn published_retain(message: &Message) -> bool {
    matches!(
        message.properties.headers.get(RETAIN_HEADER),
        Some(HeaderValue::Bool(true))
    )
}

/// Builds the PUBLISH for a subscriber. `v5` adds the properties MQTT 5 carries.
pub fn publish_out(
    message: &Message,
    qos: QoS,
    packet_id: Option<PacketId>,
    dup: bool,
    v5: bool,
) -> Publish {
    Publish {
        dup,
        qos,
        retain: false,
        topic: topic::delivered_name(&message.routing_key),
        packet_id,
        payload: message.body.clone(),
        properties: if v5 {
            properties_out(&message.properties)
        } else {
            PublishProperties::default()
        },
    }
}

fn properties_out(props: &Properties) -> PublishProperties {
    let headers = &props.headers;
    let correlation_data = match (&props.correlation_id, headers.get(CORRELATION_HEADER)) {
        (_, Some(HeaderValue::Bytes(data))) => Some(data.clone()),
        (Some(id), _) => Some(Bytes::from(id.clone().into_bytes())),
        (None, _) => None,
    };
    // Properties without an MQTT field go first, under their text names; not the publisher's
    // identity, and not the expiry (which has a field).
    let mut user_properties: Vec<(String, String)> = text::named_properties(props)
        .into_iter()
        .filter(|(name, _)| ![names::USER_ID, names::EXPIRATION].contains(name))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    for (name, value) in headers
        .iter()
        .filter(|(name, _)| !OWN_HEADERS.contains(name))
    {
        match value {
            // A repeated user property comes back as the same name repeated (see
            // `add_user_property`).
            HeaderValue::Array(items) if items.iter().all(|i| i.as_str().is_some()) => {
                user_properties.extend(items.iter().map(|i| (name.to_owned(), i.to_text())));
            }
            _ => user_properties.push((name.to_owned(), value.to_text())),
        }
    }
    for (name, value) in &mut user_properties {
        without_nul(name);
        without_nul(value);
    }
    PublishProperties {
        payload_format_indicator: headers
            .get(PAYLOAD_FORMAT_HEADER)
            .and_then(HeaderValue::as_i64)
            .and_then(|v| u8::try_from(v).ok()),
        message_expiry_interval: props
            .expiration_ms
            .map(|ms| u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)),
        topic_alias: None,
        response_topic: props.reply_to.as_deref().map(|reply_to| {
            let mut topic = topic::reply_to_to_response_topic(reply_to);
            without_nul(&mut topic);
            topic
        }),
        correlation_data,
        user_properties,
        subscription_identifiers: Vec::new(),
        content_type: props.content_type.clone().map(|mut text| {
            without_nul(&mut text);
            text
        }),
    }
}

/// MQTT strings must not hold U+0000 [MQTT-1.5.4-2], but other protocols' strings may: such a
/// character goes out as U+FFFD, visibly replaced rather than dropped.
fn without_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

/// Adds a user property to the headers. MQTT 5 allows a name more than once [MQTT-3.3.2-18];
/// headers have unique names, so a repeated name becomes an array of its values in order.
/// Values of one name keep their order; the interleaving with other names is not kept.
fn add_user_property(headers: &mut Headers, name: &str, value: &str) {
    let value = HeaderValue::String(value.to_owned());
    match headers.get(name).cloned() {
        None => headers.insert(name, value),
        Some(HeaderValue::Array(mut items)) => {
            items.push(value);
            headers.insert(name, HeaderValue::Array(items));
        }
        Some(first) => headers.insert(name, HeaderValue::Array(vec![first, value])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: "sensors/room.1/temp".to_owned(),
            packet_id: None,
            payload: Bytes::from_static(b"21.5"),
            properties: PublishProperties {
                content_type: Some("text/plain".to_owned()),
                correlation_data: Some(Bytes::from_static(b"req-1")),
                response_topic: Some("replies/me".to_owned()),
                user_properties: vec![("unit".to_owned(), "C".to_owned())],
                message_expiry_interval: Some(30),
                ..PublishProperties::default()
            },
        }
    }

    #[test]
    fn a_publish_becomes_an_amq_topic_message() {
        let publisher = Publisher {
            client_id: "dev-1",
            username: Some("guest"),
        };
        let message = message_in(&publish(QoS::AtLeastOnce), publisher);
        assert_eq!(message.exchange, "amq.topic");
        assert_eq!(message.routing_key, "sensors.room/1.temp");
        assert!(message.properties.is_persistent());
        assert_eq!(message.properties.expiration_ms, Some(30_000));
        assert_eq!(message.properties.correlation_id.as_deref(), Some("req-1"));
        let client = message
            .properties
            .headers
            .get(CLIENT_ID_HEADER)
            .and_then(HeaderValue::as_str);
        assert_eq!(client, Some("dev-1"));
        assert_eq!(published_qos(&message), QoS::AtLeastOnce);
    }

    #[test]
    fn mqtt_5_properties_survive_the_round_trip() {
        let original = publish(QoS::AtMostOnce);
        let publisher = Publisher {
            client_id: "dev-1",
            username: None,
        };
        let message = message_in(&original, publisher);
        let out = publish_out(&message, QoS::AtMostOnce, None, false, true);
        assert_eq!(out.topic, original.topic);
        assert_eq!(out.payload, original.payload);
        let props = out.properties;
        assert_eq!(props.content_type, original.properties.content_type);
        assert_eq!(props.correlation_data, original.properties.correlation_data);
        assert_eq!(props.response_topic, original.properties.response_topic);
        assert_eq!(props.message_expiry_interval, Some(30));
        assert!(
            props
                .user_properties
                .contains(&("unit".to_owned(), "C".to_owned()))
        );
        assert!(
            !props
                .user_properties
                .iter()
                .any(|(k, _)| k == CLIENT_ID_HEADER),
            "the publisher's identity is for AMQP consumers only"
        );
    }

    #[test]
    fn repeated_user_properties_keep_every_value_in_order() {
        let mut original = publish(QoS::AtMostOnce);
        original.properties.user_properties = vec![
            ("k".to_owned(), "first".to_owned()),
            ("z".to_owned(), "1".to_owned()),
            ("k".to_owned(), "second".to_owned()),
        ];
        let publisher = Publisher {
            client_id: "dev-1",
            username: None,
        };
        let out = publish_out(
            &message_in(&original, publisher),
            QoS::AtMostOnce,
            None,
            false,
            true,
        );
        let pairs: Vec<(&str, &str)> = out
            .properties
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("k", "first"), ("k", "second"), ("z", "1")]);
    }

    #[test]
    fn persistent_amqp_messages_count_as_qos_1() {
        let mut message = Message::default();
        assert_eq!(published_qos(&message), QoS::AtMostOnce);
        message.properties.delivery_mode = Some(2);
        assert_eq!(published_qos(&message), QoS::AtLeastOnce);
    }
    #[test]
    fn amqp_properties_without_an_mqtt_field_travel_as_named_user_properties() {
        let mut death = Headers::new();
        death.insert("queue", HeaderValue::String("q".into()));
        let mut message = Message::default();
        let props = &mut message.properties;
        props.priority = Some(7);
        props.kind = Some("order".into());
        props.user_id = Some("guest".into());
        props.reply_to = Some("amq.gen-1".into());
        props.headers.insert(
            "x-death",
            HeaderValue::Array(vec![HeaderValue::Table(death)]),
        );
        let out = publish_out(&message, QoS::AtMostOnce, None, false, true).properties;
        let pairs: Vec<(&str, &str)> = out
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("priority", "7"),
                ("type", "order"),
                ("x-death", r#"[{"queue":"q"}]"#)
            ]
        );
        assert_eq!(out.response_topic.as_deref(), Some("$queue/amq.gen-1"));

        let mut back = publish(QoS::AtMostOnce);
        back.properties.user_properties = out.user_properties;
        back.properties.response_topic = out.response_topic;
        let publisher = Publisher {
            client_id: "dev-1",
            username: Some("dev"),
        };
        let again = message_in(&back, publisher).properties;
        assert_eq!(again.priority, Some(7));
        assert_eq!(again.kind.as_deref(), Some("order"));
        assert_eq!(again.reply_to.as_deref(), Some("amq.gen-1"));
        assert_eq!(
            again.user_id.as_deref(),
            Some("dev"),
            "the login, not a claim"
        );
    }
}
