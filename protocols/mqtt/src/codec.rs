//! MQTT 3.1, 3.1.1 and 5 framing: octets in, [`Packet`]s out, and back. Sans-IO: nothing here
//! reads a socket, awaits or keeps state between calls; it runs on whichever task owns the
//! buffers (the connection task).
//!
//! This module owns packet boundaries, the packet-size limit, and every rule a receiver can
//! check on one packet alone: reserved bits, field types, UTF-8, topic name and filter syntax,
//! which properties a packet may carry, which reason codes. It does not own anything that
//! needs state: that the first packet is the only CONNECT [MQTT-3.1.0-2], packet identifiers
//! in use, topic alias mappings, receive maximum, keep alive, the authentication method an
//! AUTH must repeat, or which direction a packet may travel (decoding accepts every packet
//! type either peer may send, so that tests and clients can use it too). Those belong to the
//! session, which sees every decoded packet.
//!
//! # Why not rumqttc's `mqttbytes`
//!
//! STYLE.md suggests wrapping a codec crate where it serves. `mqttbytes` does not serve a
//! server: it refuses MQTT 3.1 (protocol name "MQIsdp", level 3), which old clients and
//! bridges still send; its `Login` requires a password whenever a user name is set, which
//! 3.1.1 allows and token-in-username schemes rely on; it keeps 3.1.1 and 5 as two separate
//! codecs with two sets of types, where the session wants one; and it does not check the rules
//! a server must enforce on what it receives (U+0000 in strings, reserved flag bits, packet
//! identifier 0, wildcards in topic names, duplicate properties...).
//!
//! # Wire layout
//!
//! Every packet starts with a fixed header (spec 2.1.1; 3.1.1 2.2); integers are big-endian:
//!
//! ```text
//!   bit    7   6   5   4   3   2   1   0
//!        +---------------+---------------+
//! byte 1 |  packet type  |     flags     |   PUBLISH flags: DUP, QoS (2 bits), RETAIN;
//!        +---------------+---------------+   PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010; others 0000
//! byte 2 | remaining length, 1 to 4      |   a Variable Byte Integer: 7 bits per octet, least
//!  ...   | octets                        |   significant first, bit 7 = more octets follow
//!        +-------------------------------+
//!        | variable header, payload      |   remaining length octets
//!        +-------------------------------+
//! ```
//!
//! Then, by type (`[props]` is an MQTT 5 property block: a Variable Byte Integer length and
//! that many octets of identifier-value pairs):
//!
//! ```text
//!  1 CONNECT      see connect.rs
//!  2 CONNACK      flags:u8 (bit 0 session present)  code:u8  [props]
//!  3 PUBLISH      topic:string  packet-id:u16 if QoS > 0  [props]  payload: the rest
//!  4-7 PUBACK PUBREC PUBREL PUBCOMP
//!                 packet-id:u16  MQTT 5: [reason:u8 [props]] (omitted: 0 and no props)
//!  8 SUBSCRIBE    packet-id:u16  [props]  (filter:string options:u8)+
//!  9 SUBACK       packet-id:u16  [props]  reason:u8+
//! 10 UNSUBSCRIBE  packet-id:u16  [props]  filter:string+
//! 11 UNSUBACK     packet-id:u16  MQTT 5: props reason:u8+
//! 12 PINGREQ, 13 PINGRESP   nothing
//! 14 DISCONNECT   MQTT 5: [reason:u8 [props]]
//! 15 AUTH         MQTT 5 only: [reason:u8 props]
//!
//! string = length:u16 + UTF-8 octets; binary = length:u16 + octets
//! subscription options: bits 1-0 QoS; MQTT 5 adds bit 2 no local, bit 3 retain as published,
//! bits 5-4 retain handling; the other bits are reserved, 0
//! ```
//!
//! # Deviations and choices
//!
//! - A Variable Byte Integer that is not minimal ([MQTT-1.5.5-1], an MQTT 5 rule) is refused
//!   in every version; 3.1.1 only caps it at four octets.
//! - A received reason code must be in its packet's table (PUBACK's, SUBACK's...). The spec
//!   puts the MUST on the sender; we refuse with a Protocol Error, as Mosquitto does.
//! - A syntactically invalid filter in SUBSCRIBE or UNSUBSCRIBE fails the whole packet
//!   ([`DecodeError::InvalidTopicFilter`], reason 0x8F) instead of one SUBACK code per filter;
//!   Mosquitto also closes the connection (with 0x81).
//! - `$share/{group}/{filter}` syntax ([MQTT-4.8.2-1], [MQTT-4.8.2-2]) is checked in every
//!   version, because Mosquitto and EMQX offer shared subscriptions to 3.1.1 clients too;
//!   strictly, such a filter is an ordinary one in 3.1.1.
//! - MQTT 3.1 allows client identifiers of 1 to 23 octets; longer ones are accepted, as
//!   Mosquitto does. Empty ones are decoded in every version: refusing them (3.1, or 3.1.1
//!   without clean session, [MQTT-3.1.3-8]) or assigning one is the session's job. A 3.1
//!   password is read as binary data, as in 3.1.1, although 3.1 calls it a string.
//! - Mosquitto's bridge flag (protocol level | 0x80) is not understood:
//!   [`DecodeError::UnsupportedProtocolVersion`].
//! - An acknowledgement with packet identifier 0 is a Protocol Error; PUBLISH, SUBSCRIBE and
//!   UNSUBSCRIBE with 0 are malformed, as the spec says.
//! - An AUTH of remaining length 1 (a reason, no property length) is accepted, as it is for
//!   DISCONNECT; the spec only describes length 0 and the full form.
//! - Disallowed code points (U+0001..U+001F, U+007F..U+009F, non-characters) are accepted:
//!   the spec says SHOULD NOT and lets the receiver choose (1.5.4).
//! - The will topic and a Response Topic are topic names, so the topic name rules apply to
//!   them as to a PUBLISH's topic.
//! - Encoding a 3.1 CONNACK writes 0 for the whole first octet: 3.1 has no session present
//!   flag.
//!
//! Left to the session, as they need state or belong to one direction: a second CONNECT,
//! Subscription Identifier in a client's PUBLISH [MQTT-3.3.4-6], topic alias range and
//! mapping, Session Expiry in DISCONNECT [MQTT-3.14.2-2], AUTH's method, a payload that
//! does not match its Payload Format Indicator, `$`-topic filtering [MQTT-4.7.2-1].
//!
//! # Invariants
//!
//! - [`decode()`] either consumes exactly one whole packet and returns it, or returns `Ok(None)`
//!   and consumes nothing. It never panics on peer input.
//! - A packet's size is checked against the limit from its fixed header alone; the buffer
//!   never grows towards a packet that would be refused.
//! - A PUBLISH payload (and every binary field) shares the read buffer's allocation.
//! - [`encode()`] appends one whole packet or, on error, nothing; [`encoded_len`] is exactly
//!   what it appends.
//! - `decode(encode(p)) == p` for every packet valid in its version.
//! - After a [`DecodeError`] the connection is finished.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod connect;
mod decode;
mod encode;
mod packet;
mod properties;
mod wire;

pub use connect::peek_connect_version;
pub use decode::decode;
pub use encode::{encode, encoded_len};
pub use packet::reason::connack_v3;
pub use packet::*;

/// The largest packet the protocol can express: one type octet, four of remaining length and
/// 268,435,455 of body (spec 2.1.4).
pub const PACKET_SIZE_MAX: usize = 1 + 4 + wire::VAR_INT_MAX as usize;

/// Why incoming octets could not be decoded. Every variant ends the connection; the message
/// cites the statement broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The remaining length needs a fifth octet or is not minimally encoded.
    #[error("[MQTT-1.5.5-1] remaining length is longer than 4 octets or not minimal")]
    MalformedRemainingLength,
    /// The fixed header announces a packet larger than the limit passed to [`decode()`].
    #[error("[MQTT-3.2.2-15] packet of {size} octets exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The whole packet's size, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// The packet cannot be parsed: a reserved bit set, a bad string, a field that does not
    /// fit the packet type. Reason code 0x81.
    #[error("{0}")]
    Malformed(&'static str),
    /// The packet parses but breaks a rule: a duplicate property, a forbidden value, a first
    /// packet other than CONNECT. Reason code 0x82.
    #[error("{0}")]
    ProtocolError(&'static str),
    /// A CONNECT with protocol name "MQTT" or "MQIsdp" and a level we do not speak. Answer a
    /// 3.x client with CONNACK return code 0x01 [MQTT-3.1.2-2 of 3.1.1], an MQTT 5 one with
    /// 0x84 [MQTT-3.1.2-2]; since the level is unknown, which one is the session's guess.
    #[error("[MQTT-3.1.2-2] unsupported protocol level {level}")]
    UnsupportedProtocolVersion {
        /// The protocol level octet of the CONNECT.
        level: u8,
    },
    /// A CONNECT whose protocol name is neither "MQTT" nor "MQIsdp". The server may answer
    /// 0x84 or just close [MQTT-3.1.2-1].
    #[error("[MQTT-3.1.2-1] protocol name is neither \"MQTT\" nor \"MQIsdp\"")]
    UnsupportedProtocolName,
    /// A topic name (of a PUBLISH, a will, a Response Topic) breaks the rules of 4.7.
    #[error("{0}")]
    InvalidTopicName(&'static str),
    /// A topic filter of a SUBSCRIBE or UNSUBSCRIBE breaks the rules of 4.7 or 4.8.
    #[error("{0}")]
    InvalidTopicFilter(&'static str),
    /// The remaining length ends before a field the packet must have. Reason code 0x81.
    #[error("[MQTT 2.1.4] the remaining length ends inside {field}")]
    Truncated {
        /// The field that did not fit.
        field: &'static str,
    },
}

impl DecodeError {
    /// The MQTT 5 reason code of the DISCONNECT (or, for a CONNECT, the CONNACK) this error
    /// calls for. 3.x has no such packet: the server just closes, except for
    /// [`DecodeError::UnsupportedProtocolVersion`] (CONNACK 0x01).
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::MalformedRemainingLength
            | DecodeError::Malformed(_)
            | DecodeError::Truncated { .. } => reason::MALFORMED_PACKET,
            DecodeError::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            DecodeError::ProtocolError(_) => reason::PROTOCOL_ERROR,
            DecodeError::UnsupportedProtocolVersion { .. }
            | DecodeError::UnsupportedProtocolName => reason::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::InvalidTopicName(_) => reason::TOPIC_NAME_INVALID,
            DecodeError::InvalidTopicFilter(_) => reason::TOPIC_FILTER_INVALID,
        }
    }
}

/// Why a packet could not be encoded. Our own packets only; nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body exceeds the 268,435,455 octets a remaining length can say.
    #[error("packet body of {remaining_length} octets exceeds the 268,435,455 MQTT allows")]
    PacketTooLarge {
        /// The size of the variable header and payload.
        remaining_length: usize,
    },
    /// A string or binary field exceeds the 65,535 octets its length prefix can say.
    #[error("field of {len} octets exceeds the 65,535 a two-octet length allows")]
    FieldTooLong {
        /// The field's length.
        len: usize,
    },
    /// The packet is not valid in the version asked for, e.g. QoS 1 without a packet
    /// identifier, or AUTH in 3.1.1.
    #[error("{0}")]
    Invalid(&'static str),
}

#[cfg(test)]
mod tests;
