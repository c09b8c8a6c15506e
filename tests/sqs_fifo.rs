//! SQS FIFO queues through the AWS SDK: group order with one in-flight batch per group,
//! deduplication (explicit and content-based, per queue and per group), sequence numbers, the
//! FIFO errors, and the same group rule for AMQP consumers of the queue.

mod common;

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use common::sqs::{client, error_code};
use common::{Broker, get, next_delivery, within};
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;

async fn create_fifo(
    sqs: &Client,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> String {
    let mut request = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true");
    for (name, value) in attributes {
        request = request.attributes(name.clone(), *value);
    }
    within(request.send())
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL")
}

async fn send(sqs: &Client, url: &str, body: &str, group: &str, dedup: &str) -> (String, String) {
    let sent = within(
        sqs.send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .send(),
    )
    .await
    .expect("SendMessage");
    (
        sent.message_id().expect("id").to_owned(),
        sent.sequence_number().expect("sequence number").to_owned(),
    )
}

async fn receive(sqs: &Client, url: &str, max: i32) -> Vec<aws_sdk_sqs::types::Message> {
    within(
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send(),
    )
    .await
    .expect("ReceiveMessage")
    .messages
    .unwrap_or_default()
}

fn bodies(messages: &[aws_sdk_sqs::types::Message]) -> Vec<&str> {
    messages.iter().filter_map(|m| m.body()).collect()
}

async fn delete(sqs: &Client, url: &str, messages: &[aws_sdk_sqs::types::Message]) {
    for message in messages {
        let handle = message.receipt_handle().expect("handle");
        within(
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send(),
        )
        .await
        .expect("DeleteMessage");
    }
}

#[tokio::test]
async fn a_group_is_delivered_in_order_one_batch_at_a_time() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(&sqs, "orders.fifo", &[]).await;
    for (body, group) in [
        ("a1", "a"),
        ("b1", "b"),
        ("a2", "a"),
        ("a3", "a"),
        ("b2", "b"),
    ] {
        send(&sqs, &url, body, group, body).await;
    }

    // The first receive takes a1 and as much more as it may; groups keep their order.
    let first = receive(&sqs, &url, 2).await;
    assert_eq!(bodies(&first), ["a1", "b1"]);
    // While a1 and b1 are in flight, nobody else gets anything of groups a and b.
    assert!(receive(&sqs, &url, 10).await.is_empty());

    // Deleting a1 frees group a only; b stays held by b1.
    delete(&sqs, &url, &first[..1]).await;
    let second = receive(&sqs, &url, 10).await;
    assert_eq!(bodies(&second), ["a2", "a3"]);

    // Making b1 visible again frees group b, and b1 comes back before b2.
    let b1 = first[1].receipt_handle().expect("handle");
    within(
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(b1)
            .visibility_timeout(0)
            .send(),
    )
    .await
    .expect("ChangeMessageVisibility");
    let third = receive(&sqs, &url, 10).await;
    assert_eq!(bodies(&third), ["b1", "b2"]);
    let system = third[0].attributes().expect("system attributes");
    assert_eq!(
        system
            .get(&MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some("b")
    );
    assert_eq!(
        system
            .get(&MessageSystemAttributeName::MessageDeduplicationId)
            .map(String::as_str),
        Some("b1")
    );
    assert_eq!(
        system
            .get(&MessageSystemAttributeName::ApproximateReceiveCount)
            .map(String::as_str),
        Some("2")
    );
    let sequence = system
        .get(&MessageSystemAttributeName::SequenceNumber)
        .expect("a sequence number");
    assert_eq!(sequence.len(), 20);
    assert!(
        third[0].message_attributes().is_none(),
        "FIFO fields are not message attributes"
    );
}

#[tokio::test]
async fn duplicates_are_answered_like_the_first_send_and_not_enqueued() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(&sqs, "dedup.fifo", &[]).await;
    let (id, sequence) = send(&sqs, &url, "one", "g", "d-1").await;
    // Same id, other body and group: still a duplicate (the scope is the queue).
    let again = send(&sqs, &url, "two", "h", "d-1").await;
    assert_eq!(again, (id.clone(), sequence.clone()));
    let (_, later) = send(&sqs, &url, "three", "g", "d-2").await;
    assert!(
        later > sequence,
        "sequence numbers increase: {later} after {sequence}"
    );

    // A batch repeating an id, within itself and from before.
    let entry = |id: &str, body: &str, dedup: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .message_group_id("g")
            .message_deduplication_id(dedup)
            .build()
            .expect("entry")
    };
    let batch = within(
        sqs.send_message_batch()
            .queue_url(&url)
            .entries(entry("x", "four", "d-3"))
            .entries(entry("y", "five", "d-3"))
            .entries(entry("z", "six", "d-1"))
            .send(),
    )
    .await
    .expect("SendMessageBatch");
    let ids: HashMap<&str, &str> = batch
        .successful()
        .iter()
        .map(|e| (e.id(), e.message_id()))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids["x"], ids["y"]);
    assert_eq!(ids["z"], id);

    let mut got = Vec::new();
    loop {
        let messages = receive(&sqs, &url, 10).await;
        if messages.is_empty() {
            break;
        }
        got.extend(bodies(&messages).into_iter().map(str::to_owned));
        delete(&sqs, &url, &messages).await;
    }
    got.sort();
    assert_eq!(got, ["four", "one", "three"]);
}

#[tokio::test]
async fn content_based_and_per_group_deduplication() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(
        &sqs,
        "content.fifo",
        &[
            (QueueAttributeName::ContentBasedDeduplication, "true"),
            (QueueAttributeName::DeduplicationScope, "messageGroup"),
            (QueueAttributeName::FifoThroughputLimit, "perMessageGroupId"),
        ],
    )
    .await;
    let send_plain = |body: &'static str, group: &'static str| {
        let sqs = sqs.clone();
        let url = url.clone();
        async move {
            within(
                sqs.send_message()
                    .queue_url(url)
                    .message_body(body)
                    .message_group_id(group)
                    .send(),
            )
            .await
            .expect("SendMessage")
            .message_id
            .expect("id")
        }
    };
    let first = send_plain("same", "g").await;
    assert_eq!(
        send_plain("same", "g").await,
        first,
        "same body, same group"
    );
    assert_ne!(
        send_plain("same", "h").await,
        first,
        "another group is another scope"
    );

    let attributes = within(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send(),
    )
    .await
    .expect("GetQueueAttributes")
    .attributes
    .expect("attributes");
    assert_eq!(attributes[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(
        attributes[&QueueAttributeName::ContentBasedDeduplication],
        "true"
    );
    assert_eq!(
        attributes[&QueueAttributeName::DeduplicationScope],
        "messageGroup"
    );
    assert_eq!(
        attributes[&QueueAttributeName::ApproximateNumberOfMessages],
        "2"
    );
}

#[tokio::test]
async fn fifo_sends_are_checked_with_aws_errors() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(&sqs, "strict.fifo", &[]).await;

    let no_group = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_deduplication_id("d")
        .send()
        .await;
    assert_eq!(error_code(no_group), "MissingParameter");
    let no_dedup = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .send()
        .await;
    assert_eq!(error_code(no_dedup), "InvalidParameterValue");
    let per_message_delay = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .message_deduplication_id("d")
        .delay_seconds(5)
        .send()
        .await;
    assert_eq!(error_code(per_message_delay), "InvalidParameterValue");
    let bad_group = sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("a group")
        .message_deduplication_id("d")
        .send()
        .await;
    assert_eq!(error_code(bad_group), "InvalidParameterValue");
}

/// Names and types must agree; FIFO attributes belong to FIFO queues; standard queues take a
/// MessageGroupId (fair queues) but no deduplication id.
#[tokio::test]
async fn queue_types_are_checked_with_aws_errors() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    create_fifo(&sqs, "strict.fifo", &[]).await;
    let fifo_without_suffix = sqs
        .create_queue()
        .queue_name("plain")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await;
    assert_eq!(error_code(fifo_without_suffix), "InvalidParameterValue");
    let suffix_without_fifo = sqs.create_queue().queue_name("plain.fifo").send().await;
    assert_eq!(error_code(suffix_without_fifo), "InvalidParameterValue");
    let standard = common::sqs::create_queue(&sqs, "standard").await;
    let dedup_on_standard = sqs
        .set_queue_attributes()
        .queue_url(&standard)
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await;
    assert_eq!(error_code(dedup_on_standard), "InvalidAttributeName");
    let recreate_as_other_type = sqs
        .create_queue()
        .queue_name("strict.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await;
    assert_eq!(error_code(recreate_as_other_type), "QueueAlreadyExists");

    within(
        sqs.send_message()
            .queue_url(&standard)
            .message_body("fair")
            .message_group_id("tenant-1")
            .send(),
    )
    .await
    .expect("a group id on a standard queue");
    let dedup_on_standard = sqs
        .send_message()
        .queue_url(&standard)
        .message_body("x")
        .message_deduplication_id("d")
        .send()
        .await;
    assert_eq!(error_code(dedup_on_standard), "InvalidParameterValue");
}

/// The group rule lives in the core, so AMQP clients of an SQS FIFO queue follow it too: while
/// a consumer holds messages of a group unacknowledged, nobody else gets that group.
#[tokio::test]
async fn amqp_clients_of_a_fifo_queue_follow_the_groups() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(&sqs, "shared.fifo", &[]).await;
    for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
        send(&sqs, &url, body, group, body).await;
    }
    let (_connection, channel) = broker.channel().await;
    within(channel.basic_qos(4, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = within(channel.basic_consume(
        "shared.fifo".into(),
        "holder".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(next_delivery(&mut consumer).await);
    }
    let order: Vec<&[u8]> = taken.iter().map(|d| d.data.as_slice()).collect();
    assert_eq!(order, [b"a1", b"a2", b"b1", b"b2"]);
    let group = taken[0]
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-message-group-id").cloned());
    assert!(group.is_some(), "the group is visible to AMQP consumers");

    // The consumer lets group a go and keeps b1 and b2 unacknowledged.
    for delivery in &taken[..2] {
        within(delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    within(channel.basic_cancel("holder".into(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    send(&sqs, &url, "b3", "b", "b3").await;
    send(&sqs, &url, "a3", "a", "a3").await;

    // Another client gets a3, the newer message, not b3: group b is still held.
    let (_other_connection, other) = broker.channel().await;
    let got = get(&other, "shared.fifo").await.expect("a3");
    assert_eq!(got.delivery.data, b"a3");
    assert!(
        get(&other, "shared.fifo").await.is_none(),
        "b3 waits for its group"
    );
    // An SQS receive follows the same rule.
    assert!(receive(&sqs, &url, 10).await.is_empty());

    for delivery in &taken[2..] {
        within(delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack after cancel");
    }
    let mut freed = None;
    for _ in 0..50 {
        freed = get(&other, "shared.fifo").await;
        if freed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(freed.expect("b3 once b is free").delivery.data, b"b3");
}

/// A receive retried with the same ReceiveRequestAttemptId (its answer lost on the way) gets
/// the same messages and receipt handles, although they are in flight; once one of them is
/// deleted, the attempt id no longer brings them back.
#[tokio::test]
async fn a_retried_receive_attempt_gets_the_same_messages() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_fifo(&sqs, "retry.fifo", &[]).await;
    for body in ["m1", "m2"] {
        send(&sqs, &url, body, "g", body).await;
    }
    let attempt = |id: &'static str| {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            within(
                sqs.receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .receive_request_attempt_id(id)
                    .send(),
            )
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
        }
    };
    let first = attempt("attempt-1").await;
    assert_eq!(bodies(&first), ["m1", "m2"]);
    let retry = attempt("attempt-1").await;
    assert_eq!(bodies(&retry), ["m1", "m2"]);
    let handles = |m: &[aws_sdk_sqs::types::Message]| {
        m.iter()
            .filter_map(|m| m.receipt_handle().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(handles(&retry), handles(&first));
    assert!(
        attempt("attempt-2").await.is_empty(),
        "another attempt waits"
    );

    delete(&sqs, &url, &first[..1]).await;
    assert!(
        attempt("attempt-1").await.is_empty(),
        "a changed answer is not replayed"
    );
}
