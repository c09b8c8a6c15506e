//! Routing: each exchange type, the default exchange, exchange-to-exchange bindings, alternate
//! exchanges, and what deleting and unbinding do to routes.

mod common;

use common::{Broker, declare, drain, publish, publish_with, table, text, within};
use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

const NOT_FOUND: u16 = 404;

async fn exchange(channel: &Channel, name: &str, kind: ExchangeKind, arguments: FieldTable) {
    within(channel.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions::default(),
        arguments,
    ))
    .await
    .expect("exchange.declare");
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str, arguments: FieldTable) {
    within(channel.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        arguments,
    ))
    .await
    .expect("queue.bind");
}

/// Declares `queue` and binds it to `exchange` with `key`.
async fn bound_queue(channel: &Channel, queue: &str, exchange: &str, key: &str) {
    declare(channel, queue, FieldTable::default()).await;
    bind(channel, queue, exchange, key, FieldTable::default()).await;
}

#[tokio::test]
async fn a_direct_exchange_routes_by_exact_key() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "colours-x",
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "red-q", "colours-x", "red").await;
    bound_queue(&channel, "blue-q", "colours-x", "blue").await;
    publish(&channel, "colours-x", "red", b"r").await;
    publish(&channel, "colours-x", "reddish", b"x").await;
    assert_eq!(drain(&channel, "red-q").await, [b"r"]);
    assert!(drain(&channel, "blue-q").await.is_empty());
}

#[tokio::test]
async fn a_fanout_exchange_copies_to_every_bound_queue() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "news-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "reader-1-q", "news-x", "").await;
    bound_queue(&channel, "reader-2-q", "news-x", "ignored").await;
    publish(&channel, "news-x", "any-key", b"extra").await;
    assert_eq!(drain(&channel, "reader-1-q").await, [b"extra"]);
    assert_eq!(drain(&channel, "reader-2-q").await, [b"extra"]);
}

#[tokio::test]
async fn a_topic_exchange_matches_star_and_hash() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "logs-x",
        ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "exact-q", "logs-x", "app.web.error").await;
    bound_queue(&channel, "star-q", "logs-x", "app.*.error").await;
    bound_queue(&channel, "hash-q", "logs-x", "app.#").await;
    for key in [
        "app.web.error",
        "app.db.disk.error",
        "app",
        "other.web.error",
    ] {
        publish(&channel, "logs-x", key, key.as_bytes()).await;
    }
    assert_eq!(
        drain(&channel, "exact-q").await,
        [b"app.web.error".to_vec()]
    );
    assert_eq!(drain(&channel, "star-q").await, [b"app.web.error".to_vec()]);
    let hash: Vec<Vec<u8>> = ["app.web.error", "app.db.disk.error", "app"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    assert_eq!(drain(&channel, "hash-q").await, hash);
}

#[tokio::test]
async fn a_headers_exchange_matches_all_or_any() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "docs-x",
        ExchangeKind::Headers,
        FieldTable::default(),
    )
    .await;
    let wanted = |mode: &str| {
        table(&[
            ("x-match", text(mode)),
            ("format", text("pdf")),
            ("type", AMQPValue::LongInt(7)),
        ])
    };
    for (queue, mode) in [("all-q", "all"), ("any-q", "any")] {
        declare(&channel, queue, FieldTable::default()).await;
        bind(&channel, queue, "docs-x", "", wanted(mode)).await;
    }
    let send = |headers: FieldTable, body: &'static [u8]| {
        let properties = BasicProperties::default().with_headers(headers);
        publish_with(&channel, "docs-x", "", body, properties)
    };
    send(table(&[("format", text("pdf"))]), b"some").await;
    let both = table(&[("format", text("pdf")), ("type", AMQPValue::LongLongInt(7))]);
    send(both, b"both").await;
    send(table(&[("format", text("zip"))]), b"none").await;
    assert_eq!(drain(&channel, "all-q").await, [b"both"]);
    assert_eq!(drain(&channel, "any-q").await, [b"some", b"both"]);
}

#[tokio::test]
async fn the_default_exchange_routes_to_the_queue_the_key_names() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "by-name-q", FieldTable::default()).await;
    publish(&channel, "", "by-name-q", b"direct").await;
    publish(&channel, "", "no-such-name-q", b"lost").await;
    assert_eq!(drain(&channel, "by-name-q").await, [b"direct"]);
}

#[tokio::test]
async fn a_message_matching_two_bindings_reaches_the_queue_once() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "overlap-x",
        ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "overlap-q", "overlap-x", "a.*").await;
    bind(
        &channel,
        "overlap-q",
        "overlap-x",
        "#",
        FieldTable::default(),
    )
    .await;
    bind(
        &channel,
        "overlap-q",
        "overlap-x",
        "#",
        FieldTable::default(),
    )
    .await;
    publish(&channel, "overlap-x", "a.b", b"once").await;
    assert_eq!(drain(&channel, "overlap-q").await, [b"once"]);
}

#[tokio::test]
async fn an_exchange_to_exchange_binding_forwards_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "front-x",
        ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await;
    exchange(
        &channel,
        "back-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    within(channel.exchange_bind(
        "back-x".into(),
        "front-x".into(),
        "orders.#".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange.bind");
    bound_queue(&channel, "back-q", "back-x", "").await;
    publish(&channel, "front-x", "orders.new", b"forwarded").await;
    publish(&channel, "front-x", "invoices.new", b"not forwarded").await;
    assert_eq!(drain(&channel, "back-q").await, [b"forwarded"]);
}

#[tokio::test]
async fn a_binding_cycle_delivers_each_message_once() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    for name in ["loop-a-x", "loop-b-x"] {
        exchange(&channel, name, ExchangeKind::Fanout, FieldTable::default()).await;
    }
    for (destination, source) in [("loop-b-x", "loop-a-x"), ("loop-a-x", "loop-b-x")] {
        within(channel.exchange_bind(
            destination.into(),
            source.into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .expect("exchange.bind");
    }
    bound_queue(&channel, "loop-q", "loop-b-x", "").await;
    publish(&channel, "loop-a-x", "", b"round").await;
    assert_eq!(drain(&channel, "loop-q").await, [b"round"]);
}

#[tokio::test]
async fn an_internal_exchange_is_reachable_through_bindings() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let internal = ExchangeDeclareOptions {
        internal: true,
        ..ExchangeDeclareOptions::default()
    };
    within(channel.exchange_declare(
        "inner-x".into(),
        ExchangeKind::Fanout,
        internal,
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    exchange(
        &channel,
        "outer-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    within(channel.exchange_bind(
        "inner-x".into(),
        "outer-x".into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange.bind");
    bound_queue(&channel, "inner-q", "inner-x", "").await;
    publish(&channel, "outer-x", "", b"via outer").await;
    assert_eq!(drain(&channel, "inner-q").await, [b"via outer"]);
}

#[tokio::test]
async fn an_alternate_exchange_takes_unroutable_messages() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "spare-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "spare-q", "spare-x", "").await;
    let arguments = table(&[("alternate-exchange", text("spare-x"))]);
    exchange(&channel, "main-x", ExchangeKind::Direct, arguments).await;
    bound_queue(&channel, "main-q", "main-x", "known").await;
    publish(&channel, "main-x", "known", b"routed").await;
    publish(&channel, "main-x", "unknown", b"spare").await;
    assert_eq!(drain(&channel, "main-q").await, [b"routed"]);
    assert_eq!(drain(&channel, "spare-q").await, [b"spare"]);
}

#[tokio::test]
async fn unbinding_stops_routing() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "unbind-x",
        ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "unbind-q", "unbind-x", "k").await;
    within(channel.queue_unbind(
        "unbind-q".into(),
        "unbind-x".into(),
        "k".into(),
        FieldTable::default(),
    ))
    .await
    .expect("queue.unbind");
    publish(&channel, "unbind-x", "k", b"nowhere").await;
    assert!(drain(&channel, "unbind-q").await.is_empty());
}

#[tokio::test]
async fn deleting_an_exchange_removes_its_bindings() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "reborn-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "reborn-q", "reborn-x", "").await;
    within(channel.exchange_delete("reborn-x".into(), ExchangeDeleteOptions::default()))
        .await
        .expect("delete");
    exchange(
        &channel,
        "reborn-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    publish(&channel, "reborn-x", "", b"unbound").await;
    assert!(drain(&channel, "reborn-q").await.is_empty());
}

#[tokio::test]
async fn deleting_a_queue_removes_its_bindings() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    exchange(
        &channel,
        "keeper-x",
        ExchangeKind::Fanout,
        FieldTable::default(),
    )
    .await;
    bound_queue(&channel, "short-lived-q", "keeper-x", "").await;
    within(channel.queue_delete("short-lived-q".into(), QueueDeleteOptions::default()))
        .await
        .expect("delete");
    declare(&channel, "short-lived-q", FieldTable::default()).await;
    publish(&channel, "keeper-x", "", b"unbound").await;
    assert!(drain(&channel, "short-lived-q").await.is_empty());
}

#[tokio::test]
async fn an_auto_delete_exchange_goes_with_its_last_binding() {
    let broker = Broker::start().await;
    let (connection, channel) = broker.channel().await;
    let auto_delete = ExchangeDeclareOptions {
        auto_delete: true,
        ..ExchangeDeclareOptions::default()
    };
    within(channel.exchange_declare(
        "fleeting-x".into(),
        ExchangeKind::Direct,
        auto_delete,
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    bound_queue(&channel, "fleeting-q", "fleeting-x", "k").await;
    within(channel.queue_unbind(
        "fleeting-q".into(),
        "fleeting-x".into(),
        "k".into(),
        FieldTable::default(),
    ))
    .await
    .expect("unbind");
    let check = within(connection.create_channel()).await.expect("channel");
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let declared = within(check.exchange_declare(
        "fleeting-x".into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    ))
    .await;
    common::assert_reply(declared, NOT_FOUND);
}

#[tokio::test]
async fn the_built_in_exchanges_exist() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        within(channel.exchange_declare(name.into(), kind, passive, FieldTable::default()))
            .await
            .unwrap_or_else(|error| panic!("{name}: {error:?}"));
    }
}
