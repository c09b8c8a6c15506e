//! One queue, every protocol: SQS sends reach AMQP consumers and AMQP publishes reach SQS
//! receivers, with attributes and headers mapped by the table in ARCHITECTURE.md.

mod common;

use aws_sdk_sqs::types::MessageAttributeValue;
use common::sqs::{client, create_queue};
use common::{Broker, declare, next_delivery, publish_with, table, text, within};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};

#[tokio::test]
async fn send_message_reaches_an_amqp_consumer_with_its_attributes_as_headers() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "shared").await;
    let (_connection, channel) = broker.channel().await;
    let mut consumer = within(channel.basic_consume(
        "shared".into(),
        "c".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume");
    let attribute = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("eu")
        .build()
        .expect("attribute");
    let correlation = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("req-1")
        .build()
        .expect("attribute");
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("from sqs")
            .message_attributes("region", attribute)
            .message_attributes("correlation-id", correlation)
            .send(),
    )
    .await
    .expect("SendMessage");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"from sqs");
    let properties = &delivery.properties;
    assert_eq!(properties.delivery_mode(), &Some(2));
    assert_eq!(
        properties.correlation_id().as_ref().map(|c| c.as_str()),
        Some("req-1")
    );
    assert!(properties.message_id().is_some());
    // MessageRetentionPeriod (default 4 days) is the message's TTL.
    assert_eq!(
        properties.expiration().as_ref().map(|e| e.as_str()),
        Some("345600000")
    );
    let headers = properties.headers().as_ref().expect("headers");
    let region = headers.inner().get("region").expect("region header");
    assert!(matches!(region, AMQPValue::LongString(s) if s.to_string() == "eu"));
    within(delivery.acker.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    drop(consumer.next());
}

#[tokio::test]
async fn an_amqp_publish_is_received_over_sqs() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "from-amqp", FieldTable::default()).await;
    let headers = table(&[("tenant", text("acme")), ("retries", AMQPValue::LongInt(3))]);
    let properties = BasicProperties::default()
        .with_headers(headers)
        .with_content_type("text/plain".into());
    publish_with(&channel, "", "from-amqp", b"hello sqs", properties).await;
    publish_with(
        &channel,
        "",
        "from-amqp",
        &[0xff, 0x00],
        BasicProperties::default(),
    )
    .await;

    let sqs = client(&broker);
    let url = within(sqs.get_queue_url().queue_name("from-amqp").send())
        .await
        .expect("GetQueueUrl of an AMQP-declared queue")
        .queue_url
        .expect("url");
    let received = within(
        sqs.receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .message_attribute_names("All")
            .send(),
    )
    .await
    .expect("ReceiveMessage (the SDK checks the MD5s)");
    let messages = received.messages();
    assert_eq!(messages.len(), 2);
    let first = &messages[0];
    assert_eq!(first.body(), Some("hello sqs"));
    let attributes = first.message_attributes().expect("attributes");
    assert_eq!(attributes["tenant"].string_value(), Some("acme"));
    assert_eq!(attributes["retries"].data_type(), "Number");
    assert_eq!(attributes["retries"].string_value(), Some("3"));
    assert_eq!(
        attributes["content-type"].string_value(),
        Some("text/plain")
    );
    let binary = &messages[1];
    assert_eq!(binary.body(), Some("/wA="));
    let encoding = &binary.message_attributes().expect("attributes")["content-transfer-encoding"];
    assert_eq!(encoding.string_value(), Some("base64"));
    for message in messages {
        within(
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().expect("handle"))
                .send(),
        )
        .await
        .expect("DeleteMessage");
    }
    let queue = declare(&channel, "from-amqp", FieldTable::default()).await;
    assert_eq!(queue.message_count(), 0);
}

#[tokio::test]
async fn a_queue_name_sqs_would_refuse_is_one_encoded_url_segment() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let name = "orders/eu.v2:high";
    declare(&channel, name, FieldTable::default()).await;
    let sqs = client(&broker);
    let url = within(sqs.get_queue_url().queue_name(name).send())
        .await
        .expect("GetQueueUrl of an AMQP queue with '/', '.' and ':' in its name")
        .queue_url
        .expect("url");
    assert!(
        url.ends_with("/000000000000/orders%2Feu.v2%3Ahigh"),
        "{url}"
    );
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("to amqp")
            .send(),
    )
    .await
    .expect("SendMessage through the encoded URL");
    let queue = declare(&channel, name, FieldTable::default()).await;
    assert_eq!(queue.message_count(), 1);
    let refused = within(sqs.create_queue().queue_name(name).send()).await;
    assert!(refused.is_err(), "CreateQueue keeps AWS's naming rules");
}

#[tokio::test]
async fn sqs_messages_survive_a_restart() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "durable").await;
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("kept")
            .send(),
    )
    .await
    .expect("SendMessage");
    let broker = broker.restart().await;
    let sqs = client(&broker);
    let url = within(sqs.get_queue_url().queue_name("durable").send())
        .await
        .expect("GetQueueUrl after restart")
        .queue_url
        .expect("url");
    let received = within(sqs.receive_message().queue_url(&url).send())
        .await
        .expect("ReceiveMessage");
    assert_eq!(received.messages().len(), 1);
    assert_eq!(received.messages()[0].body(), Some("kept"));
}
