//! Message attributes: parsing and validating them, and their MD5 digests as AWS computes them.
//!
//! `MD5OfMessageAttributes` (SQS Developer Guide, "Calculating the MD5 message digest for message
//! attributes"): sort the attributes by name; for each, append the name, the data type, one
//! transport byte (1 for String and Number, 2 for Binary) and the value, where every name, type
//! and value is preceded by its length as a 4-byte big-endian integer; MD5 the whole, in hex.
//! SDKs recompute both digests and reject the answer when they differ.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use mqbridge_broker_api::Message;
use serde_json::{Map, Value, json};

use crate::error::SqsError;
use crate::params::Params;
use crate::translate::SqsView;

/// AWS: "Each message can have up to 10 attributes."
pub const ATTRIBUTES_MAX: usize = 10;
/// AWS: names and data types are at most 256 characters.
const NAME_LENGTH_MAX: usize = 256;

/// One message attribute as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    pub name: String,
    /// `String`, `Number` or `Binary`, optionally with a custom `.suffix`.
    pub data_type: String,
    pub value: AttributeValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// String and Number values (Number is kept as the client's text: it is hashed as such).
    Text(String),
    Binary(Vec<u8>),
}

impl MessageAttribute {
    /// Whether the data type is Binary (with or without a custom suffix).
    pub fn is_binary(data_type: &str) -> bool {
        base_type(data_type) == "Binary"
    }

    /// The JSON shape of a `MessageAttributeValue`.
    pub fn to_json(&self) -> Value {
        match &self.value {
            AttributeValue::Text(text) => json!({"DataType": self.data_type, "StringValue": text}),
            AttributeValue::Binary(bytes) => {
                json!({"DataType": self.data_type, "BinaryValue": BASE64.encode(bytes)})
            }
        }
    }

    /// Bytes this attribute counts towards the message size limit (name, type and value).
    pub fn size(&self) -> usize {
        let value = match &self.value {
            AttributeValue::Text(text) => text.len(),
            AttributeValue::Binary(bytes) => bytes.len(),
        };
        self.name.len() + self.data_type.len() + value
    }
}

fn base_type(data_type: &str) -> &str {
    data_type.split('.').next().unwrap_or(data_type)
}

/// Reads and validates the `MessageAttributes` map of a send request (or batch entry).
pub fn parse(params: &Params) -> Result<Vec<MessageAttribute>, SqsError> {
    let Some(value) = params.get("MessageAttributes") else {
        return Ok(Vec::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| SqsError::invalid("MessageAttributes must be a map."))?;
    if map.len() > ATTRIBUTES_MAX {
        return Err(SqsError::invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{ATTRIBUTES_MAX}].",
            map.len()
        )));
    }
    map.iter()
        .map(|(name, value)| parse_one(name, value))
        .collect()
}

fn parse_one(name: &str, value: &Value) -> Result<MessageAttribute, SqsError> {
    check_name(name)?;
    let fields = value.as_object().ok_or_else(|| {
        SqsError::invalid(format!(
            "The message attribute '{name}' must be a structure."
        ))
    })?;
    let field = |key: &str| fields.get(key).and_then(Value::as_str);
    let data_type = field("DataType").ok_or_else(|| {
        SqsError::invalid(format!(
            "The message attribute '{name}' must contain a non-empty message attribute type."
        ))
    })?;
    let valid_type = matches!(base_type(data_type), "String" | "Number" | "Binary")
        && data_type.len() <= NAME_LENGTH_MAX;
    if !valid_type {
        return Err(SqsError::invalid(format!(
            "The type of message (user) attribute '{name}' is invalid. You must use only the \
             following supported type prefixes: Binary, Number, String."
        )));
    }
    let value = attribute_value(name, data_type, field("StringValue"), field("BinaryValue"))?;
    Ok(MessageAttribute {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
        value,
    })
}

fn attribute_value(
    name: &str,
    data_type: &str,
    text: Option<&str>,
    binary: Option<&str>,
) -> Result<AttributeValue, SqsError> {
    let missing = || {
        SqsError::invalid(format!(
            "The message attribute '{name}' must contain a non-empty message attribute value."
        ))
    };
    if MessageAttribute::is_binary(data_type) {
        let encoded = binary.filter(|b| !b.is_empty()).ok_or_else(missing)?;
        let bytes = BASE64.decode(encoded).map_err(|_| {
            SqsError::invalid(format!(
                "The message attribute '{name}' is not valid base64."
            ))
        })?;
        return Ok(AttributeValue::Binary(bytes));
    }
    let text = text.filter(|t| !t.is_empty()).ok_or_else(missing)?;
    let number = text.trim().parse::<f64>();
    if base_type(data_type) == "Number" && !number.is_ok_and(f64::is_finite) {
        return Err(SqsError::invalid(format!(
            "Can't cast the value of message (user) attribute '{name}' to a number."
        )));
    }
    if !crate::translate::is_valid_text(text) {
        return Err(SqsError::invalid(format!(
            "The message attribute '{name}' contains characters outside the allowed set."
        )));
    }
    Ok(AttributeValue::Text(text.to_owned()))
}

/// AWS: names use `A-Z a-z 0-9 _ - .`, do not start or end with a period, hold no two periods
/// in a row, and do not start with the reserved `AWS.` or `Amazon.` prefixes.
fn check_name(name: &str) -> Result<(), SqsError> {
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let lower = name.to_ascii_lowercase();
    let valid = allowed
        && !name.is_empty()
        && name.len() <= NAME_LENGTH_MAX
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(SqsError::invalid(format!(
            "Message (user) attribute name '{name}' is invalid."
        )))
    }
}

/// The MD5 of a body (`MD5OfMessageBody` in hex), to keep with its message
/// ([`mqbridge_broker_api::BodyMd5`]).
pub fn body_digest(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

/// `MD5OfBody` of a received message: the stored digest when the body is delivered as it is
/// (computed by its send, or by the first receive of a message from another protocol), the
/// digest of the base64 text otherwise.
pub fn md5_of_view(message: &Message, view: &SqsView) -> String {
    let digest = match view.verbatim {
        true => message
            .body_md5
            .get_or_compute(|| body_digest(&message.body)),
        false => body_digest(view.body.as_bytes()),
    };
    crate::hex::encode(&digest)
}

/// `MD5OfMessageAttributes`, or `None` when there are no attributes (AWS then omits it).
pub fn md5_of_attributes(attributes: &[MessageAttribute]) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut sorted: Vec<&MessageAttribute> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Md5::new();
    for attribute in sorted {
        length_prefixed(&mut hasher, attribute.name.as_bytes());
        length_prefixed(&mut hasher, attribute.data_type.as_bytes());
        match &attribute.value {
            AttributeValue::Text(text) => {
                hasher.update([TRANSPORT_STRING]);
                length_prefixed(&mut hasher, text.as_bytes());
            }
            AttributeValue::Binary(bytes) => {
                hasher.update([TRANSPORT_BINARY]);
                length_prefixed(&mut hasher, bytes);
            }
        }
    }
    Some(crate::hex::encode(&hasher.finalize()))
}

/// The transport type bytes of the attribute digest (String and Number share one).
const TRANSPORT_STRING: u8 = 1;
const TRANSPORT_BINARY: u8 = 2;

fn length_prefixed(hasher: &mut Md5, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(length.to_be_bytes());
    hasher.update(bytes);
}

/// The JSON `MessageAttributes` map of a list of attributes.
pub fn to_json_map(attributes: &[MessageAttribute]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|a| (a.name.clone(), a.to_json()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_of_body(body: &str) -> String {
        crate::hex::encode(&body_digest(body.as_bytes()))
    }

    fn text(name: &str, data_type: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            name: name.into(),
            data_type: data_type.into(),
            value: AttributeValue::Text(value.into()),
        }
    }

    #[test]
    fn a_received_body_is_digested_as_delivered() {
        use std::sync::Arc;
        // From another protocol, no digest kept: computed on first receive, then kept.
        let text = Arc::new(Message {
            body: bytes::Bytes::from_static(b"hello"),
            ..Message::default()
        });
        let view = crate::translate::incoming(&text);
        assert_eq!(md5_of_view(&text, &view), md5_of_body("hello"));
        assert_eq!(
            text.body_md5.get_or_compute(|| [0; 16]),
            body_digest(b"hello")
        );
        // Bytes that are not SQS text arrive as base64, and MD5OfBody is that text's digest.
        let binary = Arc::new(Message {
            body: bytes::Bytes::from_static(&[0, 1, 2]),
            ..Message::default()
        });
        let view = crate::translate::incoming(&binary);
        assert!(!view.verbatim);
        assert_eq!(md5_of_view(&binary, &view), md5_of_body(&view.body));
        assert_ne!(
            md5_of_view(&binary, &view),
            crate::hex::encode(&body_digest(&[0, 1, 2]))
        );
    }

    #[test]
    fn body_digest_is_hex_md5() {
        assert_eq!(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn attribute_digest_follows_the_documented_byte_layout() {
        // Built by hand from the documented layout, independent of the code under test.
        let mut bytes = Vec::new();
        for (name, data_type, transport, value) in [
            ("a", "String", 1u8, b"x".as_slice()),
            ("b", "Binary", 2u8, b"\x00\x01".as_slice()),
        ] {
            for part in [name.as_bytes(), data_type.as_bytes()] {
                bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
                bytes.extend_from_slice(part);
            }
            bytes.push(transport);
            bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
            bytes.extend_from_slice(value);
        }
        let expected = crate::hex::encode(&Md5::digest(&bytes));
        let binary = MessageAttribute {
            name: "b".into(),
            data_type: "Binary".into(),
            value: AttributeValue::Binary(vec![0, 1]),
        };
        // Given out of order: the digest sorts by name.
        let got = md5_of_attributes(&[binary, text("a", "String", "x")]);
        assert_eq!(got.as_deref(), Some(expected.as_str()));
        assert_eq!(md5_of_attributes(&[]), None);
    }

    #[test]
    fn invalid_attributes_are_refused() {
        let params = |value: Value| Params::from_value(json!({ "MessageAttributes": value }));
        let bad = [
            json!({"AWS.x": {"DataType": "String", "StringValue": "v"}}),
            json!({"n": {"DataType": "Text", "StringValue": "v"}}),
            json!({"n": {"DataType": "Number", "StringValue": "abc"}}),
            json!({"n": {"DataType": "Number", "StringValue": "NaN"}}),
            json!({"n": {"DataType": "String"}}),
            json!({"n": {"DataType": "Binary", "BinaryValue": "%%%"}}),
        ];
        for value in bad {
            let params = params(value.clone()).expect("object");
            assert!(parse(&params).is_err(), "accepted {value}");
        }
        let eleven: Map<String, Value> = (0..11)
            .map(|i| {
                (
                    format!("a{i}"),
                    json!({"DataType": "String", "StringValue": "v"}),
                )
            })
            .collect();
        let params = params(Value::Object(eleven)).expect("object");
        assert!(parse(&params).is_err());
    }

    #[test]
    fn custom_type_suffixes_are_kept() {
        let params = Params::from_value(json!({"MessageAttributes": {
            "n": {"DataType": "Number.float", "StringValue": "1.5"}
        }}))
        .expect("object");
        let parsed = parse(&params).expect("valid");
        assert_eq!(parsed, [text("n", "Number.float", "1.5")]);
    }
}
