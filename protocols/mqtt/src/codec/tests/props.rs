//! Property tests: `decode(encode(p)) == p` for generated packets of every type valid in 3.1.1
//! and 5, any split of a valid stream decodes to the same packets, and no input panics.
use super::*;
use crate::codec::packet::reason::allowed;
use crate::codec::wire::VAR_INT_MAX;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;

/// Any string a UTF-8 field may hold: any characters but U+0000.
fn text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,8}"
}

/// A valid topic name, with the characters that matter to the mapping and the rules.
fn topic_name() -> impl Strategy<Value = String> {
    "[a-z./$*\u{e9} ]{1,12}"
}

/// A valid topic filter, plain or shared.
fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof!["[a-z.$*]{0,3}", Just("+".to_owned())];
    (vec(level, 1..4), any::<bool>(), option::of("[a-z]{1,4}"))
        .prop_map(|(mut levels, hash, group)| {
            if hash {
                levels.push("#".to_owned());
            }
            let filter = levels.join("/");
            match group {
                Some(group) => format!("$share/{group}/{filter}"),
                None => filter,
            }
        })
        .prop_filter("a valid filter", |filter| {
            crate::topic::validate_filter(filter).is_ok()
        })
}

fn octets() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn user_properties() -> impl Strategy<Value = UserProperties> {
    vec((text(), text()), 0..3)
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    (0..=2u8).prop_map(|qos| QoS::from_u8(qos).unwrap())
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0..=1u8)
}

/// Properties a PUBLISH or (without alias and subscription identifiers) a will can carry.
fn publish_properties(will: bool) -> impl Strategy<Value = PublishProperties> {
    let message = (
        flag(),
        option::of(any::<u32>()),
        option::of(topic_name()),
        option::of(octets()),
        user_properties(),
        option::of(text()),
    );
    let routing = (option::of(1..=u16::MAX), vec(1..=VAR_INT_MAX, 0..3));
    (message, routing).prop_map(move |(message, (topic_alias, subscription_identifiers))| {
        let (payload_format_indicator, message_expiry_interval, response_topic) =
            (message.0, message.1, message.2);
        PublishProperties {
            payload_format_indicator,
            message_expiry_interval,
            topic_alias: topic_alias.filter(|_| !will),
            response_topic,
            correlation_data: message.3,
            user_properties: message.4,
            subscription_identifiers: if will {
                Vec::new()
            } else {
                subscription_identifiers
            },
            content_type: message.5,
        }
    })
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
    );
    let rest = (
        flag(),
        flag(),
        user_properties(),
        option::of(text()),
        option::of(octets()),
    );
    (limits, rest).prop_map(|(limits, rest)| {
        let (request_response_information, request_problem_information) = (rest.0, rest.1);
        let (authentication_method, authentication_data) = match (rest.3, rest.4) {
            // Authentication Data needs an Authentication Method (3.1.2.11.10).
            (None, Some(data)) => (Some(String::new()), Some(data)),
            (method, data) => (method, data),
        };
        ConnectProperties {
            session_expiry_interval: limits.0,
            receive_maximum: limits.1,
            maximum_packet_size: limits.2,
            topic_alias_maximum: limits.3,
            request_response_information,
            request_problem_information,
            user_properties: rest.2,
            authentication_method,
            authentication_data,
        }
    })
}

fn will(v5: bool) -> impl Strategy<Value = Will> {
    let properties = publish_properties(true);
    (
        topic_name(),
        octets(),
        qos(),
        any::<bool>(),
        properties,
        option::of(any::<u32>()),
    )
        .prop_map(
            move |(topic, payload, qos, retain, properties, delay)| Will {
                topic,
                payload,
                qos,
                retain,
                properties: if v5 {
                    properties
                } else {
                    PublishProperties::default()
                },
                delay_interval: delay.filter(|_| v5),
            },
        )
}

fn connect(v5: bool) -> impl Strategy<Value = Packet> {
    let version = if v5 {
        Just(V5).boxed()
    } else {
        select(vec![V3, ProtocolVersion::V3_1]).boxed()
    };
    let fields = (
        text(),
        any::<bool>(),
        any::<u16>(),
        option::of(text()),
        option::of(octets()),
    );
    (version, fields, option::of(will(v5)), connect_properties()).prop_map(
        move |(version, fields, will, properties)| {
            let (client_id, clean_start, keep_alive, username, password) = fields;
            // 3.x: no password without a user name [MQTT-3.1.2-22].
            let password = password.filter(|_| v5 || username.is_some());
            Packet::Connect(Box::new(Connect {
                version,
                client_id,
                clean_start,
                keep_alive,
                username,
                password,
                will,
                properties: if v5 {
                    properties
                } else {
                    ConnectProperties::default()
                },
            }))
        },
    )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(1..=u16::MAX),
        flag(),
        flag(),
        option::of(1..=u32::MAX),
        option::of(any::<u16>()),
    );
    let strings = (
        option::of(text()),
        option::of(text()),
        user_properties(),
        option::of(text()),
    );
    let rest = (
        flag(),
        flag(),
        flag(),
        option::of(any::<u16>()),
        option::of(text()),
    );
    let auth = (option::of(text()), option::of(octets()));
    (limits, strings, rest, auth).prop_map(|(limits, strings, rest, auth)| ConnAckProperties {
        session_expiry_interval: limits.0,
        receive_maximum: limits.1,
        maximum_qos: limits.2,
        retain_available: limits.3,
        maximum_packet_size: limits.4,
        topic_alias_maximum: limits.5,
        assigned_client_identifier: strings.0,
        reason_string: strings.1,
        user_properties: strings.2,
        response_information: strings.3,
        wildcard_subscription_available: rest.0,
        subscription_identifiers_available: rest.1,
        shared_subscription_available: rest.2,
        server_keep_alive: rest.3,
        server_reference: rest.4,
        authentication_method: auth.0,
        authentication_data: auth.1,
    })
}

fn connack(v5: bool) -> impl Strategy<Value = Packet> {
    let code = if v5 {
        select(allowed::CONNACK).boxed()
    } else {
        (0..=5u8).boxed()
    };
    (any::<bool>(), code, connack_properties()).prop_map(move |(session_present, code, p)| {
        Packet::ConnAck(ConnAck {
            session_present,
            code,
            properties: if v5 { p } else { ConnAckProperties::default() },
        })
    })
}

fn publish(v5: bool) -> impl Strategy<Value = Packet> {
    let fields = (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        octets(),
    );
    (fields, publish_properties(false)).prop_map(move |(fields, properties)| {
        let (dup, qos, retain, topic, packet_id, payload) = fields;
        let at_least_once = qos != QoS::AtMostOnce;
        Packet::Publish(Publish {
            dup: dup && at_least_once,
            qos,
            retain,
            topic,
            packet_id: Some(packet_id).filter(|_| at_least_once),
            payload,
            properties: if v5 {
                properties
            } else {
                PublishProperties::default()
            },
        })
    })
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (option::of(text()), user_properties()).prop_map(|(reason_string, user_properties)| {
        AckProperties {
            reason_string,
            user_properties,
        }
    })
}

fn ack(v5: bool, reasons: &'static [u8], make: fn(Ack) -> Packet) -> impl Strategy<Value = Packet> {
    (packet_id(), select(reasons), ack_properties()).prop_map(move |(packet_id, reason, p)| {
        make(Ack {
            packet_id,
            reason: if v5 { reason } else { 0 },
            properties: if v5 { p } else { AckProperties::default() },
        })
    })
}

fn subscription(v5: bool) -> impl Strategy<Value = Subscription> {
    (topic_filter(), qos(), any::<[bool; 2]>(), 0..=2u8).prop_map(
        move |(filter, qos, [no_local, retain_as_published], retain_handling)| {
            // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
            let shared = crate::topic::split_shared(&filter).is_some();
            Subscription {
                no_local: v5 && no_local && !shared,
                retain_as_published: v5 && retain_as_published,
                retain_handling: if v5 { retain_handling } else { 0 },
                filter,
                qos,
            }
        },
    )
}

fn subscribe(v5: bool) -> impl Strategy<Value = Packet> {
    let properties = (option::of(1..=VAR_INT_MAX), user_properties());
    (packet_id(), vec(subscription(v5), 1..4), properties).prop_map(
        move |(packet_id, filters, (subscription_identifier, user_properties))| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                subscription_identifier: subscription_identifier.filter(|_| v5),
                user_properties: if v5 { user_properties } else { Vec::new() },
            })
        },
    )
}

fn suback(v5: bool) -> impl Strategy<Value = Packet> {
    let reasons = if v5 {
        allowed::SUBACK
    } else {
        allowed::SUBACK_V3
    };
    (packet_id(), vec(select(reasons), 1..4), ack_properties()).prop_map(
        move |(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties: if v5 {
                    properties
                } else {
                    AckProperties::default()
                },
            })
        },
    )
}

fn unsubscribe(v5: bool) -> impl Strategy<Value = Packet> {
    (packet_id(), vec(topic_filter(), 1..4), user_properties()).prop_map(
        move |(packet_id, filters, user_properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                user_properties: if v5 { user_properties } else { Vec::new() },
            })
        },
    )
}

fn unsuback(v5: bool) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        vec(select(allowed::UNSUBACK), 1..4),
        ack_properties(),
    )
        .prop_map(move |(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons: if v5 { reasons } else { Vec::new() },
                properties: if v5 {
                    properties
                } else {
                    AckProperties::default()
                },
            })
        })
}

fn disconnect(v5: bool) -> impl Strategy<Value = Packet> {
    let properties = (
        option::of(any::<u32>()),
        option::of(text()),
        user_properties(),
    );
    (select(allowed::DISCONNECT), properties, option::of(text())).prop_map(
        move |(reason, (session_expiry_interval, reason_string, user_properties), server)| {
            let properties = DisconnectProperties {
                session_expiry_interval,
                reason_string,
                user_properties,
                server_reference: server,
            };
            Packet::Disconnect(Disconnect {
                reason: if v5 { reason } else { 0 },
                properties: if v5 {
                    properties
                } else {
                    DisconnectProperties::default()
                },
            })
        },
    )
}

fn auth() -> impl Strategy<Value = Packet> {
    let properties = (option::of(text()), option::of(octets()), option::of(text()));
    (select(allowed::AUTH), properties, user_properties()).prop_map(
        |(reason, (method, data, reason_string), user_properties)| {
            Packet::Auth(Auth {
                reason,
                properties: AuthProperties {
                    authentication_method: method,
                    authentication_data: data,
                    reason_string,
                    user_properties,
                },
            })
        },
    )
}

/// Any packet valid in 3.1.1 (`v5` false; CONNECTs also in 3.1) or in 5.
fn packet(v5: bool) -> impl Strategy<Value = Packet> {
    let mut arms = vec![
        connect(v5).boxed(),
        connack(v5).boxed(),
        publish(v5).boxed(),
        ack(v5, allowed::PUBACK, Packet::PubAck).boxed(),
        ack(v5, allowed::PUBACK, Packet::PubRec).boxed(),
        ack(v5, allowed::PUBREL, Packet::PubRel).boxed(),
        ack(v5, allowed::PUBREL, Packet::PubComp).boxed(),
        subscribe(v5).boxed(),
        suback(v5).boxed(),
        unsubscribe(v5).boxed(),
        unsuback(v5).boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v5).boxed(),
    ];
    if v5 {
        arms.push(auth().boxed());
    }
    Union::new(arms)
}

fn version_and_packets() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    any::<bool>().prop_flat_map(|v5| {
        let version = if v5 { V5 } else { V3 };
        (Just(version), vec(packet(v5), 1..8))
    })
}

fn encode_all(packets: &[Packet], version: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    for packet in packets {
        let before = out.len();
        encode(packet, version, &mut out).unwrap();
        assert_eq!(out.len() - before, encoded_len(packet, version));
    }
    out
}

proptest! {
    #[test]
    fn decode_inverts_encode((version, packets) in version_and_packets()) {
        let stream = encode_all(&packets, version);
        prop_assert_eq!(decode_all(&stream, Some(version)), packets);
    }

    #[test]
    fn any_split_of_a_stream_decodes_to_the_same_packets(
        (version, packets) in version_and_packets(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut stream = encode_all(&packets, version);
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len())).collect();
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut taken = 0;
        for cut in cuts.into_iter().chain([usize::MAX]) {
            let piece = stream.split_to(cut.min(taken + stream.len()) - taken);
            taken += piece.len();
            buf.extend_from_slice(&piece);
            while let Some(packet) = decode(&mut buf, Some(version), 0).unwrap() {
                decoded.push(packet);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn arbitrary_octets_never_panic(
        octets in vec(any::<u8>(), 0..256),
        version in select(vec![None, Some(V3), Some(V5), Some(ProtocolVersion::V3_1)]),
        max_packet_size: u32,
    ) {
        let mut buf = BytesMut::from(octets.as_slice());
        let _ = peek_connect_version(&buf);
        while let Ok(Some(_)) = decode(&mut buf, version, max_packet_size) {}
    }

    #[test]
    fn corrupted_packets_never_panic(
        (version, packets) in version_and_packets(),
        flips in vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let mut stream = encode_all(&packets, version).to_vec();
        for (index, value) in flips {
            let at = index.index(stream.len());
            stream[at] = value;
        }
        let mut buf = BytesMut::from(stream.as_slice());
        while let Ok(Some(_)) = decode(&mut buf, Some(version), 0) {}
    }
}
