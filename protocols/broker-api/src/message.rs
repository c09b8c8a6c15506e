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
}

impl Message {
    /// Bytes this message accounts for in memory limits: the body plus a rough fixed cost.
    pub fn size_estimate(&self) -> usize {
        /// What a message costs beyond its body: the struct, the names and a few headers.
        const MESSAGE_OVERHEAD_BYTES: usize = 256;
        self.body.len() + MESSAGE_OVERHEAD_BYTES
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
    fn integers_of_every_width_read_as_i64() {
        assert_eq!(HeaderValue::U8(7).as_i64(), Some(7));
        assert_eq!(HeaderValue::I16(-2).as_i64(), Some(-2));
        assert_eq!(HeaderValue::String("7".into()).as_i64(), None);
    }
}
