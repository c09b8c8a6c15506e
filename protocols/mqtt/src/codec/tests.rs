//! Byte-literal tests of the MQTT codec: every packet type in 3.1.1 and 5, hand-written from
//! the spec's layouts. Framing (partial input, several packets, the size limit) is in
//! `tests/framing.rs`, the rules each decode check enforces in `tests/rules.rs`, the property
//! tests in `tests/props.rs`.
use super::*;
use bytes::{Bytes, BytesMut};

mod framing;
mod props;
mod rules;

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn id(value: u16) -> PacketId {
    PacketId::new(value).unwrap()
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).unwrap();
    assert_eq!(
        out.len(),
        encoded_len(packet, version),
        "encoded_len of {packet:?}"
    );
    out.to_vec()
}

/// Decodes every whole packet in `octets` and checks nothing is left over.
fn decode_all(octets: &[u8], version: Option<ProtocolVersion>) -> Vec<Packet> {
    let mut buf = BytesMut::from(octets);
    let mut packets = Vec::new();
    while let Some(packet) = decode(&mut buf, version, 0).unwrap() {
        packets.push(packet);
    }
    assert!(buf.is_empty(), "{} octets left over", buf.len());
    packets
}

fn decode_one(octets: &[u8], version: Option<ProtocolVersion>) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(octets);
    let packet = decode(&mut buf, version, 0)?.expect("a whole packet");
    assert!(buf.is_empty(), "{} octets left over", buf.len());
    Ok(packet)
}

/// Checks both directions: the octets decode to the packet and the packet encodes to them.
fn assert_wire(octets: &[u8], version: ProtocolVersion, packet: &Packet) {
    assert_eq!(
        decode_all(octets, Some(version)),
        std::slice::from_ref(packet)
    );
    assert_eq!(encoded(packet, version), octets, "encoding {packet:?}");
}

fn will(properties: PublishProperties, delay_interval: Option<u32>) -> Will {
    Will {
        topic: "w".into(),
        payload: Bytes::from_static(b"by"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties,
        delay_interval,
    }
}

fn connect(version: ProtocolVersion, will: Will, properties: ConnectProperties) -> Packet {
    Packet::Connect(Box::new(Connect {
        version,
        client_id: "cid".into(),
        clean_start: true,
        keep_alive: 60,
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"pw")),
        will: Some(will),
        properties,
    }))
}

#[test]
fn connect_v3_1_with_will_and_credentials() {
    #[rustfmt::skip]
    let octets = [
        0x10, 31,
        0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, // protocol name and level
        0xEE, // user name, password, will retain, will QoS 1, will, clean session
        0, 60, // keep alive
        0, 3, b'c', b'i', b'd',
        0, 1, b'w', // will topic
        0, 2, b'b', b'y', // will payload
        0, 1, b'u',
        0, 2, b'p', b'w',
    ];
    let packet = connect(
        ProtocolVersion::V3_1,
        will(PublishProperties::default(), None),
        ConnectProperties::default(),
    );
    // Before CONNECT, the connection has no version yet.
    assert_eq!(decode_all(&octets, None), std::slice::from_ref(&packet));
    assert_wire(&octets, V3, &packet);
    assert_eq!(peek_connect_version(&octets), Some(ProtocolVersion::V3_1));
}

#[test]
fn connect_v3_1_1_with_will_and_credentials() {
    #[rustfmt::skip]
    let octets = [
        0x10, 29,
        0, 4, b'M', b'Q', b'T', b'T', 4,
        0xEE,
        0, 60,
        0, 3, b'c', b'i', b'd',
        0, 1, b'w',
        0, 2, b'b', b'y',
        0, 1, b'u',
        0, 2, b'p', b'w',
    ];
    let packet = connect(
        V3,
        will(PublishProperties::default(), None),
        ConnectProperties::default(),
    );
    assert_eq!(decode_all(&octets, None), std::slice::from_ref(&packet));
    assert_wire(&octets, V3, &packet);
    assert_eq!(peek_connect_version(&octets), Some(V3));
}

#[test]
fn connect_v5_with_will_credentials_and_properties() {
    #[rustfmt::skip]
    let octets = [
        0x10, 51,
        0, 4, b'M', b'Q', b'T', b'T', 5,
        0xCE, // user name, password, will QoS 1, will, clean start
        0, 60,
        8, 0x11, 0, 0, 0, 120, 0x21, 0, 20, // session expiry 120, receive maximum 20
        0, 3, b'c', b'i', b'd',
        12, 0x18, 0, 0, 0, 5, 0x03, 0, 4, b't', b'e', b'x', b't', // will delay, content type
        0, 1, b'w',
        0, 2, b'b', b'y',
        0, 1, b'u',
        0, 2, b'p', b'w',
    ];
    let will_properties = PublishProperties {
        content_type: Some("text".into()),
        ..PublishProperties::default()
    };
    let mut will = will(will_properties, Some(5));
    will.retain = false;
    let properties = ConnectProperties {
        session_expiry_interval: Some(120),
        receive_maximum: Some(20),
        ..ConnectProperties::default()
    };
    let packet = connect(V5, will, properties);
    assert_eq!(decode_all(&octets, None), std::slice::from_ref(&packet));
    assert_wire(&octets, V5, &packet);
    assert_eq!(peek_connect_version(&octets), Some(V5));
}

#[test]
fn connect_without_will_or_credentials_and_with_an_empty_client_id() {
    let octets = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0];
    let packet = Packet::Connect(Box::new(Connect {
        version: V3,
        client_id: String::new(),
        clean_start: true,
        keep_alive: 0,
        username: None,
        password: None,
        will: None,
        properties: ConnectProperties::default(),
    }));
    assert_wire(&octets, V3, &packet);
}

#[test]
fn connack_v3() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: true,
        code: connack_v3::ACCEPTED,
        properties: ConnAckProperties::default(),
    });
    assert_wire(&[0x20, 2, 0x01, 0x00], V3, &packet);
    let refused = Packet::ConnAck(ConnAck {
        session_present: false,
        code: reason::connack_v3::BAD_USERNAME_OR_PASSWORD,
        properties: ConnAckProperties::default(),
    });
    assert_wire(&[0x20, 2, 0x00, 0x04], V3, &refused);
    // 3.1 has no session present flag.
    assert_eq!(encoded(&packet, ProtocolVersion::V3_1), [0x20, 2, 0, 0]);
}

/// Found by fuzzing (mqtt_packets): a 3.1 CONNACK with bit 0 set decoded as "session
/// present", which 3.1 cannot say, so it did not survive a round trip.
#[test]
fn connack_v3_1_ignores_its_reserved_first_octet() {
    let octets = [0x20, 0x02, 0x01, 0x00];
    let packet = decode_one(&octets, Some(ProtocolVersion::V3_1)).unwrap();
    let Packet::ConnAck(connack) = &packet else {
        panic!("not a CONNACK: {packet:?}");
    };
    assert!(!connack.session_present);
    assert_eq!(encoded(&packet, ProtocolVersion::V3_1), [0x20, 2, 0, 0]);
}

#[test]
fn connack_v5_with_properties() {
    #[rustfmt::skip]
    let octets = [
        0x20, 23,
        0x00, 0x00, // no session, success
        20,
        0x21, 0, 10, // receive maximum
        0x24, 1, // maximum QoS
        0x12, 0, 2, b'i', b'd', // assigned client identifier
        0x22, 0, 5, // topic alias maximum
        0x26, 0, 1, b'k', 0, 1, b'v', // user property
    ];
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        code: reason::SUCCESS,
        properties: ConnAckProperties {
            receive_maximum: Some(10),
            maximum_qos: Some(1),
            assigned_client_identifier: Some("id".into()),
            topic_alias_maximum: Some(5),
            user_properties: vec![("k".into(), "v".into())],
            ..ConnAckProperties::default()
        },
    });
    assert_wire(&octets, V5, &packet);
}

fn publish(qos: QoS, packet_id: Option<u16>, topic: &str, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: packet_id.map(id),
        payload: Bytes::from_static(payload),
        properties: PublishProperties::default(),
    }
}

#[test]
fn publish_qos_0_and_1_v3() {
    let mut retained = publish(QoS::AtMostOnce, None, "a/b", b"hi");
    retained.retain = true;
    let octets = [0x31, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'];
    assert_wire(&octets, V3, &Packet::Publish(retained));
    let mut redelivered = publish(QoS::AtLeastOnce, Some(7), "t", b"x");
    redelivered.dup = true;
    let octets = [0x3A, 6, 0, 1, b't', 0, 7, b'x'];
    assert_wire(&octets, V3, &Packet::Publish(redelivered));
    let empty = publish(QoS::ExactlyOnce, Some(1), "t", b"");
    assert_wire(&[0x34, 5, 0, 1, b't', 0, 1], V3, &Packet::Publish(empty));
}

#[test]
fn publish_payload_shares_the_read_buffer() {
    let octets = [0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'];
    let mut buf = BytesMut::from(&octets[..]);
    let payload_address = buf.as_ptr() as usize + 7;
    let Some(Packet::Publish(publish)) = decode(&mut buf, Some(V3), 0).unwrap() else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(&publish.payload[..], b"hi");
    assert_eq!(publish.payload.as_ptr() as usize, payload_address, "copied");
}

#[test]
fn publish_v5_with_and_without_properties() {
    assert_wire(
        &[0x30, 5, 0, 1, b't', 0, b'x'],
        V5,
        &Packet::Publish(publish(QoS::AtMostOnce, None, "t", b"x")),
    );
    #[rustfmt::skip]
    let octets = [
        0x32, 36,
        0, 1, b't',
        0, 7, // packet identifier
        29,
        0x01, 1, // payload format indicator: UTF-8
        0x02, 0, 0, 0, 60, // message expiry interval
        0x08, 0, 1, b'r', // response topic
        0x09, 0, 2, 0xCA, 0xFE, // correlation data
        0x26, 0, 1, b'k', 0, 1, b'v', // user property
        0x23, 0, 2, // topic alias
        0x0B, 0x80, 0x01, // subscription identifier 128
        b'x',
    ];
    let mut packet = publish(QoS::AtLeastOnce, Some(7), "t", b"x");
    packet.properties = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        topic_alias: Some(2),
        response_topic: Some("r".into()),
        correlation_data: Some(Bytes::from_static(&[0xCA, 0xFE])),
        user_properties: vec![("k".into(), "v".into())],
        subscription_identifiers: vec![128],
        content_type: None,
    };
    assert_wire(&octets, V5, &Packet::Publish(packet));
}

#[test]
fn publish_v5_with_a_topic_alias_may_have_an_empty_topic() {
    let mut packet = publish(QoS::AtMostOnce, None, "", b"x");
    packet.properties.topic_alias = Some(3);
    let octets = [0x30, 7, 0, 0, 3, 0x23, 0, 3, b'x'];
    assert_wire(&octets, V5, &Packet::Publish(packet));
}

fn ack(packet_id: u16, reason: u8, reason_string: Option<&str>) -> Ack {
    Ack {
        packet_id: id(packet_id),
        reason,
        properties: AckProperties {
            reason_string: reason_string.map(str::to_owned),
            user_properties: Vec::new(),
        },
    }
}

#[test]
fn acks_v3() {
    assert_wire(&[0x40, 2, 0, 5], V3, &Packet::PubAck(ack(5, 0, None)));
    assert_wire(&[0x50, 2, 0, 5], V3, &Packet::PubRec(ack(5, 0, None)));
    assert_wire(&[0x62, 2, 0, 5], V3, &Packet::PubRel(ack(5, 0, None)));
    assert_wire(
        &[0x70, 2, 0x01, 0x00],
        V3,
        &Packet::PubComp(ack(256, 0, None)),
    );
    // 3.x cannot say why; the reason is not written.
    let refused = Packet::PubAck(ack(5, reason::NOT_AUTHORIZED, Some("no")));
    assert_eq!(encoded(&refused, V3), [0x40, 2, 0, 5]);
}

#[test]
fn puback_v5_short_and_long_forms() {
    // Reason 0 and no properties: both left out.
    assert_wire(&[0x40, 2, 0, 5], V5, &Packet::PubAck(ack(5, 0, None)));
    // A reason and no properties: the property length left out.
    let no_subscribers = ack(5, reason::NO_MATCHING_SUBSCRIBERS, None);
    assert_wire(&[0x40, 3, 0, 5, 0x10], V5, &Packet::PubAck(no_subscribers));
    // Everything.
    let octets = [0x40, 9, 0, 5, 0x10, 5, 0x1F, 0, 2, b'n', b'o'];
    let long = Packet::PubAck(ack(5, reason::NO_MATCHING_SUBSCRIBERS, Some("no")));
    assert_wire(&octets, V5, &long);
    // A property length of 0 after the reason is the same packet.
    assert_eq!(
        decode_one(&[0x40, 4, 0, 5, 0x10, 0], Some(V5)),
        Ok(Packet::PubAck(ack(5, 0x10, None)))
    );
    let not_found = ack(1, reason::PACKET_IDENTIFIER_NOT_FOUND, None);
    assert_wire(
        &[0x62, 3, 0, 1, 0x92],
        V5,
        &Packet::PubRel(not_found.clone()),
    );
    assert_wire(&[0x70, 3, 0, 1, 0x92], V5, &Packet::PubComp(not_found));
    assert_wire(
        &[0x50, 3, 0, 1, 0x80],
        V5,
        &Packet::PubRec(ack(1, 0x80, None)),
    );
}

fn subscription(filter: &str, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.into(),
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    }
}

#[test]
fn subscribe_v3() {
    let octets = [0x82, 8, 0, 1, 0, 3, b'a', b'/', b'b', 0x01];
    let packet = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![subscription("a/b", QoS::AtLeastOnce)],
        subscription_identifier: None,
        user_properties: Vec::new(),
    });
    assert_wire(&octets, V3, &packet);
}

#[test]
fn subscribe_v5_with_options() {
    #[rustfmt::skip]
    let octets = [
        0x82, 15,
        0, 10,
        2, 0x0B, 5, // subscription identifier 5
        0, 3, b'a', b'/', b'#',
        0x2D, // retain handling 2, retain as published, no local, QoS 1
        0, 1, b'+',
        0x02, // QoS 2
    ];
    let packet = Packet::Subscribe(Subscribe {
        packet_id: id(10),
        filters: vec![
            Subscription {
                no_local: true,
                retain_as_published: true,
                retain_handling: 2,
                ..subscription("a/#", QoS::AtLeastOnce)
            },
            subscription("+", QoS::ExactlyOnce),
        ],
        subscription_identifier: Some(5),
        user_properties: Vec::new(),
    });
    assert_wire(&octets, V5, &packet);
}

#[test]
fn suback_v3_and_v5() {
    let v3 = Packet::SubAck(SubAck {
        packet_id: id(1),
        reasons: vec![reason::GRANTED_QOS_1, 0x80],
        properties: AckProperties::default(),
    });
    assert_wire(&[0x90, 4, 0, 1, 0x01, 0x80], V3, &v3);
    let v5 = Packet::SubAck(SubAck {
        packet_id: id(10),
        reasons: vec![reason::GRANTED_QOS_1, reason::TOPIC_FILTER_INVALID],
        properties: AckProperties::default(),
    });
    assert_wire(&[0x90, 5, 0, 10, 0, 0x01, 0x8F], V5, &v5);
}

#[test]
fn unsubscribe_and_unsuback_v3_and_v5() {
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(2),
        filters: vec!["a/b".into()],
        user_properties: Vec::new(),
    });
    assert_wire(&[0xA2, 7, 0, 2, 0, 3, b'a', b'/', b'b'], V3, &unsubscribe);
    assert_wire(
        &[0xA2, 8, 0, 2, 0, 0, 3, b'a', b'/', b'b'],
        V5,
        &unsubscribe,
    );
    let v3 = Packet::UnsubAck(UnsubAck {
        packet_id: id(2),
        reasons: Vec::new(),
        properties: AckProperties::default(),
    });
    assert_wire(&[0xB0, 2, 0, 2], V3, &v3);
    let v5 = Packet::UnsubAck(UnsubAck {
        packet_id: id(2),
        reasons: vec![reason::SUCCESS, reason::NO_SUBSCRIPTION_EXISTED],
        properties: AckProperties::default(),
    });
    assert_wire(&[0xB0, 5, 0, 2, 0, 0x00, 0x11], V5, &v5);
}

#[test]
fn pings() {
    for version in [V3, V5] {
        assert_wire(&[0xC0, 0], version, &Packet::PingReq);
        assert_wire(&[0xD0, 0], version, &Packet::PingResp);
    }
}

#[test]
fn disconnect_v3_and_v5_with_reason() {
    let normal = Packet::Disconnect(Disconnect {
        reason: reason::NORMAL_DISCONNECTION,
        properties: DisconnectProperties::default(),
    });
    assert_wire(&[0xE0, 0], V3, &normal);
    assert_wire(&[0xE0, 0], V5, &normal);
    let with_will = Packet::Disconnect(Disconnect {
        reason: reason::DISCONNECT_WITH_WILL,
        properties: DisconnectProperties::default(),
    });
    assert_wire(&[0xE0, 1, 0x04], V5, &with_will);
    #[rustfmt::skip]
    let octets = [
        0xE0, 12,
        0x8B, // server shutting down
        10,
        0x1F, 0, 3, b'b', b'y', b'e', // reason string
        0x1C, 0, 1, b's', // server reference
    ];
    let shutting_down = Packet::Disconnect(Disconnect {
        reason: reason::SERVER_SHUTTING_DOWN,
        properties: DisconnectProperties {
            reason_string: Some("bye".into()),
            server_reference: Some("s".into()),
            ..DisconnectProperties::default()
        },
    });
    assert_wire(&octets, V5, &shutting_down);
}

#[test]
fn auth_v5() {
    let success = Packet::Auth(Auth {
        reason: reason::SUCCESS,
        properties: AuthProperties::default(),
    });
    assert_wire(&[0xF0, 0], V5, &success);
    #[rustfmt::skip]
    let octets = [
        0xF0, 15,
        0x18, // continue authentication
        13,
        0x15, 0, 5, b'S', b'C', b'R', b'A', b'M', // method
        0x16, 0, 2, 1, 2, // data
    ];
    let challenge = Packet::Auth(Auth {
        reason: reason::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(&[1, 2])),
            ..AuthProperties::default()
        },
    });
    assert_wire(&octets, V5, &challenge);
    let mut out = BytesMut::from(&b"kept"[..]);
    assert!(matches!(
        encode(&challenge, V3, &mut out),
        Err(EncodeError::Invalid(_))
    ));
    assert_eq!(out, &b"kept"[..], "a refused packet appends nothing");
}
