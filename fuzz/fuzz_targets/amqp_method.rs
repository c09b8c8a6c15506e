//! AMQP 0-9-1 method arguments and content-header properties: the payload amq-protocol's
//! generated parsers read, wrapped by the target in one well-formed frame so that every input
//! reaches them.
//!
//! Input: an options octet, then the payload (class id, method id and arguments; or class
//! id, weight, body size, property flags and properties).
//! - bit 0: a content header (type 2) instead of a method (type 1);
//! - bits 1-7: the channel.
//!
//! Checks: a whole frame decodes to a frame or an error, never "need more"; a decoded frame
//! round-trips through `codec::encode`.

#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use mqbridge_amqp::codec;
use mqbridge_fuzz::amqp::{check_round_trip, is_reply_code};

const FRAME_END: u8 = 0xCE;

fuzz_target!(|input: &[u8]| {
    let (options, payload) = mqbridge_fuzz::options(input);
    let Ok(size) = u32::try_from(payload.len()) else {
        return;
    };
    let frame_type = if options & 1 == 1 { 2 } else { 1 };
    let mut buf = BytesMut::with_capacity(payload.len() + 8);
    buf.put_u8(frame_type);
    buf.put_u16(u16::from(options >> 1));
    buf.put_u32(size);
    buf.put_slice(payload);
    buf.put_u8(FRAME_END);
    match codec::decode(&mut buf, 0) {
        Ok(Some(frame)) => {
            assert!(buf.is_empty(), "decode left octets of a whole frame");
            check_round_trip(&frame);
        }
        Ok(None) => panic!("a whole frame was taken for a partial one"),
        Err(error) => assert!(is_reply_code(error.reply_code()), "{error:?}"),
    }
});
