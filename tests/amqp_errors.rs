//! Channel-level (soft) errors: each closes only its channel with the reply code RabbitMQ uses,
//! and the connection carries on.

mod common;

use common::{
    Broker, assert_reply, assert_round_trip, declare, next_error, publish, reply_code, table, text,
    within,
};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

const NOT_FOUND: u16 = 404;
const RESOURCE_LOCKED: u16 = 405;
const PRECONDITION_FAILED: u16 = 406;
const ACCESS_REFUSED: u16 = 403;

async fn consume(
    channel: &Channel,
    queue: &str,
    options: BasicConsumeOptions,
) -> lapin::Result<lapin::Consumer> {
    within(channel.basic_consume(queue.into(), "".into(), options, FieldTable::default())).await
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
) -> lapin::Result<()> {
    within(channel.exchange_declare(name.into(), kind, options, FieldTable::default())).await
}

#[tokio::test]
async fn passive_declare_of_a_missing_queue_is_404() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared =
        within(channel.queue_declare("missing-q".into(), options, FieldTable::default())).await;
    assert_reply(declared, NOT_FOUND);
    assert!(!channel.status().connected(), "the channel is closed");
    assert_round_trip(&connection, "after-404").await;
}

#[tokio::test]
async fn consuming_from_a_missing_queue_is_404() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let consumed = consume(&channel, "nobody-here", BasicConsumeOptions::default()).await;
    assert_reply(consumed, NOT_FOUND);
}

#[tokio::test]
async fn publishing_to_a_missing_exchange_is_404() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let mut events = connection.events_listener();
    publish(&channel, "no-such-exchange", "key", b"lost").await;
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(NOT_FOUND));
    assert_round_trip(&connection, "after-publish-404").await;
}

#[tokio::test]
async fn binding_to_a_missing_exchange_is_404() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "bind-missing-x", FieldTable::default()).await;
    let bound = within(channel.queue_bind(
        "bind-missing-x".into(),
        "no-such-exchange".into(),
        "key".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_reply(bound, NOT_FOUND);
}

#[tokio::test]
async fn declaring_another_connections_exclusive_queue_is_405() {
    let broker = Broker::start().await;
    let (_owner, owner_channel) = broker.channel().await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    within(owner_channel.queue_declare("owned-q".into(), exclusive, FieldTable::default()))
        .await
        .expect("owner declares");
    let (_other, other_channel) = broker.channel().await;
    let declared =
        within(other_channel.queue_declare("owned-q".into(), exclusive, FieldTable::default()))
            .await;
    assert_reply(declared, RESOURCE_LOCKED);
}

#[tokio::test]
async fn consuming_another_connections_exclusive_queue_is_405() {
    let broker = Broker::start().await;
    let (_owner, owner_channel) = broker.channel().await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    within(owner_channel.queue_declare("owned-consume-q".into(), exclusive, FieldTable::default()))
        .await
        .expect("owner declares");
    let (_other, other_channel) = broker.channel().await;
    let consumed = consume(
        &other_channel,
        "owned-consume-q",
        BasicConsumeOptions::default(),
    )
    .await;
    assert_reply(consumed, RESOURCE_LOCKED);
}

#[tokio::test]
async fn redeclaring_a_queue_with_other_arguments_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let ttl = |ms| table(&[("x-message-ttl", AMQPValue::LongInt(ms))]);
    declare(&channel, "redeclared-q", ttl(1000)).await;
    let declared = within(channel.queue_declare(
        "redeclared-q".into(),
        QueueDeclareOptions::default(),
        ttl(2000),
    ))
    .await;
    assert_reply(declared, PRECONDITION_FAILED);
}

#[tokio::test]
async fn redeclaring_an_exchange_with_another_type_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let options = ExchangeDeclareOptions::default();
    declare_exchange(&channel, "typed-x", ExchangeKind::Direct, options)
        .await
        .expect("first declare");
    let declared = declare_exchange(&channel, "typed-x", ExchangeKind::Fanout, options).await;
    assert_reply(declared, PRECONDITION_FAILED);
}

#[tokio::test]
async fn an_invalid_queue_argument_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let arguments = table(&[("x-overflow", text("drop-everything"))]);
    let declared = within(channel.queue_declare(
        "bad-arg-q".into(),
        QueueDeclareOptions::default(),
        arguments,
    ))
    .await;
    assert_reply(declared, PRECONDITION_FAILED);
}

#[tokio::test]
async fn acking_an_unknown_delivery_tag_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let mut events = connection.events_listener();
    within(channel.basic_ack(42, BasicAckOptions::default()))
        .await
        .expect("ack is sent");
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(PRECONDITION_FAILED));
    assert_round_trip(&connection, "after-ack-406").await;
}

#[tokio::test]
async fn acking_a_delivery_twice_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "double-ack-q", FieldTable::default()).await;
    publish(&channel, "", "double-ack-q", b"once").await;
    let mut consumer = consume(&channel, "double-ack-q", BasicConsumeOptions::default())
        .await
        .expect("consume");
    let delivery = common::next_delivery(&mut consumer).await;
    let mut events = connection.events_listener();
    for _ in 0..2 {
        within(channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()))
            .await
            .expect("ack is sent");
    }
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(PRECONDITION_FAILED));
}

#[tokio::test]
async fn deleting_a_non_empty_queue_with_if_empty_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "full-q", FieldTable::default()).await;
    publish(&channel, "", "full-q", b"still here").await;
    let options = QueueDeleteOptions {
        if_empty: true,
        ..QueueDeleteOptions::default()
    };
    let deleted = within(channel.queue_delete("full-q".into(), options)).await;
    assert_reply(deleted, PRECONDITION_FAILED);
    let check = within(connection.create_channel()).await.expect("channel");
    let message = common::get(&check, "full-q").await.expect("not deleted");
    assert_eq!(message.delivery.data, b"still here");
}

#[tokio::test]
async fn deleting_a_consumed_queue_with_if_unused_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "used-q", FieldTable::default()).await;
    let _consumer = consume(&channel, "used-q", BasicConsumeOptions::default())
        .await
        .expect("consume");
    let other = within(connection.create_channel()).await.expect("channel");
    let options = QueueDeleteOptions {
        if_unused: true,
        ..QueueDeleteOptions::default()
    };
    assert_reply(
        within(other.queue_delete("used-q".into(), options)).await,
        PRECONDITION_FAILED,
    );
}

#[tokio::test]
async fn deleting_a_bound_exchange_with_if_unused_is_406() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let options = ExchangeDeclareOptions::default();
    declare_exchange(&channel, "bound-x", ExchangeKind::Fanout, options)
        .await
        .expect("declare");
    declare(&channel, "bound-x-q", FieldTable::default()).await;
    within(channel.queue_bind(
        "bound-x-q".into(),
        "bound-x".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    let options = ExchangeDeleteOptions {
        if_unused: true,
        ..ExchangeDeleteOptions::default()
    };
    let deleted = within(channel.exchange_delete("bound-x".into(), options)).await;
    assert_reply(deleted, PRECONDITION_FAILED);
}

#[tokio::test]
async fn declaring_a_queue_named_amq_is_403() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let declared = within(channel.queue_declare(
        "amq.mine".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_reply(declared, ACCESS_REFUSED);
}

#[tokio::test]
async fn declaring_an_exchange_named_amq_is_403() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let options = ExchangeDeclareOptions::default();
    let declared = declare_exchange(&channel, "amq.mine", ExchangeKind::Topic, options).await;
    assert_reply(declared, ACCESS_REFUSED);
}

#[tokio::test]
async fn consuming_beside_an_exclusive_consumer_is_403() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "exclusive-consumer-q", FieldTable::default()).await;
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    let _first = consume(&channel, "exclusive-consumer-q", exclusive)
        .await
        .expect("exclusive consumer");
    let other = within(connection.create_channel()).await.expect("channel");
    let second = consume(
        &other,
        "exclusive-consumer-q",
        BasicConsumeOptions::default(),
    )
    .await;
    assert_reply(second, ACCESS_REFUSED);
}

#[tokio::test]
async fn an_exclusive_consume_beside_other_consumers_is_403() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "shared-consumer-q", FieldTable::default()).await;
    let _first = consume(
        &channel,
        "shared-consumer-q",
        BasicConsumeOptions::default(),
    )
    .await
    .expect("consumer");
    let other = within(connection.create_channel()).await.expect("channel");
    let exclusive = BasicConsumeOptions {
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    let second = consume(&other, "shared-consumer-q", exclusive).await;
    assert_reply(second, ACCESS_REFUSED);
}

#[tokio::test]
async fn publishing_to_an_internal_exchange_is_403() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let internal = ExchangeDeclareOptions {
        internal: true,
        ..ExchangeDeclareOptions::default()
    };
    declare_exchange(&channel, "internal-x", ExchangeKind::Fanout, internal)
        .await
        .expect("declare");
    let mut events = connection.events_listener();
    publish(&channel, "internal-x", "", b"refused").await;
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(ACCESS_REFUSED));
}

#[tokio::test]
async fn binding_to_the_default_exchange_is_403() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "default-bind-q", FieldTable::default()).await;
    let bound = within(channel.queue_bind(
        "default-bind-q".into(),
        "".into(),
        "default-bind-q".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_reply(bound, ACCESS_REFUSED);
}

#[tokio::test]
async fn a_user_id_other_than_the_login_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "user-id-q", FieldTable::default()).await;
    let mut events = connection.events_listener();
    let properties = BasicProperties::default().with_user_id("mallory".into());
    common::publish_with(&channel, "", "user-id-q", b"forged", properties).await;
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(PRECONDITION_FAILED));
}

#[tokio::test]
async fn an_expiration_that_is_not_a_number_is_406() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "bad-expiration-q", FieldTable::default()).await;
    let mut events = connection.events_listener();
    let properties = BasicProperties::default().with_expiration("soon".into());
    common::publish_with(&channel, "", "bad-expiration-q", b"when", properties).await;
    let error = next_error(&mut events).await;
    assert_eq!(reply_code(&error), Some(PRECONDITION_FAILED));
}

#[tokio::test]
async fn a_channel_error_leaves_other_channels_working() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let bystander = within(connection.create_channel()).await.expect("channel");
    declare(&bystander, "bystander-q", FieldTable::default()).await;
    let mut consumer = consume(&bystander, "bystander-q", BasicConsumeOptions::default())
        .await
        .expect("consume");
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let failed =
        within(channel.queue_declare("absent-q".into(), options, FieldTable::default())).await;
    assert_reply(failed, NOT_FOUND);
    publish(&bystander, "", "bystander-q", b"unaffected").await;
    let delivery = common::next_delivery(&mut consumer).await;
    assert_eq!(delivery.data, b"unaffected");
    assert!(connection.status().connected());
}
