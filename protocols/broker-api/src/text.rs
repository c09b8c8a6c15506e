//! The text form of typed values and of the properties that some protocols can carry only as
//! text: MQTT 5 user properties, STOMP headers and SQS message attributes. One form everywhere,
//! so a header degrades the same way whichever protocol reads it (ARCHITECTURE.md, "One
//! message, every protocol").

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::message::{HeaderValue, Properties};

/// The text names of the properties that MQTT 5 and SQS have no field for. They are STOMP's
/// header names (RabbitMQ's), so a property has one name wherever it travels as text.
pub mod names {
    pub const CONTENT_ENCODING: &str = "content-encoding";
    pub const PRIORITY: &str = "priority";
    pub const MESSAGE_ID: &str = "amqp-message-id";
    pub const TIMESTAMP: &str = "timestamp";
    pub const TYPE: &str = "type";
    pub const APP_ID: &str = "app-id";
    pub const USER_ID: &str = "user-id";
    pub const EXPIRATION: &str = "expiration";
}

impl HeaderValue {
    /// The value as text: strings as they are, numbers in decimal, booleans `true`/`false`,
    /// AMQP decimals in plain notation, bytes as UTF-8 when they are, else base64, void as
    /// empty, arrays and tables as JSON.
    pub fn to_text(&self) -> String {
        match self {
            HeaderValue::String(s) => s.clone(),
            HeaderValue::Bytes(b) => match std::str::from_utf8(b) {
                Ok(text) => text.to_owned(),
                Err(_) => BASE64.encode(b),
            },
            HeaderValue::Void => String::new(),
            HeaderValue::Array(_) | HeaderValue::Table(_) => {
                let mut out = String::new();
                write_json(&mut out, self);
                out
            }
            scalar => scalar_text(scalar),
        }
    }
}

/// Numbers, booleans and decimals; strings and containers are handled by the callers.
fn scalar_text(value: &HeaderValue) -> String {
    match value {
        HeaderValue::Bool(b) => b.to_string(),
        HeaderValue::F32(f) => f.to_string(),
        HeaderValue::F64(f) => f.to_string(),
        HeaderValue::Decimal { scale, value } => decimal_text(*scale, *value),
        other => other.as_i64().map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// An AMQP decimal (`value` / 10^`scale`) in plain notation.
fn decimal_text(scale: u8, value: u32) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{whole}.{fraction}")
}

fn write_json(out: &mut String, value: &HeaderValue) {
    match value {
        HeaderValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        HeaderValue::Table(table) => {
            out.push('{');
            for (i, (name, item)) in table.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, name);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
        HeaderValue::Void => out.push_str("null"),
        HeaderValue::String(_) | HeaderValue::Bytes(_) => write_json_string(out, &value.to_text()),
        HeaderValue::F32(f) if !f.is_finite() => write_json_string(out, &f.to_string()),
        HeaderValue::F64(f) if !f.is_finite() => write_json_string(out, &f.to_string()),
        scalar => out.push_str(&scalar_text(scalar)),
    }
}

fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The properties named in [`names`] that are set, as (name, text) pairs, in that order.
pub fn named_properties(props: &Properties) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut add = |name, value: Option<String>| {
        if let Some(value) = value {
            out.push((name, value));
        }
    };
    add(names::CONTENT_ENCODING, props.content_encoding.clone());
    add(names::PRIORITY, props.priority.map(|p| p.to_string()));
    add(names::MESSAGE_ID, props.message_id.clone());
    add(names::TIMESTAMP, props.timestamp.map(|t| t.to_string()));
    add(names::TYPE, props.kind.clone());
    add(names::APP_ID, props.app_id.clone());
    add(names::USER_ID, props.user_id.clone());
    add(
        names::EXPIRATION,
        props.expiration_ms.map(|ms| ms.to_string()),
    );
    out
}

/// Sets the property a text name stands for, if it is not set yet (the first of repeated
/// names wins). Returns false, and changes nothing, when `name` is not one of [`names`], the
/// property is set already, or `text` is not a valid value for it; the caller then keeps the
/// pair as an ordinary header, so nothing is lost.
pub fn set_named_property(props: &mut Properties, name: &str, text: &str) -> bool {
    fn string(slot: &mut Option<String>, text: &str) -> bool {
        let free = slot.is_none();
        if free {
            *slot = Some(text.to_owned());
        }
        free
    }
    fn number<T: std::str::FromStr>(slot: &mut Option<T>, text: &str) -> bool {
        match text.trim().parse() {
            Ok(value) if slot.is_none() => {
                *slot = Some(value);
                true
            }
            _ => false,
        }
    }
    match name {
        names::CONTENT_ENCODING => string(&mut props.content_encoding, text),
        names::MESSAGE_ID => string(&mut props.message_id, text),
        names::TYPE => string(&mut props.kind, text),
        names::APP_ID => string(&mut props.app_id, text),
        names::USER_ID => string(&mut props.user_id, text),
        names::PRIORITY => number(&mut props.priority, text),
        names::TIMESTAMP => number(&mut props.timestamp, text),
        names::EXPIRATION => number(&mut props.expiration_ms, text),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Headers;

    #[test]
    fn scalars_read_as_people_write_them() {
        assert_eq!(HeaderValue::I32(-3).to_text(), "-3");
        assert_eq!(HeaderValue::Bool(true).to_text(), "true");
        assert_eq!(
            HeaderValue::Decimal { scale: 2, value: 5 }.to_text(),
            "0.05"
        );
        assert_eq!(HeaderValue::F64(1.5).to_text(), "1.5");
        assert_eq!(
            HeaderValue::Timestamp(1_700_000_000).to_text(),
            "1700000000"
        );
        assert_eq!(HeaderValue::Bytes(vec![0xff, 0].into()).to_text(), "/wA=");
        assert_eq!(HeaderValue::Void.to_text(), "");
    }

    #[test]
    fn tables_and_arrays_become_json() {
        let mut death = Headers::new();
        death.insert("queue", HeaderValue::String("q\"1".into()));
        death.insert("count", HeaderValue::I64(2));
        death.insert("gone", HeaderValue::Void);
        let value = HeaderValue::Array(vec![HeaderValue::Table(death), HeaderValue::Bool(false)]);
        assert_eq!(
            value.to_text(),
            r#"[{"queue":"q\"1","count":2,"gone":null},false]"#
        );
    }

    #[test]
    fn named_properties_round_trip() {
        let props = Properties {
            content_encoding: Some("gzip".into()),
            priority: Some(7),
            message_id: Some("m-1".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("order".into()),
            app_id: Some("shop".into()),
            user_id: Some("guest".into()),
            expiration_ms: Some(60_000),
            ..Properties::default()
        };
        let mut back = Properties::default();
        for (name, text) in named_properties(&props) {
            assert!(set_named_property(&mut back, name, &text), "{name}");
        }
        assert_eq!(back, props);
    }

    #[test]
    fn invalid_values_and_other_names_are_left_to_the_caller() {
        let mut props = Properties::default();
        assert!(!set_named_property(&mut props, names::PRIORITY, "high"));
        assert!(!set_named_property(&mut props, "colour", "red"));
        assert_eq!(props, Properties::default());
        assert!(set_named_property(&mut props, names::TYPE, "first"));
        assert!(!set_named_property(&mut props, names::TYPE, "second"));
        assert_eq!(props.kind.as_deref(), Some("first"));
    }
}
