//! AMQP 0-9-1 frames <-> the core's `Message` and errors, at the adapter's edge.
//!
//! Properties map one to one (the core's set is AMQP's). Field-table values map by type; the
//! few that cannot round-trip exactly are: short strings (`s`) come back as long strings (`S`),
//! and byte arrays (`x`) and long strings that are not UTF-8 come back as long strings with the
//! same bytes. `expiration` must be a non-negative integer of milliseconds (RabbitMQ refuses
//! anything else with 406 PRECONDITION_FAILED).

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{
    AMQPValue, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use bytes::Bytes;
use mqbridge_broker_api::{BrokerError, HeaderValue, Headers, Properties};

use crate::codec::reply_code;

/// Converts published properties. Fails only on an `expiration` that is not a number.
pub fn properties_in(props: &BasicProperties) -> Result<Properties, String> {
    let text = |s: &Option<ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
    let expiration_ms = match props.expiration() {
        None => None,
        Some(raw) => Some(
            raw.as_str()
                .parse::<u64>()
                .map_err(|_| format!("invalid expiration '{}'", raw.as_str()))?,
        ),
    };
    Ok(Properties {
        content_type: text(props.content_type()),
        content_encoding: text(props.content_encoding()),
        headers: props.headers().as_ref().map(table_in).unwrap_or_default(),
        delivery_mode: *props.delivery_mode(),
        priority: *props.priority(),
        correlation_id: text(props.correlation_id()),
        reply_to: text(props.reply_to()),
        expiration_ms,
        message_id: text(props.message_id()),
        timestamp: *props.timestamp(),
        kind: text(props.kind()),
        user_id: text(props.user_id()),
        app_id: text(props.app_id()),
        cluster_id: text(props.cluster_id()),
    })
}

/// Converts properties for delivery.
pub fn properties_out(props: &Properties) -> BasicProperties {
    let short = |s: &str| ShortString::from(s.to_owned());
    let mut out = BasicProperties::default();
    if let Some(v) = &props.content_type {
        out = out.with_content_type(short(v));
    }
    if let Some(v) = &props.content_encoding {
        out = out.with_content_encoding(short(v));
    }
    if !props.headers.is_empty() {
        out = out.with_headers(table_out(&props.headers));
    }
    if let Some(v) = props.delivery_mode {
        out = out.with_delivery_mode(v);
    }
    if let Some(v) = props.priority {
        out = out.with_priority(v);
    }
    if let Some(v) = &props.correlation_id {
        out = out.with_correlation_id(short(v));
    }
    if let Some(v) = &props.reply_to {
        out = out.with_reply_to(short(v));
    }
    if let Some(v) = props.expiration_ms {
        out = out.with_expiration(short(&v.to_string()));
    }
    if let Some(v) = &props.message_id {
        out = out.with_message_id(short(v));
    }
    if let Some(v) = props.timestamp {
        out = out.with_timestamp(v);
    }
    if let Some(v) = &props.kind {
        out = out.with_type(short(v));
    }
    if let Some(v) = &props.user_id {
        out = out.with_user_id(short(v));
    }
    if let Some(v) = &props.app_id {
        out = out.with_app_id(short(v));
    }
    if let Some(v) = &props.cluster_id {
        out = out.with_cluster_id(short(v));
    }
    out
}

pub fn table_in(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), value_in(v)))
        .collect()
}

pub fn table_out(headers: &Headers) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in headers.iter() {
        table.insert(ShortString::from(name.to_owned()), value_out(value));
    }
    table
}

fn value_in(value: &AMQPValue) -> HeaderValue {
    match value {
        AMQPValue::Boolean(v) => HeaderValue::Bool(*v),
        AMQPValue::ShortShortInt(v) => HeaderValue::I8(*v),
        AMQPValue::ShortShortUInt(v) => HeaderValue::U8(*v),
        AMQPValue::ShortInt(v) => HeaderValue::I16(*v),
        AMQPValue::ShortUInt(v) => HeaderValue::U16(*v),
        AMQPValue::LongInt(v) => HeaderValue::I32(*v),
        AMQPValue::LongUInt(v) => HeaderValue::U32(*v),
        AMQPValue::LongLongInt(v) => HeaderValue::I64(*v),
        AMQPValue::Float(v) => HeaderValue::F32(*v),
        AMQPValue::Double(v) => HeaderValue::F64(*v),
        AMQPValue::DecimalValue(d) => HeaderValue::Decimal {
            scale: d.scale,
            value: d.value,
        },
        AMQPValue::ShortString(s) => HeaderValue::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => bytes_in(s.as_bytes()),
        AMQPValue::ByteArray(b) => HeaderValue::Bytes(Bytes::copy_from_slice(b.as_slice())),
        AMQPValue::FieldArray(items) => {
            HeaderValue::Array(items.as_slice().iter().map(value_in).collect())
        }
        AMQPValue::Timestamp(v) => HeaderValue::Timestamp(*v),
        AMQPValue::FieldTable(t) => HeaderValue::Table(table_in(t)),
        AMQPValue::Void => HeaderValue::Void,
    }
}

fn bytes_in(raw: &[u8]) -> HeaderValue {
    match std::str::from_utf8(raw) {
        Ok(text) => HeaderValue::String(text.to_owned()),
        Err(_) => HeaderValue::Bytes(Bytes::copy_from_slice(raw)),
    }
}

fn value_out(value: &HeaderValue) -> AMQPValue {
    match value {
        HeaderValue::Bool(v) => AMQPValue::Boolean(*v),
        HeaderValue::I8(v) => AMQPValue::ShortShortInt(*v),
        HeaderValue::U8(v) => AMQPValue::ShortShortUInt(*v),
        HeaderValue::I16(v) => AMQPValue::ShortInt(*v),
        HeaderValue::U16(v) => AMQPValue::ShortUInt(*v),
        HeaderValue::I32(v) => AMQPValue::LongInt(*v),
        HeaderValue::U32(v) => AMQPValue::LongUInt(*v),
        HeaderValue::I64(v) => AMQPValue::LongLongInt(*v),
        HeaderValue::F32(v) => AMQPValue::Float(*v),
        HeaderValue::F64(v) => AMQPValue::Double(*v),
        HeaderValue::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue {
            scale: *scale,
            value: *value,
        }),
        HeaderValue::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        HeaderValue::Bytes(b) => AMQPValue::LongString(LongString::from(b.to_vec())),
        HeaderValue::Timestamp(v) => AMQPValue::Timestamp(*v),
        HeaderValue::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(value_out).collect::<Vec<_>>(),
        )),
        HeaderValue::Table(t) => AMQPValue::FieldTable(table_out(t)),
        HeaderValue::Void => AMQPValue::Void,
    }
}

/// Whether a core error closes only the channel (soft) or the whole connection (hard), and
/// with which reply code.
pub fn reply_for(error: &BrokerError) -> (u16, bool) {
    match error {
        BrokerError::NotFound(_) => (reply_code::NOT_FOUND, false),
        BrokerError::Locked(_) => (reply_code::RESOURCE_LOCKED, false),
        BrokerError::AccessRefused(_) => (reply_code::ACCESS_REFUSED, false),
        BrokerError::PreconditionFailed(_) | BrokerError::ResourceLimit(_) => {
            (reply_code::PRECONDITION_FAILED, false)
        }
        BrokerError::NotAllowed(_) => (reply_code::NOT_ALLOWED, true),
        _ => (reply_code::INTERNAL_ERROR, true),
    }
}

/// The name RabbitMQ puts before a reply text: `NOT_FOUND - no queue 'q' in vhost '/'`.
pub fn reply_name(code: u16) -> &'static str {
    match code {
        reply_code::REPLY_SUCCESS => "OK",
        reply_code::CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        reply_code::NO_ROUTE => "NO_ROUTE",
        reply_code::NO_CONSUMERS => "NO_CONSUMERS",
        reply_code::CONNECTION_FORCED => "CONNECTION_FORCED",
        reply_code::INVALID_PATH => "INVALID_PATH",
        reply_code::ACCESS_REFUSED => "ACCESS_REFUSED",
        reply_code::NOT_FOUND => "NOT_FOUND",
        reply_code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
        reply_code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        reply_code::FRAME_ERROR => "FRAME_ERROR",
        reply_code::SYNTAX_ERROR => "SYNTAX_ERROR",
        reply_code::COMMAND_INVALID => "COMMAND_INVALID",
        reply_code::CHANNEL_ERROR => "CHANNEL_ERROR",
        reply_code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        reply_code::RESOURCE_ERROR => "RESOURCE_ERROR",
        reply_code::NOT_ALLOWED => "NOT_ALLOWED",
        reply_code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        _ => "INTERNAL_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip() {
        let mut table = FieldTable::default();
        table.insert("int".into(), AMQPValue::LongInt(-5));
        table.insert("text".into(), AMQPValue::LongString("hi".into()));
        table.insert("flag".into(), AMQPValue::Boolean(true));
        let mut nested = FieldTable::default();
        nested.insert("n".into(), AMQPValue::Double(1.5));
        table.insert("nested".into(), AMQPValue::FieldTable(nested));
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(table)
            .with_delivery_mode(2)
            .with_priority(7)
            .with_expiration("1500".into())
            .with_timestamp(1_700_000_000)
            .with_type("kind".into());
        let core = properties_in(&props).expect("valid");
        assert_eq!(core.expiration_ms, Some(1500));
        assert!(core.is_persistent());
        assert_eq!(properties_out(&core), props);
    }

    #[test]
    fn expiration_must_be_a_number() {
        let props = BasicProperties::default().with_expiration("soon".into());
        assert!(properties_in(&props).is_err());
    }
}
