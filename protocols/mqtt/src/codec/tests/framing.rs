//! Framing: partial input, several packets in a buffer, the size limit, refused encodings.
use super::*;

#[test]
fn partial_input_returns_none_and_keeps_the_octets() {
    let packet = connect(
        V5,
        will(PublishProperties::default(), Some(1)),
        ConnectProperties::default(),
    );
    let octets = encoded(&packet, V5);
    for end in 0..octets.len() {
        let mut buf = BytesMut::from(&octets[..end]);
        assert_eq!(
            decode(&mut buf, None, 0),
            Ok(None),
            "prefix of {end} octets"
        );
        assert_eq!(buf, &octets[..end]);
    }
}

#[test]
fn two_packets_in_one_buffer_decode_one_after_the_other() {
    let publish = [0x30, 5, 0, 1, b't', b'h', b'i'];
    let buf = [&publish[..], &[0xC0, 0], &[0x82, 8, 0, 1]].concat();
    let mut buf = BytesMut::from(buf.as_slice());
    let first = decode(&mut buf, Some(V3), 0).unwrap();
    assert!(matches!(first, Some(Packet::Publish(p)) if p.payload == "hi"));
    assert_eq!(decode(&mut buf, Some(V3), 0), Ok(Some(Packet::PingReq)));
    assert_eq!(decode(&mut buf, Some(V3), 0), Ok(None));
    assert_eq!(buf, &[0x82, 8, 0, 1][..]);
}

#[test]
fn oversize_packet_is_refused_from_its_fixed_header_alone() {
    // A PUBLISH announcing the largest remaining length: five octets, no body.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let error = decode(&mut buf, Some(V5), 1024).unwrap_err();
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: PACKET_SIZE_MAX,
            max: 1024
        }
    );
    assert_eq!(error.reason_code(), reason::PACKET_TOO_LARGE);
    // The limit counts the fixed header: 1 + 2 + 1022 = 1025 octets is one too many, and a
    // CONNECT is checked before the connection has a version.
    let mut buf = BytesMut::from(&[0x10, 0xFE, 0x07][..]);
    let error = decode(&mut buf, None, 1024).unwrap_err();
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: 1025,
            max: 1024
        }
    );
    // One octet less fits, and waits for its body.
    let mut buf = BytesMut::from(&[0x30, 0xFD, 0x07][..]);
    assert_eq!(decode(&mut buf, Some(V5), 1024), Ok(None));
}

#[test]
fn reserve_ahead_is_capped() {
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(decode(&mut buf, Some(V3), 0), Ok(None));
    assert!(
        buf.capacity() < 2 << 20,
        "reserved {} octets",
        buf.capacity()
    );
}

#[test]
fn refused_encodings_append_nothing() {
    let mut out = BytesMut::new();
    let no_id = Packet::Publish(publish(QoS::AtLeastOnce, None, "t", b""));
    assert!(matches!(
        encode(&no_id, V3, &mut out),
        Err(EncodeError::Invalid(_))
    ));
    let id_at_qos_0 = Packet::Publish(publish(QoS::AtMostOnce, Some(1), "t", b""));
    assert!(matches!(
        encode(&id_at_qos_0, V3, &mut out),
        Err(EncodeError::Invalid(_))
    ));
    let long = "x".repeat(70_000);
    let long_topic = Packet::Publish(publish(QoS::AtMostOnce, None, &long, b""));
    let error = encode(&long_topic, V3, &mut out);
    assert_eq!(error, Err(EncodeError::FieldTooLong { len: 70_000 }));
    let mut subscribe = Subscribe {
        packet_id: id(1),
        filters: Vec::new(),
        subscription_identifier: None,
        user_properties: Vec::new(),
    };
    let empty = Packet::Subscribe(subscribe.clone());
    assert!(matches!(
        encode(&empty, V3, &mut out),
        Err(EncodeError::Invalid(_))
    ));
    subscribe.filters.push(subscription("a", QoS::AtMostOnce));
    subscribe.subscription_identifier = Some(300_000_000);
    let too_big = Packet::Subscribe(subscribe);
    assert!(matches!(
        encode(&too_big, V5, &mut out),
        Err(EncodeError::Invalid(_))
    ));
    assert!(out.is_empty());
}

#[test]
fn remaining_length_boundaries_encode_in_the_fewest_octets() {
    for (payload_size, header_size) in [(122, 2), (123, 3), (16_378, 3), (16_379, 4)] {
        let payload = Bytes::from(vec![0u8; payload_size]);
        let mut packet = publish(QoS::AtMostOnce, None, "abc", b"");
        packet.payload = payload;
        let packet = Packet::Publish(packet);
        let octets = encoded(&packet, V3);
        assert_eq!(
            octets.len(),
            header_size + 5 + payload_size,
            "{payload_size}"
        );
        assert_eq!(decode_all(&octets, Some(V3)), [packet]);
    }
}
