//! Publishing and consuming with lapin: the round trip of bodies, properties and headers,
//! ordering, and the queue methods every client uses (declare, purge, delete).

mod common;

use common::{Broker, declare, drain, get, next_delivery, publish, publish_with, table, within};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, DecimalValue, FieldArray, FieldTable};

#[tokio::test]
async fn publish_then_consume_round_trips_body_and_properties() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    within(channel.queue_declare(
        "rt".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
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
    within(channel.basic_publish(
        "".into(),
        "rt".into(),
        BasicPublishOptions::default(),
        b"{\"a\":1}",
        properties.clone(),
    ))
    .await
    .expect("publish");
    let mut consumer = within(channel.basic_consume(
        "rt".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
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
    within(delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
}

#[tokio::test]
async fn an_empty_body_round_trips() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "empty-body-q", FieldTable::default()).await;
    let properties = BasicProperties::default().with_message_id("nothing".into());
    publish_with(&channel, "", "empty-body-q", b"", properties.clone()).await;
    let message = get(&channel, "empty-body-q").await.expect("a message");
    assert!(message.delivery.data.is_empty());
    assert_eq!(message.delivery.properties, properties);
}

#[tokio::test]
async fn a_body_larger_than_frame_max_round_trips() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "large-body-q", FieldTable::default()).await;
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    publish(&channel, "", "large-body-q", &body).await;
    let mut consumer = within(channel.basic_consume(
        "large-body-q".into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data.len(), body.len());
    assert!(delivery.data == body, "the body arrives intact");
}

#[tokio::test]
async fn header_values_of_every_type_round_trip() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "typed-headers-q", FieldTable::default()).await;
    let nested = table(&[("inner", AMQPValue::Boolean(false))]);
    let array = FieldArray::from(vec![AMQPValue::LongInt(1), common::text("two")]);
    let headers = table(&[
        ("bool", AMQPValue::Boolean(true)),
        ("i8", AMQPValue::ShortShortInt(-8)),
        ("u8", AMQPValue::ShortShortUInt(8)),
        ("i16", AMQPValue::ShortInt(-16)),
        ("u16", AMQPValue::ShortUInt(16)),
        ("i32", AMQPValue::LongInt(-32)),
        ("u32", AMQPValue::LongUInt(32)),
        ("i64", AMQPValue::LongLongInt(-64)),
        ("f32", AMQPValue::Float(1.5)),
        ("f64", AMQPValue::Double(-2.25)),
        (
            "decimal",
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 314,
            }),
        ),
        ("text", common::text("héllo")),
        ("array", AMQPValue::FieldArray(array)),
        ("timestamp", AMQPValue::Timestamp(1_700_000_000)),
        ("table", AMQPValue::FieldTable(nested)),
        ("void", AMQPValue::Void),
    ]);
    let properties = BasicProperties::default().with_headers(headers);
    publish_with(
        &channel,
        "",
        "typed-headers-q",
        b"typed",
        properties.clone(),
    )
    .await;
    let message = get(&channel, "typed-headers-q").await.expect("a message");
    assert_eq!(message.delivery.properties, properties);
}

#[tokio::test]
async fn messages_from_one_channel_arrive_in_publish_order() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "ordered-q", FieldTable::default()).await;
    let mut consumer = within(channel.basic_consume(
        "ordered-q".into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    for i in 0..200u32 {
        publish(&channel, "", "ordered-q", &i.to_be_bytes()).await;
    }
    for i in 0..200u32 {
        let delivery = next_delivery(&mut consumer).await;
        assert_eq!(delivery.data, i.to_be_bytes());
        within(delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
}

#[tokio::test]
async fn redeclaring_a_queue_with_the_same_settings_keeps_it() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    let arguments = table(&[("x-max-length", AMQPValue::LongInt(10))]);
    declare(&channel, "same-q", arguments.clone()).await;
    publish(&channel, "", "same-q", b"kept").await;
    let again = declare(&channel, "same-q", arguments).await;
    assert_eq!(again.name().as_str(), "same-q");
    assert_eq!(drain(&channel, "same-q").await, [b"kept"]);
}

#[tokio::test]
async fn purge_removes_ready_messages_and_counts_them() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "purged-q", FieldTable::default()).await;
    for body in [b"1", b"2", b"3"] {
        publish(&channel, "", "purged-q", body).await;
    }
    let purged = within(channel.queue_purge("purged-q".into(), QueuePurgeOptions::default()))
        .await
        .expect("purge");
    assert_eq!(purged, 3);
    assert!(get(&channel, "purged-q").await.is_none());
}

#[tokio::test]
async fn delete_reports_the_messages_it_dropped() {
    let broker = Broker::start().await;
    let (_conn, channel) = broker.channel().await;
    declare(&channel, "deleted-q", FieldTable::default()).await;
    publish(&channel, "", "deleted-q", b"1").await;
    publish(&channel, "", "deleted-q", b"2").await;
    let dropped = within(channel.queue_delete("deleted-q".into(), QueueDeleteOptions::default()))
        .await
        .expect("delete");
    assert_eq!(dropped, 2);
    let fresh = declare(&channel, "deleted-q", FieldTable::default()).await;
    assert_eq!(fresh.message_count(), 0);
}
