//! Records to octets and back. docs/STORAGE.md has the layout byte by byte; in short, every
//! record is `length u32 | crc32c u32 | kind u8 | fields`, little-endian, strings and byte
//! strings prefixed with a u32 length, optional fields with a presence octet. The checksum
//! covers kind and fields.
//!
//! Decoding never panics and never trusts a length: a record that does not parse is reported
//! as corrupt, whatever its checksum said.

use std::sync::Arc;

use bytes::{BufMut, Bytes};
use mqbridge_broker_api::{
    BindingSpec, Destination, ExchangeKind, ExchangeSpec, HeaderValue, Headers, Message,
    Properties, QueueSpec,
};

use super::Record;

/// The fixed header before every record's kind octet: length and checksum.
pub const HEADER_LEN: usize = 8;
/// Largest record accepted on replay: a message body (at most 512 MiB in AMQP) plus its
/// properties. A larger length is corruption, not a record.
pub const RECORD_MAX: usize = 600 << 20;

mod kind {
    pub const DECLARE_EXCHANGE: u8 = 1;
    pub const DELETE_EXCHANGE: u8 = 2;
    pub const DECLARE_QUEUE: u8 = 3;
    pub const DELETE_QUEUE: u8 = 4;
    pub const BIND: u8 = 5;
    pub const UNBIND: u8 = 6;
    pub const ENQUEUE: u8 = 7;
    pub const REMOVE: u8 = 8;
    pub const DELIVERED: u8 = 9;
    pub const SNAPSHOT: u8 = 10;
    pub const RETAIN: u8 = 11;
    pub const BATCH: u8 = 12;
    pub const SESSION: u8 = 13;
    pub const METADATA: u8 = 14;
}

/// The size of a [`Record::Batch`], header included: it is fixed, so a writer can leave room
/// for it before it knows the batch's length.
pub const BATCH_RECORD_LEN: usize = HEADER_LEN + 1 + 8;

/// Appends `record`, framed and checksummed, to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u32_le(0);
    encode_body(record, out);
    let body = out.get(start + HEADER_LEN..).unwrap_or_default();
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32c(body);
    if let Some(header) = out.get_mut(start..start + HEADER_LEN) {
        header[..4].copy_from_slice(&length.to_le_bytes());
        header[4..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn encode_body(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Enqueue {
            queue,
            id,
            delivered,
            message,
        } => {
            out.put_u8(kind::ENQUEUE);
            out.put_u64_le(*queue);
            out.put_u64_le(*id);
            out.put_u8(u8::from(*delivered));
            put_message(out, message);
        }
        Record::Remove { queue, id } | Record::Delivered { queue, id } => {
            let removed = matches!(record, Record::Remove { .. });
            out.put_u8(if removed {
                kind::REMOVE
            } else {
                kind::DELIVERED
            });
            out.put_u64_le(*queue);
            out.put_u64_le(*id);
        }
        Record::Batch { len } => {
            out.put_u8(kind::BATCH);
            out.put_u64_le(*len);
        }
        Record::Retain {
            vhost,
            topic,
            message,
        } => {
            out.put_u8(kind::RETAIN);
            put_str(out, vhost);
            put_str(out, topic);
            match message {
                Some(message) => {
                    out.put_u8(1);
                    put_message(out, message);
                }
                None => out.put_u8(0),
            }
        }
        Record::Session {
            vhost,
            client_id,
            state,
        } => {
            out.put_u8(kind::SESSION);
            put_str(out, vhost);
            put_str(out, client_id);
            put_optional_bytes(out, state.as_ref());
        }
        Record::Metadata {
            vhost,
            scope,
            key,
            value,
        } => {
            out.put_u8(kind::METADATA);
            put_str(out, vhost);
            put_str(out, scope);
            put_str(out, key);
            put_optional_bytes(out, value.as_ref());
        }
        definition => encode_definition(definition, out),
    }
}

/// `opt<bytes>`: 0, or 1 and the bytes.
fn put_optional_bytes(out: &mut Vec<u8>, value: Option<&Bytes>) {
    match value {
        Some(value) => {
            out.put_u8(1);
            put_bytes(out, value);
        }
        None => out.put_u8(0),
    }
}

fn encode_definition(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::DeclareExchange { vhost, spec } => {
            out.put_u8(kind::DECLARE_EXCHANGE);
            put_str(out, vhost);
            put_str(out, &spec.name);
            put_str(out, spec.kind.as_str());
            out.put_u8(u8::from(spec.auto_delete) | u8::from(spec.internal) << 1);
            put_headers(out, &spec.arguments);
        }
        Record::DeleteExchange { vhost, name } => {
            out.put_u8(kind::DELETE_EXCHANGE);
            put_str(out, vhost);
            put_str(out, name);
        }
        Record::DeclareQueue { vhost, id, spec } => {
            out.put_u8(kind::DECLARE_QUEUE);
            put_str(out, vhost);
            out.put_u64_le(*id);
            put_str(out, &spec.name);
            out.put_u8(u8::from(spec.auto_delete));
            put_headers(out, &spec.arguments);
        }
        Record::DeleteQueue { id } => {
            out.put_u8(kind::DELETE_QUEUE);
            out.put_u64_le(*id);
        }
        Record::Bind { vhost, spec } | Record::Unbind { vhost, spec } => {
            let bind = matches!(record, Record::Bind { .. });
            out.put_u8(if bind { kind::BIND } else { kind::UNBIND });
            put_str(out, vhost);
            put_binding(out, spec);
        }
        Record::Snapshot => out.put_u8(kind::SNAPSHOT),
        Record::Enqueue { .. }
        | Record::Remove { .. }
        | Record::Delivered { .. }
        | Record::Batch { .. }
        | Record::Retain { .. }
        | Record::Session { .. }
        | Record::Metadata { .. } => encode_body(record, out),
    }
}

/// Decodes one record body (kind and fields, after the header).
pub fn decode(body: &[u8]) -> Result<Record, Corrupt> {
    let mut r = Reader { rest: body };
    let record = match r.u8()? {
        kind::ENQUEUE => Record::Enqueue {
            queue: r.u64()?,
            id: r.u64()?,
            delivered: r.u8()? != 0,
            message: Arc::new(r.message()?),
        },
        kind::REMOVE => Record::Remove {
            queue: r.u64()?,
            id: r.u64()?,
        },
        kind::DELIVERED => Record::Delivered {
            queue: r.u64()?,
            id: r.u64()?,
        },
        kind::SNAPSHOT => Record::Snapshot,
        kind::BATCH => Record::Batch { len: r.u64()? },
        kind::RETAIN => {
            let vhost = r.string()?;
            let topic = r.string()?;
            let message = match r.u8()? {
                0 => None,
                _ => Some(Arc::new(r.message()?)),
            };
            Record::Retain {
                vhost,
                topic,
                message,
            }
        }
        kind::SESSION => {
            let vhost = r.string()?;
            let client_id = r.string()?;
            let state = match r.u8()? {
                0 => None,
                _ => Some(Bytes::copy_from_slice(r.bytes()?)),
            };
            Record::Session {
                vhost,
                client_id,
                state,
            }
        }
        kind::METADATA => {
            let vhost = r.string()?;
            let scope = r.string()?;
            let key = r.string()?;
            let value = match r.u8()? {
                0 => None,
                _ => Some(Bytes::copy_from_slice(r.bytes()?)),
            };
            Record::Metadata {
                vhost,
                scope,
                key,
                value,
            }
        }
        definition => decode_definition(definition, &mut r)?,
    };
    if !r.rest.is_empty() {
        return Err(Corrupt);
    }
    Ok(record)
}

fn decode_definition(kind: u8, r: &mut Reader<'_>) -> Result<Record, Corrupt> {
    Ok(match kind {
        kind::DECLARE_EXCHANGE => {
            let vhost = r.string()?;
            let name = r.string()?;
            let kind = ExchangeKind::parse(&r.string()?).ok_or(Corrupt)?;
            let flags = r.u8()?;
            let spec = ExchangeSpec {
                name,
                kind,
                durable: true,
                auto_delete: flags & 1 != 0,
                internal: flags & 2 != 0,
                arguments: r.headers(0)?,
            };
            Record::DeclareExchange { vhost, spec }
        }
        kind::DELETE_EXCHANGE => Record::DeleteExchange {
            vhost: r.string()?,
            name: r.string()?,
        },
        kind::DECLARE_QUEUE => {
            let vhost = r.string()?;
            let id = r.u64()?;
            let name = r.string()?;
            let auto_delete = r.u8()? != 0;
            let spec = QueueSpec {
                name,
                durable: true,
                exclusive: false,
                auto_delete,
                arguments: r.headers(0)?,
            };
            Record::DeclareQueue { vhost, id, spec }
        }
        kind::DELETE_QUEUE => Record::DeleteQueue { id: r.u64()? },
        kind::BIND => Record::Bind {
            vhost: r.string()?,
            spec: r.binding()?,
        },
        kind::UNBIND => Record::Unbind {
            vhost: r.string()?,
            spec: r.binding()?,
        },
        _ => return Err(Corrupt),
    })
}

/// A record that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// CRC-32C (Castagnoli), the checksum of iSCSI, ext4 metadata and Kafka's records.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_bytes(out, value.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.put_u32_le(u32::try_from(value.len()).unwrap_or(u32::MAX));
    out.put_slice(value);
}

fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            out.put_u8(1);
            put_str(out, value);
        }
        None => out.put_u8(0),
    }
}

fn put_opt_u64(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(value) => {
            out.put_u8(1);
            out.put_u64_le(value);
        }
        None => out.put_u8(0),
    }
}

fn put_binding(out: &mut Vec<u8>, spec: &BindingSpec) {
    put_str(out, &spec.source);
    match &spec.destination {
        Destination::Queue(name) => {
            out.put_u8(0);
            put_str(out, name);
        }
        Destination::Exchange(name) => {
            out.put_u8(1);
            put_str(out, name);
        }
    }
    put_str(out, &spec.routing_key);
    put_headers(out, &spec.arguments);
}

fn put_message(out: &mut Vec<u8>, message: &Message) {
    put_str(out, &message.exchange);
    put_str(out, &message.routing_key);
    let p = &message.properties;
    for text in [
        &p.content_type,
        &p.content_encoding,
        &p.correlation_id,
        &p.reply_to,
        &p.message_id,
        &p.kind,
        &p.user_id,
        &p.app_id,
        &p.cluster_id,
    ] {
        put_opt_str(out, text.as_deref());
    }
    put_opt_u64(out, p.delivery_mode.map(u64::from));
    put_opt_u64(out, p.priority.map(u64::from));
    put_opt_u64(out, p.expiration_ms);
    put_opt_u64(out, p.timestamp);
    put_headers(out, &p.headers);
    put_bytes(out, &message.body);
}

fn put_headers(out: &mut Vec<u8>, headers: &Headers) {
    out.put_u32_le(u32::try_from(headers.len()).unwrap_or(u32::MAX));
    for (name, value) in headers.iter() {
        put_str(out, name);
        put_value(out, value);
    }
}

fn put_value(out: &mut Vec<u8>, value: &HeaderValue) {
    match value {
        HeaderValue::String(v) => {
            out.put_u8(b'S');
            put_str(out, v);
        }
        HeaderValue::Bytes(v) => {
            out.put_u8(b'x');
            put_bytes(out, v);
        }
        HeaderValue::Array(values) => {
            out.put_u8(b'A');
            out.put_u32_le(u32::try_from(values.len()).unwrap_or(u32::MAX));
            for value in values {
                put_value(out, value);
            }
        }
        HeaderValue::Table(table) => {
            out.put_u8(b'F');
            put_headers(out, table);
        }
        HeaderValue::Void => out.put_u8(b'V'),
        scalar => put_scalar(out, scalar),
    }
}

fn put_scalar(out: &mut Vec<u8>, value: &HeaderValue) {
    match value {
        HeaderValue::Bool(v) => {
            out.put_u8(b't');
            out.put_u8(u8::from(*v));
        }
        HeaderValue::I8(v) => {
            out.put_u8(b'b');
            out.put_i8(*v);
        }
        HeaderValue::U8(v) => {
            out.put_u8(b'B');
            out.put_u8(*v);
        }
        HeaderValue::I16(v) => {
            out.put_u8(b's');
            out.put_i16_le(*v);
        }
        HeaderValue::U16(v) => {
            out.put_u8(b'u');
            out.put_u16_le(*v);
        }
        HeaderValue::I32(v) => {
            out.put_u8(b'I');
            out.put_i32_le(*v);
        }
        HeaderValue::U32(v) => {
            out.put_u8(b'i');
            out.put_u32_le(*v);
        }
        HeaderValue::I64(v) => {
            out.put_u8(b'l');
            out.put_i64_le(*v);
        }
        HeaderValue::F32(v) => {
            out.put_u8(b'f');
            out.put_f32_le(*v);
        }
        HeaderValue::F64(v) => {
            out.put_u8(b'd');
            out.put_f64_le(*v);
        }
        HeaderValue::Decimal { scale, value } => {
            out.put_u8(b'D');
            out.put_u8(*scale);
            out.put_u32_le(*value);
        }
        HeaderValue::Timestamp(v) => {
            out.put_u8(b'T');
            out.put_u64_le(*v);
        }
        HeaderValue::String(_)
        | HeaderValue::Bytes(_)
        | HeaderValue::Array(_)
        | HeaderValue::Table(_)
        | HeaderValue::Void => put_value(out, value),
    }
}

/// Nesting allowed in header tables and arrays before a record counts as corrupt (a bound on
/// recursion for data that passed its checksum but not our sanity).
const NESTING_MAX: usize = 64;

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Corrupt> {
        if self.rest.len() < n {
            return Err(Corrupt);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        self.take(N)?.try_into().map_err(|_| Corrupt)
    }

    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&[u8], Corrupt> {
        let len = usize::try_from(self.u32()?).map_err(|_| Corrupt)?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Corrupt)
    }

    fn opt_string(&mut self) -> Result<Option<String>, Corrupt> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, Corrupt> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.u64().map(Some),
        }
    }

    fn opt_u8(&mut self) -> Result<Option<u8>, Corrupt> {
        match self.opt_u64()? {
            Some(value) => u8::try_from(value).map(Some).map_err(|_| Corrupt),
            None => Ok(None),
        }
    }

    fn binding(&mut self) -> Result<BindingSpec, Corrupt> {
        let source = self.string()?;
        let destination = match self.u8()? {
            0 => Destination::Queue(self.string()?),
            1 => Destination::Exchange(self.string()?),
            _ => return Err(Corrupt),
        };
        Ok(BindingSpec {
            source,
            destination,
            routing_key: self.string()?,
            arguments: self.headers(0)?,
        })
    }

    fn message(&mut self) -> Result<Message, Corrupt> {
        let exchange = self.string()?;
        let routing_key = self.string()?;
        let mut texts = [(); 9].map(|()| None);
        for text in &mut texts {
            *text = self.opt_string()?;
        }
        let [
            content_type,
            content_encoding,
            correlation_id,
            reply_to,
            message_id,
            kind,
            user_id,
            app_id,
            cluster_id,
        ] = texts;
        let properties = Properties {
            content_type,
            content_encoding,
            correlation_id,
            reply_to,
            message_id,
            kind,
            user_id,
            app_id,
            cluster_id,
            delivery_mode: self.opt_u8()?,
            priority: self.opt_u8()?,
            expiration_ms: self.opt_u64()?,
            timestamp: self.opt_u64()?,
            headers: self.headers(0)?,
        };
        let body = Bytes::copy_from_slice(self.bytes()?);
        Ok(Message {
            exchange,
            routing_key,
            properties,
            body,
            body_md5: Default::default(),
        })
    }

    fn headers(&mut self, depth: usize) -> Result<Headers, Corrupt> {
        if depth > NESTING_MAX {
            return Err(Corrupt);
        }
        let count = self.u32()?;
        let mut headers = Headers::new();
        for _ in 0..count {
            let name = self.string()?;
            let value = self.value(depth)?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    fn value(&mut self, depth: usize) -> Result<HeaderValue, Corrupt> {
        Ok(match self.u8()? {
            b't' => HeaderValue::Bool(self.u8()? != 0),
            b'b' => HeaderValue::I8(i8::from_le_bytes(self.array()?)),
            b'B' => HeaderValue::U8(self.u8()?),
            b's' => HeaderValue::I16(i16::from_le_bytes(self.array()?)),
            b'u' => HeaderValue::U16(u16::from_le_bytes(self.array()?)),
            b'I' => HeaderValue::I32(i32::from_le_bytes(self.array()?)),
            b'i' => HeaderValue::U32(self.u32()?),
            b'l' => HeaderValue::I64(i64::from_le_bytes(self.array()?)),
            b'f' => HeaderValue::F32(f32::from_le_bytes(self.array()?)),
            b'd' => HeaderValue::F64(f64::from_le_bytes(self.array()?)),
            b'D' => HeaderValue::Decimal {
                scale: self.u8()?,
                value: self.u32()?,
            },
            b'S' => HeaderValue::String(self.string()?),
            b'x' => HeaderValue::Bytes(Bytes::copy_from_slice(self.bytes()?)),
            b'T' => HeaderValue::Timestamp(self.u64()?),
            b'A' => {
                let count = self.u32()?;
                let mut values = Vec::new();
                for _ in 0..count {
                    values.push(self.value(depth + 1)?);
                }
                HeaderValue::Array(values)
            }
            b'F' => HeaderValue::Table(self.headers(depth + 1)?),
            b'V' => HeaderValue::Void,
            _ => return Err(Corrupt),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_record_has_its_fixed_length() {
        let mut out = Vec::new();
        encode(&Record::Batch { len: u64::MAX }, &mut out);
        assert_eq!(out.len(), BATCH_RECORD_LEN);
    }

    fn sample_message() -> Message {
        let mut headers = Headers::new();
        headers.insert("n", HeaderValue::I64(-5));
        headers.insert(
            "nested",
            HeaderValue::Array(vec![
                HeaderValue::String("a".into()),
                HeaderValue::Table(Headers::new()),
                HeaderValue::Decimal { scale: 2, value: 7 },
            ]),
        );
        Message {
            exchange: "amq.topic".into(),
            routing_key: "a.b".into(),
            properties: Properties {
                content_type: Some("text/plain".into()),
                delivery_mode: Some(2),
                priority: Some(3),
                expiration_ms: Some(60_000),
                headers,
                ..Properties::default()
            },
            body: Bytes::from_static(b"hello\0world"),
            body_md5: Default::default(),
        }
    }

    fn round_trip(record: &Record) -> Record {
        let mut out = Vec::new();
        encode(record, &mut out);
        let length = u32::from_le_bytes(out[..4].try_into().expect("4"));
        let crc = u32::from_le_bytes(out[4..8].try_into().expect("4"));
        let body = &out[HEADER_LEN..];
        assert_eq!(length as usize, body.len());
        assert_eq!(crc, crc32c(body));
        decode(body).expect("decodes")
    }

    #[test]
    fn every_record_round_trips() {
        let message = Arc::new(sample_message());
        let records = [
            Record::Enqueue {
                queue: 4,
                id: 99,
                delivered: true,
                message: Arc::clone(&message),
            },
            Record::Remove { queue: 4, id: 99 },
            Record::Delivered { queue: 4, id: 99 },
            Record::DeleteQueue { id: 4 },
            Record::Snapshot,
            Record::Batch { len: 12_345 },
            Record::Session {
                vhost: "/".into(),
                client_id: "device".into(),
                state: Some(Bytes::from_static(b"opaque")),
            },
            Record::Metadata {
                vhost: "/".into(),
                scope: "sqs-queue".into(),
                key: "orders".into(),
                value: Some(Bytes::from_static(b"{}")),
            },
            Record::Metadata {
                vhost: "/".into(),
                scope: "sqs-queue".into(),
                key: "orders".into(),
                value: None,
            },
            Record::Retain {
                vhost: "/".into(),
                topic: "t/1".into(),
                message: Some(message),
            },
            Record::Bind {
                vhost: "/".into(),
                spec: BindingSpec {
                    source: "x".into(),
                    destination: Destination::Exchange("y".into()),
                    routing_key: "#".into(),
                    arguments: Headers::new(),
                },
            },
        ];
        for record in &records {
            assert_eq!(&round_trip(record), record);
        }
    }

    #[test]
    fn truncated_or_trailing_octets_are_corrupt_not_a_panic() {
        let mut out = Vec::new();
        let record = Record::Enqueue {
            queue: 1,
            id: 2,
            delivered: false,
            message: Arc::new(sample_message()),
        };
        encode(&record, &mut out);
        let body = &out[HEADER_LEN..];
        for cut in 0..body.len() {
            assert_eq!(decode(&body[..cut]), Err(Corrupt), "cut at {cut}");
        }
        let mut longer = body.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), Err(Corrupt));
    }
}
