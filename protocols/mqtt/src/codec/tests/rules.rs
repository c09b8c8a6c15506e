//! Every rule `decode` enforces, broken once, with the error and statement it must cite.
use super::*;

/// Decodes `octets` and returns the error, checking it cites `statement`.
fn refused(octets: &[u8], version: Option<ProtocolVersion>, statement: &str) -> DecodeError {
    let error = decode(&mut BytesMut::from(octets), version, 0).unwrap_err();
    assert!(
        error.to_string().contains(statement),
        "{octets:02x?}: {error} does not cite {statement}"
    );
    error
}

fn malformed(octets: &[u8], version: ProtocolVersion, statement: &str) {
    let error = refused(octets, Some(version), statement);
    assert!(
        matches!(error, DecodeError::Malformed(_)),
        "{octets:02x?}: {error:?} is not Malformed"
    );
    assert_eq!(error.reason_code(), reason::MALFORMED_PACKET);
}

fn protocol_error(octets: &[u8], version: ProtocolVersion, statement: &str) {
    let error = refused(octets, Some(version), statement);
    assert!(
        matches!(error, DecodeError::ProtocolError(_)),
        "{octets:02x?}: {error:?} is not ProtocolError"
    );
    assert_eq!(error.reason_code(), reason::PROTOCOL_ERROR);
}

/// A PUBLISH QoS 0 on topic `t` with the given properties (MQTT 5).
fn publish_v5_with(properties: &[u8]) -> Vec<u8> {
    let mut octets = vec![0x30, 0, 0, 1, b't', properties.len() as u8];
    octets.extend_from_slice(properties);
    octets[1] = (octets.len() - 2) as u8;
    octets
}

/// A CONNECT with the given protocol name, level, flags and the rest after keep alive.
fn connect_with(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut octets = vec![0x10, 0, 0, name.len() as u8];
    octets.extend_from_slice(name);
    octets.extend_from_slice(&[level, flags, 0, 60]);
    octets.extend_from_slice(rest);
    octets[1] = (octets.len() - 2) as u8;
    octets
}

#[test]
fn remaining_length_has_at_most_four_minimal_octets() {
    for octets in [
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F][..],
        &[0xC0, 0x80, 0x00],
        &[0xC0, 0xFF, 0x80, 0x00],
    ] {
        let error = refused(octets, Some(V3), "[MQTT-1.5.5-1]");
        assert_eq!(error, DecodeError::MalformedRemainingLength);
        assert_eq!(error.reason_code(), reason::MALFORMED_PACKET);
    }
}

#[test]
fn the_first_packet_must_be_connect() {
    let error = refused(&[0xC0, 0], None, "[MQTT-3.1.0-1]");
    assert!(matches!(error, DecodeError::ProtocolError(_)));
    // An HTTP request fails on its first octet.
    refused(b"G", None, "[MQTT-3.1.0-1]");
    // Once connected, a CONNECT is decoded; refusing the second one is the session's job.
    let connect = connect_with(b"MQTT", 4, 0x02, &[0, 0]);
    assert!(matches!(
        decode_one(&connect, Some(V5)),
        Ok(Packet::Connect(_))
    ));
}

#[test]
fn reserved_flag_bits_must_have_their_value() {
    for first in [
        0x11, 0x21, 0x41, 0x58, 0x60, 0x63, 0x72, 0x80, 0x83, 0x92, 0xA0, 0xB4, 0xC1,
    ] {
        malformed(&[first, 0], V5, "[MQTT-2.2.2-1]");
    }
    malformed(&[0xD8, 0], V3, "[MQTT-2.2.2-1]");
    malformed(&[0xE1, 0], V3, "[MQTT-2.2.2-1]");
    malformed(&[0xF1, 0], V5, "[MQTT-2.2.2-1]");
    malformed(&[0x00, 0], V5, "packet type 0");
    malformed(&[0xF0, 0], V3, "packet type 15");
}

#[test]
fn publish_flags_refuse_qos_3_and_dup_at_qos_0() {
    malformed(&[0x36, 5, 0, 1, b't', 0, 1], V3, "[MQTT-3.3.1-4]");
    malformed(&[0x38, 3, 0, 1, b't'], V3, "[MQTT-3.3.1-2]");
}

#[test]
fn request_packet_identifiers_are_not_zero() {
    malformed(&[0x32, 5, 0, 1, b't', 0, 0], V3, "[MQTT-2.3.1-1]");
    malformed(&[0x32, 6, 0, 1, b't', 0, 0, 0], V5, "[MQTT-2.2.1-3]");
    malformed(&[0x82, 6, 0, 0, 0, 1, b'a', 0], V3, "[MQTT-2.3.1-1]");
    malformed(&[0xA2, 5, 0, 0, 0, 1, b'a'], V3, "[MQTT-2.3.1-1]");
    protocol_error(&[0x40, 2, 0, 0], V3, "[MQTT-2.2.1-5]");
    protocol_error(&[0x90, 3, 0, 0, 0], V3, "[MQTT-2.2.1-5]");
}

#[test]
fn strings_are_well_formed_utf8_without_u0000() {
    // An invalid continuation octet, a surrogate (U+D800) and U+0000, in a topic.
    for (topic, v3_statement, v5_statement) in [
        (&[0xC3, 0x28][..], "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]"),
        (&[0xED, 0xA0, 0x80], "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]"),
        (&[b'a', 0, b'b'], "[MQTT-1.5.3-2]", "[MQTT-1.5.4-2]"),
    ] {
        let mut octets = vec![0x30, 2 + topic.len() as u8, 0, topic.len() as u8];
        octets.extend_from_slice(topic);
        malformed(&octets, V3, v3_statement);
        octets.push(0);
        octets[1] += 1;
        malformed(&octets, V5, v5_statement);
    }
    // In a CONNECT too, before and after the version is known.
    let connect = connect_with(b"MQTT", 5, 0x02, &[0, 0, 1, 0xFF]);
    malformed(&connect, V5, "[MQTT-1.5.4-1]");
    let connect = connect_with(b"MQTT", 4, 0x02, &[0, 1, 0]);
    malformed(&connect, V3, "[MQTT-1.5.3-2]");
}

#[test]
fn topic_names_have_no_wildcards_and_are_not_empty() {
    for topic in [&b"a/+"[..], b"#", b"a/b#"] {
        let mut octets = vec![0x30, 2 + topic.len() as u8, 0, topic.len() as u8];
        octets.extend_from_slice(topic);
        let error = refused(&octets, Some(V3), "[MQTT-3.3.2-2]");
        assert!(matches!(error, DecodeError::InvalidTopicName(_)));
        assert_eq!(error.reason_code(), reason::TOPIC_NAME_INVALID);
    }
    let error = refused(&[0x30, 2, 0, 0], Some(V3), "[MQTT-4.7.3-1]");
    assert!(matches!(error, DecodeError::InvalidTopicName(_)));
    // MQTT 5 allows an empty topic only with a topic alias.
    protocol_error(&[0x30, 3, 0, 0, 0], V5, "3.3.2.3.4");
}

fn subscribe_v3(filter: &[u8], options: u8) -> Vec<u8> {
    let mut octets = vec![0x82, 0, 0, 1, 0, filter.len() as u8];
    octets.extend_from_slice(filter);
    octets.push(options);
    octets[1] = (octets.len() - 2) as u8;
    octets
}

fn subscribe_v5(filter: &[u8], options: u8) -> Vec<u8> {
    let mut octets = subscribe_v3(filter, options);
    octets.insert(4, 0);
    octets[1] += 1;
    octets
}

#[test]
fn topic_filters_follow_the_wildcard_and_share_rules() {
    for (filter, statement) in [
        (&b""[..], "[MQTT-4.7.3-1]"),
        (b"a/#/b", "[MQTT-4.7.1-2]"),
        (b"a#", "[MQTT-4.7.1-2]"),
        (b"a/b+", "[MQTT-4.7.1-3]"),
        (b"$share//a", "[MQTT-4.8.2-1]"),
        (b"$share/g", "[MQTT-4.8.2-2]"),
        (b"$share/g+/a", "[MQTT-4.8.2-2]"),
    ] {
        let error = refused(&subscribe_v3(filter, 0), Some(V3), statement);
        assert!(matches!(error, DecodeError::InvalidTopicFilter(_)));
        assert_eq!(error.reason_code(), reason::TOPIC_FILTER_INVALID);
        let mut unsubscribe = vec![0xA2, 4 + filter.len() as u8, 0, 1, 0, filter.len() as u8];
        unsubscribe.extend_from_slice(filter);
        refused(&unsubscribe, Some(V3), statement);
    }
}

#[test]
fn subscribe_and_unsubscribe_need_a_filter() {
    protocol_error(&[0x82, 2, 0, 1], V3, "[MQTT-3.8.3-3]");
    protocol_error(&[0x82, 3, 0, 1, 0], V5, "[MQTT-3.8.3-2]");
    protocol_error(&[0xA2, 2, 0, 1], V3, "[MQTT-3.10.3-2]");
    protocol_error(&[0xA2, 3, 0, 1, 0], V5, "[MQTT-3.10.3-2]");
    protocol_error(&[0x90, 2, 0, 1], V3, "[MQTT-3.8.4-6]");
}

#[test]
fn subscription_options_have_no_reserved_bits() {
    malformed(&subscribe_v3(b"a", 0x04), V3, "[MQTT-3.8.3-4]");
    malformed(&subscribe_v3(b"a", 0x03), V3, "[MQTT-3.8.3-4]");
    malformed(&subscribe_v5(b"a", 0x40), V5, "[MQTT-3.8.3-5]");
    protocol_error(&subscribe_v5(b"a", 0x03), V5, "3.8.3.1");
    protocol_error(&subscribe_v5(b"a", 0x30), V5, "3.8.3.1");
    protocol_error(&subscribe_v5(b"$share/g/a", 0x04), V5, "[MQTT-3.8.3-4]");
    assert!(decode_one(&subscribe_v5(b"$share/g/a", 0x28), Some(V5)).is_ok());
}

#[test]
fn connect_flags_follow_3_1_2() {
    malformed(
        &connect_with(b"MQTT", 4, 0x03, &[0, 0]),
        V3,
        "[MQTT-3.1.2-3]",
    );
    // Will QoS or retain without a will.
    malformed(
        &connect_with(b"MQTT", 4, 0x08, &[0, 0]),
        V3,
        "[MQTT-3.1.2-11]",
    );
    malformed(
        &connect_with(b"MQTT", 5, 0x10, &[0, 0, 0]),
        V5,
        "[MQTT-3.1.2-11]",
    );
    malformed(
        &connect_with(b"MQTT", 4, 0x20, &[0, 0]),
        V3,
        "[MQTT-3.1.2-15]",
    );
    malformed(
        &connect_with(b"MQTT", 5, 0x20, &[0, 0, 0]),
        V5,
        "[MQTT-3.1.2-13]",
    );
    // Will QoS 3.
    let will = [0, 0, 0, 1, b'w', 0, 0];
    malformed(
        &connect_with(b"MQTT", 4, 0x1C, &will),
        V3,
        "[MQTT-3.1.2-14]",
    );
    // A password without a user name: refused in 3.1 and 3.1.1, allowed in 5.
    let password = [0, 0, 0, 2, b'p', b'w'];
    malformed(
        &connect_with(b"MQTT", 4, 0x40, &password),
        V3,
        "[MQTT-3.1.2-22]",
    );
    malformed(
        &connect_with(b"MQIsdp", 3, 0x40, &password),
        V3,
        "[MQTT-3.1.2-22]",
    );
    let v5 = connect_with(b"MQTT", 5, 0x40, &[0, 0, 0, 0, 2, b'p', b'w']);
    let Ok(Packet::Connect(connect)) = decode_one(&v5, None) else {
        panic!("a password alone is fine in MQTT 5");
    };
    assert_eq!(
        (connect.username, connect.password),
        (None, Some("pw".into()))
    );
    // A will topic is a topic name.
    let will = [0, 0, 0, 1, b'#', 0, 0];
    let error = refused(
        &connect_with(b"MQTT", 4, 0x04, &will),
        None,
        "[MQTT-3.3.2-2]",
    );
    assert!(matches!(error, DecodeError::InvalidTopicName(_)));
    // Octets after the last field.
    malformed(
        &connect_with(b"MQTT", 4, 0x02, &[0, 0, 9]),
        V3,
        "[MQTT-3.1.4-1]",
    );
}

#[test]
fn connect_names_a_protocol_and_level_we_speak() {
    for (name, level) in [
        (&b"MQTT"[..], 3),
        (b"MQTT", 6),
        (b"MQIsdp", 4),
        (b"MQTT", 0x84),
    ] {
        let error = refused(
            &connect_with(name, level, 0x02, &[0, 0]),
            None,
            "[MQTT-3.1.2-2]",
        );
        assert_eq!(error, DecodeError::UnsupportedProtocolVersion { level });
        assert_eq!(error.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            peek_connect_version(&connect_with(name, level, 0x02, &[0, 0])),
            None
        );
    }
    let error = refused(
        &connect_with(b"HTTP", 4, 0x02, &[0, 0]),
        None,
        "[MQTT-3.1.2-1]",
    );
    assert_eq!(error, DecodeError::UnsupportedProtocolName);
    // peek tells the version of a CONNECT that decoding refuses.
    let bad_v5 = connect_with(b"MQTT", 5, 0x03, &[0, 0, 0]);
    assert_eq!(peek_connect_version(&bad_v5), Some(V5));
    assert_eq!(peek_connect_version(&bad_v5[..8]), None);
    assert_eq!(peek_connect_version(&[0xC0, 0]), None);
}

#[test]
fn client_identifiers_may_be_long_or_empty() {
    let long = [&[0, 30][..], &[b'c'; 30]].concat();
    let v3_1 = connect_with(b"MQIsdp", 3, 0x02, &long);
    assert!(matches!(decode_one(&v3_1, None), Ok(Packet::Connect(c)) if c.client_id.len() == 30));
    let empty_v5 = connect_with(b"MQTT", 5, 0x00, &[0, 0, 0]);
    assert!(
        matches!(decode_one(&empty_v5, None), Ok(Packet::Connect(c)) if c.client_id.is_empty())
    );
}

#[test]
fn properties_are_allowed_only_in_their_packets_and_once() {
    // Topic alias (0x23) belongs to PUBLISH, not CONNECT.
    malformed(
        &connect_with(b"MQTT", 5, 0x02, &[3, 0x23, 0, 1, 0, 0]),
        V5,
        "2.2.2.2",
    );
    // Unknown identifiers, one of them in two octets (128).
    malformed(&publish_v5_with(&[0x7F, 0]), V5, "2.2.2.2");
    malformed(&publish_v5_with(&[0x80, 0x01, 0]), V5, "2.2.2.2");
    // Twice: a Protocol Error, except User Property and PUBLISH's Subscription Identifier.
    protocol_error(
        &publish_v5_with(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1]),
        V5,
        "2.2.2.2",
    );
    let twice = [
        0x26, 0, 1, b'k', 0, 0, 0x26, 0, 1, b'k', 0, 0, 0x0B, 1, 0x0B, 2,
    ];
    let Ok(Packet::Publish(publish)) = decode_one(&publish_v5_with(&twice), Some(V5)) else {
        panic!("user properties and subscription identifiers may repeat");
    };
    assert_eq!(publish.properties.user_properties.len(), 2);
    assert_eq!(publish.properties.subscription_identifiers, [1, 2]);
    let mut subscribe = subscribe_v5(b"a", 0);
    subscribe.splice(4..5, [4, 0x0B, 1, 0x0B, 2]);
    subscribe[1] += 4;
    protocol_error(&subscribe, V5, "2.2.2.2");
    // A property block longer than the packet.
    let error = refused(&[0x30, 5, 0, 1, b't', 9, 0x01], Some(V5), "2.1.4");
    assert!(matches!(error, DecodeError::Truncated { .. }));
}

#[test]
fn property_values_respect_their_ranges() {
    protocol_error(&publish_v5_with(&[0x23, 0, 0]), V5, "[MQTT-3.3.2-8]");
    protocol_error(&publish_v5_with(&[0x0B, 0]), V5, "3.8.2.1.2");
    protocol_error(&publish_v5_with(&[0x01, 2]), V5, "2.2.2.2");
    let response_topic = publish_v5_with(&[0x08, 0, 1, b'+']);
    let error = refused(&response_topic, Some(V5), "[MQTT-3.3.2-2]");
    assert!(matches!(error, DecodeError::InvalidTopicName(_)));
    let connect = |properties: &[u8]| {
        let rest = [&[properties.len() as u8][..], properties, &[0, 0]].concat();
        connect_with(b"MQTT", 5, 0x02, &rest)
    };
    protocol_error(&connect(&[0x21, 0, 0]), V5, "3.1.2.11.3");
    protocol_error(&connect(&[0x27, 0, 0, 0, 0]), V5, "3.1.2.11.4");
    protocol_error(&connect(&[0x17, 2]), V5, "2.2.2.2");
    protocol_error(&connect(&[0x16, 0, 1, 9]), V5, "3.1.2.11.10");
    assert!(decode_one(&connect(&[0x15, 0, 1, b'm', 0x16, 0, 1, 9]), None).is_ok());
    let mut subscribe = subscribe_v5(b"a", 0);
    subscribe.splice(4..5, [2, 0x0B, 0]);
    subscribe[1] += 2;
    protocol_error(&subscribe, V5, "3.8.2.1.2");
}

#[test]
fn reason_codes_come_from_their_packets_table() {
    protocol_error(&[0x40, 3, 0, 1, 0x05], V5, "[MQTT-3.4.2-1]");
    protocol_error(&[0x50, 3, 0, 1, 0x92], V5, "[MQTT-3.5.2-1]");
    protocol_error(&[0x62, 3, 0, 1, 0x10], V5, "[MQTT-3.6.2-1]");
    protocol_error(&[0x70, 3, 0, 1, 0x80], V5, "[MQTT-3.7.2-1]");
    protocol_error(&[0x90, 4, 0, 1, 0, 0x03], V5, "[MQTT-3.9.3-2]");
    protocol_error(&[0x90, 3, 0, 1, 0x87], V3, "[MQTT-3.9.3-2]");
    protocol_error(&[0xB0, 4, 0, 1, 0, 0x10], V5, "[MQTT-3.11.3-2]");
    protocol_error(&[0xE0, 1, 0x03], V5, "[MQTT-3.14.2-1]");
    protocol_error(&[0xF0, 2, 0x01, 0], V5, "[MQTT-3.15.2-1]");
    protocol_error(&[0x20, 3, 0, 0x01, 0], V5, "[MQTT-3.2.2-8]");
    protocol_error(&[0x20, 2, 0, 6], V3, "3.2.2.3");
    malformed(&[0x20, 2, 0x02, 0], V3, "[MQTT-3.2.2-1]");
}

#[test]
fn packets_have_no_octets_after_their_fields() {
    malformed(&[0xC0, 1, 0], V3, "3.12");
    malformed(&[0xD0, 1, 0], V5, "3.13");
    malformed(&[0xE0, 1, 0], V3, "3.14.1");
    malformed(&[0x40, 3, 0, 1, 0], V3, "3.4.1");
    malformed(&[0xB0, 3, 0, 1, 0], V3, "3.11.1");
    malformed(&[0x40, 5, 0, 1, 0, 0, 9], V5, "3.4");
    malformed(&[0xE0, 3, 0, 0, 9], V5, "3.14");
    malformed(&[0x20, 3, 0, 0, 9], V3, "3.2");
}

#[test]
fn truncated_fields_are_malformed() {
    for (octets, version) in [
        (&[0x30, 2, 0, 5][..], V3),
        (&[0x32, 3, 0, 1, b't'], V3),
        (&[0x40, 1, 0], V5),
        (&[0x82, 5, 0, 1, 0, 1, b'a'], V3),
        (&[0x10, 3, 0, 4, b'M'], V3),
    ] {
        let error = decode(&mut BytesMut::from(octets), Some(version), 0).unwrap_err();
        assert!(
            matches!(error, DecodeError::Truncated { .. }),
            "{octets:02x?}: {error:?}"
        );
        assert_eq!(error.reason_code(), reason::MALFORMED_PACKET);
    }
}
