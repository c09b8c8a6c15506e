//! What SNS subscribers get, through the real broker with `aws-sdk-sns`, `aws-sdk-sqs` and
//! lapin: filter policies in both scopes, MessageStructure=json, FIFO topics to FIFO queues,
//! PublishBatch, one topic for every protocol, and subscriptions that outlive a restart.

mod common;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use common::sns::{client, create_topic, receive_body, subscribe_queue};
use common::{Broker, next_delivery, publish, within};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::Value;

fn text_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("attribute")
}

/// The `Message` field of the envelope in `body`.
fn message_of(body: &str) -> String {
    let envelope: Value = serde_json::from_str(body).expect("an envelope");
    envelope["Message"].as_str().expect("Message").to_owned()
}

async fn publish_colored(sns: &aws_sdk_sns::Client, topic: &str, message: &str, color: &str) {
    within(
        sns.publish()
            .topic_arn(topic)
            .message(message)
            .message_attributes("color", text_attribute(color))
            .send(),
    )
    .await
    .expect("Publish");
}

#[tokio::test]
async fn an_attribute_filter_policy_lets_only_matching_messages_through() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "paint").await;
    let policy = r#"{"color": ["red", {"prefix": "bl"}]}"#;
    let (url, _) = subscribe_queue(&broker, &topic, "warm", &[("FilterPolicy", policy)]).await;
    for (message, color) in [("1", "green"), ("2", "red"), ("3", "yellow"), ("4", "blue")] {
        publish_colored(&sns, &topic, message, color).await;
    }
    let mut got = Vec::new();
    while let Some(body) = receive_body(&broker, &url).await {
        got.push(message_of(&body));
        if got.len() == 2 {
            break;
        }
    }
    assert_eq!(got, ["2", "4"]);
    // Nothing else is on its way: a marker published last arrives next.
    publish_colored(&sns, &topic, "5", "red").await;
    assert_eq!(
        receive_body(&broker, &url)
            .await
            .map(|b| message_of(&b))
            .as_deref(),
        Some("5")
    );
}

#[tokio::test]
async fn a_body_filter_policy_matches_nested_keys() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "orders").await;
    let policy = r#"{"order": {"total": [{"numeric": [">", 100]}]}}"#;
    let attributes = [
        ("FilterPolicy", policy),
        ("FilterPolicyScope", "MessageBody"),
    ];
    let (url, subscription) = subscribe_queue(&broker, &topic, "big", &attributes).await;
    for body in [
        r#"{"order": {"total": 50}}"#,
        "not json",
        r#"{"order": {"total": 150}}"#,
    ] {
        within(sns.publish().topic_arn(&topic).message(body).send())
            .await
            .expect("Publish");
    }
    let body = receive_body(&broker, &url).await.expect("the big order");
    assert_eq!(message_of(&body), r#"{"order": {"total": 150}}"#);
    let attributes = within(
        sns.get_subscription_attributes()
            .subscription_arn(&subscription)
            .send(),
    )
    .await
    .expect("GetSubscriptionAttributes")
    .attributes
    .expect("attributes");
    assert_eq!(attributes["FilterPolicyScope"], "MessageBody");
    assert_eq!(attributes["FilterPolicy"], policy);
}

#[tokio::test]
async fn message_structure_json_gives_sqs_subscribers_their_own_message() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "structured").await;
    let (url, _) = subscribe_queue(&broker, &topic, "structured-q", &[]).await;
    let message = r#"{"default": "for everyone", "sqs": "for queues"}"#;
    within(
        sns.publish()
            .topic_arn(&topic)
            .message(message)
            .message_structure("json")
            .send(),
    )
    .await
    .expect("Publish");
    let body = receive_body(&broker, &url).await.expect("a delivery");
    assert_eq!(message_of(&body), "for queues");
}

#[tokio::test]
async fn a_fifo_topic_delivers_in_order_once_per_deduplication_id() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = within(
        sns.create_topic()
            .name("ledger.fifo")
            .attributes("FifoTopic", "true")
            .send(),
    )
    .await
    .expect("CreateTopic")
    .topic_arn
    .expect("ARN");
    let sqs = common::sqs::client(&broker);
    let url = within(
        sqs.create_queue()
            .queue_name("ledger.fifo")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send(),
    )
    .await
    .expect("CreateQueue")
    .queue_url
    .expect("URL");
    within(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(common::sns::queue_arn("ledger.fifo"))
            .attributes("RawMessageDelivery", "true")
            .send(),
    )
    .await
    .expect("Subscribe");
    let mut sequences = Vec::new();
    for (body, dedup) in [("a", "1"), ("b", "2"), ("a again", "1"), ("c", "3")] {
        let output = within(
            sns.publish()
                .topic_arn(&topic)
                .message(body)
                .message_group_id("g")
                .message_deduplication_id(dedup)
                .send(),
        )
        .await
        .expect("Publish");
        sequences.push(output.sequence_number.expect("SequenceNumber"));
    }
    assert_eq!(
        sequences[0], sequences[2],
        "a duplicate gets the first answer"
    );
    assert!(sequences[0] < sequences[1] && sequences[1] < sequences[3]);
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(receive_body(&broker, &url).await.expect("a delivery"));
    }
    assert_eq!(got, ["a", "b", "c"]);
    let missing_group = within(
        sns.publish()
            .topic_arn(&topic)
            .message("x")
            .message_deduplication_id("9")
            .send(),
    )
    .await;
    assert_eq!(common::sqs::error_code(missing_group), "InvalidParameter");
}

#[tokio::test]
async fn publish_batch_answers_per_entry() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "batch").await;
    let (url, _) = subscribe_queue(
        &broker,
        &topic,
        "batch-q",
        &[("RawMessageDelivery", "true")],
    )
    .await;
    let entry = |id: &str, message: &str| {
        PublishBatchRequestEntry::builder()
            .id(id)
            .message(message)
            .build()
            .expect("entry")
    };
    let output = within(
        sns.publish_batch()
            .topic_arn(&topic)
            .publish_batch_request_entries(entry("one", "1"))
            .publish_batch_request_entries(entry("two", "2"))
            .publish_batch_request_entries(entry("empty", ""))
            .send(),
    )
    .await
    .expect("PublishBatch");
    let ok: Vec<_> = output.successful().iter().filter_map(|s| s.id()).collect();
    assert_eq!(ok, ["one", "two"]);
    let failed = output.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id(), "empty");
    assert_eq!(failed[0].code(), "InvalidParameter");
    assert_eq!(receive_body(&broker, &url).await.as_deref(), Some("1"));
    assert_eq!(receive_body(&broker, &url).await.as_deref(), Some("2"));
}

#[tokio::test]
async fn an_amqp_queue_bound_to_the_topic_gets_publishes_with_attributes_as_headers() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "alerts").await;
    let (_connection, channel) = broker.channel().await;
    let queue = common::declare(&channel, "amqp-alerts", FieldTable::default()).await;
    within(channel.queue_bind(
        queue.name().clone(),
        "alerts".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("queue.bind");
    let mut consumer = within(channel.basic_consume(
        "amqp-alerts".into(),
        "c".into(),
        BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume");
    within(
        sns.publish()
            .topic_arn(&topic)
            .subject("Disk")
            .message("full")
            .message_attributes("host", text_attribute("db1"))
            .send(),
    )
    .await
    .expect("Publish");
    let delivery = next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"full");
    assert_eq!(delivery.properties.delivery_mode(), &Some(2));
    let headers = delivery.properties.headers().clone().expect("headers");
    let header = |name: &str| headers.inner().get(name).cloned();
    assert_eq!(header("host"), Some(AMQPValue::LongString("db1".into())));
    assert_eq!(
        header("x-sns-subject"),
        Some(AMQPValue::LongString("Disk".into()))
    );
    drop(consumer.next());
}

#[tokio::test]
async fn an_amqp_publish_to_the_topic_exchange_reaches_sns_subscribers() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "events").await;
    let (url, _) = subscribe_queue(&broker, &topic, "events-q", &[]).await;
    let (_connection, channel) = broker.channel().await;
    publish(&channel, "events", "any.key", b"from amqp").await;
    let body = receive_body(&broker, &url).await.expect("a notification");
    let envelope: Value = serde_json::from_str(&body).expect("an envelope");
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["Message"], "from amqp");
    assert_eq!(envelope["TopicArn"], topic.as_str());
}

#[tokio::test]
async fn topics_and_subscriptions_survive_a_restart() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "durable").await;
    within(
        sns.tag_resource()
            .resource_arn(&topic)
            .tags(
                aws_sdk_sns::types::Tag::builder()
                    .key("team")
                    .value("ops")
                    .build()
                    .expect("tag"),
            )
            .send(),
    )
    .await
    .expect("TagResource");
    let (url, subscription) = subscribe_queue(
        &broker,
        &topic,
        "durable-q",
        &[("RawMessageDelivery", "true")],
    )
    .await;
    let broker = broker.restart().await;
    let sns = client(&broker);
    let listed = within(sns.list_subscriptions_by_topic().topic_arn(&topic).send())
        .await
        .expect("ListSubscriptionsByTopic");
    let arns: Vec<_> = listed
        .subscriptions()
        .iter()
        .filter_map(|s| s.subscription_arn())
        .collect();
    assert_eq!(arns, [subscription.as_str()]);
    let tags = within(sns.list_tags_for_resource().resource_arn(&topic).send())
        .await
        .expect("ListTags");
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].value(), "ops");
    within(
        sns.publish()
            .topic_arn(&topic)
            .message("after restart")
            .send(),
    )
    .await
    .expect("Publish");
    let url = url.replace(
        &url[..url.find("/000000000000").expect("account")],
        &format!("http://{}", broker.server.sqs_addr),
    );
    assert_eq!(
        receive_body(&broker, &url).await.as_deref(),
        Some("after restart")
    );
}
