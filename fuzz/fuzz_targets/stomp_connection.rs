//! A whole STOMP connection against the in-process broker: `mqbridge_stomp::serve` with its
//! session (negotiation, subscriptions, ACK modes, transactions, receipts) and broker calls
//! (see `mqbridge_fuzz::connection`).
//!
//! Input: an options octet, then the frames the client sends.
//! - bits 0-1: the version of the CONNECT the target sends first: 1 STOMP 1.0, 2 1.1, 3 1.2;
//!   0 sends none, and the input is the whole connection.
//!
//! Checks: no panic on any task of the broker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge::server::fuzzing::Listener;
use mqbridge_fuzz::{connection, preamble};

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    let mut bytes = match options & 0b11 {
        1 => preamble::stomp("1.0"),
        2 => preamble::stomp("1.1"),
        3 => preamble::stomp("1.2"),
        _ => Vec::new(),
    };
    bytes.extend_from_slice(rest);
    connection::run(Listener::Stomp, &bytes);
});
