//! The WebSocket opening handshake: `mqbridge_websocket::handshake::parse` on the octets of
//! an HTTP request head.
//!
//! Input: an options octet, then the request.
//! - bit 0: an origin allow-list (`http://allowed.example`) instead of allowing every origin.
//!
//! Checks: a decision never claims more octets than it was given; an accepted upgrade answers
//! 101 with the chosen subprotocol; a refusal is a 4xx or 5xx response whose Content-Length
//! is its body's; a head that is incomplete is incomplete at every shorter length too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mqbridge_websocket::OriginPolicy;
use mqbridge_websocket::handshake::{self, Parsed};

fuzz_target!(|input: &[u8]| {
    let (options, head) = mqbridge_fuzz::options(input);
    let origins = OriginPolicy {
        allowed: if options & 1 == 1 {
            vec!["http://allowed.example".to_owned()]
        } else {
            Vec::new()
        },
    };
    match handshake::parse(head, &origins) {
        Parsed::Incomplete => {
            let shorter = &head[..head.len() / 2];
            assert_eq!(handshake::parse(shorter, &origins), Parsed::Incomplete);
        }
        Parsed::Request { length, outcome } => {
            assert!(length <= head.len(), "the head is longer than the input");
            match outcome {
                Ok(upgrade) => {
                    let response = String::from_utf8(upgrade.response()).expect("ASCII");
                    assert!(response.starts_with("HTTP/1.1 101 "));
                    let echoed = format!("Sec-WebSocket-Protocol: {}\r\n", upgrade.token);
                    assert!(response.contains(&echoed));
                }
                Err(refusal) => {
                    assert!((400..600).contains(&refusal.status), "{refusal:?}");
                    let response = String::from_utf8(refusal.response()).expect("UTF-8");
                    let (_, body) = response.split_once("\r\n\r\n").expect("a head and a body");
                    let length = format!("Content-Length: {}\r\n", body.len());
                    assert!(response.contains(&length), "{response}");
                }
            }
        }
    }
});
