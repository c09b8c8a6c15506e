//! The SQS and SNS HTTP APIs against the in-process broker: `mqbridge_sqs::serve` (hyper,
//! authentication in dev mode, body limits) with SNS as its neighbor, down to every action's
//! handling of its parameters and its broker calls (see `mqbridge_fuzz::connection`).
//!
//! Input: an options octet, then a request.
//! - bit 0: the input is raw HTTP (any number of requests) instead of one request the target
//!   frames;
//! - framed requests: the input's first line is the `X-Amz-Target` (JSON) or the path and
//!   query string (Query), the rest the body; bit 1 chooses Query (form body) over JSON.
//!
//! Checks: no panic on any task of the broker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge::server::fuzzing::Listener;
use mqbridge_fuzz::connection::{self, Ending};

fuzz_target!(|input: &[u8]| {
    let (options, rest) = mqbridge_fuzz::options(input);
    if options & 1 == 1 {
        connection::run(Listener::Sqs, rest);
        return;
    }
    let (line, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    if line.contains(['\r', '\n']) {
        return;
    }
    let head = if options & 0b10 != 0 {
        let path = if line.starts_with('/') { line } else { "/" };
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n"
        )
    } else {
        format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: {line}\r\n\
             Content-Type: application/x-amz-json-1.0\r\n"
        )
    };
    let mut request = head.into_bytes();
    request.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    connection::run_ending(Listener::Sqs, &request, Ending::WaitForServer);
});
