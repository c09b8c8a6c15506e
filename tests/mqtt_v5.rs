//! MQTT 5 with rumqttc's v5 client: publish properties, subscription identifiers, CONNACK
//! properties, session expiry, no local, PUBACK reason codes, session takeover and QoS 2 in.

mod common;

use std::num::NonZeroU16;

use bytes::Bytes;
use common::mqtt::raw::{self, Raw, V5};
use common::mqtt::v5::{next_incoming, next_publish, server_disconnect, subscribed};
use common::{Broker, within};
use mqbridge_mqtt::codec::{
    Ack as Ack5, Disconnect as Disconnect5, DisconnectProperties as DisconnectProperties5,
    Packet as Packet5, Publish as Publish5, QoS as QoS5, Subscribe as Subscribe5,
    Subscription as Subscription5,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    DisconnectReasonCode, Filter, Packet, PubAckReason, PubCompReason, PubRecReason,
    PublishProperties, SubscribeProperties, SubscribeReasonCode, UnsubAckReason,
};

/// Subscribes `client` to `filter` at QoS 1 and waits for SUBACK.
async fn subscribe(client: &mut common::mqtt::v5::Client, filter: &str) {
    client
        .client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let ack = subscribed(&mut client.events).await;
    assert_eq!(
        ack.return_codes,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
}

/// Drives `client`'s event loop until the broker acknowledges its QoS 1 PUBLISH; fails on a
/// PUBLISH to it meanwhile.
async fn puback(client: &mut common::mqtt::v5::Client) -> PubAckReason {
    within(async {
        loop {
            match next_incoming(&mut client.events).await {
                Packet::PubAck(ack) => return ack.reason,
                Packet::Publish(publish) => panic!("unexpected {publish:?}"),
                _ => {}
            }
        }
    })
    .await
}

#[tokio::test]
async fn publish_properties_reach_a_v5_subscriber() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("props-sub")).await;
    subscribe(&mut sub, "rpc/#").await;
    let mut publisher = broker.mqtt5(broker.mqtt5_options("props-pub")).await;
    let properties = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(120),
        content_type: Some("application/json".into()),
        correlation_data: Some(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])),
        response_topic: Some("rpc/replies/7".into()),
        user_properties: vec![
            ("region".into(), "eu".into()),
            ("trace".into(), "t-1".into()),
        ],
        ..PublishProperties::default()
    };
    publisher
        .client
        .publish_with_properties("rpc/requests", QoS::AtLeastOnce, false, "{}", properties)
        .await
        .expect("publish");
    assert_eq!(puback(&mut publisher).await, PubAckReason::Success);
    let got = next_publish(&mut sub.events).await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (&b"rpc/requests"[..], &b"{}"[..])
    );
    let props = got.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        props.correlation_data.as_deref(),
        Some(&[0xde, 0xad, 0xbe, 0xef][..])
    );
    assert_eq!(props.response_topic.as_deref(), Some("rpc/replies/7"));
    assert_eq!(props.payload_format_indicator, Some(1));
    let expiry = props
        .message_expiry_interval
        .expect("message expiry interval");
    assert!((1..=120).contains(&expiry), "expiry {expiry}");
    for pair in [("region", "eu"), ("trace", "t-1")] {
        let pair = (pair.0.to_owned(), pair.1.to_owned());
        assert!(
            props.user_properties.contains(&pair),
            "{pair:?} in {props:?}"
        );
    }
}

#[tokio::test]
async fn the_subscription_identifier_comes_with_the_message() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("id-sub")).await;
    let properties = SubscribeProperties {
        id: Some(42),
        user_properties: Vec::new(),
    };
    sub.client
        .subscribe_with_properties("ids/+", QoS::AtLeastOnce, properties)
        .await
        .expect("subscribe");
    subscribed(&mut sub.events).await;
    sub.client
        .publish("ids/x", QoS::AtLeastOnce, false, "p")
        .await
        .expect("publish");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(&got.topic[..], b"ids/x");
    let props = got.properties.expect("properties");
    assert_eq!(props.subscription_identifiers, [42]);
}

#[tokio::test]
async fn connack_announces_the_server_limits() {
    let broker = Broker::start().await;
    let client = broker.mqtt5(broker.mqtt5_options("limits")).await;
    assert!(!client.connack.session_present);
    let props = client.connack.properties.expect("CONNACK properties");
    assert_eq!(props.max_qos, None, "QoS 2 publishes are accepted");
    assert_eq!(props.retain_available, Some(1));
    assert_eq!(props.topic_alias_max, Some(64));
    assert!(props.receive_max.is_some_and(|max| max > 0), "{props:?}");
    assert_eq!(
        props.assigned_client_identifier, None,
        "the client chose its id"
    );
}

#[tokio::test]
async fn an_empty_client_id_gets_an_assigned_one() {
    let broker = Broker::start().await;
    let client = broker.mqtt5(broker.mqtt5_options("")).await;
    let props = client.connack.properties.expect("CONNACK properties");
    let assigned = props
        .assigned_client_identifier
        .expect("assigned client identifier [MQTT-3.2.2-16]");
    assert!(!assigned.is_empty());
    let other = broker.mqtt5(broker.mqtt5_options("")).await;
    let other_id = other
        .connack
        .properties
        .and_then(|p| p.assigned_client_identifier);
    assert_ne!(
        other_id.as_deref(),
        Some(assigned.as_str()),
        "ids are unique"
    );
}

#[tokio::test]
async fn session_expiry_keeps_messages_while_offline() {
    let broker = Broker::start().await;
    let mut options = broker.mqtt5_options("expiring");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(300));
    let mut first = broker.mqtt5(options.clone()).await;
    subscribe(&mut first, "later/#").await;
    first.client.disconnect().await.expect("disconnect");
    let _ = tokio::time::timeout(common::WAIT, first.events.poll()).await;
    drop(first);
    let mut publisher = broker.mqtt5(broker.mqtt5_options("later-pub")).await;
    publisher
        .client
        .publish("later/1", QoS::AtLeastOnce, false, "kept")
        .await
        .expect("publish");
    let reason = puback(&mut publisher).await;
    assert_eq!(reason, PubAckReason::Success, "the offline session matches");
    let mut second = broker.mqtt5(options).await;
    assert!(second.connack.session_present);
    let got = next_publish(&mut second.events).await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (&b"later/1"[..], &b"kept"[..])
    );
}

#[tokio::test]
async fn a_no_local_subscription_skips_its_own_messages() {
    let broker = Broker::start().await;
    let mut client = broker.mqtt5(broker.mqtt5_options("narcissus")).await;
    let mut own = Filter::new("echo/#", QoS::AtLeastOnce);
    own.nolocal = true;
    client
        .client
        .subscribe_many(vec![own])
        .await
        .expect("subscribe");
    subscribed(&mut client.events).await;
    client
        .client
        .publish("echo/mine", QoS::AtLeastOnce, false, "mine")
        .await
        .expect("publish");
    puback(&mut client).await;
    let mut other = broker.mqtt5(broker.mqtt5_options("echo")).await;
    other
        .client
        .publish("echo/theirs", QoS::AtLeastOnce, false, "theirs")
        .await
        .expect("publish");
    puback(&mut other).await;
    // Our own message was queued first: the first one we get must be the other's.
    let got = next_publish(&mut client.events).await;
    assert_eq!(&got.payload[..], b"theirs");
}

#[tokio::test]
async fn a_publish_nobody_subscribed_to_gets_puback_0x10() {
    let broker = Broker::start().await;
    let mut publisher = broker.mqtt5(broker.mqtt5_options("lonely")).await;
    publisher
        .client
        .publish("nobody/listens", QoS::AtLeastOnce, false, "echo?")
        .await
        .expect("publish");
    let reason = puback(&mut publisher).await;
    assert_eq!(reason, PubAckReason::NoMatchingSubscribers);
}

#[tokio::test]
async fn a_second_connection_takes_the_session_over() {
    let broker = Broker::start().await;
    let mut first = broker.mqtt5(broker.mqtt5_options("twin")).await;
    let mut second = broker.mqtt5(broker.mqtt5_options("twin")).await;
    let reason = server_disconnect(&mut first.events).await;
    assert_eq!(reason, DisconnectReasonCode::SessionTakenOver);
    subscribe(&mut second, "twin/#").await;
    second
        .client
        .publish("twin/ok", QoS::AtLeastOnce, false, "still here")
        .await
        .expect("publish");
    let got = next_publish(&mut second.events).await;
    assert_eq!(&got.payload[..], b"still here");
}

#[tokio::test]
async fn a_qos_2_publish_completes_and_arrives_once() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("q2-sub")).await;
    subscribe(&mut sub, "exact/#").await;
    let mut publisher = broker.mqtt5(broker.mqtt5_options("q2-pub")).await;
    publisher
        .client
        .publish("exact/1", QoS::ExactlyOnce, false, "once")
        .await
        .expect("publish");
    let rec = within(next_incoming(&mut publisher.events)).await;
    let Packet::PubRec(rec) = rec else {
        panic!("expected PUBREC, got {rec:?}")
    };
    assert_eq!(rec.reason, PubRecReason::Success);
    let comp = within(next_incoming(&mut publisher.events)).await;
    let Packet::PubComp(comp) = comp else {
        panic!("expected PUBCOMP, got {comp:?}")
    };
    assert_eq!((comp.pkid, comp.reason), (rec.pkid, PubCompReason::Success));
    publisher
        .client
        .publish("exact/marker", QoS::AtLeastOnce, false, "marker")
        .await
        .expect("publish");
    puback(&mut publisher).await;
    let got = next_publish(&mut sub.events).await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (&b"exact/1"[..], &b"once"[..])
    );
    let next = next_publish(&mut sub.events).await;
    assert_eq!(
        &next.topic[..],
        b"exact/marker",
        "no second copy before the marker"
    );
}

#[tokio::test]
async fn overlapping_subscriptions_get_one_copy_with_both_identifiers() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("overlap")).await;
    for (filter, id) in [("over/#", 1), ("over/+/x", 2)] {
        let properties = SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        sub.client
            .subscribe_with_properties(filter, QoS::AtLeastOnce, properties)
            .await
            .expect("subscribe");
        subscribed(&mut sub.events).await;
    }
    sub.client
        .publish("over/a/x", QoS::AtLeastOnce, false, "both")
        .await
        .expect("publish");
    sub.client
        .publish("over/marker", QoS::AtLeastOnce, false, "marker")
        .await
        .expect("publish");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(&got.payload[..], b"both");
    let mut ids = got.properties.expect("properties").subscription_identifiers;
    ids.sort_unstable();
    // [MQTT-3.3.4-4] one copy carries every matching subscription's identifier.
    assert_eq!(ids, [1, 2]);
    let next = next_publish(&mut sub.events).await;
    assert_eq!(&next.payload[..], b"marker", "a single copy");
}

#[tokio::test]
async fn retain_as_published_keeps_the_retain_flag() {
    let broker = Broker::start().await;
    let mut keeps = broker.mqtt5(broker.mqtt5_options("rap-keeps")).await;
    let mut filter = Filter::new("rap/#", QoS::AtLeastOnce);
    filter.preserve_retain = true;
    keeps
        .client
        .subscribe_many(vec![filter])
        .await
        .expect("subscribe");
    subscribed(&mut keeps.events).await;
    let mut plain = broker.mqtt5(broker.mqtt5_options("rap-plain")).await;
    subscribe(&mut plain, "rap/#").await;
    let mut publisher = broker.mqtt5(broker.mqtt5_options("rap-pub")).await;
    publisher
        .client
        .publish("rap/state", QoS::AtLeastOnce, true, "on")
        .await
        .expect("publish");
    puback(&mut publisher).await;
    // [MQTT-3.3.1-13] Retain As Published: RETAIN as the publisher set it.
    let got = next_publish(&mut keeps.events).await;
    assert_eq!((&got.payload[..], got.retain), (&b"on"[..], true));
    // [MQTT-3.3.1-12] otherwise RETAIN is 0 on a live (not retained-on-subscribe) delivery.
    let got = next_publish(&mut plain.events).await;
    assert_eq!((&got.payload[..], got.retain), (&b"on"[..], false));
}

#[tokio::test]
async fn a_message_over_the_client_maximum_packet_size_is_skipped() {
    let broker = Broker::start().await;
    let mut options = broker.mqtt5_options("small-sub");
    options.set_max_packet_size(Some(256));
    let mut sub = broker.mqtt5(options).await;
    subscribe(&mut sub, "size/#").await;
    let mut publisher = broker.mqtt5(broker.mqtt5_options("size-pub")).await;
    publisher
        .client
        .publish("size/big", QoS::AtLeastOnce, false, vec![b'x'; 1000])
        .await
        .expect("publish");
    puback(&mut publisher).await;
    publisher
        .client
        .publish("size/small", QoS::AtLeastOnce, false, "fits")
        .await
        .expect("publish");
    puback(&mut publisher).await;
    // [MQTT-3.1.2-24] the server must not send a packet over the client's Maximum Packet Size.
    let got = next_publish(&mut sub.events).await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (&b"size/small"[..], &b"fits"[..])
    );
}

#[tokio::test]
async fn a_takeover_keeps_a_persistent_session() {
    let broker = Broker::start().await;
    let mut options = broker.mqtt5_options("heir");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(300));
    let mut first = broker.mqtt5(options.clone()).await;
    subscribe(&mut first, "heir/#").await;
    let mut second = broker.mqtt5(options).await;
    assert_eq!(
        server_disconnect(&mut first.events).await,
        DisconnectReasonCode::SessionTakenOver
    );
    assert!(second.connack.session_present, "the session moved over");
    // The subscription came with it.
    second
        .client
        .publish("heir/1", QoS::AtLeastOnce, false, "inherited")
        .await
        .expect("publish");
    let got = next_publish(&mut second.events).await;
    assert_eq!(&got.payload[..], b"inherited");
}

#[tokio::test]
async fn unsubscribing_an_unknown_filter_gets_0x11() {
    let broker = Broker::start().await;
    let mut client = broker.mqtt5(broker.mqtt5_options("unsub")).await;
    subscribe(&mut client, "known/#").await;
    client
        .client
        .unsubscribe("known/#")
        .await
        .expect("unsubscribe");
    client
        .client
        .unsubscribe("never/#")
        .await
        .expect("unsubscribe");
    let mut reasons = Vec::new();
    within(async {
        while reasons.len() < 2 {
            if let Packet::UnsubAck(ack) = next_incoming(&mut client.events).await {
                reasons.extend(ack.reasons);
            }
        }
    })
    .await;
    assert_eq!(
        reasons,
        [
            UnsubAckReason::Success,
            UnsubAckReason::NoSubscriptionExisted
        ]
    );
}

#[tokio::test]
async fn a_duplicate_qos_2_publish_is_delivered_once() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("dup-sub")).await;
    subscribe(&mut sub, "dup/#").await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    let publish = |topic: &str, dup: bool| {
        Packet5::Publish(Publish5 {
            dup,
            qos: QoS5::ExactlyOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: NonZeroU16::new(9),
            payload: Bytes::from_static(b"once"),
            properties: Default::default(),
        })
    };
    for dup in [false, true] {
        raw.send(&publish("dup/1", dup)).await;
        let Some(Packet5::PubRec(rec)) = raw.next().await else {
            panic!("expected PUBREC")
        };
        assert_eq!((rec.packet_id.get(), rec.reason), (9, 0));
    }
    raw.send(&Packet5::PubRel(ack5(9))).await;
    let Some(Packet5::PubComp(comp)) = raw.next().await else {
        panic!("expected PUBCOMP")
    };
    assert_eq!((comp.packet_id.get(), comp.reason), (9, 0));
    // [MQTT-4.3.3-11] a PUBREL for an id no longer known still gets PUBCOMP, 0x92 in v5.
    raw.send(&Packet5::PubRel(ack5(9))).await;
    let Some(Packet5::PubComp(comp)) = raw.next().await else {
        panic!("expected PUBCOMP")
    };
    assert_eq!(comp.reason, 0x92, "Packet Identifier not found");
    // The id is free again: a new message with it is a new message.
    raw.send(&publish("dup/2", false)).await;
    let Some(Packet5::PubRec(_)) = raw.next().await else {
        panic!("expected PUBREC")
    };
    let got = next_publish(&mut sub.events).await;
    assert_eq!(&got.topic[..], b"dup/1");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(&got.topic[..], b"dup/2", "dup/1 arrived exactly once");
}

#[tokio::test]
async fn a_topic_alias_stands_for_its_topic() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt5(broker.mqtt5_options("alias-sub")).await;
    subscribe(&mut sub, "alias/#").await;
    let mut raw = Raw::connected(&broker, V5, 30).await;
    let aliased = |topic: &str, payload: &'static [u8]| {
        let mut publish = Publish5 {
            dup: false,
            qos: QoS5::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            payload: Bytes::from_static(payload),
            properties: Default::default(),
        };
        publish.properties.topic_alias = Some(7);
        Packet5::Publish(publish)
    };
    raw.send(&aliased("alias/long/topic/name", b"first")).await;
    raw.send(&aliased("", b"second")).await;
    for payload in [&b"first"[..], b"second"] {
        let got = next_publish(&mut sub.events).await;
        assert_eq!(
            (&got.topic[..], &got.payload[..]),
            (&b"alias/long/topic/name"[..], payload)
        );
    }
}

fn ack5(id: u16) -> Ack5 {
    Ack5 {
        packet_id: NonZeroU16::new(id).expect("non-zero"),
        reason: 0,
        properties: Default::default(),
    }
}

/// A v5 CONNECT for `client_id` that keeps its session for `expiry` seconds.
fn persistent_connect(client_id: &str, expiry: u32) -> Packet5 {
    let mut connect = raw::connect(V5, client_id, 30);
    if let Packet5::Connect(request) = &mut connect {
        request.clean_start = false;
        request.properties.session_expiry_interval = Some(expiry);
    }
    connect
}

#[tokio::test]
async fn a_disconnect_with_session_expiry_0_ends_the_session() {
    let broker = Broker::start().await;
    let mut raw = Raw::connected_with(&broker, persistent_connect("short", 300)).await;
    raw.send(&Packet5::Subscribe(Subscribe5 {
        packet_id: NonZeroU16::new(1).expect("non-zero"),
        filters: vec![Subscription5 {
            filter: "short/#".into(),
            qos: QoS5::AtLeastOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }],
        subscription_identifier: None,
        user_properties: Vec::new(),
    }))
    .await;
    let Some(Packet5::SubAck(_)) = raw.next().await else {
        panic!("expected SUBACK")
    };
    let properties = DisconnectProperties5 {
        session_expiry_interval: Some(0),
        ..Default::default()
    };
    raw.send(&Packet5::Disconnect(Disconnect5 {
        reason: 0,
        properties,
    }))
    .await;
    raw.assert_closed().await;
    let mut again = Raw::open(&broker, V5).await;
    again.send(&persistent_connect("short", 300)).await;
    let Some(Packet5::ConnAck(connack)) = again.next().await else {
        panic!("expected CONNACK")
    };
    assert_eq!(connack.code, 0);
    assert!(!connack.session_present, "the DISCONNECT ended the session");
}

#[tokio::test]
async fn a_will_delay_holds_the_will_back() {
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};
    let broker = Broker::start().await;
    let mut watcher = broker.mqtt5(broker.mqtt5_options("will-watcher")).await;
    subscribe(&mut watcher, "late/#").await;
    let mut options = broker.mqtt5_options("late-mortal");
    let properties = LastWillProperties {
        delay_interval: Some(2),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    options.set_last_will(LastWill::new(
        "late/will",
        "gone",
        QoS::AtLeastOnce,
        false,
        Some(properties),
    ));
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(60));
    let mortal = broker.mqtt5(options).await;
    drop(mortal); // no DISCONNECT: the will is due, after its delay
    watcher
        .client
        .publish("late/marker", QoS::AtLeastOnce, false, "now")
        .await
        .expect("publish");
    let first = next_publish(&mut watcher.events).await;
    assert_eq!(
        &first.topic[..],
        b"late/marker",
        "the will waits for its delay"
    );
    let will = next_publish(&mut watcher.events).await;
    assert_eq!(
        (&will.topic[..], &will.payload[..]),
        (&b"late/will"[..], &b"gone"[..])
    );
}
