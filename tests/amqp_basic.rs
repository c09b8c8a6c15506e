//! Publishing and consuming with lapin: the round trip, properties, acks and redelivery.

mod common;

use common::{Broker, within};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};

#[tokio::test]
async fn publish_then_consume_round_trips_body_and_properties() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    channel
        .queue_declare(
            "rt".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongInt(42));
    headers.insert("s".into(), AMQPValue::LongString("text".into()));
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("c-1".into())
        .with_reply_to("replies".into())
        .with_message_id("m-1".into())
        .with_priority(3)
        .with_timestamp(1_700_000_000)
        .with_delivery_mode(2)
        .with_headers(headers);
    channel
        .basic_publish(
            "".into(),
            "rt".into(),
            BasicPublishOptions::default(),
            b"{\"a\":1}",
            properties.clone(),
        )
        .await
        .expect("publish");
    let mut consumer = channel
        .basic_consume(
            "rt".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let delivery = within(consumer.next())
        .await
        .expect("a delivery")
        .expect("ok");
    assert_eq!(delivery.data, b"{\"a\":1}");
    assert_eq!(delivery.properties, properties);
    assert_eq!(delivery.routing_key.as_str(), "rt");
    assert!(!delivery.redelivered);
    delivery.ack(BasicAckOptions::default()).await.expect("ack");
}
