//! STOMP 1.0, 1.1 and 1.2 frames: `mqbridge_stomp::codec::Decoder` on a client's byte stream.
//!
//! Input: an options octet, then what a client sends.
//! - bits 0-1: the negotiated version: 0 none yet (a fresh decoder), 1 STOMP 1.0, 2 1.1,
//!   3 1.2;
//! - bits 2-3: the frame size limit: 64, 4096, 65536 or 16 MiB.
//!
//! Checks: waiting for more octets never grows the buffer; every frame encodes (in the
//! version) to octets that decode to a frame with the same command, body and number of
//! headers, and a second round trip changes nothing (escaping is not lossless in 1.0 and 1.1,
//! so the first may normalise values; it must not drift after that).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqbridge_stomp::codec::{self, Decoder, Frame, Version};

const SIZE_LIMITS: [usize; 4] = [64, 4096, 65536, 16 << 20];

fuzz_target!(|input: &[u8]| {
    let (options, stream) = mqbridge_fuzz::options(input);
    let limit = SIZE_LIMITS[usize::from(options >> 2 & 0b11)];
    let mut decoder = Decoder::new(limit);
    let version = match options & 0b11 {
        0 => Version::V1_0,
        configured => {
            let version = Version::ALL[usize::from(configured - 1)];
            decoder.configure(version, limit);
            version
        }
    };
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => check_round_trip(&frame, version),
            Ok(None) => {
                // Waiting for more may drop heart-beat EOLs, never grow the buffer.
                assert!(buf.len() <= before);
                return;
            }
            Err(error) => {
                let _ = error.summary();
                return;
            }
        }
    }
});

fn check_round_trip(frame: &Frame, version: Version) {
    let once = round_trip(frame, version);
    assert_eq!(once.command, frame.command);
    assert_eq!(once.body, frame.body, "the body changed");
    assert_eq!(
        user_headers(&once),
        user_headers(frame),
        "headers were lost or added"
    );
    let twice = round_trip(&once, version);
    assert_eq!(twice, once, "a second round trip changed the frame");
}

fn round_trip(frame: &Frame, version: Version) -> Frame {
    let mut encoded = BytesMut::new();
    codec::encode(frame, version, &mut encoded);
    let mut decoder = Decoder::new(usize::MAX);
    decoder.configure(version, usize::MAX);
    match decoder.decode(&mut encoded) {
        Ok(Some(again)) => {
            assert!(encoded.is_empty(), "decode left octets of an encoded frame");
            again
        }
        other => panic!("an encoded frame does not decode: {other:?}\n{frame:?}"),
    }
}

/// The headers other than `content-length`, which encode writes itself.
fn user_headers(frame: &Frame) -> usize {
    frame
        .headers
        .iter()
        .filter(|(name, _)| name != "content-length")
        .count()
}
