//! What the fuzz targets share: the AMQP codec's round trip ([`amqp`]), one in-process broker
//! that whole connections are fed to ([`connection`]), the client side of the WebSocket
//! opening handshake and framing ([`websocket`]), the logins the connection targets may
//! prepend to their input ([`preamble`]), and the broker's stack size for code that runs on
//! its workers ([`stack`]).
//!
//! Each target in `fuzz_targets/` states what it fuzzes and which invariants it checks beyond
//! "does not panic". A panic anywhere, on any thread or task of the broker, aborts the process
//! (libfuzzer-sys installs a panic hook that does), so libFuzzer reports it as a crash.
//!
//! Running, from `fuzz/`:
//! - every target briefly, as CI does: `./smoke [SECONDS]`;
//! - one target for longer: `cargo fuzz run --sanitizer none --dev mqtt_connection --
//!   -max_total_time=600` (`cargo fuzz list` names them all; seeds are in `corpus/<target>/`);
//! - a crash again: `cargo fuzz run --sanitizer none --dev <target> artifacts/<target>/<file>`.
//!
//! A crash found here becomes a unit test beside the parser it broke, with its bytes inline.

pub mod amqp;
pub mod connection;
pub mod preamble;
pub mod stack;
pub mod websocket;

/// Splits `input` at its first octet: the options it encodes, and the rest.
pub fn options(input: &[u8]) -> (u8, &[u8]) {
    match input.split_first() {
        Some((&first, rest)) => (first, rest),
        None => (0, input),
    }
}
