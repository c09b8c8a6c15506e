//! Durability across a restart of the broker on the same data directory: durable definitions
//! and persistent messages come back, everything else does not, and acknowledged messages stay
//! gone. (tests/crash.rs kills the real binary instead.)

mod common;

use common::{Broker, declare, get, table, text};
use lapin::BasicProperties;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};

async fn durable_queue(channel: &lapin::Channel, name: &str, arguments: FieldTable) {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .expect("declare");
}

/// Publishes with confirms and waits until the broker confirms.
async fn publish_confirmed(channel: &lapin::Channel, key: &str, body: &str, persistent: bool) {
    let properties = BasicProperties::default().with_delivery_mode(if persistent { 2 } else { 1 });
    let confirm = channel
        .basic_publish(
            "".into(),
            key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "{confirm:?}");
}

#[tokio::test]
async fn persistent_messages_on_durable_queues_survive_a_restart() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    durable_queue(&channel, "keep", FieldTable::default()).await;
    declare(&channel, "transient-queue", FieldTable::default()).await;
    for body in ["one", "two", "three"] {
        publish_confirmed(&channel, "keep", body, true).await;
    }
    publish_confirmed(&channel, "keep", "not persistent", false).await;
    publish_confirmed(&channel, "transient-queue", "lost with its queue", true).await;
    // "one" is taken (no_ack), "two" delivered and left unacknowledged.
    let one = get(&channel, "keep").await.expect("one");
    assert_eq!(&one.data[..], b"one");
    let two = channel
        .basic_get("keep".into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
        .expect("two");
    assert_eq!(&two.data[..], b"two");
    drop(connection);

    let broker = broker.restart().await;
    let (_connection, channel) = broker.channel().await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let missing = channel
        .queue_declare("transient-queue".into(), passive, FieldTable::default())
        .await;
    assert!(missing.is_err(), "a transient queue is gone");
    let (_connection, channel) = broker.channel().await;
    let mut got = Vec::new();
    while let Some(message) = get(&channel, "keep").await {
        got.push((
            String::from_utf8_lossy(&message.data).into_owned(),
            message.delivery.redelivered,
        ));
    }
    assert_eq!(
        got,
        [("two".to_owned(), true), ("three".to_owned(), false)],
        "acknowledged and transient messages stay gone; a delivered one is redelivered"
    );
}

/// Declares the durable topic exchange `events`, the transient `scratch`, and the durable
/// queue `audit` (max length 5, dead-lettering to `events`) bound with `orders.*` only.
async fn define(channel: &lapin::Channel) {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            "events".into(),
            lapin::ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("durable exchange");
    channel
        .exchange_declare(
            "scratch".into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("transient exchange");
    let arguments = table(&[
        ("x-max-length", AMQPValue::LongInt(5)),
        ("x-dead-letter-exchange", text("events")),
    ]);
    durable_queue(channel, "audit", arguments).await;
    for key in ["orders.*", "payments.#"] {
        channel
            .queue_bind(
                "audit".into(),
                "events".into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    }
    channel
        .queue_unbind(
            "audit".into(),
            "events".into(),
            "payments.#".into(),
            FieldTable::default(),
        )
        .await
        .expect("unbind");
}

async fn exchange_exists(broker: &Broker, name: &str) -> bool {
    let (_connection, channel) = broker.channel().await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            name.into(),
            lapin::ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
        .is_ok()
}

#[tokio::test]
async fn durable_exchanges_and_bindings_survive_and_transient_ones_do_not() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    define(&channel).await;

    let broker = broker.restart().await;
    assert!(exchange_exists(&broker, "events").await);
    assert!(!exchange_exists(&broker, "scratch").await);
    let (_connection, channel) = broker.channel().await;
    for key in ["orders.new", "payments.in"] {
        channel
            .basic_publish(
                "events".into(),
                key.into(),
                BasicPublishOptions::default(),
                key.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
    }
    common::eventually("the routed message", || {
        let channel = channel.clone();
        async move {
            channel
                .queue_declare(
                    "audit".into(),
                    QueueDeclareOptions {
                        durable: true,
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .is_ok_and(|q| q.message_count() == 1)
        }
    })
    .await;
    let got = get(&channel, "audit")
        .await
        .expect("routed by the kept binding");
    assert_eq!(
        &got.data[..],
        b"orders.new",
        "the removed binding stays removed"
    );
}

#[tokio::test]
async fn a_durable_queue_keeps_its_arguments() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    define(&channel).await;

    let broker = broker.restart().await;
    let (_connection, channel) = broker.channel().await;
    let redeclare = channel
        .queue_declare(
            "audit".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    common::assert_reply(redeclare, 406);
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_directory_is_refused() {
    let broker = Broker::start().await;
    let mut config = mqbridge::Config {
        amqp_port: 0,
        mqtt_port: 0,
        stomp_port: 0,
        ..mqbridge::Config::default()
    };
    config.data_dir = broker.data_dir().to_owned();
    let second = mqbridge::Server::start(config).await;
    let error = second.expect_err("the directory is locked").to_string();
    assert!(error.contains("another mqbridge"), "{error}");
}

mod mqtt {
    use std::num::NonZeroU16;

    use bytes::Bytes;
    use mqbridge_mqtt::codec::{Packet, Publish, QoS, Subscribe, Subscription};

    use super::common::Broker;
    use super::common::mqtt::raw::{self, Raw, V3, V5};

    fn id(value: u16) -> NonZeroU16 {
        NonZeroU16::new(value).expect("non-zero")
    }

    /// A QoS 1 PUBLISH, acknowledged (PUBACK comes once it is stored).
    async fn publish(raw: &mut Raw, topic: &str, payload: &'static str, retain: bool) {
        raw.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain,
            topic: topic.to_owned(),
            packet_id: Some(id(1)),
            payload: Bytes::from_static(payload.as_bytes()),
            properties: Default::default(),
        }))
        .await;
        assert!(matches!(raw.next().await, Some(Packet::PubAck(_))));
    }

    async fn subscribe(raw: &mut Raw, filter: &str) {
        raw.send(&Packet::Subscribe(Subscribe {
            packet_id: id(2),
            filters: vec![Subscription {
                filter: filter.to_owned(),
                qos: QoS::AtLeastOnce,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
            }],
            subscription_identifier: None,
            user_properties: Vec::new(),
        }))
        .await;
        assert!(matches!(raw.next().await, Some(Packet::SubAck(_))));
    }

    async fn next_payload(raw: &mut Raw) -> (String, Bytes) {
        match raw.next().await {
            Some(Packet::Publish(publish)) => (publish.topic, publish.payload),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn retained_messages_survive_a_restart_and_a_clear_stays_cleared() {
        let broker = Broker::start().await;
        let mut raw = Raw::connected(&broker, V3, 30).await;
        publish(&mut raw, "status/a", "up", true).await;
        publish(&mut raw, "status/b", "old", true).await;
        publish(&mut raw, "status/b", "", true).await;
        drop(raw);

        let broker = broker.restart().await;
        let mut raw = Raw::connected(&broker, V3, 30).await;
        subscribe(&mut raw, "status/#").await;
        let (topic, payload) = next_payload(&mut raw).await;
        assert_eq!((topic.as_str(), &payload[..]), ("status/a", &b"up"[..]));
        let mut other = Raw::connected_with(&broker, raw::connect(V3, "other", 30)).await;
        publish(&mut other, "status/marker", "marker", false).await;
        let (topic, _) = next_payload(&mut raw).await;
        assert_eq!(topic, "status/marker", "status/b was cleared");
    }

    #[tokio::test]
    async fn a_persistent_session_keeps_its_queued_messages_across_a_restart() {
        let broker = Broker::start().await;
        let mut connect = raw::connect(V3, "device-7", 30);
        if let Packet::Connect(request) = &mut connect {
            request.clean_start = false;
        }
        let mut device = Raw::connected_with(&broker, connect.clone()).await;
        subscribe(&mut device, "cmd/device-7").await;
        drop(device);
        let mut sender = Raw::connected(&broker, V3, 30).await;
        publish(&mut sender, "cmd/device-7", "reboot", false).await;
        drop(sender);

        let broker = broker.restart().await;
        let mut device = Raw::open(&broker, V3).await;
        device.send(&connect).await;
        match device.next().await {
            Some(Packet::ConnAck(connack)) => assert!(connack.session_present),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        let (topic, payload) = next_payload(&mut device).await;
        assert_eq!(
            (topic.as_str(), &payload[..]),
            ("cmd/device-7", &b"reboot"[..])
        );
    }

    /// A v5 CONNECT that keeps the session for five minutes.
    fn persistent_v5(client_id: &str) -> Packet {
        let mut connect = raw::connect(V5, client_id, 30);
        if let Packet::Connect(request) = &mut connect {
            request.clean_start = false;
            request.properties.session_expiry_interval = Some(300);
        }
        connect
    }

    #[tokio::test]
    async fn exchanges_in_flight_of_a_suspended_session_survive_a_restart() {
        let broker = Broker::start().await;
        let mut device = Raw::connected_with(&broker, persistent_v5("inflight")).await;
        subscribe(&mut device, "work/#").await;
        let mut sender = Raw::connected_with(&broker, raw::connect(V5, "sender", 30)).await;
        publish(&mut sender, "work/1", "unacknowledged", false).await;
        let sent = match device.next().await {
            Some(Packet::Publish(publish)) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        };
        drop(device); // no PUBACK: the message is the session's, parked with its packet id
        drop(sender);
        // The restart's shutdown waits for every connection to finish, the device's included,
        // so its session is parked (and kept) before the journal closes.

        let broker = broker.restart().await;
        let mut device = Raw::open(&broker, V5).await;
        device.send(&persistent_v5("inflight")).await;
        match device.next().await {
            Some(Packet::ConnAck(connack)) => assert!(connack.session_present),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        match device.next().await {
            Some(Packet::Publish(again)) => {
                assert_eq!(again.packet_id, sent.packet_id, "the original packet id");
                assert!(again.dup);
                assert_eq!(&again.payload[..], b"unacknowledged");
            }
            other => panic!("expected the PUBLISH again, got {other:?}"),
        }
    }
}
