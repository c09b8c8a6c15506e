//! The mapping table's promises (ARCHITECTURE.md, "One message, every protocol"), checked over
//! generated messages with every protocol pair: a message published in protocol X (an arbitrary
//! message passed through X's own conversion, so it holds only what X can say) is delivered to
//! protocol Y, and Y's consumer view must say what the table says Y says. Pure conversions, no
//! sockets: the interop tests cover the wire.

use std::num::NonZeroU16;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mqbridge_broker_api::text::named_properties;
use mqbridge_broker_api::{HeaderValue, Headers, Message, Properties};
use mqbridge_mqtt::codec::{Publish, QoS};
use mqbridge_mqtt::{topic, translate as mqtt};
use mqbridge_sqs::attributes::{AttributeValue, MessageAttribute};
use mqbridge_sqs::translate as sqs;
use mqbridge_stomp::codec::{Command, Frame};
use mqbridge_stomp::{destination, translate as stomp};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Amqp,
    Mqtt311,
    Mqtt5,
    Stomp,
    Sqs,
}

const ALL: [Protocol; 5] = [
    Protocol::Amqp,
    Protocol::Mqtt311,
    Protocol::Mqtt5,
    Protocol::Stomp,
    Protocol::Sqs,
];

/// The user every adapter's publisher logged in as.
const USER: &str = "tester";

/// What a publisher in `protocol` sends when it passes on `message`: the protocol's consumer
/// view converted back by its publishing side.
fn through(protocol: Protocol, message: &Message) -> Message {
    match protocol {
        Protocol::Amqp => {
            let out = mqbridge_amqp::translate::properties_out(&message.properties);
            let properties =
                mqbridge_amqp::translate::properties_in(&out).expect("our own properties");
            Message {
                properties,
                ..message.clone()
            }
        }
        Protocol::Mqtt311 | Protocol::Mqtt5 => {
            let publish = mqtt_view(message, protocol == Protocol::Mqtt5);
            let publisher = mqtt::Publisher {
                client_id: "device",
                username: Some(USER),
            };
            mqtt::message_in(&publish, publisher)
        }
        Protocol::Stomp => {
            let mut frame = stomp_view(message);
            frame.command = Command::Send;
            // A client passing a MESSAGE on keeps its message headers, not the frame's own,
            // and cannot claim to be the original publisher.
            let own = [
                "destination",
                "message-id",
                "subscription",
                "redelivered",
                "user-id",
            ];
            frame
                .headers
                .retain(|(name, _)| !own.contains(&name.as_str()));
            let sent = stomp::Sent {
                exchange: &message.exchange,
                routing_key: &message.routing_key,
                reply_to: frame.header("reply-to").map(str::to_owned),
                user: USER,
            };
            stomp::message_in(&frame, sent).expect("a MESSAGE passed on is a valid SEND")
        }
        Protocol::Sqs => {
            let view = sqs::incoming(&Arc::new(message.clone()));
            sqs::outgoing("q", &view.body, &view.attributes, "id", 1_000)
        }
    }
}

/// The properties with their headers in name order, tables within too (an AMQP field table is
/// a map, so AMQP does not keep the order headers were set in), and UTF-8 bytes as strings (on
/// AMQP's wire both are the same long string).
fn sorted(properties: &Properties) -> Properties {
    fn sort(headers: &Headers) -> Headers {
        let mut pairs: Vec<(String, HeaderValue)> = headers
            .iter()
            .map(|(name, value)| (name.to_owned(), sort_value(value)))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.into_iter().collect()
    }
    fn sort_value(value: &HeaderValue) -> HeaderValue {
        match value {
            HeaderValue::Table(table) => HeaderValue::Table(sort(table)),
            HeaderValue::Array(items) => HeaderValue::Array(items.iter().map(sort_value).collect()),
            HeaderValue::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => HeaderValue::String(text.to_owned()),
                Err(_) => value.clone(),
            },
            other => other.clone(),
        }
    }
    Properties {
        headers: sort(&properties.headers),
        ..properties.clone()
    }
}

fn mqtt_view(message: &Message, v5: bool) -> Publish {
    let qos = mqtt::published_qos(message);
    let packet_id = (qos != QoS::AtMostOnce).then_some(NonZeroU16::MIN);
    mqtt::publish_out(message, qos, packet_id, false, v5)
}

fn stomp_view(message: &Message) -> Frame {
    let delivered = stomp::Delivered {
        message_id: "1",
        subscription: "s",
        ack_header: false,
        redelivered: false,
    };
    stomp::message_out(message, delivered)
}

/// Checks that `protocol`'s consumer sees `sent` as the table says; returns what is wrong.
fn check(protocol: Protocol, sent: &Message) -> Result<(), String> {
    match protocol {
        Protocol::Amqp => {
            let out = mqbridge_amqp::translate::properties_out(&sent.properties);
            let got = mqbridge_amqp::translate::properties_in(&out).map_err(|e| e.clone())?;
            same("AMQP properties", &sorted(&got), &sorted(&sent.properties))
        }
        Protocol::Mqtt311 | Protocol::Mqtt5 => check_mqtt(sent, protocol == Protocol::Mqtt5),
        Protocol::Stomp => check_stomp(sent),
        Protocol::Sqs => check_sqs(sent),
    }
}

fn check_mqtt(sent: &Message, v5: bool) -> Result<(), String> {
    let publish = mqtt_view(sent, v5);
    same("body", &publish.payload, &sent.body)?;
    let persistent = sent.properties.is_persistent();
    same("QoS", &(publish.qos != QoS::AtMostOnce), &persistent)?;
    same(
        "topic",
        &publish.topic,
        &topic::routing_key_to_name(&sent.routing_key),
    )?;
    let props = &publish.properties;
    if !v5 {
        return same("3.1.1 properties", props, &Default::default());
    }
    let p = &sent.properties;
    same("content type", &props.content_type, &p.content_type)?;
    let correlation = props.correlation_data.as_ref().map(|d| d.to_vec());
    let expected = p.correlation_id.as_ref().map(|c| c.as_bytes().to_vec());
    same("correlation data", &correlation, &expected)?;
    let response = p.reply_to.as_deref().map(topic::reply_to_to_response_topic);
    same("response topic", &props.response_topic, &response)?;
    let expiry = p.expiration_ms.map(|ms| ms.div_ceil(1000));
    same(
        "expiry",
        &props.message_expiry_interval.map(u64::from),
        &expiry,
    )?;
    let text: Vec<(String, String)> = props.user_properties.clone();
    // Not shown to MQTT: who published, and the expiry (it has a field).
    for (name, value) in named_properties(p) {
        let hidden = name == "user-id" || name == "expiration";
        let shown = text.iter().any(|(n, v)| n == name && *v == value);
        same(name, &shown, &!hidden)?;
    }
    for (name, value) in p.headers.iter().filter(|(n, _)| !n.starts_with("x-mqtt-")) {
        let values: Vec<&str> = text
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        same(
            name,
            &values,
            &mqtt_texts(value).iter().map(String::as_str).collect(),
        )?;
    }
    Ok(())
}

/// The user properties a header becomes: an array of strings is a repeated name, and U+0000,
/// which MQTT strings cannot hold, is U+FFFD.
fn mqtt_texts(value: &HeaderValue) -> Vec<String> {
    let texts = match value {
        HeaderValue::Array(items) if items.iter().all(|i| i.as_str().is_some()) => {
            items.iter().map(HeaderValue::to_text).collect()
        }
        other => vec![other.to_text()],
    };
    texts
        .into_iter()
        .map(|t| t.replace('\0', "\u{FFFD}"))
        .collect()
}

fn check_stomp(sent: &Message) -> Result<(), String> {
    let frame = stomp_view(sent);
    same("body", &frame.body, &sent.body)?;
    let p = &sent.properties;
    same(
        "destination",
        &frame.header("destination").map(str::to_owned),
        &Some(destination::render(&sent.exchange, &sent.routing_key)),
    )?;
    let persistent = frame.header("persistent") == Some("true");
    same("persistent", &persistent, &p.is_persistent())?;
    let header = |name: &str| frame.header(name).map(str::to_owned);
    same("content-type", &header("content-type"), &p.content_type)?;
    same(
        "correlation-id",
        &header("correlation-id"),
        &p.correlation_id,
    )?;
    let reply = p.reply_to.as_deref().map(destination::render_reply_to);
    same("reply-to", &header("reply-to"), &reply)?;
    for (name, value) in named_properties(p) {
        same(name, &header(name), &Some(value))?;
    }
    for (name, value) in p.headers.iter() {
        same(name, &header(name), &Some(value.to_text()))?;
    }
    Ok(())
}

fn check_sqs(sent: &Message) -> Result<(), String> {
    let view = sqs::incoming(&Arc::new(sent.clone()));
    let text = std::str::from_utf8(&sent.body)
        .ok()
        .filter(|t| sqs::is_valid_text(t));
    let encoded = attribute(&view.attributes, "content-transfer-encoding");
    match text {
        Some(text) => {
            same("body", &view.body.as_str(), &text)?;
            same("transfer encoding", &encoded, &None)?;
        }
        None => {
            let body = BASE64.decode(&view.body).map_err(|e| e.to_string())?;
            same("body", &body.as_slice(), &sent.body.as_ref())?;
            same("transfer encoding", &encoded, &Some("base64".to_owned()))?;
        }
    }
    let p = &sent.properties;
    same(
        "content-type",
        &attribute(&view.attributes, "content-type"),
        &p.content_type,
    )?;
    let correlation = attribute(&view.attributes, "correlation-id");
    same("correlation-id", &correlation, &p.correlation_id)?;
    same(
        "reply-to",
        &attribute(&view.attributes, "reply-to"),
        &p.reply_to,
    )?;
    let priority = attribute(&view.attributes, "priority");
    same("priority", &priority, &p.priority.map(|v| v.to_string()))?;
    // AWS allows 10 attributes: past that, headers are not delivered (the table says so).
    let full = view.attributes.len() == mqbridge_sqs::attributes::ATTRIBUTES_MAX;
    for (name, value) in p.headers.iter() {
        match attribute(&view.attributes, name) {
            None if full => {}
            got => same(name, &got, &Some(value.to_text()))?,
        }
    }
    Ok(())
}

fn attribute(attributes: &[MessageAttribute], name: &str) -> Option<String> {
    let found = attributes.iter().find(|a| a.name == name)?;
    Some(match &found.value {
        AttributeValue::Text(text) => text.clone(),
        AttributeValue::Binary(bytes) => HeaderValue::Bytes(Bytes::from(bytes.clone())).to_text(),
    })
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

// ---- Generated messages: everything AMQP can say, within what the table promises. ----

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9.-]{0,12}"
}

/// Text a person might put in a property: any printable characters, never empty.
fn text() -> impl Strategy<Value = String> {
    "[^\\p{C}]{1,16}"
}

fn reply_to() -> impl Strategy<Value = String> {
    prop_oneof![
        word(),
        word().prop_map(|key| format!("/topic/{key}")),
        (word(), word()).prop_map(|(x, key)| format!("/exchange/{x}/{key}")),
    ]
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    let scalar = prop_oneof![
        text().prop_map(HeaderValue::String),
        any::<i32>().prop_map(HeaderValue::I32),
        any::<i64>().prop_map(HeaderValue::I64),
        any::<bool>().prop_map(HeaderValue::Bool),
        vec(any::<u8>(), 1..16).prop_map(|b| HeaderValue::Bytes(b.into())),
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 2..4).prop_map(HeaderValue::Array),
            vec(("[a-z]{1,6}", inner), 1..4)
                .prop_map(|pairs| HeaderValue::Table(pairs.into_iter().collect::<Headers>())),
        ]
    })
}

fn properties() -> impl Strategy<Value = Properties> {
    let headers = vec(("h-[a-z]{1,8}", header_value()), 0..4)
        .prop_map(|pairs| pairs.into_iter().collect::<Headers>());
    (
        (of(text()), of(text()), of(text()), of(reply_to())),
        (
            of(1u8..=2),
            of(any::<u8>()),
            of(1u64..10_000_000),
            of(text()),
        ),
        (of(text()), of(text()), of(1u64..2_000_000_000)),
        headers,
    )
        .prop_map(
            |(
                (content_type, content_encoding, correlation_id, reply_to),
                (delivery_mode, priority, expiration_ms, message_id),
                (kind, app_id, timestamp),
                headers,
            )| Properties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration_ms,
                message_id,
                timestamp,
                kind,
                app_id,
                user_id: Some(USER.to_owned()),
                ..Properties::default()
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        text().prop_map(|t| Bytes::from(t.into_bytes())),
        vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ];
    (word(), properties(), body).prop_map(|(key, properties, body)| Message {
        exchange: "amq.topic".to_owned(),
        routing_key: key,
        properties,
        body,
        body_md5: Default::default(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_pair_keeps_the_tables_promises(original in message()) {
        for from in ALL {
            let published = through(from, &original);
            for to in ALL {
                if let Err(wrong) = check(to, &published) {
                    return Err(TestCaseError::fail(format!("{from:?} -> {to:?}: {wrong}")));
                }
            }
        }
    }

    #[test]
    fn what_a_protocol_can_say_survives_its_own_round_trip(original in message()) {
        for protocol in ALL {
            let once = through(protocol, &original);
            let twice = through(protocol, &once);
            let mut expected = sorted(&once.properties);
            let mut got = sorted(&twice.properties);
            // SQS gives each send its own time.
            if protocol == Protocol::Sqs {
                expected.timestamp = None;
                got.timestamp = None;
            }
            prop_assert_eq!(&got, &expected, "{:?}", protocol);
            prop_assert_eq!(&twice.body, &once.body, "{:?}", protocol);
        }
    }
}
