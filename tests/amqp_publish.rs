//! Publishing guarantees: publisher confirms (acks, multiple acks, nacks), mandatory messages
//! and basic.return, and transactions.

mod common;

use std::collections::BTreeSet;

use bytes::BytesMut;
use common::raw::{self, RawClient};
use common::{Broker, assert_reply, declare, get, publish, table, text, within};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::protocol::{AMQPClass, basic};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind, PublisherConfirm};

const NO_ROUTE: u16 = 312;
const PRECONDITION_FAILED: u16 = 406;

async fn confirming(broker: &Broker) -> (lapin::Connection, Channel) {
    let (connection, channel) = broker.channel().await;
    within(channel.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm.select");
    (connection, channel)
}

async fn send(channel: &Channel, exchange: &str, key: &str, mandatory: bool) -> PublisherConfirm {
    let options = BasicPublishOptions {
        mandatory,
        ..BasicPublishOptions::default()
    };
    within(channel.basic_publish(
        exchange.into(),
        key.into(),
        options,
        b"payload",
        BasicProperties::default(),
    ))
    .await
    .expect("basic.publish")
}

async fn confirmation(confirm: PublisherConfirm) -> Confirmation {
    within(confirm).await.expect("a confirm")
}

/// A queue that refuses a second message.
fn refusing() -> FieldTable {
    table(&[
        ("x-max-length", AMQPValue::LongLongInt(1)),
        ("x-overflow", text("reject-publish")),
    ])
}

#[tokio::test]
async fn a_routed_message_is_confirmed() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    declare(&channel, "confirmed-q", FieldTable::default()).await;
    let confirm = send(&channel, "", "confirmed-q", false).await;
    assert_eq!(confirmation(confirm).await, Confirmation::Ack(None));
}

#[tokio::test]
async fn every_publish_is_confirmed() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    declare(&channel, "many-confirmed-q", FieldTable::default()).await;
    let mut confirms = Vec::new();
    for _ in 0..500 {
        confirms.push(send(&channel, "", "many-confirmed-q", false).await);
    }
    for confirm in confirms {
        assert!(confirmation(confirm).await.is_ack());
    }
}

#[tokio::test]
async fn runs_of_confirms_are_acked_with_multiple() {
    const COUNT: u64 = 50;
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "multiple-q", FieldTable::default()).await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.confirm_select(1).await;
    let bodies = vec![b"m".as_slice(); COUNT as usize];
    let mut octets = BytesMut::new();
    raw::encode_publishes(1, "multiple-q", &bodies, &mut octets);
    raw.send(&octets).await;
    let mut confirmed = BTreeSet::new();
    let mut saw_multiple = false;
    while confirmed.len() < COUNT as usize {
        let (_, method) = raw.next_method().await;
        let AMQPClass::Basic(basic::AMQPMethod::Ack(ack)) = method else {
            panic!("expected basic.ack, got {method:?}");
        };
        let first = if ack.multiple { 1 } else { ack.delivery_tag };
        let newly: Vec<u64> = (first..=ack.delivery_tag)
            .filter(|tag| !confirmed.contains(tag))
            .collect();
        assert!(!newly.is_empty(), "ack {ack:?} confirms nothing new");
        saw_multiple |= ack.multiple;
        confirmed.extend(newly);
    }
    assert_eq!(confirmed, (1..=COUNT).collect::<BTreeSet<_>>());
    assert!(saw_multiple, "a run of confirms is acked at once");
}

#[tokio::test]
async fn a_refused_message_is_nacked() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    declare(&channel, "full-confirm-q", refusing()).await;
    let first = send(&channel, "", "full-confirm-q", false).await;
    let second = send(&channel, "", "full-confirm-q", false).await;
    assert!(confirmation(first).await.is_ack());
    assert!(confirmation(second).await.is_nack());
}

#[tokio::test]
async fn a_message_is_nacked_if_any_of_its_queues_refuses_it() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    within(channel.exchange_declare(
        "split-x".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("declare exchange");
    declare(&channel, "split-open-q", FieldTable::default()).await;
    declare(&channel, "split-full-q", refusing()).await;
    for queue in ["split-open-q", "split-full-q"] {
        within(channel.queue_bind(
            queue.into(),
            "split-x".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .expect("bind");
    }
    let both = send(&channel, "split-x", "", false).await;
    assert!(confirmation(both).await.is_ack());
    let one_refuses = send(&channel, "split-x", "", false).await;
    assert!(confirmation(one_refuses).await.is_nack());
}

#[tokio::test]
async fn an_unroutable_message_is_still_confirmed() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    let confirm = send(&channel, "amq.direct", "nobody-listens", false).await;
    assert_eq!(confirmation(confirm).await, Confirmation::Ack(None));
}

#[tokio::test]
async fn a_mandatory_unroutable_message_is_returned_before_its_ack() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    let confirm = send(&channel, "amq.direct", "nobody-listens", true).await;
    let Confirmation::Ack(Some(returned)) = confirmation(confirm).await else {
        panic!("expected an ack carrying the returned message");
    };
    assert_eq!(returned.reply_code, NO_ROUTE);
    assert_eq!(returned.delivery.data, b"payload");
    assert_eq!(returned.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(returned.delivery.routing_key.as_str(), "nobody-listens");
}

#[tokio::test]
async fn a_mandatory_unroutable_message_is_returned_without_confirms() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    send(&channel, "", "no-such-queue", true).await;
    // A synchronous round trip: the return was sent before its reply.
    declare(&channel, "returns-sync-q", FieldTable::default()).await;
    let returned = within(channel.wait_for_confirms()).await.expect("returns");
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].reply_code, NO_ROUTE);
    assert_eq!(returned[0].delivery.routing_key.as_str(), "no-such-queue");
}

#[tokio::test]
async fn a_routable_mandatory_message_is_not_returned() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    declare(&channel, "mandatory-ok-q", FieldTable::default()).await;
    let confirm = send(&channel, "", "mandatory-ok-q", true).await;
    assert_eq!(confirmation(confirm).await, Confirmation::Ack(None));
}

async fn transactional(broker: &Broker, queue: &str) -> (lapin::Connection, Channel, Channel) {
    let (connection, channel) = broker.channel().await;
    declare(&channel, queue, FieldTable::default()).await;
    within(channel.tx_select()).await.expect("tx.select");
    let observer = within(connection.create_channel()).await.expect("channel");
    (connection, channel, observer)
}

#[tokio::test]
async fn a_transaction_publishes_on_commit() {
    let broker = Broker::start().await;
    let (_connection, tx, observer) = transactional(&broker, "tx-commit-q").await;
    publish(&tx, "", "tx-commit-q", b"held back").await;
    assert!(
        get(&observer, "tx-commit-q").await.is_none(),
        "not before commit"
    );
    within(tx.tx_commit()).await.expect("commit");
    let message = get(&observer, "tx-commit-q").await.expect("after commit");
    assert_eq!(message.delivery.data, b"held back");
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let broker = Broker::start().await;
    let (_connection, tx, observer) = transactional(&broker, "tx-rollback-q").await;
    publish(&tx, "", "tx-rollback-q", b"discarded").await;
    within(tx.tx_rollback()).await.expect("rollback");
    publish(&tx, "", "tx-rollback-q", b"kept").await;
    within(tx.tx_commit()).await.expect("commit");
    let message = get(&observer, "tx-rollback-q").await.expect("one message");
    assert_eq!(message.delivery.data, b"kept");
    assert!(get(&observer, "tx-rollback-q").await.is_none());
}

#[tokio::test]
async fn an_ack_in_a_transaction_counts_on_commit() {
    let broker = Broker::start().await;
    let (connection, tx, observer) = transactional(&broker, "tx-ack-q").await;
    publish(&observer, "", "tx-ack-q", b"work").await;
    let options = BasicGetOptions { no_ack: false };
    let got = within(tx.basic_get("tx-ack-q".into(), options))
        .await
        .expect("get")
        .expect("a message");
    within(got.delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    within(tx.tx_commit()).await.expect("commit");
    within(tx.close(200, "done".into())).await.expect("close");
    let check = within(connection.create_channel()).await.expect("channel");
    assert!(
        get(&check, "tx-ack-q").await.is_none(),
        "the ack was applied"
    );
}

#[tokio::test]
async fn a_rolled_back_ack_leaves_the_message_unacknowledged() {
    let broker = Broker::start().await;
    let (connection, tx, observer) = transactional(&broker, "tx-unack-q").await;
    publish(&observer, "", "tx-unack-q", b"work").await;
    let options = BasicGetOptions { no_ack: false };
    let got = within(tx.basic_get("tx-unack-q".into(), options))
        .await
        .expect("get")
        .expect("a message");
    within(got.delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    within(tx.tx_rollback()).await.expect("rollback");
    // Still unacknowledged: closing the channel gives it back.
    within(tx.close(200, "done".into())).await.expect("close");
    let check = within(connection.create_channel()).await.expect("channel");
    let back = get(&check, "tx-unack-q").await.expect("requeued");
    assert!(back.delivery.redelivered);
}

#[tokio::test]
async fn an_unknown_delivery_tag_in_a_transaction_is_406_at_once() {
    let broker = Broker::start().await;
    let (connection, tx, _observer) = transactional(&broker, "tx-bad-tag-q").await;
    let mut events = connection.events_listener();
    within(tx.basic_ack(99, BasicAckOptions::default()))
        .await
        .expect("ack is sent");
    // RabbitMQ checks the tag when the ack arrives, not at commit.
    let error = common::next_error(&mut events).await;
    assert_eq!(common::reply_code(&error), Some(PRECONDITION_FAILED));
}

#[tokio::test]
async fn tx_select_on_a_confirming_channel_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = confirming(&broker).await;
    assert_reply(within(channel.tx_select()).await, PRECONDITION_FAILED);
}

#[tokio::test]
async fn tx_commit_without_tx_select_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    assert_reply(within(channel.tx_commit()).await, PRECONDITION_FAILED);
}
