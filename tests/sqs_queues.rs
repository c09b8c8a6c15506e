//! SQS queue actions through the AWS SDK: create, look up, list, delete, attributes, tags,
//! purge, and the errors AWS answers them with.

mod common;

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use common::sqs::{client, create_queue, error_code};
use common::{Broker, within};

#[tokio::test]
async fn create_get_url_and_delete_a_queue() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "orders").await;
    assert_eq!(
        url,
        format!("http://{}/000000000000/orders", broker.server.sqs_addr)
    );
    // Creating it again with the same (no) attributes answers the same URL.
    assert_eq!(create_queue(&sqs, "orders").await, url);
    let found = within(sqs.get_queue_url().queue_name("orders").send())
        .await
        .expect("GetQueueUrl");
    assert_eq!(found.queue_url(), Some(url.as_str()));
    within(sqs.delete_queue().queue_url(&url).send())
        .await
        .expect("DeleteQueue");
    let gone = within(sqs.get_queue_url().queue_name("orders").send()).await;
    assert_eq!(error_code(gone), "AWS.SimpleQueueService.NonExistentQueue");
}

#[tokio::test]
async fn a_queue_of_the_same_name_with_other_attributes_already_exists() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let create = |timeout: &str| {
        sqs.create_queue()
            .queue_name("q")
            .attributes(QueueAttributeName::VisibilityTimeout, timeout)
            .send()
    };
    within(create("40")).await.expect("CreateQueue");
    within(create("40")).await.expect("same attributes");
    assert_eq!(error_code(within(create("41")).await), "QueueAlreadyExists");
}

#[tokio::test]
async fn list_queues_by_prefix_with_pages() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    for name in ["app-a", "app-b", "app-c", "other"] {
        create_queue(&sqs, name).await;
    }
    let page = within(
        sqs.list_queues()
            .queue_name_prefix("app-")
            .max_results(2)
            .send(),
    )
    .await
    .expect("ListQueues");
    let names: Vec<&str> = page
        .queue_urls()
        .iter()
        .filter_map(|u| u.rsplit('/').next())
        .collect();
    assert_eq!(names, ["app-a", "app-b"]);
    let token = page.next_token().expect("a next token").to_owned();
    let rest = within(
        sqs.list_queues()
            .queue_name_prefix("app-")
            .max_results(2)
            .next_token(token)
            .send(),
    )
    .await
    .expect("ListQueues page 2");
    assert_eq!(rest.queue_urls().len(), 1);
    assert!(rest.queue_urls()[0].ends_with("/app-c"));
    assert!(rest.next_token().is_none());
    let all = within(sqs.list_queues().send()).await.expect("ListQueues");
    assert_eq!(all.queue_urls().len(), 4);
}

#[tokio::test]
async fn queue_attributes_have_aws_defaults_and_can_be_set() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "attrs").await;
    let all = within(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    let attributes: HashMap<String, String> = all
        .attributes()
        .expect("attributes")
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    assert_eq!(attributes["VisibilityTimeout"], "30");
    assert_eq!(attributes["MaximumMessageSize"], "1048576");
    assert_eq!(attributes["MessageRetentionPeriod"], "345600");
    assert_eq!(attributes["DelaySeconds"], "0");
    assert_eq!(attributes["ReceiveMessageWaitTimeSeconds"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessages"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesNotVisible"], "0");
    assert_eq!(attributes["ApproximateNumberOfMessagesDelayed"], "0");
    assert_eq!(
        attributes["QueueArn"],
        "arn:aws:sqs:us-east-1:000000000000:attrs"
    );
    assert!(
        attributes["CreatedTimestamp"]
            .parse::<u64>()
            .expect("number")
            > 1_600_000_000
    );
    assert!(attributes.contains_key("LastModifiedTimestamp"));

    within(
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::VisibilityTimeout, "120")
            .send(),
    )
    .await
    .expect("SetQueueAttributes");
    let one = within(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    let one = one.attributes().expect("attributes");
    assert_eq!(one.len(), 1);
    assert_eq!(one[&QueueAttributeName::VisibilityTimeout], "120");
}

#[tokio::test]
async fn bad_attributes_are_refused_with_aws_codes() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "bad-attrs").await;
    let out_of_range = sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "50000")
        .send();
    assert_eq!(
        error_code(within(out_of_range).await),
        "InvalidAttributeValue"
    );
    let unknown = sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::from("Colour"), "red")
        .send();
    assert_eq!(error_code(within(unknown).await), "InvalidAttributeName");
    let bad_name = sqs.create_queue().queue_name("no.dots").send();
    assert_eq!(error_code(within(bad_name).await), "InvalidParameterValue");
}

#[tokio::test]
async fn tags_are_added_listed_and_removed() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let created = within(
        sqs.create_queue()
            .queue_name("tagged")
            .tags("team", "core")
            .send(),
    )
    .await
    .expect("CreateQueue");
    let url = created.queue_url().expect("url").to_owned();
    within(sqs.tag_queue().queue_url(&url).tags("env", "test").send())
        .await
        .expect("TagQueue");
    let tags = within(sqs.list_queue_tags().queue_url(&url).send())
        .await
        .expect("ListQueueTags");
    let tags = tags.tags().expect("tags");
    assert_eq!(tags.get("team").map(String::as_str), Some("core"));
    assert_eq!(tags.get("env").map(String::as_str), Some("test"));
    within(sqs.untag_queue().queue_url(&url).tag_keys("team").send())
        .await
        .expect("UntagQueue");
    let tags = within(sqs.list_queue_tags().queue_url(&url).send())
        .await
        .expect("ListQueueTags");
    assert_eq!(tags.tags().map(|t| t.len()), Some(1));
}

#[tokio::test]
async fn aws_and_localstack_style_urls_name_the_same_queue() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    create_queue(&sqs, "styles").await;
    for url in [
        "https://sqs.us-east-1.amazonaws.com/000000000000/styles",
        "http://localhost.localstack.cloud:4566/000000000000/styles",
        "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/styles/",
    ] {
        within(sqs.send_message().queue_url(url).message_body("x").send())
            .await
            .unwrap_or_else(|e| panic!("SendMessage to {url}: {e:?}"));
    }
    let purged = within(
        sqs.purge_queue()
            .queue_url("https://sqs.us-east-1.amazonaws.com/000000000000/styles")
            .send(),
    )
    .await;
    purged.expect("PurgeQueue");
    let empty = within(
        sqs.receive_message()
            .queue_url("http://x/000000000000/styles")
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    assert!(empty.messages().is_empty());
}

#[tokio::test]
async fn actions_on_a_missing_queue_say_it_does_not_exist() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = format!("http://{}/000000000000/missing", broker.server.sqs_addr);
    let code =
        error_code(within(sqs.send_message().queue_url(&url).message_body("x").send()).await);
    assert_eq!(code, "AWS.SimpleQueueService.NonExistentQueue");
    let code = error_code(within(sqs.purge_queue().queue_url(&url).send()).await);
    assert_eq!(code, "AWS.SimpleQueueService.NonExistentQueue");
    let code = error_code(within(sqs.delete_queue().queue_url(&url).send()).await);
    assert_eq!(code, "AWS.SimpleQueueService.NonExistentQueue");
}

/// Queue attributes, tags, timestamps and FIFO settings are journaled with the queue: after a
/// restart ListQueues knows the queues without being told their names, and each has what it had.
#[tokio::test]
async fn attributes_and_tags_survive_a_restart() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    create_queue(&sqs, "kept-dlq").await;
    let redrive = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:kept-dlq","maxReceiveCount":"2"}"#;
    let url = within(
        sqs.create_queue()
            .queue_name("kept")
            .attributes(QueueAttributeName::VisibilityTimeout, "45")
            .tags("team", "payments")
            .send(),
    )
    .await
    .expect("CreateQueue")
    .queue_url
    .expect("url");
    within(
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send(),
    )
    .await
    .expect("SetQueueAttributes");
    within(
        sqs.create_queue()
            .queue_name("kept.fifo")
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
            .send(),
    )
    .await
    .expect("CreateQueue FIFO");
    let deleted = create_queue(&sqs, "kept-deleted").await;
    within(sqs.delete_queue().queue_url(&deleted).send())
        .await
        .expect("DeleteQueue");
    let before = all_attributes(&sqs, &url).await;

    let broker = broker.restart().await;
    let sqs = client(&broker);
    let listed = within(sqs.list_queues().queue_name_prefix("kept").send())
        .await
        .expect("ListQueues")
        .queue_urls
        .unwrap_or_default();
    let names: Vec<&str> = listed.iter().filter_map(|u| u.rsplit('/').next()).collect();
    assert_eq!(names, ["kept", "kept-dlq", "kept.fifo"]);
    let url = format!("http://{}/000000000000/kept", broker.server.sqs_addr);
    let after = all_attributes(&sqs, &url).await;
    let stable = |map: &HashMap<QueueAttributeName, String>| {
        let mut map = map.clone();
        map.remove(&QueueAttributeName::ApproximateNumberOfMessages);
        map
    };
    assert_eq!(stable(&after), stable(&before));
    assert_eq!(after[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(after[&QueueAttributeName::RedrivePolicy], redrive);
    let tags = within(sqs.list_queue_tags().queue_url(&url).send())
        .await
        .expect("ListQueueTags")
        .tags
        .unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));
    let fifo = format!("http://{}/000000000000/kept.fifo", broker.server.sqs_addr);
    let fifo = all_attributes(&sqs, &fifo).await;
    assert_eq!(fifo[&QueueAttributeName::ContentBasedDeduplication], "true");
}

async fn all_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    within(
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send(),
    )
    .await
    .expect("GetQueueAttributes")
    .attributes
    .expect("attributes")
}
