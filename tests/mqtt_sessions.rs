//! Persistent sessions across connections (MQTT 4.1, 4.4): what was in flight is finished with
//! the original packet ids, inbound QoS 2 state survives, shared subscriptions are kept; and
//! the topic aliases the broker assigns on its own PUBLISHes.

mod common;

use std::num::NonZeroU16;

use bytes::Bytes;
use common::Broker;
use common::mqtt::raw::{self, Raw, V3, V5};
use mqbridge_mqtt::codec::{
    Ack, ConnAck, Packet, ProtocolVersion, Publish, QoS, Subscribe, Subscription,
};

fn id(value: u16) -> NonZeroU16 {
    NonZeroU16::new(value).expect("non-zero")
}

fn ack(packet_id: NonZeroU16) -> Ack {
    Ack {
        packet_id,
        reason: 0,
        properties: Default::default(),
    }
}

/// A CONNECT that keeps the session: clean session 0 in 3.1.1, a Session Expiry Interval in 5.
fn persistent(version: ProtocolVersion, client_id: &str) -> Packet {
    let mut connect = raw::connect(version, client_id, 30);
    if let Packet::Connect(request) = &mut connect {
        request.clean_start = false;
        if version == V5 {
            request.properties.session_expiry_interval = Some(300);
        }
    }
    connect
}

/// Connects with `connect`; returns the connection and its CONNACK.
async fn connect(broker: &Broker, connect: Packet) -> (Raw, ConnAck) {
    let Packet::Connect(ref request) = connect else {
        panic!("not a CONNECT")
    };
    let mut raw = Raw::open(broker, request.version).await;
    raw.send(&connect).await;
    match raw.next().await {
        Some(Packet::ConnAck(connack)) if connack.code == 0 => (raw, connack),
        other => panic!("expected a successful CONNACK, got {other:?}"),
    }
}

async fn subscribe(raw: &mut Raw, filter: &str, qos: QoS) {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![Subscription {
            filter: filter.to_owned(),
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }],
        subscription_identifier: None,
        user_properties: Vec::new(),
    }))
    .await;
    match raw.next().await {
        Some(Packet::SubAck(suback)) => assert_eq!(suback.reasons, [qos as u8]),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn publish(topic: &str, qos: QoS, packet_id: Option<u16>, payload: &'static str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        packet_id: packet_id.map(id),
        payload: Bytes::from_static(payload.as_bytes()),
        properties: Default::default(),
    })
}

/// Publishes from a separate clean client and waits for the broker's acknowledgement.
async fn publish_from_another(broker: &Broker, topic: &str, qos: QoS, payload: &'static str) {
    let mut publisher = Raw::connected(broker, V5, 30).await;
    publisher.send(&publish(topic, qos, Some(1), payload)).await;
    match (qos, publisher.next().await) {
        (QoS::AtLeastOnce, Some(Packet::PubAck(_))) => {}
        (QoS::ExactlyOnce, Some(Packet::PubRec(_))) => {
            publisher.send(&Packet::PubRel(ack(id(1)))).await;
            assert!(matches!(publisher.next().await, Some(Packet::PubComp(_))));
        }
        (_, other) => panic!("expected an acknowledgement, got {other:?}"),
    }
}

async fn next_publish(raw: &mut Raw) -> Publish {
    match raw.next().await {
        Some(Packet::Publish(publish)) => publish,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// Drops a connection without DISCONNECT, as a device losing its network does.
fn vanish(raw: Raw) {
    drop(raw);
}

async fn an_unacknowledged_qos_1_message_is_sent_again_with_its_packet_id(
    version: ProtocolVersion,
) {
    let broker = Broker::start().await;
    let client = format!("resume-q1-{version:?}");
    let (mut raw, _) = connect(&broker, persistent(version, &client)).await;
    subscribe(&mut raw, "r1/#", QoS::AtLeastOnce).await;
    // One acknowledged message first, so that the one left in flight does not have the id a
    // new connection would give its first message anyway.
    publish_from_another(&broker, "r1/a", QoS::AtLeastOnce, "zeroth").await;
    let zeroth = next_publish(&mut raw).await;
    raw.send(&Packet::PubAck(ack(zeroth.packet_id.expect("QoS 1"))))
        .await;
    publish_from_another(&broker, "r1/a", QoS::AtLeastOnce, "first").await;
    let first = next_publish(&mut raw).await;
    assert!(!first.dup);
    assert_ne!(first.packet_id, zeroth.packet_id);
    vanish(raw);

    let (mut raw, connack) = connect(&broker, persistent(version, &client)).await;
    assert!(connack.session_present);
    let again = next_publish(&mut raw).await;
    assert_eq!(
        (again.packet_id, again.dup, &again.payload[..]),
        (first.packet_id, true, &b"first"[..]),
        "[MQTT-4.4.0-1] the original packet id, marked DUP"
    );
    raw.send(&Packet::PubAck(ack(again.packet_id.expect("QoS 1"))))
        .await;
    publish_from_another(&broker, "r1/b", QoS::AtLeastOnce, "second").await;
    let next = next_publish(&mut raw).await;
    assert_eq!(&next.payload[..], b"second", "the acknowledged one is gone");
}

#[tokio::test]
async fn a_v3_persistent_session_resends_unacknowledged_qos_1() {
    an_unacknowledged_qos_1_message_is_sent_again_with_its_packet_id(V3).await;
}

#[tokio::test]
async fn a_v5_persistent_session_resends_unacknowledged_qos_1() {
    an_unacknowledged_qos_1_message_is_sent_again_with_its_packet_id(V5).await;
}

#[tokio::test]
async fn qos_2_resumes_with_publish_then_pubrel_in_their_order() {
    let broker = Broker::start().await;
    let (mut raw, _) = connect(&broker, persistent(V5, "resume-q2")).await;
    subscribe(&mut raw, "r2/#", QoS::ExactlyOnce).await;
    publish_from_another(&broker, "r2/a", QoS::ExactlyOnce, "received").await;
    publish_from_another(&broker, "r2/b", QoS::ExactlyOnce, "unanswered").await;
    let received = next_publish(&mut raw).await;
    let unanswered = next_publish(&mut raw).await;
    let received_id = received.packet_id.expect("QoS 2");
    raw.send(&Packet::PubRec(ack(received_id))).await;
    match raw.next().await {
        Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, received_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    vanish(raw); // before PUBCOMP, and without answering the second PUBLISH

    let (mut raw, connack) = connect(&broker, persistent(V5, "resume-q2")).await;
    assert!(connack.session_present);
    match raw.next().await {
        Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, received_id, "PUBREL again"),
        other => panic!("expected PUBREL first, got {other:?}"),
    }
    let again = next_publish(&mut raw).await;
    assert_eq!(
        (again.packet_id, again.dup, &again.payload[..]),
        (unanswered.packet_id, true, &b"unanswered"[..])
    );
    raw.send(&Packet::PubComp(ack(received_id))).await;
    let again_id = again.packet_id.expect("QoS 2");
    raw.send(&Packet::PubRec(ack(again_id))).await;
    match raw.next().await {
        Some(Packet::PubRel(rel)) => assert_eq!(rel.packet_id, again_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
}

#[tokio::test]
async fn an_inbound_qos_2_exchange_survives_a_reconnect() {
    let broker = Broker::start().await;
    let (mut watcher, _) = connect(&broker, raw::connect(V5, "in2-watcher", 30)).await;
    subscribe(&mut watcher, "in2/#", QoS::AtMostOnce).await;
    let (mut raw, _) = connect(&broker, persistent(V5, "in2-publisher")).await;
    raw.send(&publish("in2/x", QoS::ExactlyOnce, Some(5), "once"))
        .await;
    assert!(matches!(raw.next().await, Some(Packet::PubRec(_))));
    vanish(raw); // before PUBREL

    let (mut raw, connack) = connect(&broker, persistent(V5, "in2-publisher")).await;
    assert!(
        connack.session_present,
        "a session that only publishes is a session too"
    );
    let Packet::Publish(mut retry) = publish("in2/x", QoS::ExactlyOnce, Some(5), "once") else {
        unreachable!()
    };
    retry.dup = true;
    raw.send(&Packet::Publish(retry)).await;
    assert!(matches!(raw.next().await, Some(Packet::PubRec(_))));
    raw.send(&Packet::PubRel(ack(id(5)))).await;
    match raw.next().await {
        Some(Packet::PubComp(comp)) => assert_eq!(comp.reason, 0, "the id was known"),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    raw.send(&publish("in2/marker", QoS::AtMostOnce, None, "marker"))
        .await;
    let got = next_publish(&mut watcher).await;
    assert_eq!(&got.payload[..], b"once");
    let got = next_publish(&mut watcher).await;
    assert_eq!(&got.payload[..], b"marker", "the retry was not delivered");
}

#[tokio::test]
async fn a_shared_subscription_keeps_messages_for_an_absent_member() {
    let broker = Broker::start().await;
    let (mut raw, _) = connect(&broker, persistent(V5, "share-member")).await;
    subscribe(&mut raw, "$share/workers/jobs/#", QoS::AtLeastOnce).await;
    vanish(raw);
    // Publish only once the broker has seen the member go, so that the message meets it away.
    let (_connection, channel) = broker.channel().await;
    common::eventually("the member's consumer to go", || {
        let channel = channel.clone();
        async move {
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let queue = channel
                .queue_declare(
                    "mqtt-shared/workers/jobs/#".into(),
                    passive,
                    Default::default(),
                )
                .await
                .expect("the group queue outlives its absent member");
            queue.consumer_count() == 0
        }
    })
    .await;
    publish_from_another(&broker, "jobs/1", QoS::AtLeastOnce, "queued").await;

    let (mut raw, connack) = connect(&broker, persistent(V5, "share-member")).await;
    assert!(connack.session_present);
    let got = next_publish(&mut raw).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("jobs/1", &b"queued"[..])
    );
}

#[tokio::test]
async fn the_last_clean_member_leaving_removes_the_group_queue() {
    let broker = Broker::start().await;
    let (mut raw, _) = connect(&broker, raw::connect(V5, "clean-member", 30)).await;
    subscribe(&mut raw, "$share/gone/t/#", QoS::AtLeastOnce).await;
    let (_connection, channel) = broker.channel().await;
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declare = |channel: lapin::Channel| async move {
        channel
            .queue_declare("mqtt-shared/gone/t/#".into(), passive, Default::default())
            .await
    };
    declare(channel.clone()).await.expect("the group queue");
    vanish(raw);
    common::eventually("the group queue to go", || {
        let channel = channel.clone();
        async move { declare(channel).await.is_err() }
    })
    .await;
}

#[tokio::test]
async fn the_broker_aliases_topics_up_to_the_client_maximum() {
    let broker = Broker::start().await;
    let mut request = raw::connect(V5, "alias-receiver", 30);
    if let Packet::Connect(connect) = &mut request {
        connect.properties.topic_alias_maximum = Some(2);
    }
    let (mut raw, _) = connect(&broker, request).await;
    subscribe(&mut raw, "al/#", QoS::AtMostOnce).await;
    let mut publisher = Raw::connected(&broker, V5, 30).await;
    for topic in ["al/a", "al/a", "al/b", "al/c", "al/b"] {
        publisher
            .send(&publish(topic, QoS::AtMostOnce, None, "x"))
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        let got = next_publish(&mut raw).await;
        seen.push((got.topic, got.properties.topic_alias));
    }
    let expected = [
        ("al/a", Some(1)),
        ("", Some(1)),
        ("al/b", Some(2)),
        ("al/c", None),
        ("", Some(2)),
    ];
    let expected: Vec<(String, Option<u16>)> = expected
        .iter()
        .map(|(topic, alias)| ((*topic).to_owned(), *alias))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_keep_alive_over_the_maximum_is_lowered_for_v5_and_refused_for_v3() {
    let broker = Broker::start_with(|config| config.mqtt_max_keep_alive = 60).await;
    let (_raw, connack) = connect(&broker, raw::connect(V5, "slow-v5", 600)).await;
    assert_eq!(connack.properties.server_keep_alive, Some(60));
    let (_raw, connack) = connect(&broker, raw::connect(V5, "none-v5", 0)).await;
    assert_eq!(
        connack.properties.server_keep_alive,
        Some(60),
        "no keep alive is more than the maximum"
    );
    let (_raw, connack) = connect(&broker, raw::connect(V5, "fine-v5", 30)).await;
    assert_eq!(connack.properties.server_keep_alive, None);

    let mut v3 = Raw::open(&broker, V3).await;
    v3.send(&raw::connect(V3, "slow-v3", 600)).await;
    match v3.next().await {
        Some(Packet::ConnAck(connack)) => assert_eq!(connack.code, 0x02, "identifier rejected"),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    v3.assert_closed().await;
}

#[tokio::test]
async fn deliveries_a_vanished_client_never_read_go_back_to_its_session() {
    let broker = Broker::start().await;
    let (mut raw, _) = connect(&broker, persistent(V5, "slow-reader")).await;
    subscribe(&mut raw, "bulk/#", QoS::AtLeastOnce).await;
    // Large messages and a client that reads nothing: the connection stops taking deliveries
    // once its output backlog is full, so some stay unread in its sink when it vanishes.
    let mut publisher = Raw::connected(&broker, V5, 30).await;
    let body = Bytes::from(vec![b'x'; 200 * 1024]);
    for n in 0..60u16 {
        let mut packet = publish(&format!("bulk/{n}"), QoS::AtLeastOnce, Some(n + 1), "");
        if let Packet::Publish(publish) = &mut packet {
            publish.payload = body.clone();
        }
        publisher.send(&packet).await;
        assert!(matches!(publisher.next().await, Some(Packet::PubAck(_))));
    }
    vanish(raw);

    let (mut raw, connack) = connect(&broker, persistent(V5, "slow-reader")).await;
    assert!(connack.session_present);
    let mut topics = std::collections::BTreeSet::new();
    while topics.len() < 60 {
        let got = next_publish(&mut raw).await;
        if let Some(id) = got.packet_id {
            raw.send(&Packet::PubAck(ack(id))).await;
        }
        topics.insert(got.topic);
    }
}
