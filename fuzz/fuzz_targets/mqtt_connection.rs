//! A whole MQTT connection against the in-process broker: `mqbridge_mqtt::serve` with its
//! session state (subscriptions, packet ids both ways, QoS 2 flows, topic aliases, takeover
//! and resumption of sessions) and broker calls (see `mqbridge_fuzz::connection`).
//!
//! Input: an options octet, then the packets the client sends after its CONNECT.
//! - bits 0-1: the protocol version of the CONNECT the target sends first: 1 MQTT 3.1,
//!   2 MQTT 3.1.1, 3 MQTT 5; 0 sends none, and the input is the whole connection;
//! - bit 2: a persistent session (clean start off), which later inputs resume;
//! - bits 3-4: which of four client ids, so sessions both resume and take each other over.
//!
//! Checks: no panic on any task of the broker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge::server::fuzzing::Listener;
use mqbridge_fuzz::{connection, preamble};
use mqbridge_mqtt::codec::ProtocolVersion;

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    let version = match options & 0b11 {
        1 => Some(ProtocolVersion::V3_1),
        2 => Some(ProtocolVersion::V3_1_1),
        3 => Some(ProtocolVersion::V5),
        _ => None,
    };
    let mut bytes = match version {
        Some(version) => preamble::mqtt(version, options >> 3 & 0b11, options & 0b100 != 0),
        None => Vec::new(),
    };
    bytes.extend_from_slice(rest);
    connection::run(Listener::Mqtt, &bytes);
});
