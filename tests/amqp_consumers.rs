//! Consuming: prefetch, acknowledgements and requeues with the redelivered flag, consumer
//! exclusivity and cancellation, basic.get and basic.recover.

mod common;

use common::{Broker, declare, get, next_delivery, publish, within};
use futures_util::StreamExt;
use lapin::Channel;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicQosOptions, BasicRecoverOptions, BasicRejectOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;

async fn consume_with(
    channel: &Channel,
    queue: &str,
    options: BasicConsumeOptions,
) -> lapin::Consumer {
    within(channel.basic_consume(queue.into(), "".into(), options, FieldTable::default()))
        .await
        .expect("basic.consume")
}

async fn consume(channel: &Channel, queue: &str) -> lapin::Consumer {
    consume_with(channel, queue, BasicConsumeOptions::default()).await
}

/// Declares `queue` and publishes `bodies` to it in order.
async fn fill(channel: &Channel, queue: &str, bodies: &[&[u8]]) {
    declare(channel, queue, FieldTable::default()).await;
    for body in bodies {
        publish(channel, "", queue, body).await;
    }
}

#[tokio::test]
async fn prefetch_limits_unacknowledged_deliveries() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "prefetch-q", &[b"1", b"2", b"3", b"4"]).await;
    within(channel.basic_qos(2, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&channel, "prefetch-q").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"1");
    assert_eq!(next_delivery(&mut consumer).await.data, b"2");
    // The third message was not pushed to the full consumer: it is still there to get.
    let other = within(connection.create_channel()).await.expect("channel");
    let third = get(&other, "prefetch-q").await.expect("a ready message");
    assert_eq!(third.delivery.data, b"3");
}

#[tokio::test]
async fn an_ack_frees_prefetch_credit() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "credit-q", &[b"1", b"2"]).await;
    within(channel.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&channel, "credit-q").await;
    let first = next_delivery(&mut consumer).await;
    within(first.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    assert_eq!(next_delivery(&mut consumer).await.data, b"2");
}

#[tokio::test]
async fn nack_with_requeue_redelivers_with_the_redelivered_flag() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "nack-q", &[b"again"]).await;
    let mut consumer = consume(&channel, "nack-q").await;
    let first = next_delivery(&mut consumer).await;
    assert!(!first.redelivered);
    let requeue = BasicNackOptions {
        multiple: false,
        requeue: true,
    };
    within(first.nack(requeue)).await.expect("nack");
    let second = next_delivery(&mut consumer).await;
    assert_eq!(second.data, b"again");
    assert!(second.redelivered);
}

#[tokio::test]
async fn reject_with_requeue_redelivers_with_the_redelivered_flag() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "reject-requeue-q", &[b"again"]).await;
    let mut consumer = consume(&channel, "reject-requeue-q").await;
    let first = next_delivery(&mut consumer).await;
    within(first.reject(BasicRejectOptions { requeue: true }))
        .await
        .expect("reject");
    let second = next_delivery(&mut consumer).await;
    assert!(second.redelivered);
}

#[tokio::test]
async fn reject_without_requeue_drops_the_message() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "reject-drop-q", &[b"unwanted"]).await;
    let options = BasicGetOptions { no_ack: false };
    let got = within(channel.basic_get("reject-drop-q".into(), options))
        .await
        .expect("get")
        .expect("a message");
    within(got.delivery.reject(BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    assert!(get(&channel, "reject-drop-q").await.is_none());
}

#[tokio::test]
async fn ack_multiple_settles_every_earlier_delivery() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "ack-multiple-q", &[b"1", b"2", b"3"]).await;
    let mut consumer = consume(&channel, "ack-multiple-q").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(next_delivery(&mut consumer).await);
    }
    let last = last.expect("three deliveries");
    within(channel.basic_ack(last.delivery_tag, BasicAckOptions { multiple: true }))
        .await
        .expect("ack");
    // Closing requeues whatever is still unacknowledged: nothing, if all three were acked.
    within(channel.close(200, "done".into()))
        .await
        .expect("close");
    let other = within(connection.create_channel()).await.expect("channel");
    assert!(get(&other, "ack-multiple-q").await.is_none());
}

#[tokio::test]
async fn nack_multiple_requeues_every_earlier_delivery_in_order() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "nack-multiple-q", &[b"1", b"2", b"3"]).await;
    let mut consumer = consume(&channel, "nack-multiple-q").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(next_delivery(&mut consumer).await);
    }
    let last = last.expect("three deliveries");
    let options = BasicNackOptions {
        multiple: true,
        requeue: true,
    };
    within(channel.basic_nack(last.delivery_tag, options))
        .await
        .expect("nack");
    for body in [b"1", b"2", b"3"] {
        let again = next_delivery(&mut consumer).await;
        assert_eq!(again.data, body);
        assert!(again.redelivered);
    }
}

#[tokio::test]
async fn unacknowledged_messages_return_when_their_channel_closes() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "abandoned-q", &[b"held"]).await;
    let mut consumer = consume(&channel, "abandoned-q").await;
    let held = next_delivery(&mut consumer).await;
    assert!(!held.redelivered);
    within(channel.close(200, "bye".into()))
        .await
        .expect("close");
    let other = within(connection.create_channel()).await.expect("channel");
    let back = get(&other, "abandoned-q").await.expect("requeued");
    assert_eq!(back.delivery.data, b"held");
    assert!(back.delivery.redelivered);
}

#[tokio::test]
async fn unacknowledged_messages_return_when_their_connection_closes() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "dropped-connection-q", &[b"held"]).await;
    let mut consumer = consume(&channel, "dropped-connection-q").await;
    next_delivery(&mut consumer).await;
    within(connection.close(200, "bye".into()))
        .await
        .expect("close");
    let (_other, channel) = broker.channel().await;
    let back = get(&channel, "dropped-connection-q")
        .await
        .expect("requeued");
    assert!(back.delivery.redelivered);
}

#[tokio::test]
async fn consumers_of_one_queue_take_turns() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "shared-q", FieldTable::default()).await;
    let mut first = consume(&channel, "shared-q").await;
    let other = within(connection.create_channel()).await.expect("channel");
    let mut second = consume(&other, "shared-q").await;
    for body in [b"a", b"b", b"c", b"d"] {
        publish(&channel, "", "shared-q", body).await;
    }
    // Each consumer gets two; if one got everything, the other would wait in vain.
    let mut bodies = Vec::new();
    for consumer in [&mut first, &mut second] {
        for _ in 0..2 {
            bodies.push(next_delivery(consumer).await.data);
        }
    }
    bodies.sort();
    assert_eq!(bodies, [b"a", b"b", b"c", b"d"]);
}

#[tokio::test]
async fn an_exclusive_consumer_leaves_room_once_cancelled() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "exclusive-turn-q", &[b"first"]).await;
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    let mut sole = consume_with(&channel, "exclusive-turn-q", exclusive).await;
    let delivery = next_delivery(&mut sole).await;
    within(delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    within(channel.basic_cancel(sole.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    let mut next = consume(&channel, "exclusive-turn-q").await;
    publish(&channel, "", "exclusive-turn-q", b"second").await;
    assert_eq!(next_delivery(&mut next).await.data, b"second");
}

#[tokio::test]
async fn cancel_ends_the_consumer_and_leaves_messages_queued() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "cancelled-q", FieldTable::default()).await;
    let mut consumer = consume(&channel, "cancelled-q").await;
    assert!(consumer.tag().as_str().starts_with("amq.ctag-"));
    within(channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    assert!(within(consumer.next()).await.is_none(), "the stream ends");
    publish(&channel, "", "cancelled-q", b"for later").await;
    let waiting = get(&channel, "cancelled-q").await.expect("still queued");
    assert_eq!(waiting.delivery.data, b"for later");
}

#[tokio::test]
async fn an_ack_after_cancel_still_settles() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "late-ack-q", &[b"slow"]).await;
    let mut consumer = consume(&channel, "late-ack-q").await;
    let delivery = next_delivery(&mut consumer).await;
    within(channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    within(delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    within(channel.close(200, "done".into()))
        .await
        .expect("close without error");
    let other = within(connection.create_channel()).await.expect("channel");
    assert!(get(&other, "late-ack-q").await.is_none(), "the ack counted");
}

#[tokio::test]
async fn deleting_a_queue_cancels_its_consumers() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "doomed-q", FieldTable::default()).await;
    let mut consumer = consume(&channel, "doomed-q").await;
    let other = within(connection.create_channel()).await.expect("channel");
    within(other.queue_delete("doomed-q".into(), QueueDeleteOptions::default()))
        .await
        .expect("delete");
    // lapin ends the stream when the broker sends basic.cancel.
    assert!(within(consumer.next()).await.is_none());
    assert!(channel.status().connected(), "only the consumer ends");
}

#[tokio::test]
async fn no_ack_deliveries_are_settled_on_sending() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "no-ack-q", &[b"fire", b"forget"]).await;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut consumer = consume_with(&channel, "no-ack-q", no_ack).await;
    next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    within(channel.close(200, "done".into()))
        .await
        .expect("close");
    let other = within(connection.create_channel()).await.expect("channel");
    assert!(get(&other, "no-ack-q").await.is_none(), "nothing requeued");
}

#[tokio::test]
async fn basic_get_on_an_empty_queue_returns_nothing() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "empty-q", FieldTable::default()).await;
    assert!(get(&channel, "empty-q").await.is_none());
}

#[tokio::test]
async fn basic_get_reports_the_messages_left() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "counting-get-q", &[b"1", b"2", b"3"]).await;
    let first = get(&channel, "counting-get-q").await.expect("a message");
    assert_eq!(first.delivery.data, b"1");
    assert_eq!(first.message_count, 2);
}

#[tokio::test]
async fn an_unacknowledged_get_returns_when_the_channel_closes() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    fill(&channel, "held-get-q", &[b"held"]).await;
    let options = BasicGetOptions { no_ack: false };
    let got = within(channel.basic_get("held-get-q".into(), options))
        .await
        .expect("get")
        .expect("a message");
    assert!(!got.delivery.redelivered);
    within(channel.close(200, "bye".into()))
        .await
        .expect("close");
    let other = within(connection.create_channel()).await.expect("channel");
    let back = get(&other, "held-get-q").await.expect("requeued");
    assert!(back.delivery.redelivered);
}

#[tokio::test]
async fn basic_recover_redelivers_unacknowledged_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    fill(&channel, "recover-q", &[b"1", b"2"]).await;
    let mut consumer = consume(&channel, "recover-q").await;
    next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    within(channel.basic_recover(BasicRecoverOptions { requeue: true }))
        .await
        .expect("recover-ok");
    for body in [b"1", b"2"] {
        let again = next_delivery(&mut consumer).await;
        assert_eq!(again.data, body);
        assert!(again.redelivered);
    }
}
