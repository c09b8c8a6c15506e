//! SQS message actions through the AWS SDK (which verifies every MD5 we send): send, batch
//! send, receive with long polling, delete, visibility, attributes, and the errors.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use common::sqs::{client, create_queue, error_code};
use common::{Broker, within};

async fn receive(
    sqs: &Client,
    url: &str,
    max: i32,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    within(
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(visibility)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send(),
    )
    .await
    .expect("ReceiveMessage")
    .messages
    .unwrap_or_default()
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("attribute")
}

#[tokio::test]
async fn send_receive_delete_with_attributes() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "work").await;
    let number = MessageAttributeValue::builder()
        .data_type("Number.int")
        .string_value("42")
        .build()
        .expect("attribute");
    let binary = MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(Blob::new(vec![0u8, 1, 2, 255]))
        .build()
        .expect("attribute");
    let sent = within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("hello \u{e9}\r\n")
            .message_attributes("kind", string("greeting"))
            .message_attributes("count", number)
            .message_attributes("blob", binary)
            .send(),
    )
    .await
    .expect("SendMessage (the SDK checks both MD5s)");
    let message_id = sent.message_id().expect("id").to_owned();

    let messages = receive(&sqs, &url, 10, 30).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.body(), Some("hello \u{e9}\r\n"));
    assert_eq!(message.message_id(), Some(message_id.as_str()));
    let attributes = message.message_attributes().expect("attributes");
    assert_eq!(attributes["kind"].string_value(), Some("greeting"));
    assert_eq!(attributes["count"].data_type(), "Number.int");
    assert_eq!(attributes["count"].string_value(), Some("42"));
    assert_eq!(
        attributes["blob"]
            .binary_value()
            .map(|b| b.as_ref().to_vec()),
        Some(vec![0u8, 1, 2, 255])
    );
    assert_eq!(
        message.md5_of_message_attributes(),
        sent.md5_of_message_attributes()
    );
    let system = message.attributes().expect("system attributes");
    assert_eq!(
        system[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert!(system.contains_key(&MessageSystemAttributeName::SentTimestamp));
    assert!(system.contains_key(&MessageSystemAttributeName::SenderId));
    assert!(system.contains_key(&MessageSystemAttributeName::ApproximateFirstReceiveTimestamp));

    let handle = message.receipt_handle().expect("handle");
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(handle)
            .send(),
    )
    .await
    .expect("DeleteMessage");
    // A retried delete of a deleted message succeeds, as on AWS.
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(handle)
            .send(),
    )
    .await
    .expect("DeleteMessage again");
    assert!(receive(&sqs, &url, 10, 30).await.is_empty());
}

#[tokio::test]
async fn an_unacknowledged_message_becomes_visible_again_and_its_old_handle_stops_working() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "lease").await;
    within(sqs.send_message().queue_url(&url).message_body("m").send())
        .await
        .expect("SendMessage");
    let first = receive(&sqs, &url, 1, 1).await;
    assert_eq!(first.len(), 1);
    assert!(
        receive(&sqs, &url, 1, 1).await.is_empty(),
        "invisible while leased"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = receive(&sqs, &url, 1, 30).await;
    assert_eq!(second.len(), 1);
    let count = &second[0].attributes().expect("attributes")
        [&MessageSystemAttributeName::ApproximateReceiveCount];
    assert_eq!(count, "2");
    let stale = first[0].receipt_handle().expect("handle");
    let result = within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(stale)
            .send(),
    )
    .await;
    assert_eq!(error_code(result), "ReceiptHandleIsInvalid");
    let result = within(
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(stale)
            .visibility_timeout(10)
            .send(),
    )
    .await;
    assert_eq!(
        error_code(result),
        "AWS.SimpleQueueService.MessageNotInflight"
    );
    let fresh = second[0].receipt_handle().expect("handle");
    within(
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(fresh)
            .send(),
    )
    .await
    .expect("DeleteMessage with the current handle");
}

#[tokio::test]
async fn change_visibility_to_zero_makes_a_message_visible_at_once() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "vis").await;
    within(sqs.send_message().queue_url(&url).message_body("m").send())
        .await
        .expect("SendMessage");
    let taken = receive(&sqs, &url, 1, 300).await;
    let handle = taken[0].receipt_handle().expect("handle");
    within(
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send(),
    )
    .await
    .expect("ChangeMessageVisibility");
    let again = within(
        sqs.receive_message()
            .queue_url(&url)
            .wait_time_seconds(5)
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    assert_eq!(again.messages().len(), 1);
}

#[tokio::test]
async fn long_polling_returns_as_soon_as_a_message_arrives() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "long").await;
    let waiting = {
        let (sqs, url) = (sqs.clone(), url.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = sqs
                .receive_message()
                .queue_url(&url)
                .wait_time_seconds(20)
                .send()
                .await
                .expect("ReceiveMessage");
            (started.elapsed(), answer.messages().len())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("wake")
            .send(),
    )
    .await
    .expect("SendMessage");
    let (elapsed, count) = within(waiting).await.expect("task");
    assert_eq!(count, 1);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    let started = Instant::now();
    let empty = within(
        sqs.receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    assert!(empty.messages().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// Sends ten messages in one batch, each with an attribute.
async fn send_ten(sqs: &Client, url: &str) {
    let entries: Vec<_> = (0..10)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(format!("body {i}"))
                .message_attributes("i", string(&i.to_string()))
                .build()
                .expect("entry")
        })
        .collect();
    let sent = within(
        sqs.send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send(),
    )
    .await
    .expect("SendMessageBatch");
    assert_eq!(sent.successful().len(), 10);
    assert!(sent.failed().is_empty());
}

fn delete_entry(id: &str, handle: &str) -> DeleteMessageBatchRequestEntry {
    DeleteMessageBatchRequestEntry::builder()
        .id(id)
        .receipt_handle(handle)
        .build()
        .expect("entry")
}

#[tokio::test]
async fn batches_send_delete_and_change_visibility_per_entry() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "batch").await;
    send_ten(&sqs, &url).await;
    let messages = receive(&sqs, &url, 10, 60).await;
    assert_eq!(messages.len(), 10);
    let visibility: Vec<_> = messages[..2]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(format!("v{i}"))
                .receipt_handle(m.receipt_handle().expect("handle"))
                .visibility_timeout(120)
                .build()
                .expect("entry")
        })
        .collect();
    let changed = within(
        sqs.change_message_visibility_batch()
            .queue_url(&url)
            .set_entries(Some(visibility))
            .send(),
    )
    .await
    .expect("ChangeMessageVisibilityBatch");
    assert_eq!(changed.successful().len(), 2);

    let mut deletes: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| delete_entry(&format!("d{i}"), m.receipt_handle().expect("handle")))
        .collect();
    deletes.pop();
    deletes.push(delete_entry("bogus", "not-a-handle"));
    let deleted = within(
        sqs.delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(deletes))
            .send(),
    )
    .await
    .expect("DeleteMessageBatch");
    assert_eq!(deleted.successful().len(), 9);
    assert_eq!(deleted.failed().len(), 1);
    assert_eq!(deleted.failed()[0].id(), "bogus");
    assert_eq!(deleted.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert!(deleted.failed()[0].sender_fault());
}

#[tokio::test]
async fn batch_requests_are_checked_as_aws_does() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "batch-errors").await;
    let entry = |id: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body("x")
            .build()
            .expect("entry")
    };
    let send = |entries: Vec<SendMessageBatchRequestEntry>| {
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
    };
    let eleven = (0..11).map(|i| entry(&format!("e{i}"))).collect();
    assert_eq!(
        error_code(within(send(eleven)).await),
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    );
    assert_eq!(
        error_code(within(send(vec![entry("a"), entry("a")])).await),
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    );
    assert_eq!(
        error_code(within(send(vec![entry("bad id!")])).await),
        "AWS.SimpleQueueService.InvalidBatchEntryId"
    );
    assert_eq!(
        error_code(within(send(Vec::new())).await),
        "AWS.SimpleQueueService.EmptyBatchRequest"
    );
}

#[tokio::test]
async fn invalid_messages_are_refused() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "invalid").await;
    let control = sqs
        .send_message()
        .queue_url(&url)
        .message_body("a\u{1}b")
        .send();
    assert_eq!(error_code(within(control).await), "InvalidMessageContents");
    let mut too_many = sqs.send_message().queue_url(&url).message_body("x");
    for i in 0..11 {
        too_many = too_many.message_attributes(format!("a{i}"), string("v"));
    }
    assert_eq!(
        error_code(within(too_many.send()).await),
        "InvalidParameterValue"
    );
    within(
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::MaximumMessageSize, "1024")
            .send(),
    )
    .await
    .expect("SetQueueAttributes");
    let big = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x".repeat(1025))
        .send();
    assert_eq!(error_code(within(big).await), "InvalidParameterValue");
    let handle = sqs
        .delete_message()
        .queue_url(&url)
        .receipt_handle("garbage")
        .send();
    assert_eq!(error_code(within(handle).await), "ReceiptHandleIsInvalid");
    let deduplicated = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_deduplication_id("d")
        .send();
    assert_eq!(
        error_code(within(deduplicated).await),
        "InvalidParameterValue"
    );
    let max = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(11)
        .send();
    assert_eq!(error_code(within(max).await), "InvalidParameterValue");
}

#[tokio::test]
async fn counts_follow_sends_receives_and_purges() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "counts").await;
    for body in ["a", "b", "c"] {
        within(sqs.send_message().queue_url(&url).message_body(body).send())
            .await
            .expect("SendMessage");
    }
    receive(&sqs, &url, 1, 60).await;
    let counts = within(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    let counts = counts.attributes().expect("attributes");
    assert_eq!(
        counts[&QueueAttributeName::ApproximateNumberOfMessages],
        "2"
    );
    assert_eq!(
        counts[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "1"
    );
    within(sqs.purge_queue().queue_url(&url).send())
        .await
        .expect("PurgeQueue");
    let counts = within(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send(),
    )
    .await
    .expect("GetQueueAttributes");
    let counts = counts.attributes().expect("attributes");
    assert_eq!(
        counts[&QueueAttributeName::ApproximateNumberOfMessages],
        "0"
    );
    assert_eq!(
        counts[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0"
    );
}

#[tokio::test]
async fn a_message_received_too_often_moves_to_the_dead_letter_queue() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let dlq = create_queue(&sqs, "dead").await;
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":"1"}"#;
    let source = within(
        sqs.create_queue()
            .queue_name("source")
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send(),
    )
    .await
    .expect("CreateQueue")
    .queue_url
    .expect("url");
    within(
        sqs.send_message()
            .queue_url(&source)
            .message_body("poison")
            .send(),
    )
    .await
    .expect("SendMessage");
    assert_eq!(receive(&sqs, &source, 1, 0).await.len(), 1);
    // Received once already: the second receive moves it instead.
    let again = within(
        sqs.receive_message()
            .queue_url(&source)
            .wait_time_seconds(1)
            .send(),
    )
    .await
    .expect("ReceiveMessage");
    assert!(again.messages().is_empty());
    let dead = receive(&sqs, &dlq, 1, 30).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("poison"));
    let sources = within(sqs.list_dead_letter_source_queues().queue_url(&dlq).send())
        .await
        .expect("ListDeadLetterSourceQueues");
    assert_eq!(sources.queue_urls(), [source]);
}

#[tokio::test]
async fn concurrent_long_polls_share_messages_without_duplicates() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "shared-poll").await;
    let pollers: Vec<_> = (0..5)
        .map(|_| {
            let (sqs, url) = (sqs.clone(), url.clone());
            tokio::spawn(async move {
                let answer = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(2)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                answer
                    .messages()
                    .iter()
                    .filter_map(|m| m.body().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        within(
            sqs.send_message()
                .queue_url(&url)
                .message_body(format!("m{i}"))
                .send(),
        )
        .await
        .expect("SendMessage");
    }
    let mut bodies = Vec::new();
    for poller in pollers {
        bodies.extend(within(poller).await.expect("task"));
    }
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn holding_queues_are_not_sqs_queues() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "hides").await;
    within(
        sqs.send_message()
            .queue_url(&url)
            .message_body("x")
            .delay_seconds(60)
            .send(),
    )
    .await
    .expect("SendMessage");
    let lookup = within(sqs.get_queue_url().queue_name("sqs-delay.hides").send()).await;
    assert_eq!(
        error_code(lookup),
        "AWS.SimpleQueueService.NonExistentQueue"
    );
    let listed = within(sqs.list_queues().send()).await.expect("ListQueues");
    assert_eq!(listed.queue_urls(), [url]);
}
