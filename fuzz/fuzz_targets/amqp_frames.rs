//! AMQP 0-9-1 framing and the connection state machine: `codec::decode_protocol_header` and
//! `codec::decode` on a client's byte stream, every decoded frame handed to
//! `session::Session::handle` as the connection task does.
//!
//! Input: an options octet, then what a client sends.
//! - bit 0: the stream starts with the protocol header (else frames start at once);
//! - bits 1-2: frame-max after the handshake: 0 (no limit), 4096, 131072 or 1 MiB.
//!
//! Checks: decode consumes exactly one frame or nothing; every frame round-trips through
//! `codec::encode`; every violation carries a reply code of the spec.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqbridge_amqp::codec::{self, FRAME_MIN_SIZE};
use mqbridge_amqp::session::Session;
use mqbridge_fuzz::amqp::{check_round_trip, is_reply_code};

const FRAME_MAX_CHOICES: [u32; 4] = [0, FRAME_MIN_SIZE, 131_072, 1 << 20];

fuzz_target!(|input: &[u8]| {
    let (options, stream) = mqbridge_fuzz::options(input);
    let frame_max_running = FRAME_MAX_CHOICES[usize::from(options >> 1 & 0b11)];
    let mut buf = BytesMut::from(stream);
    if options & 1 == 1 && !matches!(codec::decode_protocol_header(&mut buf), Ok(Some(()))) {
        return;
    }
    let mut session = Session::default();
    loop {
        let frame_max = if session.is_running() {
            frame_max_running
        } else {
            FRAME_MIN_SIZE
        };
        let before = buf.len();
        let frame = match codec::decode(&mut buf, frame_max) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "decode consumed octets of an incomplete frame"
                );
                return;
            }
            Err(error) => {
                assert!(is_reply_code(error.reply_code()), "{error:?}");
                return;
            }
        };
        check_round_trip(&frame);
        if let Err(violation) = session.handle(frame) {
            assert!(is_reply_code(violation.code), "{violation:?}");
            match violation.channel {
                // A soft error closes one channel and the connection goes on, as in
                // connection.rs.
                Some(closed) => session.closing(closed),
                None => return,
            }
        }
    }
});
