//! The AMQP codec's round trip, shared by the two AMQP parser targets.

use bytes::BytesMut;
use mqbridge_amqp::codec::{self, Frame};

/// Checks that `frame`, as [`codec::decode`] returned it, encodes (the broker re-encodes
/// what clients send: a publish's properties go out again in every delivery) and decodes
/// back to the same value, consuming exactly the octets encoded.
///
/// Values are compared through their `Debug` text, so that a NaN float in a field table
/// compares equal to itself.
pub fn check_round_trip(frame: &Frame) {
    let mut encoded = BytesMut::new();
    if let Err(error) = codec::encode(frame, &mut encoded) {
        panic!("a decoded frame does not encode: {error}\n{frame:?}");
    }
    let length = encoded.len();
    let again = match codec::decode(&mut encoded, 0) {
        Ok(Some(again)) => again,
        other => panic!("an encoded frame does not decode: {other:?}\n{frame:?}"),
    };
    assert!(
        encoded.is_empty(),
        "decode left {} of {length} octets",
        encoded.len()
    );
    assert_eq!(
        format!("{frame:?}"),
        format!("{again:?}"),
        "round trip changed the frame"
    );
}

/// Whether `code` is one of the reply codes of the 0-9-1 spec's constants, the only ones a
/// close may carry.
pub fn is_reply_code(code: u16) -> bool {
    use codec::reply_code::*;
    [
        REPLY_SUCCESS,
        CONTENT_TOO_LARGE,
        NO_ROUTE,
        NO_CONSUMERS,
        CONNECTION_FORCED,
        INVALID_PATH,
        ACCESS_REFUSED,
        NOT_FOUND,
        RESOURCE_LOCKED,
        PRECONDITION_FAILED,
        FRAME_ERROR,
        SYNTAX_ERROR,
        COMMAND_INVALID,
        CHANNEL_ERROR,
        UNEXPECTED_FRAME,
        RESOURCE_ERROR,
        NOT_ALLOWED,
        NOT_IMPLEMENTED,
        INTERNAL_ERROR,
    ]
    .contains(&code)
}
