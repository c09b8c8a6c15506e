//! STOMP acknowledgement: the three ack modes, NACK (requeue, reject, dead-lettering),
//! prefetch-count, and transactions over SEND and ACK.

mod common;

use common::stomp::{StompClient, connect_frame, send, unique};
use common::{Broker, drain};
use mqbridge_stomp::codec::{Command, Frame};

/// A client subscribed to a fresh queue holding `bodies`, in `ack` mode.
async fn subscribed_with(broker: &Broker, ack: &str, bodies: &[&str]) -> (StompClient, String) {
    let mut client = StompClient::open(broker).await;
    let destination = format!("/queue/{}", unique(ack));
    for body in bodies {
        client.publish(&destination, body).await;
    }
    client.subscribe("s", &destination, ack).await;
    (client, destination)
}

#[tokio::test]
async fn client_individual_acks_one_and_the_rest_come_back_redelivered() {
    let broker = Broker::start().await;
    let (mut client, destination) =
        subscribed_with(&broker, "client-individual", &["a", "b", "c"]).await;
    client.expect_message("a").await;
    let b = client.expect_message("b").await;
    client.expect_message("c").await;
    assert_eq!(b.header("ack"), b.header("message-id"));
    client.request(client.ack_frame(Command::Ack, &b)).await;
    client.disconnect().await;
    let mut again = StompClient::open(&broker).await;
    again.subscribe("s", &destination, "auto").await;
    let first = again.expect_message("a").await;
    assert_eq!(first.header("redelivered"), Some("true"));
    again.expect_message("c").await;
    again.assert_quiet().await;
}

#[tokio::test]
async fn client_mode_acks_everything_up_to_the_acked_message() {
    let broker = Broker::start().await;
    let (mut client, destination) = subscribed_with(&broker, "client", &["a", "b", "c"]).await;
    client.expect_message("a").await;
    let b = client.expect_message("b").await;
    client.expect_message("c").await;
    client.request(client.ack_frame(Command::Ack, &b)).await;
    client.disconnect().await;
    let mut again = StompClient::open(&broker).await;
    again.subscribe("s", &destination, "auto").await;
    again.expect_message("c").await;
    again.assert_quiet().await;
}

#[tokio::test]
async fn acks_in_1_0_and_1_1_name_the_message_id() {
    let broker = Broker::start().await;
    for version in ["1.0", "1.1"] {
        let (mut client, _) = StompClient::open_with(&broker, connect_frame(version)).await;
        let destination = format!("/queue/{}", unique("old-ack"));
        client.publish(&destination, "m").await;
        client.subscribe("s", &destination, "client").await;
        let message = client.expect_message("m").await;
        assert_eq!(message.header("ack"), None, "no ack header before 1.2");
        client
            .request(client.ack_frame(Command::Ack, &message))
            .await;
        client.disconnect().await;
        let mut check = StompClient::open(&broker).await;
        check.subscribe("s", &destination, "auto").await;
        check.assert_quiet().await;
    }
}

#[tokio::test]
async fn nack_requeues_by_default() {
    let broker = Broker::start().await;
    let (mut client, _) = subscribed_with(&broker, "client-individual", &["n"]).await;
    let first = client.expect_message("n").await;
    assert_eq!(first.header("redelivered"), Some("false"));
    client
        .request(client.ack_frame(Command::Nack, &first))
        .await;
    let again = client.expect_message("n").await;
    assert_eq!(again.header("redelivered"), Some("true"));
    client.request(client.ack_frame(Command::Ack, &again)).await;
}

#[tokio::test]
async fn nack_dead_letters_when_the_queue_has_a_dead_letter_exchange() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let dead = unique("dead");
    client
        .subscribe("dead", &format!("/queue/{dead}"), "auto")
        .await;
    let destination = format!("/queue/{}", unique("dlx"));
    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "s")
        .with("destination", &destination)
        .with("ack", "client-individual")
        .with("x-dead-letter-exchange", "")
        .with("x-dead-letter-routing-key", &dead);
    client.request(subscribe).await;
    client.publish(&destination, "poison").await;
    let message = client.expect_message("poison").await;
    assert_eq!(message.header("subscription"), Some("s"));
    client
        .request(client.ack_frame(Command::Nack, &message))
        .await;
    let dead_lettered = client.expect_message("poison").await;
    assert_eq!(dead_lettered.header("subscription"), Some("dead"));
    assert!(dead_lettered.header("x-death").is_some());
}

#[tokio::test]
async fn nack_with_requeue_false_drops_without_a_dead_letter_exchange() {
    let broker = Broker::start().await;
    let (mut client, destination) = subscribed_with(&broker, "client-individual", &["x"]).await;
    let message = client.expect_message("x").await;
    let nack = client
        .ack_frame(Command::Nack, &message)
        .with("requeue", "false");
    client.request(nack).await;
    client.assert_quiet().await;
    let (_connection, channel) = broker.channel().await;
    let queue = destination.trim_start_matches("/queue/");
    assert!(drain(&channel, queue).await.is_empty());
}

#[tokio::test]
async fn prefetch_count_bounds_unacknowledged_deliveries() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("prefetch"));
    for i in 0..5 {
        client.publish(&destination, &i.to_string()).await;
    }
    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "s")
        .with("destination", &destination)
        .with("ack", "client-individual")
        .with("prefetch-count", "2");
    client.request(subscribe).await;
    let zero = client.expect_message("0").await;
    client.expect_message("1").await;
    client.assert_quiet().await;
    client.request(client.ack_frame(Command::Ack, &zero)).await;
    client.expect_message("2").await;
    client.assert_quiet().await;
}

#[tokio::test]
async fn a_transaction_publishes_its_sends_only_on_commit() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("tx"));
    client.subscribe("s", &destination, "auto").await;
    client
        .request(Frame::new(Command::Begin).with("transaction", "t"))
        .await;
    for body in ["one", "two"] {
        client
            .request(send(&destination, body).with("transaction", "t"))
            .await;
    }
    client.assert_quiet().await;
    client
        .request(Frame::new(Command::Commit).with("transaction", "t"))
        .await;
    client.expect_message("one").await;
    client.expect_message("two").await;
}

#[tokio::test]
async fn abort_discards_the_transaction() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("abort"));
    client.subscribe("s", &destination, "auto").await;
    client
        .request(Frame::new(Command::Begin).with("transaction", "t"))
        .await;
    client
        .request(send(&destination, "never").with("transaction", "t"))
        .await;
    client
        .request(Frame::new(Command::Abort).with("transaction", "t"))
        .await;
    client.assert_quiet().await;
}

#[tokio::test]
async fn acks_in_a_transaction_settle_on_commit_and_not_on_abort() {
    let broker = Broker::start().await;
    let (mut client, destination) =
        subscribed_with(&broker, "client-individual", &["kept", "acked"]).await;
    let kept = client.expect_message("kept").await;
    let acked = client.expect_message("acked").await;
    let begin = |id: &str| Frame::new(Command::Begin).with("transaction", id);
    client.request(begin("aborted")).await;
    let ack = client.ack_frame(Command::Ack, &kept);
    client.request(ack.with("transaction", "aborted")).await;
    client
        .request(Frame::new(Command::Abort).with("transaction", "aborted"))
        .await;
    client.request(begin("committed")).await;
    let ack = client.ack_frame(Command::Ack, &acked);
    client.request(ack.with("transaction", "committed")).await;
    client
        .request(Frame::new(Command::Commit).with("transaction", "committed"))
        .await;
    client.disconnect().await;
    let mut again = StompClient::open(&broker).await;
    again.subscribe("s", &destination, "auto").await;
    again.expect_message("kept").await;
    again.assert_quiet().await;
}

/// Publishes `count` messages of 32 KiB, confirmed by the last one's receipt. Together they
/// are far more than the broker writes ahead to a client that does not read, so most of them
/// wait in the connection's delivery sink.
async fn publish_many(client: &mut StompClient, destination: &str, count: usize) {
    let body = "x".repeat(32 * 1024);
    let mut batch = String::new();
    for _ in 0..count - 1 {
        batch.push_str(&format!("SEND\ndestination:{destination}\n\n{body}\0"));
    }
    client.send_bytes(batch.as_bytes()).await;
    client.publish(destination, &body).await;
}

/// Counts the messages a fresh auto subscriber gets from `destination`.
async fn count_messages(broker: &Broker, destination: &str) -> usize {
    let mut client = StompClient::open(broker).await;
    client.subscribe("count", destination, "auto").await;
    let mut count = 0;
    while let Ok(Some(_)) = tokio::time::timeout(common::stomp::QUIET, client.next()).await {
        count += 1;
    }
    count
}

#[tokio::test]
async fn unsubscribe_returns_unacked_deliveries_including_those_still_in_flight() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("in-flight"));
    publish_many(&mut client, &destination, 500).await;
    client
        .subscribe("s", &destination, "client-individual")
        .await;
    client.expect(Command::Message).await;
    let unsubscribe = Frame::new(Command::Unsubscribe).with("id", "s");
    client.request(unsubscribe).await;
    assert_eq!(count_messages(&broker, &destination).await, 500);
}

#[tokio::test]
async fn a_closed_connection_returns_unacked_deliveries_including_those_still_in_flight() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("closed"));
    publish_many(&mut client, &destination, 500).await;
    client.subscribe("s", &destination, "client").await;
    client.expect(Command::Message).await;
    drop(client);
    assert_eq!(count_messages(&broker, &destination).await, 500);
}
