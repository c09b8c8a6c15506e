//! SQS messages <-> the core's [`Message`], by the mapping table in ARCHITECTURE.md ("One
//! message, every protocol").
//!
//! - Every SQS message is persistent (`delivery_mode` 2) and gets a UUID `message_id`.
//! - Message attributes become AMQP headers: String as text, Binary as bytes, Number as an
//!   integer when its text is a canonical integer, else as text. Data types the header value
//!   cannot carry (custom `.suffix` types, non-canonical numbers) are kept in the
//!   [`DATA_TYPES_HEADER`] table so that SQS consumers get the exact type back: the attribute
//!   digest covers it.
//! - Properties travel as attributes under their text names, both ways: String attributes
//!   `content-type`, `content-encoding`, `correlation-id`, `reply-to`, `type`, `app-id` and the
//!   Number attribute `priority`. (The message id, timestamp and publisher have SQS fields:
//!   MessageId, SentTimestamp, SenderId. The expiry is enforced, not shown: SQS has no
//!   per-message expiry.)
//! - A body that is not valid SQS text (a binary AMQP or MQTT payload) is delivered base64
//!   encoded with a `content-transfer-encoding: base64` attribute; a SendMessage with that
//!   attribute whose body decodes to bytes that are not SQS text is stored decoded, so those
//!   bytes reach AMQP, MQTT and STOMP consumers and SQS consumers get the same body back.
//! - Headers that are not strings, numbers or bytes (tables, arrays, booleans) become String
//!   attributes in the text form of `broker-api` (JSON for tables and arrays). AWS allows 10
//!   attributes; further ones are not delivered to SQS consumers, and are logged.
//! - The message group, deduplication id and sequence number of FIFO messages are headers
//!   (`crate::fifo`); SQS consumers get them as the system attributes MessageGroupId,
//!   MessageDeduplicationId and SequenceNumber, not as message attributes. The queue a message
//!   was dead-lettered from (`crate::move_tasks`) is the system attribute
//!   DeadLetterQueueSourceArn.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mqbridge_broker_api::text::{self, names};
use mqbridge_broker_api::{HeaderValue, Headers, Message, Properties};

use crate::attributes::{ATTRIBUTES_MAX, AttributeValue, MessageAttribute};
use crate::fifo::{DEDUPLICATION_HEADER, MESSAGE_GROUP_HEADER, SEQUENCE_HEADER};
use crate::move_tasks::DEAD_LETTER_SOURCE_HEADER;

/// Header holding the SQS data types that the header values alone do not say.
pub const DATA_TYPES_HEADER: &str = "x-sqs-data-types";

/// Attribute names that travel as AMQP properties rather than headers.
const CONTENT_TYPE: &str = "content-type";
const CORRELATION_ID: &str = "correlation-id";
const REPLY_TO: &str = "reply-to";
/// The attribute that says a body is base64 (of bytes that are not SQS text).
const TRANSFER_ENCODING: &str = "content-transfer-encoding";

/// AWS's allowed message characters: `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF`.
///
/// Checked on the bytes, since every body passes here on send and on receive: a `str` holds no
/// surrogates, so what is left out is the C0 controls but tab, LF and CR (single bytes below
/// 0x20) and U+FFFE, U+FFFF (both encoded starting with 0xEF, rare in text).
pub fn is_valid_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    // No early exit, so that the loop vectorizes.
    let control = bytes.iter().fold(false, |found, &b| {
        found | (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    });
    let noncharacter =
        bytes.contains(&0xEF) && (text.contains('\u{FFFE}') || text.contains('\u{FFFF}'));
    !control && !noncharacter
}

/// The core message for an SQS send to queue `queue`.
pub fn outgoing(
    queue: &str,
    body: &str,
    attributes: &[MessageAttribute],
    message_id: &str,
    sent_ms: u64,
) -> Message {
    let body = Bytes::copy_from_slice(body.as_bytes());
    outgoing_body(queue, body, None, attributes, message_id, sent_ms)
}

/// [`outgoing`] for a body the caller already owns (the text SendMessage parsed), so that it
/// is not copied once more, with that text's MD5 if the caller has it: the message keeps it
/// unless the body is stored decoded from base64 (a receive then digests the base64 it
/// delivers).
pub fn outgoing_body(
    queue: &str,
    mut body: Bytes,
    mut body_md5: Option<[u8; 16]>,
    attributes: &[MessageAttribute],
    message_id: &str,
    sent_ms: u64,
) -> Message {
    let mut properties = Properties {
        delivery_mode: Some(2),
        message_id: Some(message_id.to_owned()),
        timestamp: Some(sent_ms / 1000),
        ..Properties::default()
    };
    let mut types = Headers::new();
    for attribute in attributes {
        if set_property(&mut properties, attribute) {
            continue;
        }
        if is_base64_marker(attribute)
            && let Some(bytes) = binary_from_base64(&body)
        {
            body = bytes;
            body_md5 = None;
            continue;
        }
        let (value, implied) = header_value(attribute);
        if implied != attribute.data_type {
            types.insert(
                attribute.name.clone(),
                HeaderValue::String(attribute.data_type.clone()),
            );
        }
        properties.headers.insert(attribute.name.clone(), value);
    }
    if !types.is_empty() {
        properties
            .headers
            .insert(DATA_TYPES_HEADER, HeaderValue::Table(types));
    }
    let message = Message {
        exchange: String::new(),
        routing_key: queue.to_owned(),
        properties,
        body,
        body_md5: Default::default(),
    };
    if let Some(digest) = body_md5 {
        message.body_md5.set(digest);
    }
    message
}

/// Sets the property an attribute stands for, if it is one (by name and data type, so that
/// SQS consumers get the attribute back exactly).
fn set_property(properties: &mut Properties, attribute: &MessageAttribute) -> bool {
    let AttributeValue::Text(text) = &attribute.value else {
        return false;
    };
    let slot = match (attribute.name.as_str(), attribute.data_type.as_str()) {
        (names::PRIORITY, "Number") => {
            return text::set_named_property(properties, names::PRIORITY, text)
                && properties.priority.map(|p| p.to_string()).as_ref() == Some(text);
        }
        (_, "String") => match attribute.name.as_str() {
            CONTENT_TYPE => &mut properties.content_type,
            CORRELATION_ID => &mut properties.correlation_id,
            REPLY_TO => &mut properties.reply_to,
            names::CONTENT_ENCODING => &mut properties.content_encoding,
            names::TYPE => &mut properties.kind,
            names::APP_ID => &mut properties.app_id,
            _ => return false,
        },
        _ => return false,
    };
    *slot = Some(text.clone());
    true
}

fn is_base64_marker(attribute: &MessageAttribute) -> bool {
    attribute.name == TRANSFER_ENCODING
        && attribute.data_type == "String"
        && matches!(&attribute.value, AttributeValue::Text(t) if t == "base64")
}

/// The bytes a base64 body stands for, when they are not SQS text: exactly the bodies
/// [`incoming`] encodes, so decoding and encoding again give the same body back.
fn binary_from_base64(body: &[u8]) -> Option<Bytes> {
    let bytes = BASE64.decode(body).ok()?;
    let is_text = std::str::from_utf8(&bytes).is_ok_and(is_valid_text);
    (!is_text).then(|| Bytes::from(bytes))
}

/// A header value for an attribute, and the data type a reader would infer from it.
fn header_value(attribute: &MessageAttribute) -> (HeaderValue, &'static str) {
    match &attribute.value {
        AttributeValue::Binary(bytes) => {
            (HeaderValue::Bytes(Bytes::copy_from_slice(bytes)), "Binary")
        }
        AttributeValue::Text(text) if attribute.data_type.starts_with("Number") => {
            match text.parse::<i64>() {
                Ok(n) if n.to_string() == *text => (HeaderValue::I64(n), "Number"),
                _ => (HeaderValue::String(text.clone()), "String"),
            }
        }
        AttributeValue::Text(text) => (HeaderValue::String(text.clone()), "String"),
    }
}

/// A message as an SQS consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsView {
    pub body: String,
    /// Whether `body` is the message's body as it is, rather than base64 of it.
    pub verbatim: bool,
    pub attributes: Vec<MessageAttribute>,
    /// System attributes carried in headers, by their SQS names.
    pub system: Vec<(&'static str, String)>,
}

/// The SQS view of any message, whichever protocol published it.
pub fn incoming(message: &Arc<Message>) -> SqsView {
    let properties = &message.properties;
    let mut attributes = Vec::new();
    let (body, verbatim) = text_body(&message.body);
    if !verbatim {
        attributes.push(text_attribute(TRANSFER_ENCODING, "base64"));
    }
    for (name, value) in [
        (CONTENT_TYPE, &properties.content_type),
        (names::CONTENT_ENCODING, &properties.content_encoding),
        (CORRELATION_ID, &properties.correlation_id),
        (REPLY_TO, &properties.reply_to),
        (names::TYPE, &properties.kind),
        (names::APP_ID, &properties.app_id),
    ] {
        if let Some(value) = value {
            attributes.push(text_attribute(name, value));
        }
    }
    if let Some(priority) = properties.priority {
        attributes.push(MessageAttribute {
            name: names::PRIORITY.to_owned(),
            data_type: "Number".to_owned(),
            value: AttributeValue::Text(priority.to_string()),
        });
    }
    let types = match properties.headers.get(DATA_TYPES_HEADER) {
        Some(HeaderValue::Table(types)) => Some(types),
        _ => None,
    };
    let mut system = Vec::new();
    for (name, value) in properties.headers.iter() {
        if name == DATA_TYPES_HEADER {
            continue;
        }
        let system_name = match name {
            MESSAGE_GROUP_HEADER => Some("MessageGroupId"),
            DEDUPLICATION_HEADER => Some("MessageDeduplicationId"),
            SEQUENCE_HEADER => Some("SequenceNumber"),
            DEAD_LETTER_SOURCE_HEADER => Some("DeadLetterQueueSourceArn"),
            _ => None,
        };
        if let Some(system_name) = system_name {
            if let Some(text) = value.as_str() {
                system.push((system_name, text.to_owned()));
            }
            continue;
        }
        let declared = types
            .and_then(|t| t.get(name))
            .and_then(HeaderValue::as_str);
        match attribute_from_header(name, value, declared) {
            Some(attribute) => attributes.push(attribute),
            None => tracing::debug!(header = name, "header has no SQS attribute form"),
        }
    }
    if attributes.len() > ATTRIBUTES_MAX {
        tracing::debug!(
            count = attributes.len(),
            "more headers than SQS attributes allow"
        );
        attributes.truncate(ATTRIBUTES_MAX);
    }
    SqsView {
        body,
        verbatim,
        attributes,
        system,
    }
}

/// A body as SQS text: as it is when it is SQS text (`true`), else in base64.
fn text_body(body: &[u8]) -> (String, bool) {
    match std::str::from_utf8(body) {
        Ok(text) if is_valid_text(text) => (text.to_owned(), true),
        _ => (BASE64.encode(body), false),
    }
}

fn text_attribute(name: &str, value: &str) -> MessageAttribute {
    MessageAttribute {
        name: name.to_owned(),
        data_type: "String".to_owned(),
        value: AttributeValue::Text(value.to_owned()),
    }
}

fn attribute_from_header(
    name: &str,
    value: &HeaderValue,
    declared: Option<&str>,
) -> Option<MessageAttribute> {
    let (inferred, value) = match value {
        HeaderValue::String(text) => text_or_binary(text.as_bytes(), declared),
        HeaderValue::Bytes(bytes) => text_or_binary(bytes, declared),
        HeaderValue::Void => return None,
        HeaderValue::Bool(_) | HeaderValue::Array(_) | HeaderValue::Table(_) => {
            ("String", AttributeValue::Text(value.to_text()))
        }
        number => ("Number", AttributeValue::Text(number.to_text())),
    };
    // AWS refuses empty attribute values.
    if matches!(&value, AttributeValue::Text(t) if t.is_empty()) {
        return None;
    }
    let data_type = match declared {
        Some(declared) if inferred != "Binary" || MessageAttribute::is_binary(declared) => declared,
        _ => inferred,
    };
    Some(MessageAttribute {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
        value,
    })
}

/// Text as a String attribute when SQS can carry it as text and it was not sent as Binary;
/// anything else (bytes, control characters) as Binary, so it still arrives.
fn text_or_binary(bytes: &[u8], declared: Option<&str>) -> (&'static str, AttributeValue) {
    let binary = declared.is_some_and(MessageAttribute::is_binary);
    match std::str::from_utf8(bytes) {
        Ok(text) if is_valid_text(text) && !binary => {
            ("String", AttributeValue::Text(text.to_owned()))
        }
        _ => ("Binary", AttributeValue::Binary(bytes.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(name: &str, data_type: &str, value: AttributeValue) -> MessageAttribute {
        MessageAttribute {
            name: name.into(),
            data_type: data_type.into(),
            value,
        }
    }

    #[test]
    fn attributes_round_trip_with_their_exact_types() {
        let sent = vec![
            attribute("s", "String", AttributeValue::Text("v".into())),
            attribute("n", "Number", AttributeValue::Text("42".into())),
            attribute("f", "Number.float", AttributeValue::Text("1.50".into())),
            attribute("b", "Binary.png", AttributeValue::Binary(vec![0, 255])),
            attribute(
                "correlation-id",
                "String",
                AttributeValue::Text("c1".into()),
            ),
        ];
        let message = Arc::new(outgoing("q", "hi", &sent, "id", 1_700_000_000_123));
        assert_eq!(message.properties.correlation_id.as_deref(), Some("c1"));
        assert_eq!(
            message.properties.headers.get("n"),
            Some(&HeaderValue::I64(42))
        );
        assert!(message.properties.is_persistent());
        let view = incoming(&message);
        assert_eq!(view.body, "hi");
        let mut got = view.attributes;
        let mut want = sent;
        got.sort_by(|a, b| a.name.cmp(&b.name));
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(got, want);
    }

    #[test]
    fn a_binary_body_arrives_base64_with_its_encoding_attribute() {
        let message = Arc::new(Message {
            body: Bytes::from_static(&[0xff, 0x00]),
            ..Message::default()
        });
        let view = incoming(&message);
        assert_eq!(view.body, "/wA=");
        assert_eq!(
            view.attributes,
            [text_attribute(TRANSFER_ENCODING, "base64")]
        );
    }

    #[test]
    fn sqs_text_excludes_control_characters() {
        assert!(is_valid_text("tab\tnewline\n ok \u{10000}"));
        assert!(!is_valid_text("nul\u{0}"));
        assert!(!is_valid_text("\u{FFFE}"));
    }

    #[test]
    fn the_byte_check_agrees_with_the_character_rule() {
        let rule = |text: &str| {
            text.chars().all(|c| {
                matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}')
                    || matches!(c, '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            })
        };
        let edges = [
            '\u{0}',
            '\u{8}',
            '\u{9}',
            '\u{A}',
            '\u{B}',
            '\u{D}',
            '\u{1F}',
            ' ',
            '\u{7F}',
            '\u{80}',
            '\u{D7FF}',
            '\u{E000}',
            '\u{EFFF}',
            '\u{FFFD}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{10000}',
            '\u{10FFFF}',
        ];
        for a in edges {
            for b in edges {
                let text = format!("ab{a}cd{b}");
                assert_eq!(is_valid_text(&text), rule(&text), "{text:?}");
            }
        }
    }
    #[test]
    fn a_base64_body_of_binary_bytes_is_stored_decoded_and_given_back_encoded() {
        let marker = [text_attribute(TRANSFER_ENCODING, "base64")];
        let message = Arc::new(outgoing("q", "/wA=", &marker, "id", 0));
        assert_eq!(message.body, Bytes::from_static(&[0xff, 0x00]));
        assert!(message.properties.headers.is_empty());
        let view = incoming(&message);
        assert_eq!(view.body, "/wA=");
        assert_eq!(view.attributes, marker);
        // Base64 of text stays as sent, so SQS consumers get exactly what was sent.
        let message = outgoing("q", "aGk=", &marker, "id", 0);
        assert_eq!(message.body, Bytes::from_static(b"aGk="));
    }

    #[test]
    fn properties_and_typed_headers_reach_sqs_consumers_as_attributes() {
        let mut message = Message::default();
        message.properties.priority = Some(3);
        message.properties.kind = Some("order".into());
        message
            .properties
            .headers
            .insert("flags", HeaderValue::Array(vec![HeaderValue::Bool(true)]));
        let view = incoming(&Arc::new(message));
        let found: Vec<(&str, &str)> = view
            .attributes
            .iter()
            .map(|a| (a.name.as_str(), a.data_type.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("type", "String"),
                ("priority", "Number"),
                ("flags", "String")
            ]
        );
        let back = outgoing("q", "b", &view.attributes, "id", 0);
        assert_eq!(back.properties.priority, Some(3));
        assert_eq!(back.properties.kind.as_deref(), Some("order"));
    }
}
