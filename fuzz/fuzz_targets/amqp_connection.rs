//! A whole AMQP 0-9-1 connection against the in-process broker: `mqbridge_amqp::serve`
//! with its session, channels and broker calls (see `mqbridge_fuzz::connection`).
//!
//! Input: an options octet, then what the client sends.
//! - bit 0 clear: the target first logs in as guest and opens channel 1 (protocol header,
//!   start-ok, tune-ok, connection.open, channel.open), so the input starts in a running
//!   connection; set: the input is the whole connection, handshake included.
//!
//! Checks: no panic on any task of the broker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge::server::fuzzing::Listener;
use mqbridge_fuzz::{connection, preamble};

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    let mut bytes = if options & 1 == 0 {
        preamble::amqp()
    } else {
        Vec::new()
    };
    bytes.extend_from_slice(rest);
    connection::run(Listener::Amqp, &bytes);
});
