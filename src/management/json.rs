//! The JSON forms of the core's typed values, as RabbitMQ's management API writes them:
//! argument and header tables as objects, message properties by their AMQP names.
//!
//! Typed values to JSON: integers and timestamps as numbers, floats and decimals as numbers,
//! strings as strings, bytes as a string when they are UTF-8 and else base64, arrays and
//! tables as arrays and objects, void as null. JSON to typed values: integers become 64-bit
//! integers (the core compares arguments by value, so an `x-max-length` declared over AMQP as
//! a 32-bit integer is the same argument), other numbers floats, objects tables. The value
//! conversions are `core::definitions`', which definitions files share.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mqbridge_broker_api::{Headers, Properties};
use serde_json::{Map, Value};

use super::http::ApiError;
use crate::core::definitions::{self, json_object};

pub fn headers_to_json(headers: &Headers) -> Value {
    Value::Object(json_object(headers))
}

/// An `arguments` or `headers` object; absent or null is an empty table.
pub fn json_to_headers(value: Option<&Value>, what: &str) -> Result<Headers, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Headers::new()),
        Some(Value::Object(map)) => Ok(definitions::headers(map)),
        Some(_) => Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        ))),
    }
}

/// The properties a message has, by RabbitMQ's names; unset ones are left out.
pub fn properties_to_json(properties: &Properties) -> Value {
    let mut object = Map::new();
    let mut text = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            object.insert(name.to_owned(), Value::String(value.clone()));
        }
    };
    text("content_type", &properties.content_type);
    text("content_encoding", &properties.content_encoding);
    text("correlation_id", &properties.correlation_id);
    text("reply_to", &properties.reply_to);
    text("message_id", &properties.message_id);
    text("type", &properties.kind);
    text("user_id", &properties.user_id);
    text("app_id", &properties.app_id);
    text("cluster_id", &properties.cluster_id);
    let expiration = properties.expiration_ms.map(|ms| ms.to_string());
    text("expiration", &expiration);
    if let Some(mode) = properties.delivery_mode {
        object.insert("delivery_mode".to_owned(), mode.into());
    }
    if let Some(priority) = properties.priority {
        object.insert("priority".to_owned(), priority.into());
    }
    if let Some(timestamp) = properties.timestamp {
        object.insert("timestamp".to_owned(), timestamp.into());
    }
    if !properties.headers.is_empty() {
        object.insert("headers".to_owned(), headers_to_json(&properties.headers));
    }
    Value::Object(object)
}

/// Properties from a publish body's `properties` object. Unknown names are refused, so a typo
/// does not silently drop a property.
pub fn json_to_properties(value: Option<&Value>) -> Result<Properties, ApiError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Properties::default()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("properties must be a JSON object")),
    };
    let mut properties = Properties::default();
    for (name, value) in map {
        let text = || match value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(ApiError::bad_request(format!(
                "property {name} must be a string"
            ))),
        };
        let number = || {
            match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| ApiError::bad_request(format!("property {name} must be a number")))
        };
        let small = |n: u64| {
            u8::try_from(n)
                .map_err(|_| ApiError::bad_request(format!("property {name} is out of range")))
        };
        match name.as_str() {
            "content_type" => properties.content_type = Some(text()?),
            "content_encoding" => properties.content_encoding = Some(text()?),
            "correlation_id" => properties.correlation_id = Some(text()?),
            "reply_to" => properties.reply_to = Some(text()?),
            "message_id" => properties.message_id = Some(text()?),
            "type" => properties.kind = Some(text()?),
            "user_id" => properties.user_id = Some(text()?),
            "app_id" => properties.app_id = Some(text()?),
            "cluster_id" => properties.cluster_id = Some(text()?),
            "expiration" => properties.expiration_ms = Some(number()?),
            "delivery_mode" => properties.delivery_mode = Some(small(number()?)?),
            "priority" => properties.priority = Some(small(number()?)?),
            "timestamp" => properties.timestamp = Some(number()?),
            "headers" => properties.headers = json_to_headers(Some(value), "headers")?,
            other => {
                return Err(ApiError::bad_request(format!("unknown property {other}")));
            }
        }
    }
    Ok(properties)
}

/// A payload as RabbitMQ's get answers it: text when asked `auto` and it is UTF-8, else
/// base64. Returns the payload and its encoding name.
pub fn encode_payload(body: &[u8], base64_always: bool) -> (String, &'static str) {
    match std::str::from_utf8(body) {
        Ok(text) if !base64_always => (text.to_owned(), "string"),
        _ => (BASE64.encode(body), "base64"),
    }
}

/// A publish body's payload in its declared encoding (`string` or `base64`).
pub fn decode_payload(payload: &str, encoding: &str) -> Result<Vec<u8>, ApiError> {
    match encoding {
        "string" => Ok(payload.as_bytes().to_vec()),
        "base64" => BASE64
            .decode(payload)
            .map_err(|_| ApiError::bad_request("payload is not valid base64")),
        other => Err(ApiError::bad_request(format!(
            "payload_encoding must be string or base64, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqbridge_broker_api::HeaderValue;
    use serde_json::json;

    #[test]
    fn arguments_round_trip_through_json() {
        let value = json!({"x-max-length": 10, "x-dead-letter-exchange": "dlx", "nested": {"a": [1.5, null]}});
        let headers = json_to_headers(Some(&value), "arguments").expect("object");
        assert_eq!(headers.get("x-max-length"), Some(&HeaderValue::I64(10)));
        assert_eq!(headers_to_json(&headers), value);
        assert!(json_to_headers(Some(&json!([1])), "arguments").is_err());
    }

    #[test]
    fn properties_round_trip_and_unknown_names_are_refused() {
        let value = json!({"delivery_mode": 2, "content_type": "text/plain",
                           "expiration": "60000", "headers": {"k": "v"}});
        let properties = json_to_properties(Some(&value)).expect("valid");
        assert!(properties.is_persistent());
        assert_eq!(properties.expiration_ms, Some(60_000));
        assert_eq!(properties_to_json(&properties), value);
        assert!(json_to_properties(Some(&json!({"colour": "blue"}))).is_err());
        assert!(json_to_properties(Some(&json!({"priority": 300}))).is_err());
    }

    #[test]
    fn payloads_are_text_when_they_can_be() {
        assert_eq!(encode_payload(b"hi", false), ("hi".to_owned(), "string"));
        assert_eq!(encode_payload(b"hi", true), ("aGk=".to_owned(), "base64"));
        assert_eq!(encode_payload(&[0xff], false).1, "base64");
        assert_eq!(decode_payload("aGk=", "base64").expect("valid"), b"hi");
        assert!(decode_payload("hi", "rot13").is_err());
    }
}
