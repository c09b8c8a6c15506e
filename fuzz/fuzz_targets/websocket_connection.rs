//! A whole MQTT or STOMP connection over WebSocket against the in-process broker: the
//! WebSocket listener's `serve` (upgrade, adapter over `WsStream`, closing handshake), see
//! `mqbridge_fuzz::connection`.
//!
//! Input: an options octet, then frames.
//! - bit 0: STOMP (`v12.stomp`) instead of MQTT;
//! - bit 1: the frames are raw octets instead of records (`mqbridge_fuzz::websocket`);
//! - bit 2: no login message first (else a binary message with an MQTT 3.1.1 CONNECT or a
//!   STOMP 1.2 CONNECT opens the carried connection);
//! - bit 3: (records only) the client ends with a Close frame.
//!
//! Checks: no panic on any task of the broker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge::server::fuzzing::Listener;
use mqbridge_fuzz::websocket::{Frames, request};
use mqbridge_fuzz::{connection, preamble};
use mqbridge_mqtt::codec::ProtocolVersion;
use mqbridge_websocket::Subprotocol;

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    let subprotocol = if options & 1 == 1 {
        Subprotocol::Stomp
    } else {
        Subprotocol::Mqtt
    };
    let mut frames = Frames::default();
    if options & 0b100 == 0 {
        frames.binary(&match subprotocol {
            Subprotocol::Mqtt => preamble::mqtt(ProtocolVersion::V3_1_1, 0, false),
            Subprotocol::Stomp => preamble::stomp("1.2"),
        });
    }
    let mut bytes = request(subprotocol);
    bytes.extend_from_slice(&frames.wire);
    if options & 0b10 != 0 {
        bytes.extend_from_slice(rest);
    } else {
        let mut records = Frames::from_records(subprotocol, rest);
        if options & 0b1000 != 0 {
            records.close();
        }
        bytes.extend_from_slice(&records.wire);
    }
    connection::run(Listener::WebSocket, &bytes);
});
