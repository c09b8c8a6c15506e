//! Idle MQTT connections wait in the parking lot without a task (protocols/mqtt,
//! `connection/parked.rs`). Each test lets a connection park, seen in `/metrics`, then checks
//! that what the connection owes its client and the broker still happens: PINGRESP, its
//! packets, keep-alive expiry and its will, takeover, an operator's close, shutdown.

mod common;

use bytes::Bytes;
use common::management::{Api, connection_path, listed, sample};
use common::mqtt::next_publish;
use common::mqtt::raw::{self, Raw, V3, V5};
use common::{Broker, eventually, within};
use mqbridge_mqtt::codec::{Packet, PublishProperties, QoS, Will, reason};
use rumqttc::QoS as ClientQoS;

/// How many connections `/metrics` counts as parked.
async fn parked(api: &Api) -> f64 {
    let metrics = api.metrics("/metrics").await;
    sample(&metrics, "mqbridge_connections_parked").expect("the parked gauge")
}

async fn until_parked(api: &Api, count: f64) {
    eventually(&format!("{count} connections parked"), || async {
        parked(api).await == count
    })
    .await;
}

/// A CONNECT with a will on `wills/{client_id}`.
fn with_will(
    version: mqbridge_mqtt::codec::ProtocolVersion,
    client_id: &str,
    keep_alive: u16,
) -> Packet {
    let mut connect = raw::connect(version, client_id, keep_alive);
    if let Packet::Connect(request) = &mut connect {
        request.will = Some(Will {
            topic: format!("wills/{client_id}"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: PublishProperties::default(),
            delay_interval: None,
        });
    }
    connect
}

/// A rumqttc client subscribed to `wills/#`.
async fn watcher(broker: &Broker) -> common::mqtt::Client {
    let mut watcher = broker.mqtt(broker.mqtt_options("watcher")).await;
    watcher
        .client
        .subscribe("wills/#", ClientQoS::AtLeastOnce)
        .await
        .expect("subscribe");
    common::mqtt::subscribed(&mut watcher.events).await;
    watcher
}

#[tokio::test]
async fn a_parked_connection_answers_pings_and_wakes_for_its_next_packet() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut watcher = watcher(&broker).await;
    let mut device = Raw::connected(&broker, V3, 30).await;
    until_parked(&api, 1.0).await;

    device.send_bytes(&[0xC0, 0x00]).await;
    assert_eq!(device.next().await, Some(Packet::PingResp));
    device.send_bytes(&[0xC0, 0x00, 0xC0, 0x00]).await;
    assert_eq!(device.next().await, Some(Packet::PingResp));
    assert_eq!(device.next().await, Some(Packet::PingResp));
    assert_eq!(parked(&api).await, 1.0, "pings are answered by the lot");

    device
        .send(&raw::publish("wills/device", Bytes::from_static(b"hello")))
        .await;
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("wills/device", &b"hello"[..])
    );
    // Woken for the PUBLISH, it parks again once quiet.
    until_parked(&api, 1.0).await;
    device.send_bytes(&[0xC0, 0x00]).await;
    assert_eq!(device.next().await, Some(Packet::PingResp));
}

#[tokio::test]
async fn a_packet_split_across_writes_reaches_the_woken_connection_whole() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut watcher = watcher(&broker).await;
    let mut device = Raw::connected(&broker, V5, 30).await;
    until_parked(&api, 1.0).await;

    let mut packet = bytes::BytesMut::new();
    let publish = raw::publish("wills/split", Bytes::from_static(b"in two"));
    mqbridge_mqtt::codec::encode(&publish, V5, &mut packet).expect("encode");
    // The first octet alone is no PINGREQ: the lot wakes the connection, which reads the rest.
    device.send_bytes(&packet[..1]).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    device.send_bytes(&packet[1..]).await;
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(&got.payload[..], b"in two");
}

#[tokio::test]
async fn a_parked_connection_whose_keep_alive_runs_out_is_closed_with_its_will() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut watcher = watcher(&broker).await;
    let mut device = Raw::connected_with(&broker, with_will(V3, "sleepy", 2)).await;
    until_parked(&api, 1.0).await;

    // No PINGREQ: after 1.5 keep-alive periods the broker closes it [MQTT-3.1.2-24].
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("wills/sleepy", &b"gone"[..])
    );
    device.assert_closed().await;
    assert_eq!(parked(&api).await, 0.0);
}

#[tokio::test]
async fn a_parked_connection_whose_client_vanishes_publishes_its_will() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut watcher = watcher(&broker).await;
    let device = Raw::connected_with(&broker, with_will(V3, "vanished", 30)).await;
    until_parked(&api, 1.0).await;

    drop(device);
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("wills/vanished", &b"gone"[..])
    );
    until_parked(&api, 0.0).await;
}

#[tokio::test]
async fn a_parked_connection_is_taken_over_by_the_same_client_id() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut first = Raw::connected_with(&broker, raw::connect(V5, "twin", 30)).await;
    until_parked(&api, 1.0).await;

    let mut second = within(Raw::connected_with(&broker, raw::connect(V5, "twin", 30))).await;
    first.assert_disconnect(reason::SESSION_TAKEN_OVER).await;
    second.send_bytes(&[0xC0, 0x00]).await;
    assert_eq!(second.next().await, Some(Packet::PingResp));
}

#[tokio::test]
async fn an_operator_closes_a_parked_connection() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut device = Raw::connected_with(&broker, raw::connect(V5, "doomed", 30)).await;
    until_parked(&api, 1.0).await;

    let entry = listed(&api, "client_id", "doomed").await;
    let (status, _) = api.delete(&connection_path(&entry)).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    device
        .assert_disconnect(reason::ADMINISTRATIVE_ACTION)
        .await;
}

#[tokio::test]
async fn shutdown_closes_parked_connections_with_their_protocols_words() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut v5 = Raw::connected_with(&broker, raw::connect(V5, "parked-5", 30)).await;
    let mut v3 = Raw::connected_with(&broker, raw::connect(V3, "parked-3", 30)).await;
    until_parked(&api, 2.0).await;

    let stopping = tokio::spawn(broker.shutdown());
    v5.assert_disconnect(reason::SERVER_SHUTTING_DOWN).await;
    v3.assert_closed().await;
    within(stopping).await.expect("shutdown");
}

#[tokio::test]
async fn a_parked_connection_keeps_its_topic_aliases_and_exactly_once_state() {
    let broker = Broker::start().await;
    let api = Api::new(&broker);
    let mut watcher = watcher(&broker).await;
    let mut device = Raw::connected_with(&broker, raw::connect(V5, "keeper", 30)).await;
    let packet_id = std::num::NonZeroU16::new(7).expect("non-zero");
    let ack = |packet_id| mqbridge_mqtt::codec::Ack {
        packet_id,
        reason: 0,
        properties: Default::default(),
    };
    // Alias 3 is defined, and a QoS 2 exchange waits for its PUBREL.
    let mut defining = raw::publish("wills/aliased", Bytes::from_static(b"first"));
    if let Packet::Publish(publish) = &mut defining {
        publish.properties.topic_alias = Some(3);
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = Some(packet_id);
    }
    device.send(&defining).await;
    assert!(matches!(device.next().await, Some(Packet::PubRec(_))));
    assert_eq!(
        &next_publish(&mut watcher.events).await.payload[..],
        b"first"
    );
    until_parked(&api, 1.0).await;

    device.send(&Packet::PubRel(ack(packet_id))).await;
    match device.next().await {
        Some(Packet::PubComp(comp)) => assert_eq!((comp.packet_id, comp.reason), (packet_id, 0)),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    until_parked(&api, 1.0).await;
    let mut aliased = raw::publish("", Bytes::from_static(b"by alias"));
    if let Packet::Publish(publish) = &mut aliased {
        publish.properties.topic_alias = Some(3);
    }
    device.send(&aliased).await;
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("wills/aliased", &b"by alias"[..])
    );
}
