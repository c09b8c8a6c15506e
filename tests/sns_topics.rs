//! SNS topics and SQS delivery through the real broker with `aws-sdk-sns` and `aws-sdk-sqs`:
//! topic lifecycle, attributes, tags, listing, the envelope and raw delivery.

mod common;

use common::sns::{client, create_topic, receive_body, subscribe_queue};
use common::sqs::error_code;
use common::{Broker, within};
use serde_json::Value;

#[tokio::test]
async fn a_topic_is_created_listed_described_and_deleted() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let arn = create_topic(&sns, "orders").await;
    assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:orders");
    // CreateTopic is idempotent.
    assert_eq!(create_topic(&sns, "orders").await, arn);
    let listed = within(sns.list_topics().send()).await.unwrap();
    let arns: Vec<_> = listed
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .collect();
    assert_eq!(arns, [arn.as_str()]);
    within(
        sns.set_topic_attributes()
            .topic_arn(&arn)
            .attribute_name("DisplayName")
            .attribute_value("Orders")
            .send(),
    )
    .await
    .unwrap();
    let attributes = within(sns.get_topic_attributes().topic_arn(&arn).send())
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attributes["DisplayName"], "Orders");
    assert_eq!(attributes["TopicArn"], arn);
    assert_eq!(attributes["SubscriptionsConfirmed"], "0");
    within(sns.delete_topic().topic_arn(&arn).send())
        .await
        .unwrap();
    let missing = within(sns.get_topic_attributes().topic_arn(&arn).send()).await;
    assert_eq!(error_code(missing), "NotFound");
}

#[tokio::test]
async fn a_publish_reaches_a_subscribed_queue_in_the_envelope() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "news").await;
    let (url, subscription) = subscribe_queue(&broker, &topic, "news-reader", &[]).await;
    let published = within(
        sns.publish()
            .topic_arn(&topic)
            .subject("Greeting")
            .message("hello")
            .message_attributes(
                "color",
                aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("red")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .await
    .unwrap();
    let body = receive_body(&broker, &url).await.expect("a delivery");
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(
        envelope["MessageId"],
        published.message_id.unwrap().as_str()
    );
    assert_eq!(envelope["TopicArn"], topic.as_str());
    assert_eq!(envelope["Subject"], "Greeting");
    assert_eq!(envelope["Message"], "hello");
    assert_eq!(envelope["SignatureVersion"], "1");
    assert!(
        envelope["Signature"]
            .as_str()
            .is_some_and(|s| s.len() > 100)
    );
    assert!(
        envelope["SigningCertURL"]
            .as_str()
            .unwrap()
            .ends_with(".pem")
    );
    assert!(
        envelope["UnsubscribeURL"]
            .as_str()
            .unwrap()
            .contains(&subscription.replace(':', "%3A"))
    );
    assert_eq!(envelope["MessageAttributes"]["color"]["Type"], "String");
    assert_eq!(envelope["MessageAttributes"]["color"]["Value"], "red");
    assert!(envelope["Timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn raw_delivery_hands_over_the_message_and_its_attributes() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "raw").await;
    let (url, _) = subscribe_queue(
        &broker,
        &topic,
        "raw-reader",
        &[("RawMessageDelivery", "true")],
    )
    .await;
    within(
        sns.publish()
            .topic_arn(&topic)
            .message("just this")
            .message_attributes(
                "n",
                aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value("7")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .await
    .unwrap();
    let sqs = common::sqs::client(&broker);
    let received = within(
        sqs.receive_message()
            .queue_url(&url)
            .wait_time_seconds(5)
            .message_attribute_names("All")
            .send(),
    )
    .await
    .unwrap();
    let message = &received.messages()[0];
    assert_eq!(message.body(), Some("just this"));
    let attribute = &message.message_attributes().unwrap()["n"];
    assert_eq!(attribute.data_type(), "Number");
    assert_eq!(attribute.string_value(), Some("7"));
}

#[tokio::test]
async fn list_topics_pages_with_next_token() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    for i in 0..105 {
        create_topic(&sns, &format!("t{i:03}")).await;
    }
    let first = within(sns.list_topics().send()).await.unwrap();
    assert_eq!(first.topics().len(), 100);
    let token = first.next_token().expect("a next page").to_owned();
    let second = within(sns.list_topics().next_token(token).send())
        .await
        .unwrap();
    assert_eq!(second.topics().len(), 5);
    assert!(second.next_token().is_none());
    let last = second.topics()[4].topic_arn().unwrap();
    assert_eq!(last, "arn:aws:sns:us-east-1:000000000000:t104");
}

#[tokio::test]
async fn subscriptions_are_listed_changed_and_removed() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "jobs").await;
    let (url, subscription) = subscribe_queue(&broker, &topic, "jobs-q", &[]).await;
    let all = within(sns.list_subscriptions().send()).await.unwrap();
    let listed = &all.subscriptions()[0];
    assert_eq!(listed.subscription_arn(), Some(subscription.as_str()));
    assert_eq!(listed.protocol(), Some("sqs"));
    assert_eq!(
        listed.endpoint(),
        Some("arn:aws:sqs:us-east-1:000000000000:jobs-q")
    );
    assert_eq!(listed.topic_arn(), Some(topic.as_str()));
    within(
        sns.set_subscription_attributes()
            .subscription_arn(&subscription)
            .attribute_name("RawMessageDelivery")
            .attribute_value("true")
            .send(),
    )
    .await
    .unwrap();
    let attributes = within(
        sns.get_subscription_attributes()
            .subscription_arn(&subscription)
            .send(),
    )
    .await
    .unwrap()
    .attributes
    .unwrap();
    assert_eq!(attributes["RawMessageDelivery"], "true");
    assert_eq!(attributes["PendingConfirmation"], "false");
    within(sns.publish().topic_arn(&topic).message("raw now").send())
        .await
        .unwrap();
    assert_eq!(
        receive_body(&broker, &url).await.as_deref(),
        Some("raw now")
    );
    within(sns.unsubscribe().subscription_arn(&subscription).send())
        .await
        .unwrap();
    let left = within(sns.list_subscriptions_by_topic().topic_arn(&topic).send())
        .await
        .unwrap();
    assert!(left.subscriptions().is_empty());
    within(sns.publish().topic_arn(&topic).message("nobody").send())
        .await
        .unwrap();
    assert_eq!(receive_body(&broker, &url).await, None);
}

#[tokio::test]
async fn tags_are_added_listed_and_removed() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "tagged").await;
    let tag = |k: &str, v: &str| {
        aws_sdk_sns::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    within(
        sns.tag_resource()
            .resource_arn(&topic)
            .tags(tag("a", "1"))
            .tags(tag("b", "2"))
            .send(),
    )
    .await
    .unwrap();
    within(
        sns.untag_resource()
            .resource_arn(&topic)
            .tag_keys("a")
            .send(),
    )
    .await
    .unwrap();
    let tags = within(sns.list_tags_for_resource().resource_arn(&topic).send())
        .await
        .unwrap();
    let pairs: Vec<_> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("b", "2")]);
}
