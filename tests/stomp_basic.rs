//! STOMP on the real broker: connecting in each version, SEND and SUBSCRIBE, receipts, header
//! escaping, binary bodies, and frames split across or batched into TCP writes.

mod common;

use bytes::Bytes;
use common::Broker;
use common::stomp::{StompClient, connect_frame, send, unique};
use mqbridge_stomp::codec::{Command, Frame};

#[tokio::test]
async fn each_version_is_negotiated_from_accept_version() {
    let broker = Broker::start().await;
    for (asked, agreed) in [("1.0,1.1,1.2", "1.2"), ("1.1", "1.1"), ("1.0,1.1", "1.1")] {
        let (client, connected) = StompClient::open_with(&broker, connect_frame(asked)).await;
        assert_eq!(connected.header("version"), Some(agreed), "asked {asked}");
        assert!(
            connected
                .header("server")
                .is_some_and(|s| s.starts_with("mqbridge/"))
        );
        assert!(connected.header("session").is_some());
        client.disconnect().await;
    }
    // A 1.0 client says nothing about versions, and hears nothing about them.
    let connect = Frame::new(Command::Connect)
        .with("login", "guest")
        .with("passcode", "guest");
    let (client, connected) = StompClient::open_with(&broker, connect).await;
    assert_eq!(connected.header("version"), None);
    client.disconnect().await;
}

#[tokio::test]
async fn the_stomp_command_connects_like_connect() {
    let broker = Broker::start().await;
    let mut stomp = connect_frame("1.2");
    stomp.command = Command::Stomp;
    let (client, connected) = StompClient::open_with(&broker, stomp).await;
    assert_eq!(connected.header("version"), Some("1.2"));
    client.disconnect().await;
}

#[tokio::test]
async fn a_connect_without_login_is_the_default_user_from_loopback() {
    let broker = Broker::start().await;
    let connect = Frame::new(Command::Connect).with("accept-version", "1.2");
    let (client, connected) = StompClient::open_with(&broker, connect).await;
    assert_eq!(connected.header("user-name"), Some("guest"));
    client.disconnect().await;
}

#[tokio::test]
async fn a_host_header_naming_no_vhost_uses_the_default_one() {
    let broker = Broker::start().await;
    let connect = connect_frame("1.2").with("host", "localhost");
    let (mut client, _) = StompClient::open_with(&broker, connect).await;
    let queue = unique("host");
    common::stomp::assert_alive(&mut client, &queue).await;
}

#[tokio::test]
async fn send_and_subscribe_on_a_queue() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("basic"));
    client.subscribe("s1", &destination, "auto").await;
    let frame = send(&destination, "hello")
        .with("content-type", "text/plain")
        .with("custom", "value");
    client.request(frame).await;
    let message = client.expect_message("hello").await;
    assert_eq!(message.header("destination"), Some(destination.as_str()));
    assert_eq!(message.header("subscription"), Some("s1"));
    assert_eq!(message.header("redelivered"), Some("false"));
    assert_eq!(message.header("content-type"), Some("text/plain"));
    assert_eq!(message.header("content-length"), Some("5"));
    assert_eq!(message.header("custom"), Some("value"));
    assert!(message.header("message-id").is_some());
    // Auto mode: no `ack` header, even in 1.2.
    assert_eq!(message.header("ack"), None);
    client.disconnect().await;
}

#[tokio::test]
async fn messages_sent_before_the_subscription_wait_in_the_queue() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("waiting"));
    for body in ["one", "two", "three"] {
        client.publish(&destination, body).await;
    }
    client.subscribe("s", &destination, "auto").await;
    for body in ["one", "two", "three"] {
        client.expect_message(body).await;
    }
}

#[tokio::test]
async fn binary_bodies_with_nul_survive_both_ways() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("binary"));
    client.subscribe("s", &destination, "auto").await;
    let body: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    let frame = Frame::new(Command::Send)
        .with("destination", &destination)
        .with_body(body.clone());
    client.request(frame).await;
    let message = client.expect(Command::Message).await;
    assert_eq!(message.body, Bytes::from(body));
}

#[tokio::test]
async fn a_frame_split_across_writes_and_frames_batched_in_one_write() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let queue = unique("split");
    client
        .subscribe("s", &format!("/queue/{queue}"), "auto")
        .await;
    let one = format!("SEND\ndestination:/queue/{queue}\ncontent-length:3\n\na\0b\0");
    for chunk in one.as_bytes().chunks(3) {
        client.send_bytes(chunk).await;
        tokio::task::yield_now().await;
    }
    let mut batch = String::new();
    for i in 0..50 {
        batch.push_str(&format!("SEND\ndestination:/queue/{queue}\n\n{i}\0\n"));
    }
    client.send_bytes(batch.as_bytes()).await;
    let first = client.expect(Command::Message).await;
    assert_eq!(first.body.as_ref(), b"a\0b");
    for i in 0..50 {
        client.expect_message(&i.to_string()).await;
    }
}

#[tokio::test]
async fn every_client_frame_gets_its_receipt_in_order() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("receipts"));
    let frames = [
        Frame::new(Command::Subscribe)
            .with("id", "s")
            .with("destination", &destination)
            .with("ack", "client"),
        send(&destination, "m"),
        Frame::new(Command::Begin).with("transaction", "t"),
        Frame::new(Command::Abort).with("transaction", "t"),
        Frame::new(Command::Begin).with("transaction", "t2"),
        Frame::new(Command::Commit).with("transaction", "t2"),
    ];
    for (i, frame) in frames.iter().enumerate() {
        client
            .send(&frame.clone().with("receipt", i.to_string()))
            .await;
    }
    let mut receipts = Vec::new();
    let mut message = None;
    while receipts.len() < frames.len() {
        let frame = client.next().await.expect("open");
        match frame.command {
            Command::Receipt => receipts.push(frame.header("receipt-id").map(str::to_owned)),
            Command::Message => message = Some(frame),
            other => panic!("unexpected {other}"),
        }
    }
    let expected: Vec<_> = (0..frames.len()).map(|i| Some(i.to_string())).collect();
    assert_eq!(receipts, expected);
    let message = match message {
        Some(message) => message,
        None => client.expect(Command::Message).await,
    };
    client
        .request(client.ack_frame(Command::Ack, &message))
        .await;
    client
        .request(Frame::new(Command::Unsubscribe).with("id", "s"))
        .await;
    client.disconnect().await;
}

#[tokio::test]
async fn headers_are_escaped_per_version() {
    let broker = Broker::start().await;
    let odd = "a:b\\c\nd";
    for version in ["1.1", "1.2"] {
        let (mut client, _) = StompClient::open_with(&broker, connect_frame(version)).await;
        let destination = format!("/queue/{}", unique("escape"));
        client.subscribe("s", &destination, "auto").await;
        client
            .request(send(&destination, "x").with("odd", odd))
            .await;
        let message = client.expect_message("x").await;
        assert_eq!(message.header("odd"), Some(odd), "version {version}");
    }
    // STOMP 1.0 has no escaping: a backslash is a backslash.
    let (mut client, _) = StompClient::open_with(&broker, connect_frame("1.0")).await;
    let destination = format!("/queue/{}", unique("escape"));
    client.subscribe("s", &destination, "auto").await;
    client
        .send_bytes(format!("SEND\ndestination:{destination}\nodd:a\\cb\n\nx\0").as_bytes())
        .await;
    let message = client.expect_message("x").await;
    assert_eq!(message.header("odd"), Some("a\\cb"));
}

#[tokio::test]
async fn a_topic_reaches_every_subscriber_and_each_subscription_has_its_own_queue() {
    let broker = Broker::start().await;
    let mut first = StompClient::open(&broker).await;
    let mut second = StompClient::open(&broker).await;
    let topic = format!("/topic/{}.news", unique("t"));
    first.subscribe("a", &topic, "auto").await;
    second.subscribe("b", &topic, "auto").await;
    second.subscribe("c", &topic, "auto").await;
    first.publish(&topic, "extra").await;
    let message = first.expect_message("extra").await;
    assert_eq!(message.header("destination"), Some(topic.as_str()));
    let mut subscriptions = [
        second.expect_message("extra").await,
        second.expect_message("extra").await,
    ];
    subscriptions.sort_by_key(|m| m.header("subscription").map(str::to_owned));
    let ids: Vec<_> = subscriptions
        .iter()
        .map(|m| m.header("subscription"))
        .collect();
    assert_eq!(ids, [Some("b"), Some("c")]);
}

#[tokio::test]
async fn a_topic_without_subscribers_drops_the_message_with_a_receipt() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    client
        .publish(&format!("/topic/{}", unique("nobody")), "lost")
        .await;
    client.assert_quiet().await;
}

#[tokio::test]
async fn exchange_destinations_route_by_key() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let key = unique("rk");
    let destination = format!("/exchange/amq.direct/{key}");
    client.subscribe("s", &destination, "auto").await;
    client
        .publish(&format!("/exchange/amq.direct/{key}-other"), "no")
        .await;
    client.publish(&destination, "yes").await;
    let message = client.expect_message("yes").await;
    assert_eq!(message.header("destination"), Some(destination.as_str()));
}

#[tokio::test]
async fn amq_queue_uses_an_existing_queue() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    let queue = unique("existing");
    common::declare(&channel, &queue, Default::default()).await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/amq/queue/{queue}");
    client.subscribe("s", &destination, "auto").await;
    client.publish(&destination, "there").await;
    let message = client.expect_message("there").await;
    assert_eq!(
        message.header("destination"),
        Some(format!("/queue/{queue}").as_str())
    );
}

#[tokio::test]
async fn disconnect_sends_the_receipt_then_closes() {
    let broker = Broker::start().await;
    let client = StompClient::open(&broker).await;
    client.disconnect().await;
}
