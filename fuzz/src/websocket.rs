//! The client side of a WebSocket: the upgrade request, and frames built from fuzz input.
//!
//! Structured input is a sequence of records `kind:u8 length:u8 payload[length]` (a short last
//! record takes what is left). The two low bits of `kind` choose the frame(s):
//!
//! ```text
//! 0  one binary message
//! 1  one text message
//! 2  a binary message in two fragments, with a ping between them (RFC 6455 5.4 allows it)
//! 3  a ping carrying the payload (at most 125 octets, 5.5)
//! ```
//!
//! Every frame is masked, as a client's must be (5.3). [`Frames::expected`] is what the server
//! side's byte stream must yield: the data messages' payloads back to back, up to the first
//! message the carried protocol refuses (text for MQTT [MQTT-6.0.0-1], text that is not
//! UTF-8 for STOMP), after which the stream ends.

use mqbridge_websocket::Subprotocol;

/// The masking key of every frame; any value is valid, and a fixed one keeps runs repeatable.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A control frame's payload limit (RFC 6455 5.5).
const CONTROL_PAYLOAD_MAX: usize = 125;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;

/// The upgrade request a browser sends for `subprotocol`.
pub fn request(subprotocol: Subprotocol) -> Vec<u8> {
    let token = match subprotocol {
        Subprotocol::Mqtt => "mqtt",
        Subprotocol::Stomp => "v12.stomp",
    };
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {token}\r\n\r\n"
    )
    .into_bytes()
}

/// Client frames built from structured input, and what they should deliver.
#[derive(Debug, Default)]
pub struct Frames {
    /// The frames' octets, masked, ready to send.
    pub wire: Vec<u8>,
    /// The byte stream the server side should read from them.
    pub expected: Vec<u8>,
    /// A message was refused, so `expected` is complete.
    ended: bool,
}

impl Frames {
    /// Builds frames from `input` (see the module documentation) for `subprotocol`.
    pub fn from_records(subprotocol: Subprotocol, mut input: &[u8]) -> Frames {
        let mut frames = Frames::default();
        while let [kind, length, rest @ ..] = input {
            let (payload, next) = rest.split_at(usize::from(*length).min(rest.len()));
            frames.record(subprotocol, *kind, payload);
            input = next;
        }
        frames
    }

    /// Adds one binary message carrying `payload`.
    pub fn binary(&mut self, payload: &[u8]) {
        self.data(OPCODE_BINARY, payload);
    }

    /// Adds the client's Close (1000).
    pub fn close(&mut self) {
        put_frame(&mut self.wire, OPCODE_CLOSE, true, &1000u16.to_be_bytes());
        self.ended = true;
    }

    fn record(&mut self, subprotocol: Subprotocol, kind: u8, payload: &[u8]) {
        match kind & 0b11 {
            0 => self.binary(payload),
            1 => {
                let refused = match subprotocol {
                    Subprotocol::Mqtt => true,
                    Subprotocol::Stomp => std::str::from_utf8(payload).is_err(),
                };
                put_frame(&mut self.wire, OPCODE_TEXT, true, payload);
                if refused {
                    self.ended = true;
                } else {
                    self.deliver(payload);
                }
            }
            2 => {
                let (first, second) = payload.split_at(payload.len() / 2);
                put_frame(&mut self.wire, OPCODE_BINARY, false, first);
                put_frame(&mut self.wire, OPCODE_PING, true, b"between");
                put_frame(&mut self.wire, OPCODE_CONTINUATION, true, second);
                self.deliver(payload);
            }
            _ => {
                let ping = payload.get(..CONTROL_PAYLOAD_MAX).unwrap_or(payload);
                put_frame(&mut self.wire, OPCODE_PING, true, ping);
            }
        }
    }

    fn data(&mut self, opcode: u8, payload: &[u8]) {
        put_frame(&mut self.wire, opcode, true, payload);
        self.deliver(payload);
    }

    fn deliver(&mut self, payload: &[u8]) {
        if !self.ended {
            self.expected.extend_from_slice(payload);
        }
    }
}

/// Appends one masked frame (RFC 6455 5.2).
fn put_frame(out: &mut Vec<u8>, opcode: u8, fin: bool, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    const MASKED: u8 = 0x80;
    match payload.len() {
        length @ 0..=125 => out.push(MASKED | length as u8),
        length @ 126..=0xffff => {
            out.push(MASKED | 126);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            out.push(MASKED | 127);
            out.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
}
