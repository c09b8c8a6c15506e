//! Misbehaving MQTT clients on a raw socket: packets built with the adapter's own codec, or
//! written by hand where they must be malformed. Each test checks what the broker answers
//! (CONNACK or MQTT 5 DISCONNECT reason code, or a plain close for 3.1.1) and that another,
//! well-behaved client keeps working.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::mqtt::raw::{Raw, V3, V5, connect, publish};
use common::mqtt::{Client, alive_client, assert_alive};
use common::{Broker, WAIT};
use mqbridge_mqtt::codec::{
    DecodeError, Disconnect, DisconnectProperties, Packet, PublishProperties, QoS, Will, connack_v3,
};

/// A broker, and a well-behaved 3.1.1 client on it for [`assert_alive`].
async fn broker_with_witness() -> (Broker, Client) {
    let broker = Broker::start().await;
    let witness = alive_client(&broker, "witness").await;
    (broker, witness)
}

#[tokio::test]
async fn a_first_packet_other_than_connect_closes_the_connection() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::open(&broker, V3).await;
    raw.send(&Packet::PingReq).await;
    raw.assert_closed().await;
    let mut raw = Raw::open(&broker, V3).await;
    raw.send(&publish("a/b", Bytes::from_static(b"x"))).await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after a non-CONNECT").await;
}

#[tokio::test]
async fn an_unknown_protocol_level_gets_connack_0x01_then_a_close() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::open(&broker, V3).await;
    // CONNECT, protocol "MQTT" level 9, clean session, keep alive 60, client id "x".
    raw.send_bytes(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 9, 0x02, 0, 60, 0, 1, b'x',
    ])
    .await;
    match raw.next().await {
        Some(Packet::ConnAck(connack)) => {
            assert_eq!(connack.code, connack_v3::UNACCEPTABLE_PROTOCOL_VERSION);
            assert_eq!(connack.code, 0x01);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after level 9").await;
}

#[tokio::test]
async fn a_second_connect_is_a_protocol_error() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send(&connect(V5, "raw", 30)).await;
    // [MQTT-3.1.0-2] Protocol Error.
    raw.assert_disconnect(0x82).await;
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send(&connect(V3, "raw", 30)).await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after a second CONNECT").await;
}

#[tokio::test]
async fn a_qos_1_publish_with_packet_id_0_is_malformed() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    // PUBLISH QoS 1, topic "a/b", packet id 0, no properties, payload "x".
    raw.send_bytes(&[0x32, 9, 0, 3, b'a', b'/', b'b', 0, 0, 0, b'x'])
        .await;
    raw.assert_disconnect(0x81).await;
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send_bytes(&[0x32, 8, 0, 3, b'a', b'/', b'b', 0, 0, b'x'])
        .await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after packet id 0").await;
}

#[tokio::test]
async fn a_wildcard_in_a_publish_topic_is_refused() {
    let (broker, mut witness) = broker_with_witness().await;
    let expected = DecodeError::InvalidTopicName("").reason_code();
    assert_eq!(expected, 0x90, "Topic Name invalid");
    for topic in [b'+', b'#'] {
        let mut raw = Raw::connected(&broker, V5, 30).await;
        // PUBLISH QoS 0, topic "a/+" or "a/#", no properties, payload "x".
        raw.send_bytes(&[0x30, 7, 0, 3, b'a', b'/', topic, 0, b'x'])
            .await;
        raw.assert_disconnect(expected).await;
    }
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send_bytes(&[0x30, 6, 0, 3, b'a', b'/', b'+', b'x'])
        .await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after a wildcard topic").await;
}

#[tokio::test]
async fn a_five_octet_remaining_length_is_malformed() {
    let (broker, mut witness) = broker_with_witness().await;
    let bad = [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send_bytes(&bad).await;
    raw.assert_closed().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send_bytes(&bad).await;
    raw.assert_disconnect(0x81).await;
    // Before CONNECT too.
    let mut raw = Raw::open(&broker, V3).await;
    raw.send_bytes(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]).await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after a long remaining length").await;
}

#[tokio::test]
async fn a_packet_over_the_maximum_size_gets_disconnect_0x95() {
    let broker = Broker::start_with(|c| c.mqtt_max_packet_size = 1024).await;
    let mut witness = alive_client(&broker, "witness").await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send(&publish("big", Bytes::from(vec![7u8; 2000])))
        .await;
    raw.assert_disconnect(0x95).await;
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send(&publish("big", Bytes::from(vec![7u8; 2000])))
        .await;
    raw.assert_closed().await;
    // One just under the limit still passes.
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send(&publish("alive/witness", Bytes::from(vec![1u8; 900])))
        .await;
    raw.send(&Packet::PingReq).await;
    assert_eq!(raw.next().await, Some(Packet::PingResp));
    let got = common::mqtt::next_publish(&mut witness.events).await;
    assert_eq!(got.payload.len(), 900);
    assert_alive(&mut witness, "witness", "after a large packet").await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V3, 1).await;
    let start = tokio::time::Instant::now();
    // [MQTT-3.1.2-24] 1.5 x 1 s without a packet: the server closes.
    tokio::time::timeout(Duration::from_secs(5), raw.assert_closed())
        .await
        .expect("closed within 5 s");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < WAIT);
    assert_alive(&mut witness, "witness", "after keep alive").await;
}

#[tokio::test]
async fn invalid_utf8_or_nul_in_a_topic_closes_the_connection() {
    let (broker, mut witness) = broker_with_witness().await;
    let topics: [&[u8]; 3] = [&[0xc3, 0x28], &[b'a', 0, b'b'], &[0xed, 0xa0, 0x80]];
    for topic in topics {
        let mut raw = Raw::connected(&broker, V3, 30).await;
        let mut bytes = vec![0x30, (2 + topic.len() + 1) as u8, 0, topic.len() as u8];
        bytes.extend_from_slice(topic);
        bytes.push(b'x');
        raw.send_bytes(&bytes).await;
        raw.assert_closed().await;
    }
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send_bytes(&[0x30, 7, 0, 3, b'a', 0, b'b', 0, b'x'])
        .await;
    raw.assert_disconnect(0x81).await;
    assert_alive(&mut witness, "witness", "after a bad topic").await;
}

#[tokio::test]
async fn a_topic_alias_above_the_maximum_is_refused() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    let Packet::Publish(mut aliased) = publish("a/b", Bytes::from_static(b"x")) else {
        unreachable!()
    };
    aliased.properties.topic_alias = Some(65);
    raw.send(&Packet::Publish(aliased)).await;
    // [MQTT-3.3.2-9] we announce Topic Alias Maximum 64: Topic Alias invalid.
    raw.assert_disconnect(0x94).await;
    assert_alive(&mut witness, "witness", "after a topic alias").await;
}

#[tokio::test]
async fn an_undefined_topic_alias_is_a_protocol_error() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    let Packet::Publish(mut aliased) = publish("", Bytes::from_static(b"x")) else {
        unreachable!()
    };
    aliased.properties.topic_alias = Some(5);
    raw.send(&Packet::Publish(aliased)).await;
    raw.assert_disconnect(0x82).await;
    assert_alive(&mut witness, "witness", "after an undefined alias").await;
}

#[tokio::test]
async fn a_subscription_identifier_in_a_client_publish_is_a_protocol_error() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    let Packet::Publish(mut tagged) = publish("a/b", Bytes::from_static(b"x")) else {
        unreachable!()
    };
    tagged.properties.subscription_identifiers = vec![3];
    raw.send(&Packet::Publish(tagged)).await;
    // [MQTT-3.3.4-6]
    raw.assert_disconnect(0x82).await;
    assert_alive(&mut witness, "witness", "after a subscription identifier").await;
}

#[tokio::test]
async fn a_server_only_packet_from_the_client_is_a_protocol_error() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    raw.send(&Packet::PingResp).await;
    raw.assert_disconnect(0x82).await;
    let mut raw = Raw::connected(&broker, V3, 30).await;
    raw.send(&Packet::PingResp).await;
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after PINGRESP").await;
}

#[tokio::test]
async fn an_empty_client_id_without_clean_session_gets_connack_0x02() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::open(&broker, V3).await;
    let Packet::Connect(mut request) = connect(V3, "", 30) else {
        unreachable!()
    };
    request.clean_start = false;
    raw.send(&Packet::Connect(request)).await;
    // [MQTT-3.1.3-8] Identifier rejected, then the close.
    match raw.next().await {
        Some(Packet::ConnAck(connack)) => {
            assert_eq!(connack.code, connack_v3::IDENTIFIER_REJECTED);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    raw.assert_closed().await;
    assert_alive(&mut witness, "witness", "after an empty client id").await;
}

#[tokio::test]
async fn a_disconnect_setting_session_expiry_after_0_is_a_protocol_error() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut will = connect(V5, "expiry-liar", 30);
    if let Packet::Connect(request) = &mut will {
        request.will = Some(Will {
            topic: "alive/witness".into(),
            payload: Bytes::from_static(b"will"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: PublishProperties::default(),
            delay_interval: None,
        });
    }
    let mut raw = Raw::connected_with(&broker, will).await;
    let properties = DisconnectProperties {
        session_expiry_interval: Some(60),
        ..DisconnectProperties::default()
    };
    raw.send(&Packet::Disconnect(Disconnect {
        reason: 0,
        properties,
    }))
    .await;
    // [MQTT-3.14.2-2] the CONNECT had no Session Expiry Interval: not a valid DISCONNECT.
    raw.assert_disconnect(0x82).await;
    let got = common::mqtt::next_publish(&mut witness.events).await;
    assert_eq!(
        &got.payload[..],
        b"will",
        "not a normal DISCONNECT: the will is sent"
    );
    assert_alive(&mut witness, "witness", "after a bad DISCONNECT").await;
}

#[tokio::test]
async fn too_many_unreleased_qos_2_publishes_exceed_the_receive_maximum() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    // Receive Maximum is 1024: the 1025th PUBLISH without PUBREL is one too many.
    for id in 1..=1025u16 {
        let Packet::Publish(mut publish) = publish("rm/x", Bytes::from_static(b"x")) else {
            unreachable!()
        };
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = std::num::NonZeroU16::new(id);
        raw.send(&Packet::Publish(publish)).await;
    }
    // Skip the PUBRECs for the first 1024.
    let disconnect = common::within(async {
        loop {
            match raw.next().await {
                Some(Packet::PubRec(_)) => continue,
                other => return other,
            }
        }
    })
    .await;
    let Some(Packet::Disconnect(disconnect)) = disconnect else {
        panic!("expected DISCONNECT, got {disconnect:?}")
    };
    assert_eq!(disconnect.reason, 0x93, "Receive Maximum exceeded");
    assert_alive(&mut witness, "witness", "after a flood of QoS 2").await;
}
