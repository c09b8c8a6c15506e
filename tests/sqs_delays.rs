//! DelaySeconds, per message and as the queue's default: a delayed message is invisible and
//! counted as delayed until it is due, and stays delayed (not lost, not early) across a restart.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use common::sqs::{client, create_queue};
use common::{Broker, within};

async fn delayed_count(sqs: &Client, url: &str) -> String {
    let answer = within(
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    answer.attributes().expect("attributes")
        [&QueueAttributeName::ApproximateNumberOfMessagesDelayed]
        .clone()
}

async fn receive_within(sqs: &Client, url: &str, wait_seconds: i32) -> Vec<String> {
    let answer = within(
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    answer
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_delayed_message_appears_only_when_due() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "later").await;
    let sent = Instant::now();
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("in two seconds")
            .delay_seconds(2)
            .send(),
    )
    .await
    .expect("SendMessage");
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("now")
            .send(),
    )
    .await
    .expect("SendMessage");
    assert_eq!(delayed_count(&sqs, &url).await, "1");
    assert_eq!(receive_within(&sqs, &url, 0).await, ["now"]);
    // Long polling wakes when the delayed message becomes visible.
    let later = receive_within(&sqs, &url, 10).await;
    assert_eq!(later, ["in two seconds"]);
    assert!(
        sent.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(delayed_count(&sqs, &url).await, "0");
}

#[tokio::test]
async fn the_queue_delay_applies_to_batches_unless_an_entry_says_otherwise() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = within(
        sqs.create_queue()
            .queue_name("slow")
            .attributes(QueueAttributeName::DelaySeconds, "1")
            .send(),
    )
    .await
    .expect("CreateQueue")
    .queue_url
    .expect("url");
    let entry = |id: &str, delay: Option<i32>| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(id)
            .set_delay_seconds(delay)
            .build()
            .expect("entry")
    };
    let sent = within(
        sqs.send_message_batch()
            .queue_url(&url)
            .entries(entry("queue-default", None))
            .entries(entry("immediate", Some(0)))
            .send(),
    )
    .await
    .expect("SendMessageBatch");
    assert_eq!(sent.successful().len(), 2);
    assert_eq!(receive_within(&sqs, &url, 0).await, ["immediate"]);
    assert_eq!(receive_within(&sqs, &url, 5).await, ["queue-default"]);
}

#[tokio::test]
async fn delayed_messages_survive_a_restart() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "delayed-durable").await;
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("kept")
            .delay_seconds(1)
            .send(),
    )
    .await
    .expect("SendMessage");
    let broker = broker.restart().await;
    let sqs = client(&broker);
    let url = within(sqs.get_queue_url().queue_name("delayed-durable").send())
        .await
        .expect("GetQueueUrl")
        .queue_url
        .expect("url");
    assert_eq!(receive_within(&sqs, &url, 10).await, ["kept"]);
}
