//! The broker-wide resource limits (`max_queues`, `max_bindings`, `max_consumers_per_queue`,
//! `max_unacked_per_consumer`), each hit in every protocol that can reach it, with the
//! protocol's own error; then a freed slot lets the next request through.

mod common;

use std::time::{Duration, Instant};

use common::management::Api;
use common::mqtt::v5;
use common::stomp::{StompClient, message_count, send};
use common::{Broker, declare, next_delivery, publish, within};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use mqbridge_stomp::codec::{Command, Frame};
use reqwest::StatusCode;
use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as V5Code;
use rumqttc::{QoS, SubscribeReasonCode as V3Code};
use serde_json::json;

const PRECONDITION_FAILED: u16 = 406;

/// The reply code and text of a failed AMQP method.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: lapin::Result<T>) -> (u16, String) {
    match result.map_err(|e| e.kind().clone()) {
        Err(lapin::ErrorKind::ProtocolError(error)) => {
            (error.get_id(), error.get_message().to_string())
        }
        other => panic!("expected a channel close, got {other:?}"),
    }
}

/// queue.declare of `name` on a fresh channel: the refusal closes the channel.
async fn declare_on(connection: &Connection, name: &str) -> lapin::Result<lapin::Queue> {
    let channel = within(connection.create_channel()).await.expect("channel");
    within(channel.queue_declare(
        name.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
}

/// A STOMP request the broker refuses: the ERROR frame's message header and body.
async fn stomp_refused(broker: &Broker, frame: Frame) -> (String, String) {
    let mut client = StompClient::open(broker).await;
    client.send(&frame).await;
    let error = client.expect_error().await;
    let message = error.header("message").unwrap_or_default().to_owned();
    (message, String::from_utf8_lossy(&error.body).into_owned())
}

/// SUBSCRIBE by a fresh MQTT 5 client and by a fresh MQTT 3.1.1 client; their SUBACK codes.
async fn mqtt_subscribe(broker: &Broker, id: &str, filter: &str) -> (V5Code, V3Code) {
    let mut client5 = broker.mqtt5(broker.mqtt5_options(&format!("{id}-5"))).await;
    client5
        .client
        .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let ack5 = v5::subscribed(&mut client5.events).await;
    let mut client3 = broker.mqtt(broker.mqtt_options(&format!("{id}-3"))).await;
    client3
        .client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let ack3 = common::mqtt::subscribed(&mut client3.events).await;
    (ack5.return_codes[0], ack3.return_codes[0])
}

#[tokio::test]
async fn max_queues_refuses_a_new_queue_in_every_protocol() {
    let broker = Broker::start_with(|c| c.max_queues = 3).await;
    let connection = broker.connect().await;
    for name in ["a", "b", "c"] {
        declare_on(&connection, name)
            .await
            .expect("under the limit");
    }
    let (code, text) = refusal(declare_on(&connection, "d").await);
    assert_eq!(code, PRECONDITION_FAILED);
    assert!(
        text.contains(
            "cannot declare queue 'd' in vhost '/': queue limit in broker (3) is reached"
        ),
        "{text}"
    );
    declare_on(&connection, "a")
        .await
        .expect("an existing queue is redeclared at the limit");

    let (message, body) = stomp_refused(&broker, send("/queue/d", "x")).await;
    assert_eq!(message, "resource_error");
    assert!(body.contains("queue limit in broker (3)"), "{body}");

    // A clean MQTT session gets its queue with its first subscription.
    let (code5, code3) = mqtt_subscribe(&broker, "limited", "t/#").await;
    assert_eq!((code5, code3), (V5Code::QuotaExceeded, V3Code::Failure));

    let sqs = common::sqs::client(&broker);
    let created = within(sqs.create_queue().queue_name("d").send()).await;
    assert_eq!(common::sqs::error_code(created), "OverLimit");
    within(sqs.create_queue().queue_name("a").send())
        .await
        .expect("CreateQueue of an existing queue at the limit");

    let sns = common::sns::client(&broker);
    let topic = common::sns::create_topic(&sns, "news").await;
    let subscribed = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(common::sns::queue_arn("a"))
        .send();
    let subscribed = within(subscribed).await;
    assert_eq!(
        common::sqs::error_code(subscribed),
        "SubscriptionLimitExceeded"
    );

    let (status, body) = Api::new(&broker).put("/api/queues/%2F/d", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("queue limit")
    );

    assert_deleting_frees_a_slot(&broker, &connection).await;
}

/// After the refusals above, deleting one queue lets exactly one more through.
async fn assert_deleting_frees_a_slot(broker: &Broker, connection: &Connection) {
    let channel = within(connection.create_channel()).await.expect("channel");
    within(channel.queue_delete("b".into(), QueueDeleteOptions::default()))
        .await
        .expect("queue.delete");
    let (status, _) = Api::new(broker).put("/api/queues/%2F/d", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "the freed slot");
    let (code, _) = refusal(declare_on(connection, "e").await);
    assert_eq!(code, PRECONDITION_FAILED, "and no more");
}

async fn bind(channel: &Channel, queue: &str, key: &str) -> lapin::Result<()> {
    within(channel.queue_bind(
        queue.into(),
        "amq.topic".into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
}

#[tokio::test]
async fn max_bindings_refuses_a_new_binding_in_every_protocol() {
    let broker = Broker::start_with(|c| c.max_bindings = 2).await;
    let connection = broker.connect().await;
    let channel = within(connection.create_channel()).await.expect("channel");
    declare(&channel, "q", FieldTable::default()).await;
    bind(&channel, "q", "a").await.expect("first");
    bind(&channel, "q", "b").await.expect("second");
    bind(&channel, "q", "a")
        .await
        .expect("binding again at the limit");
    let (code, text) = refusal(bind(&channel, "q", "c").await);
    assert_eq!(code, PRECONDITION_FAILED);
    assert!(
        text.contains(
            "cannot bind queue 'q' in vhost '/' to exchange 'amq.topic': \
             binding limit in broker (2) is reached"
        ),
        "{text}"
    );

    let (code5, code3) = mqtt_subscribe(&broker, "binder", "sensors/+").await;
    assert_eq!((code5, code3), (V5Code::QuotaExceeded, V3Code::Failure));

    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "0")
        .with("destination", "/topic/sensors.x");
    let (message, body) = stomp_refused(&broker, subscribe).await;
    assert_eq!(message, "resource_error");
    assert!(body.contains("binding limit in broker (2)"), "{body}");

    let sns = common::sns::client(&broker);
    let topic = common::sns::create_topic(&sns, "alerts").await;
    let subscribed = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(common::sns::queue_arn("q"))
        .send();
    let subscribed = within(subscribed).await;
    assert_eq!(
        common::sqs::error_code(subscribed),
        "SubscriptionLimitExceeded"
    );

    let channel = within(connection.create_channel()).await.expect("channel");
    let unbind = channel.queue_unbind(
        "q".into(),
        "amq.topic".into(),
        "a".into(),
        FieldTable::default(),
    );
    within(unbind).await.expect("queue.unbind");
    bind(&channel, "q", "c").await.expect("the freed slot");
    let (code, _) = refusal(bind(&channel, "q", "d").await);
    assert_eq!(code, PRECONDITION_FAILED, "and no more");
}

async fn consume(channel: &Channel, queue: &str) -> lapin::Result<lapin::Consumer> {
    within(channel.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
}

#[tokio::test]
async fn max_consumers_per_queue_refuses_another_consumer() {
    let broker = Broker::start_with(|c| c.max_consumers_per_queue = 2).await;
    let sqs = common::sqs::client(&broker);
    let url = common::sqs::create_queue(&sqs, "work").await;
    let connection = broker.connect().await;
    let channel = within(connection.create_channel()).await.expect("channel");
    let first = consume(&channel, "work").await.expect("first");
    // Kept: dropping a lapin consumer cancels it.
    let _second = consume(&channel, "work").await.expect("second");
    let other = within(connection.create_channel()).await.expect("channel");
    let (code, text) = refusal(consume(&other, "work").await);
    assert_eq!(code, PRECONDITION_FAILED);
    assert!(
        text.contains(
            "cannot consume from queue 'work' in vhost '/': \
             consumer limit per queue (2) is reached"
        ),
        "{text}"
    );

    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "0")
        .with("destination", "/queue/work");
    let (message, body) = stomp_refused(&broker, subscribe).await;
    assert_eq!(message, "resource_error");
    assert!(body.contains("consumer limit per queue (2)"), "{body}");

    // A long poll that cannot become a consumer waits as one would and answers empty, which
    // an SDK's polling loop takes in its stride.
    let started = Instant::now();
    let received = within(
        sqs.receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send(),
    )
    .await
    .expect("ReceiveMessage is not an error");
    assert!(received.messages.unwrap_or_default().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");

    let cancel = channel.basic_cancel(first.tag(), BasicCancelOptions::default());
    within(cancel).await.expect("basic.cancel");
    let other = within(connection.create_channel()).await.expect("channel");
    consume(&other, "work").await.expect("the freed place");
}

#[tokio::test]
async fn unlimited_prefetch_stops_at_max_unacked_per_consumer() {
    let broker = Broker::start_with(|c| c.max_unacked_per_consumer = 2).await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "held", FieldTable::default()).await;
    for body in ["1", "2", "3", "4"] {
        publish(&channel, "", "held", body.as_bytes()).await;
    }
    let mut consumer = consume(&channel, "held")
        .await
        .expect("no basic.qos: prefetch 0");
    let first = next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    let (_observer, observer) = broker.channel().await;
    common::eventually("two messages stay ready", || async {
        message_count(&observer, "held").await == 2
    })
    .await;
    let ack = channel.basic_ack(first.delivery_tag, BasicAckOptions::default());
    within(ack).await.expect("basic.ack");
    assert_eq!(next_delivery(&mut consumer).await.data, b"3");
    // Had the cap not held, 3 and 4 would go out together and the count drop from 2 to 0.
    common::eventually("one message stays ready", || async {
        message_count(&observer, "held").await == 1
    })
    .await;
}

#[tokio::test]
async fn a_stomp_client_ack_subscription_stops_at_max_unacked_per_consumer() {
    let broker = Broker::start_with(|c| c.max_unacked_per_consumer = 2).await;
    let mut client = StompClient::open(&broker).await;
    for body in ["1", "2", "3"] {
        client.publish("/queue/held", body).await;
    }
    client
        .subscribe("0", "/queue/held", "client-individual")
        .await;
    let first = client.expect_message("1").await;
    client.expect_message("2").await;
    client.assert_quiet().await;
    let ack = client.ack_frame(Command::Ack, &first);
    client.send(&ack).await;
    client.expect_message("3").await;
}
