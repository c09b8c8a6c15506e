//! Byte-literal, error and property tests of the AMQP codec.
use super::*;
use amq_protocol::protocol::{AMQPErrorKind, basic, channel, connection, queue};
use amq_protocol::types::{AMQPValue, DecimalValue, FieldTable, ShortString};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;

const HEARTBEAT: &[u8] = &[8, 0, 0, 0, 0, 0, 0, 0xCE];

/// basic.publish on channel 1 to exchange "" with routing key "q", no flags.
const PUBLISH: &[u8] = &[
    1, 0, 1, 0, 0, 0, 10, // method frame, channel 1, 10 payload octets
    0, 60, 0, 40, // basic.publish
    0, 0, // reserved-1 (ticket)
    0, // exchange ""
    1, b'q', // routing key "q"
    0,    // mandatory and immediate bits
    0xCE,
];

/// A content header on channel 1: body of 5 octets, content-type "text/plain" and
/// delivery-mode 2.
const HEADER: &[u8] = &[
    2, 0, 1, 0, 0, 0, 26, // header frame, channel 1, 26 payload octets
    0, 60, // class basic
    0, 0, // weight
    0, 0, 0, 0, 0, 0, 0, 5, // body size
    0x90, 0x00, // property flags: content-type (bit 15), delivery-mode (bit 12)
    10, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n', // content-type
    2,    // delivery-mode
    0xCE,
];

const BODY: &[u8] = &[3, 0, 1, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', 0xCE];

fn publish_q() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: "q".into(),
        mandatory: false,
        immediate: false,
    }))
}

fn text_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_delivery_mode(2)
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(frame, &mut out).unwrap();
    out.to_vec()
}

/// Decodes every whole frame in `bytes` and checks nothing is left over.
fn decode_all(bytes: &[u8], frame_max: u32) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decode(&mut buf, frame_max).unwrap() {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "{} octets left over", buf.len());
    frames
}

fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
    decode(&mut BytesMut::from(bytes), 0)
}

#[test]
fn heartbeat_frame_matches_its_bytes() {
    assert_eq!(
        decode_all(HEARTBEAT, FRAME_MIN_SIZE),
        [Frame::Heartbeat { channel: 0 }]
    );
    let mut out = BytesMut::new();
    encode_heartbeat(&mut out);
    assert_eq!(out, HEARTBEAT);
    assert_eq!(encoded(&Frame::Heartbeat { channel: 0 }), HEARTBEAT);
}

#[test]
fn heartbeat_on_a_nonzero_channel_is_left_to_the_session() {
    let frame = Frame::Heartbeat { channel: 7 };
    assert_eq!(decode_all(&encoded(&frame), 0), [frame]);
}

#[test]
fn publish_method_frame_matches_its_bytes() {
    let frame = Frame::Method {
        channel: 1,
        method: publish_q(),
    };
    assert_eq!(
        decode_all(PUBLISH, FRAME_MIN_SIZE),
        std::slice::from_ref(&frame)
    );
    let mut out = BytesMut::new();
    encode_method(1, &publish_q(), &mut out).unwrap();
    assert_eq!(out, PUBLISH);
    assert_eq!(encoded(&frame), PUBLISH);
}

#[test]
fn content_header_frame_matches_its_bytes() {
    let frame = Frame::Header {
        channel: 1,
        class_id: 60,
        body_size: 5,
        properties: text_properties(),
    };
    assert_eq!(
        decode_all(HEADER, FRAME_MIN_SIZE),
        std::slice::from_ref(&frame)
    );
    let mut out = BytesMut::new();
    encode_header(1, 5, &text_properties(), &mut out).unwrap();
    assert_eq!(out, HEADER);
    assert_eq!(encoded(&frame), HEADER);
}

#[test]
fn body_frame_matches_its_bytes_and_is_not_copied() {
    let mut buf = BytesMut::from(BODY);
    let payload_address = buf.as_ptr() as usize + FRAME_HEADER_SIZE;
    let frame = decode(&mut buf, FRAME_MIN_SIZE).unwrap().unwrap();
    let Frame::Body { channel, payload } = &frame else {
        panic!("expected a body frame, got {frame:?}");
    };
    assert_eq!((*channel, &payload[..]), (1, &b"hello"[..]));
    assert_eq!(
        payload.as_ptr() as usize,
        payload_address,
        "the body was copied"
    );
    let mut out = BytesMut::new();
    encode_body(1, b"hello", &mut out).unwrap();
    assert_eq!(out, BODY);
    assert_eq!(encoded(&frame), BODY);
}

#[test]
fn header_with_another_class_id_round_trips() {
    let frame = Frame::Header {
        channel: 3,
        class_id: 50,
        body_size: 0,
        properties: BasicProperties::default(),
    };
    assert_eq!(decode_all(&encoded(&frame), 0), [frame]);
}

#[test]
fn partial_input_returns_none_and_keeps_the_octets() {
    for end in 0..PUBLISH.len() {
        let mut buf = BytesMut::from(&PUBLISH[..end]);
        assert_eq!(
            decode(&mut buf, FRAME_MIN_SIZE),
            Ok(None),
            "prefix of {end} octets"
        );
        assert_eq!(buf, &PUBLISH[..end]);
    }
}

#[test]
fn two_frames_in_one_buffer_decode_one_after_the_other() {
    let mut buf = BytesMut::from([PUBLISH, HEADER, &BODY[..4]].concat().as_slice());
    assert!(matches!(
        decode(&mut buf, 0),
        Ok(Some(Frame::Method { channel: 1, .. }))
    ));
    assert!(matches!(
        decode(&mut buf, 0),
        Ok(Some(Frame::Header { channel: 1, .. }))
    ));
    assert_eq!(decode(&mut buf, 0), Ok(None));
    assert_eq!(buf, &BODY[..4]);
}

#[test]
fn oversize_frame_is_refused_from_its_header_alone() {
    // A body frame declaring 4096 payload octets: with framing, 4104 > 4096.
    let mut buf = BytesMut::from(&[3, 0, 1, 0, 0, 0x10, 0][..]);
    let error = decode(&mut buf, FRAME_MIN_SIZE).unwrap_err();
    assert_eq!(
        error,
        DecodeError::FrameTooLarge {
            size: 4096,
            frame_max: 4096
        }
    );
    assert_eq!(error.reply_code(), reply_code::FRAME_ERROR);
}

#[test]
fn frame_max_counts_the_eight_framing_octets() {
    let mut frame = BytesMut::new();
    encode_body(1, &[0xAB; 100], &mut frame).unwrap();
    assert_eq!(frame.len(), 108);
    assert!(decode(&mut frame.clone(), 108).unwrap().is_some());
    assert!(
        decode(&mut frame.clone(), 0).unwrap().is_some(),
        "0 means no limit"
    );
    assert_eq!(
        decode(&mut frame.clone(), 107),
        Err(DecodeError::FrameTooLarge {
            size: 100,
            frame_max: 107
        })
    );
}

#[test]
fn bad_frame_end_is_a_frame_error() {
    let mut bytes = HEARTBEAT.to_vec();
    *bytes.last_mut().unwrap() = 0xCD;
    let error = decode_one(&bytes).unwrap_err();
    assert_eq!(error, DecodeError::BadFrameEnd(0xCD));
    assert_eq!(error.reply_code(), reply_code::FRAME_ERROR);
    assert!(error.to_string().contains("0xcd"), "{error}");
}

#[test]
fn unknown_frame_type_is_refused_from_its_first_octet() {
    let error = decode_one(&[4]).unwrap_err();
    assert_eq!(error, DecodeError::UnknownFrameType(4));
    assert_eq!(error.reply_code(), reply_code::FRAME_ERROR);
    // A second protocol header where a frame belongs is refused the same way.
    assert_eq!(
        decode_one(b"AMQP"),
        Err(DecodeError::UnknownFrameType(b'A'))
    );
}

#[test]
fn heartbeat_with_a_payload_is_refused_from_its_header() {
    let error = decode_one(&[8, 0, 0, 0, 0, 0, 1]).unwrap_err();
    assert_eq!(error, DecodeError::HeartbeatWithPayload { size: 1 });
    assert_eq!(error.reply_code(), reply_code::FRAME_ERROR);
}

#[test]
fn protocol_header_is_consumed_and_nothing_after_it() {
    let mut buf = BytesMut::from([&PROTOCOL_HEADER[..], HEARTBEAT].concat().as_slice());
    assert_eq!(decode_protocol_header(&mut buf), Ok(Some(())));
    assert_eq!(buf, HEARTBEAT);
    for end in 0..PROTOCOL_HEADER.len() {
        let mut buf = BytesMut::from(&PROTOCOL_HEADER[..end]);
        assert_eq!(
            decode_protocol_header(&mut buf),
            Ok(None),
            "prefix of {end} octets"
        );
        assert_eq!(buf.len(), end);
    }
    let mut out = BytesMut::new();
    encode_protocol_header(&mut out);
    assert_eq!(out, &b"AMQP\x00\x00\x09\x01"[..]);
}

#[test]
fn garbage_protocol_header_is_refused_early() {
    for garbage in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"G",
        b"AMQP\x01",
        b"AMQP\x00\x00\x09\x00",
    ] {
        let mut buf = BytesMut::from(garbage);
        assert_eq!(
            decode_protocol_header(&mut buf),
            Err(DecodeError::BadProtocolHeader)
        );
        assert_eq!(buf, garbage, "the refused octets stay for the log");
    }
    // 0-9 and 0-8 clients are refused too.
    for legacy in [&b"AMQP\x01\x01\x00\x09"[..], b"AMQP\x01\x01\x08\x00"] {
        let error = decode_protocol_header(&mut BytesMut::from(legacy));
        assert_eq!(error, Err(DecodeError::BadProtocolHeader));
    }
}

#[test]
fn truncated_method_payload_is_a_syntax_error() {
    // basic.publish cut after its reserved field's first octet.
    let bytes = [1, 0, 1, 0, 0, 0, 5, 0, 60, 0, 40, 0, 0xCE];
    let error = decode_one(&bytes).unwrap_err();
    let expected = DecodeError::Syntax {
        channel: 1,
        class_id: 60,
        method_id: 40,
    };
    assert_eq!(error, expected);
    assert_eq!(error.reply_code(), reply_code::SYNTAX_ERROR);
    assert_eq!(error.class_method_ids(), (60, 40));
}

#[test]
fn method_payload_with_trailing_octets_is_a_syntax_error() {
    let mut bytes = PUBLISH.to_vec();
    bytes.insert(PUBLISH.len() - 1, 0);
    bytes[6] += 1;
    let expected = DecodeError::Syntax {
        channel: 1,
        class_id: 60,
        method_id: 40,
    };
    assert_eq!(decode_one(&bytes), Err(expected));
}

#[test]
fn method_payload_shorter_than_its_ids_is_a_syntax_error() {
    let bytes = [1, 0, 2, 0, 0, 0, 2, 0, 60, 0xCE];
    let expected = DecodeError::Syntax {
        channel: 2,
        class_id: 60,
        method_id: 0,
    };
    assert_eq!(decode_one(&bytes), Err(expected));
}

#[test]
fn unknown_method_is_command_invalid() {
    for (class_id, method_id) in [(60u16, 999u16), (99, 10), (0, 0)] {
        let mut bytes = vec![1, 0, 1, 0, 0, 0, 4];
        bytes.extend(class_id.to_be_bytes());
        bytes.extend(method_id.to_be_bytes());
        bytes.push(0xCE);
        let error = decode_one(&bytes).unwrap_err();
        assert_eq!(
            error,
            DecodeError::UnknownMethod {
                channel: 1,
                class_id,
                method_id
            }
        );
        assert_eq!(error.reply_code(), reply_code::COMMAND_INVALID);
    }
}

#[test]
fn probe_knows_exactly_the_66_methods_of_0_9_1() {
    let known = (0..=100u16)
        .flat_map(|class_id| (0..=200u16).map(move |method_id| (class_id, method_id)))
        .filter(|&(class_id, method_id)| is_known_method(class_id, method_id))
        .count();
    assert_eq!(known, 66);
}

#[test]
fn malformed_content_header_is_a_syntax_error() {
    let mut bytes = HEADER.to_vec();
    bytes[19] = 0xA0; // Claims content-encoding too, which is not there.
    let expected = DecodeError::Syntax {
        channel: 1,
        class_id: 60,
        method_id: 0,
    };
    assert_eq!(decode_one(&bytes), Err(expected));
}

#[test]
fn reply_codes_match_the_spec_constants() {
    let codes = [
        reply_code::CONTENT_TOO_LARGE,
        reply_code::NO_ROUTE,
        reply_code::NO_CONSUMERS,
        reply_code::CONNECTION_FORCED,
        reply_code::INVALID_PATH,
        reply_code::ACCESS_REFUSED,
        reply_code::NOT_FOUND,
        reply_code::RESOURCE_LOCKED,
        reply_code::PRECONDITION_FAILED,
        reply_code::FRAME_ERROR,
        reply_code::SYNTAX_ERROR,
        reply_code::COMMAND_INVALID,
        reply_code::CHANNEL_ERROR,
        reply_code::UNEXPECTED_FRAME,
        reply_code::RESOURCE_ERROR,
        reply_code::NOT_ALLOWED,
        reply_code::NOT_IMPLEMENTED,
        reply_code::INTERNAL_ERROR,
    ];
    for code in codes {
        assert!(
            AMQPErrorKind::from_id(code).is_some(),
            "{code} is not an AMQP error"
        );
    }
    assert_eq!(
        reply_code::REPLY_SUCCESS,
        amq_protocol::protocol::constants::REPLY_SUCCESS
    );
}

#[test]
fn encode_content_splits_the_body_by_frame_max() {
    let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut out = BytesMut::new();
    encode_content(1, &publish_q(), &text_properties(), &body, 4096, &mut out).unwrap();
    let frames = decode_all(&out, 4096);
    assert_eq!(frames.len(), 5);
    assert!(matches!(&frames[0], Frame::Method { channel: 1, .. }));
    assert!(matches!(
        &frames[1],
        Frame::Header {
            body_size: 10_000,
            ..
        }
    ));
    let pieces: Vec<&[u8]> = frames[2..]
        .iter()
        .map(|frame| match frame {
            Frame::Body { payload, .. } => &payload[..],
            other => panic!("expected a body frame, got {other:?}"),
        })
        .collect();
    assert_eq!(
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [4088, 4088, 1824]
    );
    assert_eq!(pieces.concat(), body);
}

#[test]
fn encode_content_writes_no_body_frame_for_an_empty_body() {
    let mut out = BytesMut::new();
    encode_content(1, &publish_q(), &text_properties(), &[], 4096, &mut out).unwrap();
    assert_eq!(out, [PUBLISH, &HEADER[..18], &[0], &HEADER[19..]].concat());
}

#[test]
fn encode_content_appends_nothing_when_it_fails() {
    let mut out = BytesMut::from(HEARTBEAT);
    let result = encode_content(1, &publish_q(), &text_properties(), b"x", 8, &mut out);
    assert!(matches!(
        result,
        Err(EncodeError::FrameMaxTooSmall { frame_max: 8 })
    ));
    assert_eq!(out, HEARTBEAT);
    // A header too big for frame-max cannot be split, unlike a body.
    let mut headers = FieldTable::default();
    headers.insert("big".into(), AMQPValue::LongString(vec![0; 5000].into()));
    let properties = BasicProperties::default().with_headers(headers);
    let result = encode_content(1, &publish_q(), &properties, b"x", 4096, &mut out);
    assert!(matches!(
        result,
        Err(EncodeError::FrameTooLarge {
            frame_max: 4096,
            ..
        })
    ));
    assert_eq!(out, HEARTBEAT);
}

#[test]
fn nested_field_tables_get_their_lengths_patched() {
    let mut inner = FieldTable::default();
    inner.insert("k".into(), AMQPValue::LongString("v".into()));
    let mut arguments = FieldTable::default();
    arguments.insert("nested".into(), AMQPValue::FieldTable(inner));
    arguments.insert(
        "list".into(),
        AMQPValue::FieldArray(vec![AMQPValue::Void].into()),
    );
    let frame = Frame::Method {
        channel: 9,
        method: AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "q".into(),
            arguments,
            ..Default::default()
        })),
    };
    assert_eq!(decode_all(&encoded(&frame), 0), [frame]);
}

/// Pins amq-protocol's asymmetries, so that an upgrade that changes them is noticed and
/// the module docs and the proptest strategies are revisited.
#[test]
fn amq_protocol_asymmetries_are_as_documented() {
    let declare_with = |value: AMQPValue| {
        let mut arguments = FieldTable::default();
        arguments.insert("x".into(), value);
        Frame::Method {
            channel: 1,
            method: AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                arguments,
                ..Default::default()
            })),
        }
    };
    // A short-string field value is written with tag '_', which no reader accepts.
    let short = encoded(&declare_with(AMQPValue::ShortString("s".into())));
    assert!(matches!(
        decode_one(&short),
        Err(DecodeError::Syntax { .. })
    ));
    // Tag 'L', the spec's unsigned long-long, is read back as a signed one.
    let mut unsigned = encoded(&declare_with(AMQPValue::LongLongInt(-1)));
    let tag = unsigned.iter().position(|&octet| octet == b'l').unwrap();
    unsigned[tag] = b'L';
    let signed = declare_with(AMQPValue::LongLongInt(-1));
    assert_eq!(decode_one(&unsigned), Ok(Some(signed)));
    // A short string that is not UTF-8 is a syntax error.
    let mut publish = PUBLISH.to_vec();
    publish[15] = 0xFF;
    assert!(matches!(
        decode_one(&publish),
        Err(DecodeError::Syntax { .. })
    ));
}

/// Up to 63 chars of at most 4 octets each stay within a short string's 255 octets.
fn short_string() -> impl Strategy<Value = ShortString> {
    vec(any::<char>(), 0..=63).prop_map(|chars| chars.into_iter().collect::<String>().into())
}

fn octets() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..32)
}

/// Field values that survive a round trip. Left out: NaN floats, which never equal
/// themselves; `ShortString`, which amq-protocol writes with a type tag it cannot read
/// back.
fn field_value() -> impl Strategy<Value = AMQPValue> {
    let integer = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u8>().prop_map(AMQPValue::ShortShortUInt),
        any::<i16>().prop_map(AMQPValue::ShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<u32>().prop_map(AMQPValue::LongUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        any::<u64>().prop_map(AMQPValue::Timestamp),
    ];
    let other = prop_oneof![
        any::<f32>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(AMQPValue::Float),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(AMQPValue::Double),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        octets().prop_map(|o| AMQPValue::LongString(o.into())),
        octets().prop_map(|o| AMQPValue::ByteArray(o.into())),
        Just(AMQPValue::Void),
    ];
    prop_oneof![integer, other].prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| AMQPValue::FieldArray(v.into())),
            field_table(inner).prop_map(AMQPValue::FieldTable),
        ]
    })
}

fn field_table(values: impl Strategy<Value = AMQPValue>) -> impl Strategy<Value = FieldTable> {
    btree_map(short_string(), values, 0..4).prop_map(FieldTable::from)
}

fn set<T>(
    properties: BasicProperties,
    value: Option<T>,
    with: fn(BasicProperties, T) -> BasicProperties,
) -> BasicProperties {
    match value {
        Some(value) => with(properties, value),
        None => properties,
    }
}

fn properties() -> impl Strategy<Value = BasicProperties> {
    let string = || option::of(short_string());
    let first = (string(), string(), option::of(field_table(field_value())));
    let second = (
        option::of(any::<u8>()),
        option::of(any::<u8>()),
        string(),
        string(),
    );
    let third = (string(), string(), option::of(any::<u64>()), string());
    let fourth = (string(), string(), string());
    (first, second, third, fourth).prop_map(|(first, second, third, fourth)| {
        let p = BasicProperties::default();
        let p = set(p, first.0, BasicProperties::with_content_type);
        let p = set(p, first.1, BasicProperties::with_content_encoding);
        let p = set(p, first.2, BasicProperties::with_headers);
        let p = set(p, second.0, BasicProperties::with_delivery_mode);
        let p = set(p, second.1, BasicProperties::with_priority);
        let p = set(p, second.2, BasicProperties::with_correlation_id);
        let p = set(p, second.3, BasicProperties::with_reply_to);
        let p = set(p, third.0, BasicProperties::with_expiration);
        let p = set(p, third.1, BasicProperties::with_message_id);
        let p = set(p, third.2, BasicProperties::with_timestamp);
        let p = set(p, third.3, BasicProperties::with_type);
        let p = set(p, fourth.0, BasicProperties::with_user_id);
        let p = set(p, fourth.1, BasicProperties::with_app_id);
        set(p, fourth.2, BasicProperties::with_cluster_id)
    })
}

fn method() -> impl Strategy<Value = AMQPClass> {
    let basic = prop_oneof![
        (short_string(), short_string(), any::<[bool; 2]>()).prop_map(|(e, r, [m, i])| {
            basic::AMQPMethod::Publish(basic::Publish {
                exchange: e,
                routing_key: r,
                mandatory: m,
                immediate: i,
            })
        }),
        (
            short_string(),
            any::<u64>(),
            any::<bool>(),
            short_string(),
            short_string()
        )
            .prop_map(
                |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| {
                    basic::AMQPMethod::Deliver(basic::Deliver {
                        consumer_tag,
                        delivery_tag,
                        redelivered,
                        exchange,
                        routing_key,
                    })
                }
            ),
        (any::<u64>(), any::<bool>()).prop_map(|(delivery_tag, multiple)| {
            basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag,
                multiple,
            })
        }),
    ];
    prop_oneof![basic.prop_map(AMQPClass::Basic), other_method()]
}

fn other_method() -> impl Strategy<Value = AMQPClass> {
    prop_oneof![
        (
            short_string(),
            any::<[bool; 5]>(),
            field_table(field_value())
        )
            .prop_map(
                |(queue, [passive, durable, exclusive, auto_delete, nowait], arguments)| {
                    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                        queue,
                        passive,
                        durable,
                        exclusive,
                        auto_delete,
                        nowait,
                        arguments,
                    }))
                }
            ),
        (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(channel_max, frame_max, heartbeat)| {
                AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                    channel_max,
                    frame_max,
                    heartbeat,
                }))
            }
        ),
        (any::<u16>(), short_string(), any::<u16>(), any::<u16>()).prop_map(
            |(reply_code, reply_text, class_id, method_id)| {
                AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                    reply_code,
                    reply_text,
                    class_id,
                    method_id,
                }))
            }
        ),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), method()).prop_map(|(channel, method)| Frame::Method { channel, method }),
        (any::<u16>(), any::<u16>(), any::<u64>(), properties()).prop_map(
            |(channel, class_id, body_size, properties)| Frame::Header {
                channel,
                class_id,
                body_size,
                properties,
            }
        ),
        (any::<u16>(), vec(any::<u8>(), 0..300)).prop_map(|(channel, payload)| Frame::Body {
            channel,
            payload: payload.into(),
        }),
        any::<u16>().prop_map(|channel| Frame::Heartbeat { channel }),
    ]
}

fn encode_all(frames: &[Frame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        encode(frame, &mut out).unwrap();
    }
    out
}

proptest! {
    #[test]
    fn decode_inverts_encode(frames in vec(frame(), 1..8)) {
        let stream = encode_all(&frames);
        prop_assert_eq!(decode_all(&stream, 0), frames);
    }

    #[test]
    fn any_split_of_a_stream_decodes_to_the_same_frames(
        frames in vec(frame(), 1..8),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut stream = encode_all(&frames);
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len())).collect();
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut taken = 0;
        for cut in cuts.into_iter().chain([usize::MAX]) {
            let piece = stream.split_to(cut.min(taken + stream.len()) - taken);
            taken += piece.len();
            buf.extend_from_slice(&piece);
            while let Some(frame) = decode(&mut buf, 0).unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_octets_never_panic(octets in vec(any::<u8>(), 0..512), frame_max: u32) {
        let mut buf = BytesMut::from(octets.as_slice());
        let _ = decode_protocol_header(&mut buf.clone());
        while let Ok(Some(_)) = decode(&mut buf, frame_max) {}
    }
}
