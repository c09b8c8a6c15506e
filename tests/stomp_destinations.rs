//! STOMP destinations on the core: `/queue/` creates durable queues, durable topic
//! subscriptions keep messages while the subscriber is away, temp queues carry replies, and
//! header properties reach the message.

mod common;

use common::stomp::{StompClient, send, unique};
use common::{Broker, within};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use mqbridge_stomp::codec::{Command, Frame};

#[tokio::test]
async fn a_queue_destination_declares_a_durable_queue_on_first_send() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let queue = unique("declared");
    client.publish(&format!("/queue/{queue}"), "kept").await;
    let (_connection, channel) = broker.channel().await;
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared =
        within(channel.queue_declare(queue.as_str().into(), options, FieldTable::default()))
            .await
            .expect("the queue exists");
    assert_eq!(declared.message_count(), 1);
    // Durable: redeclaring it durable over AMQP is equivalent, not a precondition failure.
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    within(channel.queue_declare(queue.as_str().into(), durable, FieldTable::default()))
        .await
        .expect("durable");
}

#[tokio::test]
async fn a_durable_topic_subscription_keeps_messages_while_away() {
    let broker = Broker::start().await;
    let topic = format!("/topic/{}.alerts", unique("durable"));
    let durable_subscribe = |header: &str| {
        Frame::new(Command::Subscribe)
            .with("id", "keeper")
            .with("destination", &topic)
            .with(header, "true")
            .with("auto-delete", "false")
    };
    let mut subscriber = StompClient::open(&broker).await;
    subscriber.request(durable_subscribe("durable")).await;
    subscriber.disconnect().await;
    let mut publisher = StompClient::open(&broker).await;
    publisher.publish(&topic, "while away").await;
    // `persistent:true` is the older spelling of the same thing.
    let mut subscriber = StompClient::open(&broker).await;
    subscriber.request(durable_subscribe("persistent")).await;
    subscriber.expect_message("while away").await;
    // UNSUBSCRIBE with durable:true removes the subscription for good.
    let unsubscribe = Frame::new(Command::Unsubscribe)
        .with("id", "keeper")
        .with("durable", "true");
    subscriber.request(unsubscribe).await;
    publisher.publish(&topic, "nobody").await;
    subscriber.request(durable_subscribe("durable")).await;
    subscriber.assert_quiet().await;
}

#[tokio::test]
async fn a_plain_topic_subscription_loses_messages_while_away() {
    let broker = Broker::start().await;
    let topic = format!("/topic/{}", unique("plain"));
    let mut subscriber = StompClient::open(&broker).await;
    subscriber.subscribe("s", &topic, "auto").await;
    subscriber.disconnect().await;
    let mut publisher = StompClient::open(&broker).await;
    publisher.publish(&topic, "missed").await;
    let mut subscriber = StompClient::open(&broker).await;
    subscriber.subscribe("s", &topic, "auto").await;
    subscriber.assert_quiet().await;
}

#[tokio::test]
async fn a_temp_queue_carries_the_reply_back_to_the_requester() {
    let broker = Broker::start().await;
    let service = format!("/queue/{}", unique("service"));
    let mut server = StompClient::open(&broker).await;
    server.subscribe("requests", &service, "auto").await;
    let mut requester = StompClient::open(&broker).await;
    let request = send(&service, "ping").with("reply-to", "/temp-queue/answers");
    requester.request(request).await;
    let received = server.expect_message("ping").await;
    let reply_to = received.header("reply-to").expect("reply-to").to_owned();
    assert!(reply_to.starts_with("/reply-queue/"), "{reply_to}");
    server.publish(&reply_to, "pong").await;
    let reply = requester.expect_message("pong").await;
    assert_eq!(reply.header("subscription"), Some("/temp-queue/answers"));
    // The same temp name on the same connection is the same queue.
    let request = send(&service, "again").with("reply-to", "/temp-queue/answers");
    requester.request(request).await;
    let received = server.expect_message("again").await;
    assert_eq!(received.header("reply-to"), Some(reply_to.as_str()));
}

#[tokio::test]
async fn a_temp_queue_is_private_and_goes_with_its_connection() {
    let broker = Broker::start().await;
    let service = format!("/queue/{}", unique("private"));
    let mut server = StompClient::open(&broker).await;
    server.subscribe("requests", &service, "auto").await;
    let mut requester = StompClient::open(&broker).await;
    let request = send(&service, "hi").with("reply-to", "/temp-queue/r");
    requester.request(request).await;
    let reply_to = server
        .expect_message("hi")
        .await
        .header("reply-to")
        .expect("reply-to")
        .to_owned();
    let real = reply_to.trim_start_matches("/reply-queue/").to_owned();
    // Another connection cannot consume it.
    let mut thief = StompClient::open(&broker).await;
    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "t")
        .with("destination", format!("/amq/queue/{real}"));
    thief.send(&subscribe).await;
    let error = thief.expect_error().await;
    assert_eq!(error.header("message"), Some("resource_locked"));
    requester.disconnect().await;
    let (_connection, channel) = broker.channel().await;
    common::eventually("the temp queue is deleted", || {
        let channel = channel.clone();
        let real = real.clone();
        async move {
            let options = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            channel
                .queue_declare(real.as_str().into(), options, FieldTable::default())
                .await
                .is_err()
        }
    })
    .await;
}

#[tokio::test]
async fn send_headers_become_message_properties() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("props"));
    client.subscribe("s", &destination, "auto").await;
    let frame = send(&destination, "p")
        .with("persistent", "true")
        .with("priority", "5")
        .with("correlation-id", "c-9")
        .with("expiration", "60000")
        .with("amqp-message-id", "app-1")
        .with("reply-to", "/queue/replies")
        .with("content-type", "application/json");
    client.request(frame).await;
    let message = client.expect_message("p").await;
    for (name, value) in [
        ("persistent", "true"),
        ("priority", "5"),
        ("correlation-id", "c-9"),
        ("expiration", "60000"),
        ("amqp-message-id", "app-1"),
        ("reply-to", "/queue/replies"),
        ("content-type", "application/json"),
    ] {
        assert_eq!(message.header(name), Some(value), "{name}");
    }
}

#[tokio::test]
async fn an_expired_message_is_not_delivered() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("ttl"));
    client
        .request(send(&destination, "stale").with("expiration", "1"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    client.publish(&destination, "fresh").await;
    client.subscribe("s", &destination, "auto").await;
    client.expect_message("fresh").await;
    client.assert_quiet().await;
}
