//! AMQP 0-9-1 framing: bytes in, [`Frame`]s out, and back. Sans-IO: nothing here reads a
//! socket, awaits or keeps state between calls; it runs on whichever task owns the buffers
//! (the connection task).
//!
//! This module owns frame boundaries and frame-level limits: the protocol header, the frame
//! header, frame-max, the frame-end octet, and turning method and content-header payloads into
//! typed values. amq-protocol parses and generates those two payload kinds; the framing around
//! them is ours, so that a body frame is a zero-copy slice of the read buffer (amq-protocol's
//! `parse_frame` copies bodies into a `Vec`) and so that a frame's declared size is checked
//! against frame-max before a single payload octet is buffered.
//!
//! It does not own channel state, the method → header → body sequence of a content, the rule
//! that a content header's class matches its method, the channel-0 rules, or the negotiation of
//! frame-max: those belong to the session, which sees every decoded frame.
//!
//! # Wire layout
//!
//! The client opens with the protocol header, once, before any frame (spec §4.2.2):
//!
//! ```text
//! +-----+-----+-----+-----+-----+-----+-----+-----+
//! | 'A' | 'M' | 'Q' | 'P' |  0  |  0  |  9  |  1  |
//! +-----+-----+-----+-----+-----+-----+-----+-----+
//! ```
//!
//! Then both peers exchange frames (§4.2.3); integers are big-endian:
//!
//! ```text
//! 0      1         3          7                  7+size      8+size
//! +------+---------+----------+------------------+-----------+
//! | type | channel |   size   |  payload[size]   | frame-end |
//! |  u8  |   u16   |   u32    |                  |   0xCE    |
//! +------+---------+----------+------------------+-----------+
//!
//! type 1 method     payload = class-id:u16 method-id:u16 arguments            (§4.2.4)
//! type 2 header     payload = class-id:u16 weight:u16 body-size:u64
//!                             property-flags:u16 property-list                (§4.2.6.1)
//! type 3 body       payload = opaque content octets                           (§4.2.6.2)
//! type 8 heartbeat  payload = empty                                           (§4.2.7)
//! ```
//!
//! frame-max, as negotiated by connection.tune, counts the whole frame: payload plus the eight
//! octets of type, channel, size and frame-end. Zero means no limit.
//!
//! # Deviations from the spec
//!
//! - The prose of §4.2.3 lists the heartbeat as type 4; the spec's constants (frame-heartbeat)
//!   and every implementation use 8, and so do we.
//! - A heartbeat on a channel other than 0 is decoded as [`Frame::Heartbeat`] with its channel,
//!   not refused here: the spec asks for 503 in §4.2.3 and for 501 in §4.2.7, and the session,
//!   which raises connection exceptions, picks.
//! - The content header's weight field "is unused and must be zero" (§4.2.6.1); we ignore it
//!   on input, as RabbitMQ and amq-protocol do, and write zero.
//! - An unknown class or method id is answered with 503 COMMAND_INVALID; RabbitMQ answers 540.
//! - Field names in tables are not validated (§4.2.5.5 says SHOULD), as in RabbitMQ.
//! - Through amq-protocol: field-table type tags follow RabbitMQ, not the spec's table (`s` is
//!   a short int, `l` and `L` are both read as a signed long-long, `x` is a byte array); the
//!   property-flags continuation bit is ignored, which is harmless because basic has 14
//!   properties and never needs a second flags word. Short strings must be UTF-8, as §4.2.5.3
//!   says; RabbitMQ accepts any octets, so a client relying on that is refused here.
//!
//! # Invariants
//!
//! - [`decode`] either consumes exactly one whole frame and returns it, or returns `Ok(None)`
//!   and consumes nothing. It never panics on peer input.
//! - A frame's declared size is checked against frame-max from its 7 header octets alone;
//!   the buffer never grows towards a frame that would be refused.
//! - A [`Frame::Body`] payload shares the read buffer's allocation: holding it keeps that
//!   allocation alive until every slice of it is dropped.
//! - The encode functions append whole frames or, on error, leave `out` as it was, so a caller
//!   never sends half a frame.
//! - After a [`DecodeError`] the connection is finished; what remains in the buffer is
//!   unspecified beyond what each function documents.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::io;
use std::ops::Range;

mod nesting;

pub use nesting::{FIELD_NESTING_MAX, table_octets_within_limit};

use amq_protocol::frame::parsing::parse_content_header;
use amq_protocol::frame::{BackToTheBuffer, GenError, GenResult, WriteContext};
use amq_protocol::protocol::basic::gen_properties;
use amq_protocol::protocol::{AMQPClass, BasicProperties, gen_class, parse_class};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The protocol header of AMQP 0-9-1, the only version we speak (§4.2.2).
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// The octets a frame adds around its payload (type, channel, size, frame-end); frame-max
/// counts them.
pub const FRAME_OVERHEAD: u32 = 8;

/// The frame-max both peers must accept until connection.tune-ok, and the lowest value tune
/// may settle on (spec constant frame-min-size). amq-protocol's `FRAME_MIN_SIZE` says 8192,
/// which is not the spec's value, so we keep our own.
pub const FRAME_MIN_SIZE: u32 = 4096;

/// The octets before a frame's payload: type, channel and size.
const FRAME_HEADER_SIZE: usize = 7;

/// The octet that closes every frame (§4.2.3).
const FRAME_END: u8 = 0xCE;

/// A heartbeat frame; it has no fields, so it is a constant.
const HEARTBEAT_FRAME: [u8; 8] = [8, 0, 0, 0, 0, 0, 0, FRAME_END];

/// The class id of basic, the only 0-9-1 class whose methods carry content.
const CLASS_BASIC: u16 = 60;

/// Space reserved up front for a method or content-header frame. Publish, deliver and ack fit
/// in it, so the hot path writes a frame without the buffer regrowing halfway.
const FRAME_SIZE_HINT: usize = 256;

/// The largest amount [`decode`] reserves ahead for a frame still arriving. Reserving is only
/// an optimisation; past this the buffer grows with the octets that actually arrive, so that
/// with frame-max 0 a 7-octet header cannot make us allocate 4 GiB.
const RESERVE_AHEAD_MAX: usize = 1 << 20;

/// Zero octets appended after a class and method id to ask amq-protocol whether it knows the
/// pair. Every 0-9-1 method parses from all-zero arguments (empty strings and tables, zero
/// integers and bits) in fewer octets than this; the largest, connection.start, takes 14.
const PROBE_ARGUMENTS_SIZE: usize = 64;

/// The reply codes of connection.close and channel.close (spec, "Constants"). 3xx and 4xx are
/// soft errors that close a channel, 5xx hard errors that close the connection.
pub mod reply_code {
    /// The method completed; also the code of an orderly close.
    pub const REPLY_SUCCESS: u16 = 200;
    /// The client sent content larger than the server accepts (channel close).
    pub const CONTENT_TOO_LARGE: u16 = 311;
    /// A mandatory message could not be routed to any queue (basic.return).
    pub const NO_ROUTE: u16 = 312;
    /// An immediate message found no consumer ready to take it (basic.return).
    pub const NO_CONSUMERS: u16 = 313;
    /// An operator or the broker's shutdown closed the connection.
    pub const CONNECTION_FORCED: u16 = 320;
    /// The client asked for a virtual host that does not exist.
    pub const INVALID_PATH: u16 = 402;
    /// The client may not access the resource, by permission or because it is exclusive.
    pub const ACCESS_REFUSED: u16 = 403;
    /// The named queue or exchange does not exist.
    pub const NOT_FOUND: u16 = 404;
    /// Another connection holds the resource exclusively.
    pub const RESOURCE_LOCKED: u16 = 405;
    /// A precondition failed, e.g. a queue redeclared with other arguments.
    pub const PRECONDITION_FAILED: u16 = 406;
    /// A frame could not be read: bad type, size or frame-end octet.
    pub const FRAME_ERROR: u16 = 501;
    /// A method or content header could not be parsed or had illegal field values.
    pub const SYNTAX_ERROR: u16 = 502;
    /// The method is invalid here: unknown, out of sequence or on the wrong channel.
    pub const COMMAND_INVALID: u16 = 503;
    /// The channel is not open, or its state does not allow the method.
    pub const CHANNEL_ERROR: u16 = 504;
    /// A frame arrived that the protocol state did not expect, e.g. a body without a header.
    pub const UNEXPECTED_FRAME: u16 = 505;
    /// The server lacks a resource (memory, channels) to serve the client.
    pub const RESOURCE_ERROR: u16 = 506;
    /// The client tried something the server does not allow in this context.
    pub const NOT_ALLOWED: u16 = 530;
    /// The client asked for a feature the server does not implement.
    pub const NOT_IMPLEMENTED: u16 = 540;
    /// The server hit an internal error it could not recover from.
    pub const INTERNAL_ERROR: u16 = 541;
}

/// One AMQP frame, with its payload decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method frame: a command and its arguments.
    Method {
        /// The channel the method belongs to; 0 for the connection class.
        channel: u16,
        /// The method with its arguments.
        method: AMQPClass,
    },
    /// A content header, sent after a content-carrying method and before its body frames.
    Header {
        /// The channel of the content.
        channel: u16,
        /// The class of the method the content belongs to; 60 (basic) when valid. The session
        /// checks it against the method (§4.2.6.1).
        class_id: u16,
        /// The total size of the content body, summed over the body frames that follow.
        body_size: u64,
        /// The message properties.
        properties: BasicProperties,
    },
    /// A piece of a content body.
    Body {
        /// The channel of the content.
        channel: u16,
        /// The octets of this piece, a zero-copy slice of the buffer it was decoded from.
        payload: Bytes,
    },
    /// A heartbeat. The spec requires channel 0; the session decides what to do with others.
    Heartbeat {
        /// The channel the heartbeat arrived on.
        channel: u16,
    },
}

impl Frame {
    /// The channel this frame travels on.
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. }
            | Frame::Heartbeat { channel } => *channel,
        }
    }
}

/// Why incoming octets could not be decoded. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The client did not open with the 0-9-1 protocol header. Per §4.2.2 the server answers
    /// with [`PROTOCOL_HEADER`] and closes the socket; no connection.close is sent.
    #[error("[AMQP 0-9-1 §4.2.2] protocol header is not \"AMQP\" 0 0 9 1")]
    BadProtocolHeader,
    /// The frame type octet is not 1, 2, 3 or 8. §4.2.3 says to close the socket "without
    /// sending any further data on it"; RabbitMQ sends connection.close 501 first.
    #[error("[AMQP 0-9-1 §4.2.3] unknown frame type {0}")]
    UnknownFrameType(u8),
    /// The frame's declared size exceeds the negotiated frame-max.
    #[error(
        "[AMQP 0-9-1 §4.2.3] frame of {size} payload octets plus 8 of framing exceeds \
         frame-max {frame_max}"
    )]
    FrameTooLarge {
        /// The payload size the frame header declared.
        size: u32,
        /// The frame-max in force, framing included.
        frame_max: u32,
    },
    /// The octet after the payload is not the frame-end marker. §4.2.3 says to close the
    /// socket "without sending any further data on it"; RabbitMQ sends connection.close 501
    /// first.
    #[error("[AMQP 0-9-1 §4.2.3] frame-end octet was 0x{0:02x}, expected 0xCE")]
    BadFrameEnd(u8),
    /// A heartbeat frame declared a payload; §4.2.7: "A peer that receives an invalid
    /// heartbeat frame MUST raise a connection exception with reply code 501 (frame error)."
    #[error("[AMQP 0-9-1 §4.2.7] heartbeat frame declares {size} payload octets, expected 0")]
    HeartbeatWithPayload {
        /// The payload size the frame header declared.
        size: u32,
    },
    /// A method or content-header payload is truncated, has trailing octets or holds an
    /// illegal value. For a content header `method_id` is 0.
    #[error(
        "[AMQP 0-9-1 §4.2.4, §4.2.6.1] malformed payload for class {class_id} method \
         {method_id} on channel {channel}"
    )]
    Syntax {
        /// The channel of the frame.
        channel: u16,
        /// The class id from the payload's first two octets, 0 if absent.
        class_id: u16,
        /// The method id from the payload's octets 2 and 3, 0 if absent.
        method_id: u16,
    },
    /// A method frame names a class and method pair that 0-9-1 does not define.
    #[error("[AMQP 0-9-1 §4.2.4] unknown method {class_id}.{method_id} on channel {channel}")]
    UnknownMethod {
        /// The channel of the frame.
        channel: u16,
        /// The class id the payload named.
        class_id: u16,
        /// The method id the payload named.
        method_id: u16,
    },
}

impl DecodeError {
    /// The reply code of the connection.close this error calls for. A bad protocol header is
    /// answered with [`PROTOCOL_HEADER`] instead (§4.2.2), so its code is only for logs.
    pub fn reply_code(&self) -> u16 {
        match self {
            DecodeError::BadProtocolHeader
            | DecodeError::UnknownFrameType(_)
            | DecodeError::FrameTooLarge { .. }
            | DecodeError::BadFrameEnd(_)
            | DecodeError::HeartbeatWithPayload { .. } => reply_code::FRAME_ERROR,
            DecodeError::Syntax { .. } => reply_code::SYNTAX_ERROR,
            DecodeError::UnknownMethod { .. } => reply_code::COMMAND_INVALID,
        }
    }

    /// The class and method ids for connection.close's class-id and method-id fields: those
    /// of the offending method, or (0, 0) when the error is not about a method.
    pub fn class_method_ids(&self) -> (u16, u16) {
        match self {
            DecodeError::Syntax {
                class_id,
                method_id,
                ..
            }
            | DecodeError::UnknownMethod {
                class_id,
                method_id,
                ..
            } => (*class_id, *method_id),
            _ => (0, 0),
        }
    }
}

/// Why frames could not be encoded. Except for [`EncodeError::FrameMaxTooSmall`] and
/// [`EncodeError::FrameTooLarge`], which a caller can provoke with its arguments, these are
/// our bugs; they are returned rather than panicking so that only the one connection ends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// amq-protocol's generator failed, or our writer under it refused a write.
    #[error("generating a frame payload failed: {0}")]
    Generate(#[from] GenError),
    /// The payload does not fit the 32-bit size field.
    #[error("[AMQP 0-9-1 §4.2.3] payload of {size} octets does not fit a frame's size field")]
    PayloadTooLarge {
        /// The payload size in octets.
        size: usize,
    },
    /// A method or content-header frame would exceed frame-max; unlike a body, neither can
    /// be split.
    #[error("[AMQP 0-9-1 §4.2.3] frame of {frame_size} octets exceeds frame-max {frame_max}")]
    FrameTooLarge {
        /// The size of the frame, framing included.
        frame_size: usize,
        /// The frame-max in force.
        frame_max: u32,
    },
    /// frame-max leaves no room for a body frame's payload.
    #[error("frame-max {frame_max} leaves no room for body octets")]
    FrameMaxTooSmall {
        /// The frame-max given.
        frame_max: u32,
    },
}

/// The frame types of §4.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameType {
    Method,
    Header,
    Body,
    Heartbeat,
}

impl FrameType {
    fn from_octet(octet: u8) -> Option<FrameType> {
        match octet {
            1 => Some(FrameType::Method),
            2 => Some(FrameType::Header),
            3 => Some(FrameType::Body),
            8 => Some(FrameType::Heartbeat),
            _ => None,
        }
    }

    fn octet(self) -> u8 {
        match self {
            FrameType::Method => 1,
            FrameType::Header => 2,
            FrameType::Body => 3,
            FrameType::Heartbeat => 8,
        }
    }
}

/// The 7 octets before a frame's payload, checked against frame-max.
#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    frame_type: FrameType,
    channel: u16,
    size: u32,
}

/// Consumes the 0-9-1 protocol header from the front of `buf`.
///
/// Returns `Ok(None)` while the octets present are a proper prefix of [`PROTOCOL_HEADER`],
/// and [`DecodeError::BadProtocolHeader`] as soon as they cannot be (an HTTP request fails on
/// its first octet). On error `buf` is left untouched, so the caller can log what arrived.
pub fn decode_protocol_header(buf: &mut BytesMut) -> Result<Option<()>, DecodeError> {
    // §4.2.2: "If the server does not recognise the first 5 octets of data on the socket, or
    // does not support the specific protocol version that the client requests, it MUST write
    // a valid protocol header to the socket, then flush the socket (...) and then close the
    // socket connection." We refuse on the first octet that differs, not after 5 or 8.
    let matches_so_far = buf
        .iter()
        .zip(PROTOCOL_HEADER.iter())
        .all(|(got, want)| got == want);
    if !matches_so_far {
        return Err(DecodeError::BadProtocolHeader);
    }
    if buf.len() < PROTOCOL_HEADER.len() {
        return Ok(None);
    }
    buf.advance(PROTOCOL_HEADER.len());
    Ok(Some(()))
}

/// Decodes one frame from the front of `buf`.
///
/// `Ok(None)` means more octets are needed; nothing is consumed and `buf` may have reserved
/// room for the rest of the frame. `frame_max` counts the 8 octets of framing, as in
/// connection.tune, and 0 means no limit; until tune-ok the caller passes [`FRAME_MIN_SIZE`].
/// A frame over the limit is refused from its header alone.
pub fn decode(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, DecodeError> {
    let Some(header) = decode_frame_header(buf, frame_max)? else {
        return Ok(None);
    };
    let payload_size = header.size as usize;
    let frame_size = payload_size.saturating_add(FRAME_OVERHEAD as usize);
    let Some(&frame_end) = buf.get(frame_size - 1) else {
        let missing = frame_size - buf.len();
        buf.reserve(missing.min(RESERVE_AHEAD_MAX));
        return Ok(None);
    };
    // §4.2.3: "When a peer reads a frame it MUST check that the frame-end is valid before
    // attempting to decode the frame."
    if frame_end != FRAME_END {
        return Err(DecodeError::BadFrameEnd(frame_end));
    }
    let mut frame = buf.split_to(frame_size);
    frame.advance(FRAME_HEADER_SIZE);
    frame.truncate(payload_size);
    decode_payload(header, frame).map(Some)
}

/// Reads and checks the 7-octet frame header without consuming it. The type is checked from
/// the first octet so that garbage fails at once.
fn decode_frame_header(buf: &[u8], frame_max: u32) -> Result<Option<FrameHeader>, DecodeError> {
    let Some(&type_octet) = buf.first() else {
        return Ok(None);
    };
    let frame_type =
        FrameType::from_octet(type_octet).ok_or(DecodeError::UnknownFrameType(type_octet))?;
    let [_, c0, c1, s0, s1, s2, s3, ..] = *buf else {
        return Ok(None);
    };
    let channel = u16::from_be_bytes([c0, c1]);
    let size = u32::from_be_bytes([s0, s1, s2, s3]);
    // §4.2.3: "A peer that receives an oversized frame MUST signal a connection exception
    // with reply code 501 (frame error)." frame-max includes "frame header and end-byte"
    // (connection.tune), hence the 8 octets of overhead.
    let frame_size = u64::from(size) + u64::from(FRAME_OVERHEAD);
    if frame_max != 0 && frame_size > u64::from(frame_max) {
        return Err(DecodeError::FrameTooLarge { size, frame_max });
    }
    if frame_type == FrameType::Heartbeat && size != 0 {
        return Err(DecodeError::HeartbeatWithPayload { size });
    }
    Ok(Some(FrameHeader {
        frame_type,
        channel,
        size,
    }))
}

/// Turns a whole payload, framing already removed, into a frame.
fn decode_payload(header: FrameHeader, payload: BytesMut) -> Result<Frame, DecodeError> {
    let channel = header.channel;
    match header.frame_type {
        FrameType::Method => decode_method(channel, &payload),
        FrameType::Header => decode_content_header(channel, &payload),
        FrameType::Body => Ok(Frame::Body {
            channel,
            payload: payload.freeze(),
        }),
        FrameType::Heartbeat => Ok(Frame::Heartbeat { channel }),
    }
}

fn decode_method(channel: u16, payload: &[u8]) -> Result<Frame, DecodeError> {
    if !nesting::method_within_limit(payload) {
        let (class_id, method_id) = leading_ids(payload);
        return Err(DecodeError::Syntax {
            channel,
            class_id,
            method_id,
        });
    }
    match parse_class(payload) {
        // The payload is exactly one method; trailing octets mean the peer and we disagree on
        // the method's fields, which is a syntax error like a truncated payload.
        Ok(([], method)) => Ok(Frame::Method { channel, method }),
        _ => Err(method_error(channel, payload)),
    }
}

/// Classifies a method payload amq-protocol refused. `parse_class` reports unknown ids with
/// the same nom `MapOpt` error as a malformed known method, so we ask it again with the same
/// ids and all-zero arguments: only an unknown pair fails that too. This runs once per
/// connection at most, since the error closes it.
fn method_error(channel: u16, payload: &[u8]) -> DecodeError {
    let (class_id, method_id) = leading_ids(payload);
    if payload.len() >= 4 && !is_known_method(class_id, method_id) {
        DecodeError::UnknownMethod {
            channel,
            class_id,
            method_id,
        }
    } else {
        DecodeError::Syntax {
            channel,
            class_id,
            method_id,
        }
    }
}

fn is_known_method(class_id: u16, method_id: u16) -> bool {
    let mut probe = [0u8; 4 + PROBE_ARGUMENTS_SIZE];
    let ids = class_id
        .to_be_bytes()
        .into_iter()
        .chain(method_id.to_be_bytes());
    for (slot, octet) in probe.iter_mut().zip(ids) {
        *slot = octet;
    }
    parse_class(probe.as_slice()).is_ok()
}

/// The class and method ids at the front of a payload, 0 for those not present.
fn leading_ids(payload: &[u8]) -> (u16, u16) {
    match *payload {
        [c0, c1, m0, m1, ..] => (u16::from_be_bytes([c0, c1]), u16::from_be_bytes([m0, m1])),
        [c0, c1, ..] => (u16::from_be_bytes([c0, c1]), 0),
        _ => (0, 0),
    }
}

fn decode_content_header(channel: u16, payload: &[u8]) -> Result<Frame, DecodeError> {
    let refused = DecodeError::Syntax {
        channel,
        class_id: leading_ids(payload).0,
        method_id: 0,
    };
    if !nesting::header_within_limit(payload) {
        return Err(refused);
    }
    match parse_content_header(payload) {
        Ok(([], header)) => Ok(Frame::Header {
            channel,
            class_id: header.class_id,
            body_size: header.body_size,
            properties: header.properties,
        }),
        _ => Err(refused),
    }
}

/// Appends [`PROTOCOL_HEADER`]: the client's greeting, and the server's answer to a header it
/// refuses.
pub fn encode_protocol_header(out: &mut BytesMut) {
    out.put_slice(&PROTOCOL_HEADER);
}

/// Appends a heartbeat frame on channel 0.
pub fn encode_heartbeat(out: &mut BytesMut) {
    out.put_slice(&HEARTBEAT_FRAME);
}

/// Appends a method frame. The caller checks the frame against frame-max if it can be large
/// (e.g. a declare with big arguments); [`encode_content`] does so itself.
pub fn encode_method(
    channel: u16,
    method: &AMQPClass,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.reserve(FRAME_SIZE_HINT);
    encode_frame(FrameType::Method, channel, out, |out| {
        gen_class(method)(WriteContext::from(FrameWriter::new(out)))?;
        Ok(())
    })
}

/// Appends a content header frame for class basic (60).
pub fn encode_header(
    channel: u16,
    body_size: u64,
    properties: &BasicProperties,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_header_of_class(channel, CLASS_BASIC, body_size, properties, out)
}

/// Appends a content header frame with any class id, so that [`encode`] reproduces a decoded
/// header exactly, even one the session will refuse.
fn encode_header_of_class(
    channel: u16,
    class_id: u16,
    body_size: u64,
    properties: &BasicProperties,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.reserve(FRAME_SIZE_HINT);
    encode_frame(FrameType::Header, channel, out, |out| {
        out.put_u16(class_id);
        // §4.2.6.1: "The weight field is unused and must be zero."
        out.put_u16(0);
        out.put_u64(body_size);
        gen_properties(properties)(WriteContext::from(FrameWriter::new(out)))?;
        Ok(())
    })
}

/// Appends one body frame carrying all of `payload`; [`encode_content`] splits bodies by
/// frame-max.
pub fn encode_body(channel: u16, payload: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
    if u32::try_from(payload.len()).is_err() {
        return Err(EncodeError::PayloadTooLarge {
            size: payload.len(),
        });
    }
    out.reserve(payload.len() + FRAME_OVERHEAD as usize);
    encode_frame(FrameType::Body, channel, out, |out| {
        out.put_slice(payload);
        Ok(())
    })
}

/// Appends a whole content: the method, a basic content header, and the body in frames of at
/// most `frame_max` octets (no body frame for an empty body). `frame_max` 0 means no limit.
/// On error nothing is appended.
pub fn encode_content(
    channel: u16,
    method: &AMQPClass,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_content(channel, method, properties, body, frame_max, out);
    if result.is_err() {
        // The method and header may already be written; a content without its body would
        // leave the peer waiting for octets that never come.
        out.truncate(start);
    }
    result
}

fn write_content(
    channel: u16,
    method: &AMQPClass,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let chunk_size = body_chunk_size(frame_max)?;
    let body_frames = body.len().div_ceil(chunk_size);
    out.reserve(2 * FRAME_SIZE_HINT + body.len() + body_frames * FRAME_OVERHEAD as usize);
    let frame_start = out.len();
    encode_method(channel, method, out)?;
    check_frame_fits(out.len() - frame_start, frame_max)?;
    let frame_start = out.len();
    encode_header(channel, body.len() as u64, properties, out)?;
    check_frame_fits(out.len() - frame_start, frame_max)?;
    for chunk in body.chunks(chunk_size) {
        encode_body(channel, chunk, out)?;
    }
    Ok(())
}

/// The largest body payload one frame may carry under `frame_max`.
fn body_chunk_size(frame_max: u32) -> Result<usize, EncodeError> {
    match frame_max {
        0 => Ok(u32::MAX as usize),
        _ if frame_max <= FRAME_OVERHEAD => Err(EncodeError::FrameMaxTooSmall { frame_max }),
        _ => Ok((frame_max - FRAME_OVERHEAD) as usize),
    }
}

fn check_frame_fits(frame_size: usize, frame_max: u32) -> Result<(), EncodeError> {
    if frame_max != 0 && frame_size > frame_max as usize {
        return Err(EncodeError::FrameTooLarge {
            frame_size,
            frame_max,
        });
    }
    Ok(())
}

/// Appends any frame; the counterpart of [`decode`], used where frames are values (tests,
/// fuzzing, replay). The hot path calls the specific functions.
pub fn encode(frame: &Frame, out: &mut BytesMut) -> Result<(), EncodeError> {
    match frame {
        Frame::Method { channel, method } => encode_method(*channel, method, out),
        Frame::Header {
            channel,
            class_id,
            body_size,
            properties,
        } => encode_header_of_class(*channel, *class_id, *body_size, properties, out),
        Frame::Body { channel, payload } => encode_body(*channel, payload, out),
        Frame::Heartbeat { channel } => {
            out.put_u8(FrameType::Heartbeat.octet());
            out.put_u16(*channel);
            out.put_u32(0);
            out.put_u8(FRAME_END);
            Ok(())
        }
    }
}

/// Appends one frame whose payload `write_payload` appends, or nothing if it fails.
fn encode_frame(
    frame_type: FrameType,
    channel: u16,
    out: &mut BytesMut,
    write_payload: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_frame(frame_type, channel, out, write_payload);
    if result.is_err() {
        // Half a frame would desynchronise the peer; leaving `out` as it was lets the caller
        // close the connection cleanly instead.
        out.truncate(start);
    }
    result
}

fn write_frame(
    frame_type: FrameType,
    channel: u16,
    out: &mut BytesMut,
    write_payload: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(frame_type.octet());
    out.put_u16(channel);
    // The size is known only once the payload is written: write a placeholder and patch it,
    // so the payload goes straight into `out` instead of through a temporary buffer.
    out.put_u32(0);
    write_payload(out)?;
    let payload_size = out.len() - start - FRAME_HEADER_SIZE;
    let size = u32::try_from(payload_size)
        .map_err(|_| EncodeError::PayloadTooLarge { size: payload_size })?;
    let size_field = out
        .get_mut(start + 3..start + FRAME_HEADER_SIZE)
        .ok_or(GenError::InvalidOffset)?;
    size_field.copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
    Ok(())
}

/// A `Write` that appends to a `BytesMut` and can go back to fill a gap it reserved, so that
/// amq-protocol's generators write straight into the output buffer.
///
/// amq-protocol's generators need `Write + BackToTheBuffer` because field tables and arrays
/// are prefixed by their length. cookie_factory implements `BackToTheBuffer` only for
/// `Vec<u8>` (it generates the length into a second, temporary `Vec` and copies it),
/// `&mut [u8]` (the final size must be known up front) and cursors over a fixed slice;
/// `bytes::buf::Writer<BytesMut>` has none of these, hence this type.
struct FrameWriter<'a> {
    out: &'a mut BytesMut,
    /// While `Some`, writes fill this range of `out` instead of appending; its start advances
    /// with each write.
    gap: Option<Range<usize>>,
}

impl<'a> FrameWriter<'a> {
    fn new(out: &'a mut BytesMut) -> Self {
        FrameWriter { out, gap: None }
    }
}

impl io::Write for FrameWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(gap) = self.gap.as_mut() else {
            self.out.extend_from_slice(data);
            return Ok(data.len());
        };
        let end = gap.start + data.len();
        let target = match self.out.get_mut(gap.start..end) {
            Some(target) if end <= gap.end => target,
            _ => return Err(io::Error::other("write past the reserved length field")),
        };
        target.copy_from_slice(data);
        gap.start = end;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BackToTheBuffer for FrameWriter<'_> {
    fn reserve_write_use<
        Tmp,
        Gen: Fn(WriteContext<Self>) -> Result<(WriteContext<Self>, Tmp), GenError>,
        Before: Fn(WriteContext<Self>, Tmp) -> GenResult<Self>,
    >(
        context: WriteContext<Self>,
        reserved: usize,
        generate: &Gen,
        before: &Before,
    ) -> Result<WriteContext<Self>, GenError> {
        let WriteContext {
            write: writer,
            position,
        } = context;
        if writer.gap.is_some() {
            // amq-protocol only writes a fixed-size length into a gap, never another gap.
            return Err(GenError::InvalidOffset);
        }
        let gap_start = writer.out.len();
        writer.out.put_bytes(0, reserved);
        let (generated, tmp) = generate(WriteContext {
            write: writer,
            position: position + reserved as u64,
        })?;
        let end_position = generated.position;
        let mut writer = generated.write;
        writer.gap = Some(gap_start..gap_start + reserved);
        let filled = before(
            WriteContext {
                write: writer,
                position,
            },
            tmp,
        )?;
        let mut writer = filled.write;
        match writer.gap.take() {
            Some(unfilled) if unfilled.is_empty() => Ok(WriteContext {
                write: writer,
                position: end_position,
            }),
            Some(unfilled) => Err(GenError::BufferTooBig(unfilled.len())),
            None => Err(GenError::InvalidOffset),
        }
    }
}

#[cfg(test)]
mod tests;
