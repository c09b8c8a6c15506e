//! Bad SNS input gets AWS's error code and HTTP status, in the protocol it came in, and never
//! disturbs the broker: each case is followed by a request that still works.

mod common;

use aws_sdk_sns::types::PublishBatchRequestEntry;
use common::sns::{client, create_topic};
use common::sqs::{error_code, query, raw_request};
use common::{Broker, within};

#[tokio::test]
async fn topic_and_publish_errors_get_aws_error_codes() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "t").await;
    let missing = "arn:aws:sns:us-east-1:000000000000:nope";
    assert_eq!(
        error_code(within(sns.get_topic_attributes().topic_arn(missing).send()).await),
        "NotFound"
    );
    assert_eq!(
        error_code(within(sns.publish().topic_arn(missing).message("m").send()).await),
        "NotFound"
    );
    assert_eq!(
        error_code(within(sns.create_topic().name("bad name!").send()).await),
        "InvalidParameter"
    );
    assert_eq!(
        error_code(within(sns.create_topic().name("plain.fifo").send()).await),
        "InvalidParameter"
    );
    let big = "x".repeat(262_145);
    assert_eq!(
        error_code(within(sns.publish().topic_arn(&topic).message(big).send()).await),
        "InvalidParameter"
    );
    assert_eq!(
        error_code(
            within(
                sns.publish()
                    .topic_arn(&topic)
                    .message("m")
                    .subject("two\nlines")
                    .send()
            )
            .await
        ),
        "InvalidParameter"
    );
    let no_default = within(
        sns.publish()
            .topic_arn(&topic)
            .message(r#"{"sqs": "x"}"#)
            .message_structure("json")
            .send(),
    )
    .await;
    assert_eq!(error_code(no_default), "InvalidParameter");
    let dedup_on_standard = within(
        sns.publish()
            .topic_arn(&topic)
            .message("m")
            .message_deduplication_id("1")
            .send(),
    )
    .await;
    assert_eq!(error_code(dedup_on_standard), "InvalidParameter");
    within(sns.publish().topic_arn(&topic).message("still fine").send())
        .await
        .expect("Publish");
}

#[tokio::test]
async fn subscription_errors_get_aws_error_codes() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "t").await;
    let missing = "arn:aws:sns:us-east-1:000000000000:nope";
    let email = within(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("email")
            .endpoint("a@b.c")
            .send(),
    )
    .await;
    assert_eq!(error_code(email), "InvalidParameter");
    let bad_queue = within(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint("not-an-arn")
            .send(),
    )
    .await;
    assert_eq!(error_code(bad_queue), "InvalidParameter");
    let bad_http = within(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("https")
            .endpoint("http://x/")
            .send(),
    )
    .await;
    assert_eq!(error_code(bad_http), "InvalidParameter");
    let bad_policy = within(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint("arn:aws:sqs:us-east-1:000000000000:q")
            .attributes("FilterPolicy", r#"{"a": [{"numeric": [">", "x"]}]}"#)
            .send(),
    )
    .await;
    assert_eq!(error_code(bad_policy), "InvalidParameter");
    let unknown = format!("{topic}:00000000-0000-4000-8000-000000000000");
    assert_eq!(
        error_code(
            within(
                sns.get_subscription_attributes()
                    .subscription_arn(&unknown)
                    .send()
            )
            .await
        ),
        "NotFound"
    );
    assert_eq!(
        error_code(within(sns.list_tags_for_resource().resource_arn(missing).send()).await),
        "ResourceNotFound"
    );
    within(sns.publish().topic_arn(&topic).message("still fine").send())
        .await
        .expect("Publish");
}

#[tokio::test]
async fn batches_are_checked_as_a_whole() {
    let broker = Broker::start().await;
    let sns = client(&broker);
    let topic = create_topic(&sns, "b").await;
    let entry = |id: &str| {
        PublishBatchRequestEntry::builder()
            .id(id)
            .message("m")
            .build()
            .expect("entry")
    };
    let empty = within(sns.publish_batch().topic_arn(&topic).send()).await;
    assert_eq!(error_code(empty), "EmptyBatchRequest");
    let twice = within(
        sns.publish_batch()
            .topic_arn(&topic)
            .publish_batch_request_entries(entry("a"))
            .publish_batch_request_entries(entry("a"))
            .send(),
    )
    .await;
    assert_eq!(error_code(twice), "BatchEntryIdsNotDistinct");
    let mut eleven = sns.publish_batch().topic_arn(&topic);
    for i in 0..11 {
        eleven = eleven.publish_batch_request_entries(entry(&format!("e{i}")));
    }
    assert_eq!(
        error_code(within(eleven.send()).await),
        "TooManyEntriesInBatchRequest"
    );
    let bad_id = within(
        sns.publish_batch()
            .topic_arn(&topic)
            .publish_batch_request_entries(entry("no spaces"))
            .send(),
    )
    .await;
    assert_eq!(error_code(bad_id), "InvalidBatchEntryId");
}

#[tokio::test]
async fn raw_requests_get_statuses_and_shapes_as_aws_sends_them() {
    let broker = Broker::start().await;
    let missing = query(&broker, "/", "Action=GetTopicAttributes&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Anope").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("<Code>NotFound</Code>"),
        "{}",
        missing.body
    );
    assert!(
        missing
            .body
            .contains("http://sns.amazonaws.com/doc/2010-03-31/")
    );
    assert_eq!(
        missing.header("x-amzn-query-error"),
        Some("NotFound;Sender")
    );
    let unknown = query(&broker, "/", "Action=Explode&Version=2010-03-31").await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("<Code>InvalidAction</Code>"),
        "{}",
        unknown.body
    );
    let json = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "SNS_20100331.CreateTopic"),
    ];
    let created = raw_request(&broker, "/", &json, br#"{"Name": "j"}"#).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created
            .body
            .contains(r#""TopicArn":"arn:aws:sns:us-east-1:000000000000:j""#),
        "{}",
        created.body
    );
    let garbage = raw_request(&broker, "/", &json, b"{not json").await;
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.body.contains("InvalidParameter"),
        "{}",
        garbage.body
    );
    let listed = query(&broker, "/", "Action=ListTopics&Version=2010-03-31").await;
    assert_eq!(listed.status, 200);
    assert!(
        listed
            .body
            .contains("<TopicArn>arn:aws:sns:us-east-1:000000000000:j</TopicArn>"),
        "{}",
        listed.body
    );
}
