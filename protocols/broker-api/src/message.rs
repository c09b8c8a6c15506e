//! The one internal message. Adapters convert their frames to a [`Message`] on publish and back
//! on delivery; the core never looks inside the body.
//!
//! The property set is AMQP 0-9-1's, because it is the richest of the protocols we speak; the
//! other protocols fill what they can and carry the rest as headers (ARCHITECTURE.md has the
//! table). A message is shared as `Arc<Message>` by every queue it was routed to, so fan-out
//! never copies the body.

use bytes::Bytes;

/// The header naming a message's group. In a queue declared with the argument
/// `x-message-groups: true`, the messages of one group go to one consumer (or `get` caller) at
/// a time, in order: whoever holds unsettled messages of a group holds the group. SQS FIFO's
/// MessageGroupId travels here.
pub const MESSAGE_GROUP_HEADER: &str = "x-message-group-id";

/// A message as the broker stores and routes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// The exchange it was published to (`""` is the default exchange).
    pub exchange: String,
    /// The routing key it was published with.
    pub routing_key: String,
    pub properties: Properties,
    pub body: Bytes,
    /// The body's MD5 once a protocol that shows one has computed it (SQS answers every send
    /// and every receive with it): a digest of a 1 KiB body costs as much as the rest of a
    /// receive, so it is computed once per message, not once per look. Not journaled; after a
    /// restart it is computed again on first use.
    pub body_md5: BodyMd5,
}

/// A message body's MD5, computed at most once. It is derived from the body, so it takes no
/// part in comparing messages.
#[derive(Debug, Clone, Default)]
pub struct BodyMd5(std::sync::OnceLock<[u8; 16]>);

impl BodyMd5 {
    /// The digest, from `compute` the first time (which must digest the message's body).
    pub fn get_or_compute(&self, compute: impl FnOnce() -> [u8; 16]) -> [u8; 16] {
        *self.0.get_or_init(compute)
    }

    /// Records a digest computed before the message was made (of the same body bytes).
    pub fn set(&self, digest: [u8; 16]) {
        let _ = self.0.set(digest);
    }
}

impl PartialEq for BodyMd5 {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What a queued message costs beyond the bytes [`Message::size_estimate`] counts one by one: the
/// `Arc<Message>` with its properties, the queue's entry and, for a persistent message, the
/// journal's index of it, plus the allocator's rounding of each and of the body.
///
/// Measured, not guessed: a release broker with bodies owned (see [`own_body`]), persistent
/// messages with publisher confirms stored in durable queues by `mqbridge-bench amqp-fill`, three
/// batches per size (50,000 messages of 100 B and of 1 KiB, 10,000 of 16 KiB, each batch in a
/// queue of its own), the broker's `VmRSS` read after each batch. Each message added, in the
/// second and third batches, 674-686 B (100 B bodies), 1,620 B (1 KiB) and 16,972 B (16 KiB;
/// 18,247 B in the second batch) of RSS: 574-596 B beyond its body whatever the body's size, so
/// 640 leaves a little room. The first batch into a fresh broker cost more while its tables and
/// heap grew (627 and 675 B beyond 100 B and 1 KiB bodies, 4.9 KB beyond 16 KiB ones); that is
/// growth, not a cost per message. Before bodies were owned, the same batches added 717-718,
/// 1,659-1,672 and 22,412-22,448 B: each message also pinned its share of the 64 KiB buffer it
/// was read into. Since then a message carries its body's digest ([`BodyMd5`], 24 bytes in
/// `Message`), which the margin covers.
pub const MESSAGE_OVERHEAD_BYTES: usize = 640;

/// Bodies up to this size are copied by [`own_body`]; the size of a connection's read buffer.
pub const BODY_COPY_MAX: usize = 64 * 1024;

/// `body`, read as a zero-copy slice of a connection's read buffer, as a queued message should
/// hold it. A `Bytes` slice keeps its whole allocation alive: a queued 100-byte body would pin the
/// 64 KiB buffer it was read into, and a buffer of 1 KiB messages stays alive, with the frames
/// around the bodies, until the last of them is consumed; none of that is counted against the
/// memory watermark, so the watermark would not bound memory. Copying a body this small is one
/// allocation and a memcpy, little next to routing and journaling it. A larger body needed the
/// buffer to grow to hold it, so it owns most of its allocation already and stays a slice.
pub fn own_body(body: &Bytes) -> Bytes {
    if body.len() <= BODY_COPY_MAX {
        Bytes::copy_from_slice(body)
    } else {
        body.clone()
    }
}

impl Message {
    /// Bytes this message accounts for in memory limits: the body, the names and properties it
    /// holds on the heap, and [`MESSAGE_OVERHEAD_BYTES`] for everything else. The body is counted
    /// by length, which is what it holds once adapters have taken it through [`own_body`].
    pub fn size_estimate(&self) -> usize {
        self.body.len()
            + self.exchange.len()
            + self.routing_key.len()
            + self.properties.heap_size_estimate()
            + MESSAGE_OVERHEAD_BYTES
    }
}

/// Common message properties. `None` means the publisher did not set it; adapters deliver
/// exactly what was set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub headers: Headers,
    /// AMQP delivery mode: 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    /// Per-message time to live, in milliseconds.
    pub expiration_ms: Option<u64>,
    pub message_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// The application's message type name (AMQP `type`).
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub cluster_id: Option<String>,
}

impl Properties {
    /// Whether the publisher asked for the message to survive a restart.
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    /// Bytes the properties hold outside the message struct: their strings and headers.
    fn heap_size_estimate(&self) -> usize {
        let texts = [
            &self.content_type,
            &self.content_encoding,
            &self.correlation_id,
            &self.reply_to,
            &self.message_id,
            &self.kind,
            &self.user_id,
            &self.app_id,
            &self.cluster_id,
        ];
        let texts: usize = texts
            .iter()
            .filter_map(|text| text.as_ref())
            .map(String::len)
            .sum();
        texts + self.headers.heap_size_estimate()
    }
}

/// A typed header value. Integer widths are kept so that an AMQP table round-trips exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
    Decimal {
        scale: u8,
        value: u32,
    },
    /// Text (AMQP long string, MQTT user property, STOMP header).
    String(String),
    /// Bytes that are not necessarily text (AMQP long strings are byte strings on the wire).
    Bytes(Bytes),
    /// Seconds since the Unix epoch.
    Timestamp(u64),
    Array(Vec<HeaderValue>),
    Table(Headers),
    Void,
}

impl HeaderValue {
    /// The value as a signed integer, if it is any integer type.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            HeaderValue::I8(v) => Some(v.into()),
            HeaderValue::U8(v) => Some(v.into()),
            HeaderValue::I16(v) => Some(v.into()),
            HeaderValue::U16(v) => Some(v.into()),
            HeaderValue::I32(v) => Some(v.into()),
            HeaderValue::U32(v) => Some(v.into()),
            HeaderValue::I64(v) => Some(v),
            HeaderValue::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Bytes the value holds on the heap, beyond its own slot.
    fn heap_size_estimate(&self) -> usize {
        match self {
            HeaderValue::String(text) => text.len(),
            HeaderValue::Bytes(bytes) => bytes.len(),
            HeaderValue::Array(values) => values
                .iter()
                .map(|value| std::mem::size_of::<HeaderValue>() + value.heap_size_estimate())
                .sum(),
            HeaderValue::Table(headers) => headers.heap_size_estimate(),
            _ => 0,
        }
    }

    /// The value as text, if it is a string or bytes that are valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            HeaderValue::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// An ordered table of named values (AMQP field table, MQTT user properties, STOMP headers).
/// Insertion order is kept; names are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, HeaderValue)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets `name`, replacing an existing value in place.
    pub fn insert(&mut self, name: impl Into<String>, value: HeaderValue) {
        let name = name.into();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<HeaderValue> {
        let index = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(index).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Bytes the table holds on the heap: its entries, their names and what their values hold.
    fn heap_size_estimate(&self) -> usize {
        self.0
            .iter()
            .map(|(name, value)| {
                std::mem::size_of::<(String, HeaderValue)>()
                    + name.len()
                    + value.heap_size_estimate()
            })
            .sum()
    }
}

impl FromIterator<(String, HeaderValue)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, HeaderValue)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.insert(name, value);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place_and_keeps_order() {
        let mut headers = Headers::new();
        headers.insert("a", HeaderValue::I32(1));
        headers.insert("b", HeaderValue::I32(2));
        headers.insert("a", HeaderValue::I32(3));
        let names: Vec<_> = headers.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(headers.get("a"), Some(&HeaderValue::I32(3)));
        assert_eq!(headers.remove("a"), Some(HeaderValue::I32(3)));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_small_body_is_copied_out_of_its_buffer_and_a_large_one_is_not() {
        let buffer = Bytes::from(vec![7u8; 2 * BODY_COPY_MAX]);
        let small = buffer.slice(10..110);
        let owned = own_body(&small);
        assert_eq!(owned, small);
        assert_ne!(owned.as_ptr(), small.as_ptr());
        let large = buffer.slice(..BODY_COPY_MAX + 1);
        assert_eq!(own_body(&large).as_ptr(), large.as_ptr());
    }

    #[test]
    fn size_estimate_counts_names_properties_and_headers() {
        let bare = Message {
            body: Bytes::from_static(&[0; 100]),
            ..Message::default()
        };
        assert_eq!(bare.size_estimate(), 100 + MESSAGE_OVERHEAD_BYTES);
        let mut full = bare.clone();
        full.routing_key = "orders".into();
        full.properties.message_id = Some("m-1".into());
        full.properties
            .headers
            .insert("trace", HeaderValue::String("abcd".into()));
        let entry = std::mem::size_of::<(String, HeaderValue)>();
        assert_eq!(
            full.size_estimate(),
            bare.size_estimate() + "orders".len() + "m-1".len() + entry + "trace".len() + 4
        );
    }

    #[test]
    fn integers_of_every_width_read_as_i64() {
        assert_eq!(HeaderValue::U8(7).as_i64(), Some(7));
        assert_eq!(HeaderValue::I16(-2).as_i64(), Some(-2));
        assert_eq!(HeaderValue::String("7".into()).as_i64(), None);
    }
}
