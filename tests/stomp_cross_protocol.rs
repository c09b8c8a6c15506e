//! STOMP meets the other protocols on the same queues and topics: a STOMP SEND reaches an
//! AMQP consumer with its properties and headers, an AMQP publish reaches a STOMP subscriber,
//! and STOMP `/topic/a.b` is MQTT topic `a/b` both ways.

mod common;

use common::stomp::{StompClient, send, unique};
use common::{Broker, declare, next_delivery, publish_with, table, text, within};
use lapin::BasicProperties;
use lapin::options::BasicConsumeOptions;
use lapin::types::{AMQPValue, FieldTable};
use rumqttc::QoS;

#[tokio::test]
async fn a_stomp_send_reaches_an_amqp_consumer_with_properties_and_headers() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let queue = unique("to-amqp");
    declare(&channel, &queue, FieldTable::default()).await;
    let mut consumer = within(channel.basic_consume(
        queue.as_str().into(),
        "c".into(),
        BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let mut client = StompClient::open(&broker).await;
    let frame = send(&format!("/queue/{queue}"), "from stomp")
        .with("persistent", "true")
        .with("priority", "3")
        .with("correlation-id", "corr")
        .with("reply-to", "replies")
        .with("expiration", "30000")
        .with("content-type", "text/plain")
        .with("amqp-message-id", "mid")
        .with("x-custom", "custom value");
    client.request(frame).await;
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"from stomp");
    let props = &delivery.properties;
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(*props.priority(), Some(3));
    assert_eq!(
        props.correlation_id().as_ref().map(|s| s.as_str()),
        Some("corr")
    );
    assert_eq!(
        props.reply_to().as_ref().map(|s| s.as_str()),
        Some("replies")
    );
    assert_eq!(
        props.expiration().as_ref().map(|s| s.as_str()),
        Some("30000")
    );
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some("text/plain")
    );
    assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some("mid"));
    let headers = props.headers().as_ref().expect("headers");
    let custom = headers.inner().get("x-custom").expect("x-custom");
    assert_eq!(custom, &AMQPValue::LongString("custom value".into()));
    assert!(!headers.inner().contains_key("destination"));
    assert!(!headers.inner().contains_key("receipt"));
}

#[tokio::test]
async fn an_amqp_publish_reaches_a_stomp_subscriber_with_properties_and_headers() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let queue = unique("from-amqp");
    client
        .subscribe("s", &format!("/queue/{queue}"), "auto")
        .await;
    let (_connection, channel) = broker.channel().await;
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_correlation_id("c-7".into())
        .with_reply_to("amq.gen-reply".into())
        .with_message_id("m-7".into())
        .with_content_type("application/json".into())
        .with_headers(table(&[
            ("tenant", text("acme")),
            ("count", AMQPValue::LongInt(42)),
            ("flag", AMQPValue::Boolean(true)),
        ]));
    publish_with(&channel, "", &queue, b"{}", properties).await;
    let message = client.expect_message("{}").await;
    for (name, value) in [
        ("destination", format!("/queue/{queue}").as_str()),
        ("persistent", "true"),
        ("correlation-id", "c-7"),
        ("reply-to", "/reply-queue/amq.gen-reply"),
        ("amqp-message-id", "m-7"),
        ("content-type", "application/json"),
        ("tenant", "acme"),
        ("count", "42"),
        ("flag", "true"),
    ] {
        assert_eq!(message.header(name), Some(value), "{name}");
    }
}

#[tokio::test]
async fn an_amqp_rpc_server_answers_a_stomp_temp_queue() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let service = unique("rpc");
    declare(&channel, &service, FieldTable::default()).await;
    let mut client = StompClient::open(&broker).await;
    let request = send(&format!("/queue/{service}"), "2+2").with("reply-to", "/temp-queue/rpc");
    client.request(request).await;
    let asked = common::get(&channel, &service).await.expect("the request");
    let reply_to = asked
        .delivery
        .properties
        .reply_to()
        .clone()
        .expect("reply_to");
    // An AMQP server replies the usual way: default exchange, key = reply_to.
    publish_with(
        &channel,
        "",
        reply_to.as_str(),
        b"4",
        BasicProperties::default(),
    )
    .await;
    let answer = client.expect_message("4").await;
    assert_eq!(answer.header("subscription"), Some("/temp-queue/rpc"));
}

#[tokio::test]
async fn stomp_topics_and_mqtt_topics_are_the_same_topics() {
    let broker = Broker::start().await;
    let word = unique("sensors");
    let mut mqtt = broker.mqtt(broker.mqtt_options(&unique("m"))).await;
    mqtt.client
        .subscribe(format!("{word}/+/temp"), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    common::mqtt::subscribed(&mut mqtt.events).await;
    let mut stomp = StompClient::open(&broker).await;
    stomp
        .subscribe("s", &format!("/topic/{word}.*.temp"), "auto")
        .await;
    stomp
        .publish(&format!("/topic/{word}.kitchen.temp"), "21.5")
        .await;
    let publish = common::mqtt::next_publish(&mut mqtt.events).await;
    assert_eq!(publish.topic, format!("{word}/kitchen/temp"));
    assert_eq!(publish.payload.as_ref(), b"21.5");
    stomp.expect_message("21.5").await;
    mqtt.client
        .publish(format!("{word}/hall/temp"), QoS::AtLeastOnce, false, "19")
        .await
        .expect("publish");
    let poll = async {
        loop {
            common::mqtt::next_incoming(&mut mqtt.events).await;
        }
    };
    let message = tokio::select! {
        message = stomp.expect_message("19") => message,
        () = poll => unreachable!(),
    };
    assert_eq!(
        message.header("destination"),
        Some(format!("/topic/{word}.hall.temp").as_str())
    );
}
