//! Queue features: TTL, expiry, length limits and overflow, dead-lettering with `x-death`,
//! priorities, exclusive, auto-delete and server-named queues.

mod common;

use bytes::BytesMut;
use common::raw::{self, RawClient};
use common::{
    Broker, declare, drain, eventually, get, next_delivery, publish, publish_with, table, text,
    within,
};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicRejectOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPClass, basic};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use mqbridge_amqp::codec::{self, Frame};

const NOT_FOUND: u16 = 404;

fn int(value: i64) -> AMQPValue {
    AMQPValue::LongLongInt(value)
}

fn field<'a>(table: &'a FieldTable, name: &str) -> Option<&'a AMQPValue> {
    table
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)
        .map(|(_, value)| value)
}

fn as_text(value: Option<&AMQPValue>) -> Option<String> {
    match value? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header(delivery: &Delivery, name: &str) -> Option<AMQPValue> {
    let headers = delivery.properties.headers().as_ref()?;
    field(headers, name).cloned()
}

/// The `x-death` entries of a dead-lettered delivery, newest first.
fn x_death(delivery: &Delivery) -> Vec<FieldTable> {
    let Some(AMQPValue::FieldArray(items)) = header(delivery, "x-death") else {
        panic!("no x-death array in {:?}", delivery.properties);
    };
    items
        .as_slice()
        .iter()
        .map(|item| match item {
            AMQPValue::FieldTable(death) => death.clone(),
            other => panic!("x-death entry is not a table: {other:?}"),
        })
        .collect()
}

fn death_count(death: &FieldTable) -> Option<i64> {
    match field(death, "count")? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// Declares `queue` dead-lettering to the default exchange with routing key `dead`, declares
/// `dead` and starts consuming it.
async fn with_dead_letters(
    channel: &Channel,
    queue: &str,
    dead: &str,
    mut arguments: FieldTable,
) -> lapin::Consumer {
    arguments.insert("x-dead-letter-exchange".into(), text(""));
    arguments.insert("x-dead-letter-routing-key".into(), text(dead));
    declare(channel, queue, arguments).await;
    declare(channel, dead, FieldTable::default()).await;
    consume(channel, dead).await
}

async fn consume(channel: &Channel, queue: &str) -> lapin::Consumer {
    within(channel.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume")
}

async fn queue_exists(connection: &Connection, name: &str) -> bool {
    let channel = within(connection.create_channel()).await.expect("channel");
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match within(channel.queue_declare(name.into(), options, FieldTable::default())).await {
        Ok(_) => true,
        Err(error) if common::reply_code(&error) == Some(NOT_FOUND) => false,
        Err(error) => panic!("passive declare failed: {error:?}"),
    }
}

#[tokio::test]
async fn a_message_past_the_queue_ttl_is_dead_lettered_as_expired() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let ttl = table(&[("x-message-ttl", int(50))]);
    let mut dead = with_dead_letters(&channel, "ttl-q", "ttl-dead", ttl).await;
    publish(&channel, "", "ttl-q", b"stale").await;
    let delivery = next_delivery(&mut dead).await;
    assert_eq!(delivery.data, b"stale");
    assert_eq!(delivery.routing_key.as_str(), "ttl-dead");
    let deaths = x_death(&delivery);
    assert_eq!(
        as_text(field(&deaths[0], "reason")).as_deref(),
        Some("expired")
    );
    assert!(get(&channel, "ttl-q").await.is_none());
}

#[tokio::test]
async fn a_per_message_expiration_expires_the_message() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let mut dead = with_dead_letters(&channel, "expiring-q", "expiring-dead", table(&[])).await;
    let properties = BasicProperties::default().with_expiration("50".into());
    publish_with(&channel, "", "expiring-q", b"brief", properties).await;
    let delivery = next_delivery(&mut dead).await;
    let deaths = x_death(&delivery);
    assert_eq!(
        as_text(field(&deaths[0], "reason")).as_deref(),
        Some("expired")
    );
    assert_eq!(
        as_text(field(&deaths[0], "original-expiration")).as_deref(),
        Some("50")
    );
    assert_eq!(delivery.properties.expiration(), &None);
}

#[tokio::test]
async fn only_messages_with_a_ttl_expire() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let mut dead = with_dead_letters(&channel, "mixed-ttl-q", "mixed-ttl-dead", table(&[])).await;
    publish(&channel, "", "mixed-ttl-q", b"keeper").await;
    let properties = BasicProperties::default().with_expiration("0".into());
    publish_with(&channel, "", "mixed-ttl-q", b"gone", properties).await;
    // The kept message stays at the head, so the one behind it expires only when it reaches
    // the head: RabbitMQ's rule. Taking the head lets the other expire.
    let head = get(&channel, "mixed-ttl-q")
        .await
        .expect("the kept message");
    assert_eq!(head.delivery.data, b"keeper");
    let delivery = next_delivery(&mut dead).await;
    assert_eq!(delivery.data, b"gone");
}

#[tokio::test]
async fn an_unused_queue_expires() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    // Long enough to see the queue before it goes, even on a loaded machine.
    declare(&channel, "unused-q", table(&[("x-expires", int(500))])).await;
    assert!(queue_exists(&connection, "unused-q").await);
    eventually("the unused queue is deleted", || async {
        !queue_exists(&connection, "unused-q").await
    })
    .await;
}

#[tokio::test]
async fn max_length_drops_the_oldest_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "capped-q", table(&[("x-max-length", int(2))])).await;
    for body in [b"one", b"two", b"six"] {
        publish(&channel, "", "capped-q", body).await;
    }
    assert_eq!(drain(&channel, "capped-q").await, [b"two", b"six"]);
}

#[tokio::test]
async fn max_length_holds_for_a_get_in_the_same_burst() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "burst-q", table(&[("x-max-length", int(2))])).await;
    // One write, so that the queue sees the publishes and the get together.
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    let mut octets = BytesMut::new();
    raw::encode_publishes(1, "burst-q", &[b"one", b"two", b"six"], &mut octets);
    let get = basic::Get {
        queue: "burst-q".into(),
        no_ack: true,
    };
    codec::encode_method(
        1,
        &AMQPClass::Basic(basic::AMQPMethod::Get(get)),
        &mut octets,
    )
    .expect("encode");
    raw.send(&octets).await;
    let (_, get_ok) = raw.next_method().await;
    let AMQPClass::Basic(basic::AMQPMethod::GetOk(get_ok)) = get_ok else {
        panic!("expected basic.get-ok, got {get_ok:?}");
    };
    assert_eq!(
        get_ok.message_count, 1,
        "the queue never held more than two"
    );
    assert!(matches!(raw.next_frame().await, Some(Frame::Header { .. })));
    let Some(Frame::Body { payload, .. }) = raw.next_frame().await else {
        panic!("expected the body");
    };
    assert_eq!(&payload[..], b"two");
}

#[tokio::test]
async fn max_length_bytes_drops_the_oldest_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(
        &channel,
        "byte-capped-q",
        table(&[("x-max-length-bytes", int(10))]),
    )
    .await;
    for body in [b"aaaaa", b"bbbbb", b"ccccc"] {
        publish(&channel, "", "byte-capped-q", body).await;
    }
    assert_eq!(drain(&channel, "byte-capped-q").await, [b"bbbbb", b"ccccc"]);
}

#[tokio::test]
async fn reject_publish_overflow_keeps_the_oldest_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let arguments = table(&[
        ("x-max-length", int(1)),
        ("x-overflow", text("reject-publish")),
    ]);
    declare(&channel, "refusing-q", arguments).await;
    publish(&channel, "", "refusing-q", b"first").await;
    publish(&channel, "", "refusing-q", b"second").await;
    assert_eq!(drain(&channel, "refusing-q").await, [b"first"]);
}

#[tokio::test]
async fn reject_publish_counts_only_messages_no_consumer_can_take() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let arguments = table(&[
        ("x-max-length", int(1)),
        ("x-overflow", text("reject-publish")),
    ]);
    declare(&channel, "taken-at-once-q", arguments).await;
    let mut consumer = consume(&channel, "taken-at-once-q").await;
    let mut raw = RawClient::open(broker.server.amqp_addr).await;
    raw.confirm_select(1).await;
    let mut octets = BytesMut::new();
    raw::encode_publishes(1, "taken-at-once-q", &[b"1", b"2", b"3"], &mut octets);
    raw.send(&octets).await;
    let mut acked = 0;
    while acked < 3 {
        match raw.next_method().await {
            (1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                acked = if ack.multiple {
                    ack.delivery_tag
                } else {
                    acked + 1
                };
            }
            other => panic!("expected only acks, got {other:?}"),
        }
    }
    for body in [b"1", b"2", b"3"] {
        assert_eq!(next_delivery(&mut consumer).await.data, body);
    }
}

#[tokio::test]
async fn a_dropped_head_is_dead_lettered_as_maxlen() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let capped = table(&[("x-max-length", int(1))]);
    let mut dead = with_dead_letters(&channel, "maxlen-q", "maxlen-dead", capped).await;
    publish(&channel, "", "maxlen-q", b"old").await;
    publish(&channel, "", "maxlen-q", b"new").await;
    let delivery = next_delivery(&mut dead).await;
    assert_eq!(delivery.data, b"old");
    let deaths = x_death(&delivery);
    assert_eq!(
        as_text(field(&deaths[0], "reason")).as_deref(),
        Some("maxlen")
    );
}

#[tokio::test]
async fn reject_publish_dlx_dead_letters_the_refused_message() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let arguments = table(&[
        ("x-max-length", int(1)),
        ("x-overflow", text("reject-publish-dlx")),
    ]);
    let mut dead = with_dead_letters(&channel, "refusing-dlx-q", "refused-dead", arguments).await;
    publish(&channel, "", "refusing-dlx-q", b"kept").await;
    publish(&channel, "", "refusing-dlx-q", b"refused").await;
    let delivery = next_delivery(&mut dead).await;
    assert_eq!(delivery.data, b"refused");
    assert_eq!(drain(&channel, "refusing-dlx-q").await, [b"kept"]);
}

#[tokio::test]
async fn a_rejected_message_is_dead_lettered_with_its_history() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let mut dead = with_dead_letters(&channel, "rejecting-q", "rejected-dead", table(&[])).await;
    publish(&channel, "", "rejecting-q", b"unwanted").await;
    let mut consumer = consume(&channel, "rejecting-q").await;
    let delivery = next_delivery(&mut consumer).await;
    within(delivery.reject(BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    let dead_letter = next_delivery(&mut dead).await;
    let deaths = x_death(&dead_letter);
    assert_eq!(deaths.len(), 1);
    let death = &deaths[0];
    assert_eq!(death_count(death), Some(1));
    assert_eq!(as_text(field(death, "reason")).as_deref(), Some("rejected"));
    assert_eq!(
        as_text(field(death, "queue")).as_deref(),
        Some("rejecting-q")
    );
    assert_eq!(as_text(field(death, "exchange")).as_deref(), Some(""));
    let Some(AMQPValue::FieldArray(keys)) = field(death, "routing-keys") else {
        panic!("no routing-keys in {death:?}");
    };
    assert_eq!(
        as_text(keys.as_slice().first()).as_deref(),
        Some("rejecting-q")
    );
    assert_eq!(
        as_text(header(&dead_letter, "x-first-death-reason").as_ref()).as_deref(),
        Some("rejected")
    );
    assert_eq!(
        as_text(header(&dead_letter, "x-first-death-queue").as_ref()).as_deref(),
        Some("rejecting-q")
    );
}

#[tokio::test]
async fn dead_lettering_again_counts_up_in_x_death() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    // Two queues that dead-letter into each other; a client rejects in both.
    for (queue, other) in [("ping-q", "pong-q"), ("pong-q", "ping-q")] {
        let arguments = table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text(other)),
        ]);
        declare(&channel, queue, arguments).await;
    }
    let mut ping = consume(&channel, "ping-q").await;
    let mut pong = consume(&channel, "pong-q").await;
    publish(&channel, "", "ping-q", b"ball").await;
    let reject = BasicRejectOptions { requeue: false };
    let first = next_delivery(&mut ping).await;
    within(first.reject(reject)).await.expect("reject");
    let second = next_delivery(&mut pong).await;
    within(second.reject(reject)).await.expect("reject");
    let third = next_delivery(&mut ping).await;
    within(third.reject(reject)).await.expect("reject");
    let fourth = next_delivery(&mut pong).await;
    let deaths = x_death(&fourth);
    assert_eq!(
        deaths.len(),
        2,
        "one entry per queue and reason: {deaths:?}"
    );
    assert_eq!(
        as_text(field(&deaths[0], "queue")).as_deref(),
        Some("ping-q")
    );
    assert_eq!(death_count(&deaths[0]), Some(2));
    assert_eq!(
        as_text(field(&deaths[1], "queue")).as_deref(),
        Some("pong-q")
    );
    assert_eq!(death_count(&deaths[1]), Some(1));
}

#[tokio::test]
async fn a_priority_queue_delivers_higher_priorities_first() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(
        &channel,
        "priority-q",
        table(&[("x-max-priority", int(10))]),
    )
    .await;
    for (body, priority) in [(b"low", 1), (b"top", 9), (b"mid", 5), (b"nil", 0)] {
        let properties = BasicProperties::default().with_priority(priority);
        publish_with(&channel, "", "priority-q", body, properties).await;
    }
    assert_eq!(
        drain(&channel, "priority-q").await,
        [b"top", b"mid", b"low", b"nil"]
    );
}

#[tokio::test]
async fn priorities_above_the_maximum_count_as_the_maximum() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(
        &channel,
        "capped-priority-q",
        table(&[("x-max-priority", int(5))]),
    )
    .await;
    for (body, priority) in [(b"five", 5), (b"many", 200), (b"once", 1)] {
        let properties = BasicProperties::default().with_priority(priority);
        publish_with(&channel, "", "capped-priority-q", body, properties).await;
    }
    assert_eq!(
        drain(&channel, "capped-priority-q").await,
        [b"five", b"many", b"once"]
    );
}

#[tokio::test]
async fn an_exclusive_queue_is_deleted_with_its_connection() {
    let broker = Broker::start().await;
    let (owner, channel) = broker.channel().await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    within(channel.queue_declare("exclusive-q".into(), exclusive, FieldTable::default()))
        .await
        .expect("declare");
    let (_other, observer) = broker.channel().await;
    within(owner.close(200, "done".into()))
        .await
        .expect("close");
    // Gone by the time close-ok arrives, as in RabbitMQ, not some time later.
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared =
        within(observer.queue_declare("exclusive-q".into(), passive, FieldTable::default())).await;
    common::assert_reply(declared, NOT_FOUND);
}

#[tokio::test]
async fn a_shared_queue_outlives_its_declaring_connection() {
    let broker = Broker::start().await;
    let (owner, channel) = broker.channel().await;
    declare(&channel, "lasting-q", FieldTable::default()).await;
    publish(&channel, "", "lasting-q", b"kept").await;
    within(owner.close(200, "done".into()))
        .await
        .expect("close");
    let (_other, channel) = broker.channel().await;
    assert_eq!(drain(&channel, "lasting-q").await, [b"kept"]);
}

#[tokio::test]
async fn an_auto_delete_queue_goes_when_its_last_consumer_cancels() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    within(channel.queue_declare("auto-q".into(), auto_delete, FieldTable::default()))
        .await
        .expect("declare");
    let consumer = consume(&channel, "auto-q").await;
    assert!(queue_exists(&connection, "auto-q").await);
    within(channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    eventually("the auto-delete queue is deleted", || async {
        !queue_exists(&connection, "auto-q").await
    })
    .await;
}

#[tokio::test]
async fn a_server_named_queue_gets_an_amq_gen_name() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let queue = declare(&channel, "", FieldTable::default()).await;
    let name = queue.name().as_str().to_owned();
    assert!(name.starts_with("amq.gen-"), "name was {name}");
    publish(&channel, "", &name, b"to the generated name").await;
    // An empty queue name means the channel's last declared queue.
    let message = get(&channel, "").await.expect("a message");
    assert_eq!(message.delivery.data, b"to the generated name");
}

#[tokio::test]
async fn a_passive_declare_reports_messages_and_consumers() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    declare(&channel, "counted-q", FieldTable::default()).await;
    publish(&channel, "", "counted-q", b"1").await;
    publish(&channel, "", "counted-q", b"2").await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    // Counts are published by the queue once per batch; the contract calls them approximate.
    eventually("declare-ok counts two messages", || async {
        let channel = within(connection.create_channel()).await.expect("channel");
        let queue =
            within(channel.queue_declare("counted-q".into(), passive, FieldTable::default()))
                .await
                .expect("passive declare");
        queue.message_count() == 2 && queue.consumer_count() == 0
    })
    .await;
}
