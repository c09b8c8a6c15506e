//! MQTT 3.1.1 with rumqttc: publish and subscribe at QoS 0 and 1, retained messages, wills,
//! persistent sessions, and the same topics seen from AMQP.

mod common;

use common::mqtt::{next_incoming, next_publish, subscribed};
use common::{Broker, within};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use rumqttc::{Incoming, LastWill, QoS, SubscribeReasonCode};

#[tokio::test]
async fn a_qos_1_publish_reaches_a_wildcard_subscriber() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("sub")).await;
    sub.client
        .subscribe("sensors/+/temp", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let ack = subscribed(&mut sub.events).await;
    assert_eq!(
        ack.return_codes,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let mut publisher = broker.mqtt(broker.mqtt_options("pub")).await;
    publisher
        .client
        .publish("sensors/kitchen/temp", QoS::AtLeastOnce, false, "21.5")
        .await
        .expect("publish");
    let puback = within(next_incoming(&mut publisher.events)).await;
    assert!(matches!(puback, Incoming::PubAck(_)), "got {puback:?}");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(got.topic, "sensors/kitchen/temp");
    assert_eq!(&got.payload[..], b"21.5");
    assert_eq!(got.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn qos_0_subscriptions_get_qos_0() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("sub0")).await;
    sub.client
        .subscribe("a/#", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    subscribed(&mut sub.events).await;
    sub.client
        .publish("a/b/c", QoS::AtLeastOnce, false, "x")
        .await
        .expect("publish");
    let got = next_publish(&mut sub.events).await;
    assert_eq!((got.topic.as_str(), got.qos), ("a/b/c", QoS::AtMostOnce));
}

#[tokio::test]
async fn an_amqp_publish_to_amq_topic_reaches_an_mqtt_subscriber() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("bridge-sub")).await;
    sub.client
        .subscribe("orders/eu/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut sub.events).await;
    let (_conn, channel) = broker.channel().await;
    let persistent = BasicProperties::default().with_delivery_mode(2);
    channel
        .basic_publish(
            "amq.topic".into(),
            "orders.eu.new".into(),
            BasicPublishOptions::default(),
            b"o-1",
            persistent,
        )
        .await
        .expect("publish");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(got.topic, "orders/eu/new");
    assert_eq!(&got.payload[..], b"o-1");
    assert_eq!(
        got.qos,
        QoS::AtLeastOnce,
        "persistent AMQP messages count as QoS 1"
    );
}

#[tokio::test]
async fn an_amqp_key_with_wildcard_words_reaches_mqtt_percent_encoded() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("encoded-sub")).await;
    sub.client
        .subscribe("alerts/+", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    subscribed(&mut sub.events).await;
    let (_conn, channel) = broker.channel().await;
    for key in ["alerts.#", "alerts.plain"] {
        channel
            .basic_publish(
                "amq.topic".into(),
                key.into(),
                BasicPublishOptions::default(),
                key.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
    }
    let got = next_publish(&mut sub.events).await;
    assert_eq!(got.topic, "alerts/%23", "a '#' no topic name may hold");
    assert_eq!(&got.payload[..], b"alerts.#");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(got.topic, "alerts/plain");
}

#[tokio::test]
async fn an_mqtt_publish_reaches_an_amqp_queue_with_the_publisher_identity() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    channel
        .queue_declare(
            "from-mqtt".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .queue_bind(
            "from-mqtt".into(),
            "amq.topic".into(),
            "devices.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let mut consumer = channel
        .basic_consume(
            "from-mqtt".into(),
            "c".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut options = broker.mqtt_options("device-7");
    options.set_credentials("guest", "guest");
    let mut publisher = broker.mqtt(options).await;
    publisher
        .client
        .publish("devices/7/status", QoS::AtLeastOnce, false, "up")
        .await
        .expect("publish");
    within(next_incoming(&mut publisher.events)).await;
    let delivery = within(consumer.next())
        .await
        .expect("a delivery")
        .expect("ok");
    assert_eq!(delivery.routing_key.as_str(), "devices.7.status");
    assert_eq!(delivery.data, b"up");
    let headers = delivery.properties.headers().clone().expect("headers");
    let header = |name: &str| headers.inner().get(name).cloned();
    assert_eq!(
        header("x-mqtt-client-id"),
        Some(AMQPValue::LongString("device-7".into()))
    );
    assert_eq!(
        header("x-mqtt-username"),
        Some(AMQPValue::LongString("guest".into()))
    );
}

#[tokio::test]
async fn a_new_subscriber_gets_the_retained_message() {
    let broker = Broker::start().await;
    let mut publisher = broker.mqtt(broker.mqtt_options("retainer")).await;
    publisher
        .client
        .publish("status/door", QoS::AtLeastOnce, true, "open")
        .await
        .expect("publish");
    within(next_incoming(&mut publisher.events)).await;
    let mut sub = broker.mqtt(broker.mqtt_options("late")).await;
    sub.client
        .subscribe("status/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..], got.retain),
        ("status/door", &b"open"[..], true)
    );
}

#[tokio::test]
async fn the_will_is_published_when_a_client_vanishes() {
    let broker = Broker::start().await;
    let mut watcher = broker.mqtt(broker.mqtt_options("watcher")).await;
    watcher
        .client
        .subscribe("wills/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut watcher.events).await;
    let mut options = broker.mqtt_options("mortal");
    options.set_last_will(LastWill::new(
        "wills/mortal",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let mortal = broker.mqtt(options).await;
    drop(mortal); // the socket closes without DISCONNECT
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("wills/mortal", &b"gone"[..])
    );
}

#[tokio::test]
async fn a_clean_disconnect_discards_the_will() {
    let broker = Broker::start().await;
    let mut watcher = broker.mqtt(broker.mqtt_options("watcher2")).await;
    watcher
        .client
        .subscribe("wills/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut watcher.events).await;
    let mut options = broker.mqtt_options("polite");
    options.set_last_will(LastWill::new(
        "wills/polite",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let mut polite = broker.mqtt(options).await;
    polite.client.disconnect().await.expect("disconnect");
    let _ = tokio::time::timeout(common::WAIT, polite.events.poll()).await;
    watcher
        .client
        .publish("wills/marker", QoS::AtLeastOnce, false, "after")
        .await
        .expect("publish");
    let got = next_publish(&mut watcher.events).await;
    assert_eq!(
        got.topic, "wills/marker",
        "no will was published before the marker"
    );
}

#[tokio::test]
async fn a_persistent_session_keeps_subscriptions_and_messages_while_offline() {
    let broker = Broker::start().await;
    let mut options = broker.mqtt_options("keeper");
    options.set_clean_session(false);
    let mut first = broker.mqtt(options.clone()).await;
    first
        .client
        .subscribe("jobs/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut first.events).await;
    first.client.disconnect().await.expect("disconnect");
    let _ = tokio::time::timeout(common::WAIT, first.events.poll()).await;
    let mut publisher = broker.mqtt(broker.mqtt_options("producer")).await;
    publisher
        .client
        .publish("jobs/1", QoS::AtLeastOnce, false, "work")
        .await
        .expect("publish");
    within(next_incoming(&mut publisher.events)).await;
    let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
    let connack = within(next_incoming(&mut events)).await;
    let Incoming::ConnAck(connack) = connack else {
        panic!("expected CONNACK, got {connack:?}")
    };
    assert!(connack.session_present);
    let got = next_publish(&mut events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("jobs/1", &b"work"[..])
    );
    drop(client);
}

#[tokio::test]
async fn a_wrong_password_is_refused_in_connack() {
    let broker = Broker::start().await;
    let mut options = broker.mqtt_options("intruder");
    options.set_credentials("guest", "nope");
    let (_client, mut events) = rumqttc::AsyncClient::new(options, 8);
    let error = within(events.poll()).await.expect_err("refused");
    assert!(
        error.to_string().contains("BadUserNamePassword"),
        "got {error}"
    );
}

#[tokio::test]
async fn a_shared_subscription_spreads_messages_over_its_members() {
    let broker = Broker::start().await;
    let mut members = Vec::new();
    for id in ["worker-a", "worker-b"] {
        let mut member = broker.mqtt(broker.mqtt_options(id)).await;
        member
            .client
            .subscribe("$share/workers/jobs/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let ack = subscribed(&mut member.events).await;
        assert_eq!(
            ack.return_codes,
            [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        );
        members.push(member);
    }
    let mut publisher = broker.mqtt(broker.mqtt_options("boss")).await;
    const JOBS: usize = 10;
    for n in 0..JOBS {
        publisher
            .client
            .publish(format!("jobs/{n}"), QoS::AtLeastOnce, false, n.to_string())
            .await
            .expect("publish");
        within(next_incoming(&mut publisher.events)).await;
    }
    // Both members consume one queue in turn: together they get each job exactly once.
    let mut seen = Vec::new();
    for (index, member) in members.iter_mut().enumerate() {
        for _ in 0..JOBS / 2 {
            let got = next_publish(&mut member.events).await;
            seen.push((index, got.topic));
        }
    }
    let mut topics: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    topics.sort();
    topics.dedup();
    assert_eq!(topics.len(), JOBS, "every job once: {seen:?}");
}

#[tokio::test]
async fn qos_2_goes_end_to_end_exactly_once() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("q2-sub")).await;
    sub.client
        .subscribe("exact/#", QoS::ExactlyOnce)
        .await
        .expect("subscribe");
    let ack = subscribed(&mut sub.events).await;
    assert_eq!(
        ack.return_codes,
        [SubscribeReasonCode::Success(QoS::ExactlyOnce)]
    );
    let mut publisher = broker.mqtt(broker.mqtt_options("q2-pub")).await;
    publisher
        .client
        .publish("exact/1", QoS::ExactlyOnce, false, "once")
        .await
        .expect("publish");
    publisher
        .client
        .publish("exact/marker", QoS::AtLeastOnce, false, "marker")
        .await
        .expect("publish");
    // The publisher's event loop sends both and completes PUBREC/PUBREL/PUBCOMP.
    within(async {
        let (mut completed, mut acked) = (false, false);
        while !(completed && acked) {
            match next_incoming(&mut publisher.events).await {
                Incoming::PubComp(_) => completed = true,
                Incoming::PubAck(_) => acked = true,
                _ => {}
            }
        }
    })
    .await;
    // The subscriber's event loop answers PUBREC and PUBCOMP for us.
    let got = next_publish(&mut sub.events).await;
    assert_eq!((got.topic.as_str(), got.qos), ("exact/1", QoS::ExactlyOnce));
    let next = next_publish(&mut sub.events).await;
    assert_eq!(
        next.topic, "exact/marker",
        "no second copy of the QoS 2 message"
    );
}

#[tokio::test]
async fn sys_topics_report_the_broker_in_mosquitto_naming() {
    let broker = Broker::start().await;
    let mut sub = broker.mqtt(broker.mqtt_options("sys-reader")).await;
    sub.client
        .subscribe("$SYS/broker/version", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let got = next_publish(&mut sub.events).await;
    assert_eq!(got.topic, "$SYS/broker/version");
    assert!(
        got.payload.starts_with(b"mqbridge version"),
        "got {:?}",
        got.payload
    );
}

#[tokio::test]
async fn sys_message_counts_include_every_protocol() {
    let broker = Broker::start_with(|config| config.mqtt_sys_interval = 1).await;
    let (_amqp, channel) = broker.channel().await;
    common::declare(&channel, "counted", FieldTable::default()).await;
    for body in [b"1", b"2", b"3"] {
        common::publish(&channel, "", "counted", body).await;
    }
    let mut sub = broker.mqtt(broker.mqtt_options("sys-counter")).await;
    sub.client
        .subscribe("$SYS/broker/messages/received", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    // Updated every second: wait for a value that counts the AMQP publishes.
    within(async {
        loop {
            let got = next_publish(&mut sub.events).await;
            let count: u64 = std::str::from_utf8(&got.payload)
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("a number");
            if count >= 3 {
                return;
            }
        }
    })
    .await;
}
