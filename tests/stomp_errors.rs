//! Misbehaving STOMP clients: every bad input gets an ERROR frame saying what was wrong (with
//! `receipt-id` when the frame asked for a receipt), then that connection closes; a
//! well-behaved witness keeps working and nothing stored is lost. Also heart-beats, login and
//! shutdown.

mod common;

use std::time::Duration;

use common::stomp::{StompClient, assert_alive, connect_frame, message_count, send, unique};
use common::{Broker, drain};
use mqbridge_stomp::codec::{Command, Frame};

/// A broker and a connected witness client.
async fn broker_with_witness() -> (Broker, StompClient) {
    let broker = Broker::start().await;
    let witness = StompClient::open(&broker).await;
    (broker, witness)
}

/// Sends raw octets on a fresh logged-in connection and returns the ERROR frame.
async fn error_for(broker: &Broker, octets: &[u8]) -> Frame {
    let mut client = StompClient::open(broker).await;
    client.send_bytes(octets).await;
    client.expect_error().await
}

#[tokio::test]
async fn a_frame_before_connect() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut client = StompClient::connect(&broker).await;
    client.send(&send("/queue/q", "early")).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("not connected"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn a_missing_nul_terminator_past_the_frame_limit() {
    let broker = Broker::start_with(|c| c.stomp_max_frame_size = 4096).await;
    let mut witness = StompClient::open(&broker).await;
    let mut octets = b"SEND\ndestination:/queue/big\n\n".to_vec();
    octets.resize(5000, b'x');
    let error = error_for(&broker, &octets).await;
    assert_eq!(error.header("message"), Some("frame too large"));
    let body = String::from_utf8_lossy(&error.body).into_owned();
    assert!(body.contains("4096"), "{body}");
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_the_body() {
    let broker = Broker::start_with(|c| c.stomp_max_frame_size = 4096).await;
    let error = error_for(
        &broker,
        b"SEND\ndestination:/queue/q\ncontent-length:1000000\n\n",
    )
    .await;
    assert_eq!(error.header("message"), Some("frame too large"));
}

#[tokio::test]
async fn a_bad_escape_sequence() {
    let (broker, mut witness) = broker_with_witness().await;
    let error = error_for(&broker, b"SEND\ndestination:/queue/q\nbad:a\\tb\n\nx\0").await;
    assert_eq!(error.header("message"), Some("bad escape sequence"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn a_content_length_that_disagrees_with_the_body() {
    let (broker, mut witness) = broker_with_witness().await;
    let error = error_for(
        &broker,
        b"SEND\ndestination:/queue/q\ncontent-length:2\n\nabc\0",
    )
    .await;
    assert_eq!(error.header("message"), Some("bad content-length"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn an_unknown_command() {
    let (broker, mut witness) = broker_with_witness().await;
    let error = error_for(&broker, b"PUBLISH\ndestination:/queue/q\n\nx\0").await;
    assert_eq!(error.header("message"), Some("unknown command"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn send_without_destination_names_its_receipt() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut client = StompClient::open(&broker).await;
    let frame = Frame::new(Command::Send)
        .with("receipt", "lost-1")
        .with_body(b"x".to_vec());
    client.send(&frame).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("missing header"));
    assert_eq!(error.header("receipt-id"), Some("lost-1"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn an_ack_of_an_unknown_id() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut client = StompClient::open(&broker).await;
    client
        .send(&Frame::new(Command::Ack).with("id", "T_1-999"))
        .await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("unknown message id"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn an_unknown_destination_and_a_missing_amq_queue() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut client = StompClient::open(&broker).await;
    client.send(&send("orders", "x")).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("invalid destination"));
    let mut client = StompClient::open(&broker).await;
    let subscribe = Frame::new(Command::Subscribe)
        .with("id", "s")
        .with("destination", format!("/amq/queue/{}", unique("missing")));
    client.send(&subscribe).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("not_found"));
    let mut client = StompClient::open(&broker).await;
    client
        .send(&send("/exchange/no-such-exchange/k", "x"))
        .await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("not_found"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn duplicate_subscription_ids_and_unknown_transactions() {
    let (broker, mut witness) = broker_with_witness().await;
    let mut client = StompClient::open(&broker).await;
    let destination = format!("/queue/{}", unique("dup"));
    client.subscribe("s", &destination, "auto").await;
    let again = Frame::new(Command::Subscribe)
        .with("id", "s")
        .with("destination", &destination);
    client.send(&again).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("duplicate subscription"));
    let mut client = StompClient::open(&broker).await;
    client
        .send(&Frame::new(Command::Commit).with("transaction", "nope"))
        .await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("invalid transaction"));
    assert_alive(&mut witness, &unique("witness")).await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unsupported_version() {
    let broker = Broker::start().await;
    let mut client = StompClient::connect(&broker).await;
    let connect = connect_frame("1.2").with("passcode", "wrong");
    // The first `passcode` header wins, so send the wrong one alone.
    let connect = Frame {
        headers: connect
            .headers
            .into_iter()
            .filter(|(n, v)| n != "passcode" || v == "wrong")
            .collect(),
        ..connect
    };
    client.send(&connect).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("access refused"));
    let mut client = StompClient::connect(&broker).await;
    client.send(&connect_frame("2.0,3.0")).await;
    let error = client.expect_error().await;
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
}

#[tokio::test]
async fn an_error_loses_nothing_stored_and_returns_unacked_messages() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let queue = unique("safe");
    let destination = format!("/queue/{queue}");
    for body in ["1", "2", "3"] {
        client.publish(&destination, body).await;
    }
    client
        .subscribe("s", &destination, "client-individual")
        .await;
    client.expect_message("1").await;
    client.send_bytes(b"BOGUS\n\n\0").await;
    // Deliveries already on their way may come first.
    loop {
        match client.next().await.map(|f| f.command) {
            Some(Command::Message) => {}
            Some(Command::Error) => break,
            other => panic!("expected ERROR, got {other:?}"),
        }
    }
    client.assert_closed().await;
    let (_connection, channel) = broker.channel().await;
    common::eventually("the unacked message is back", || {
        let channel = channel.clone();
        let queue = queue.clone();
        async move { message_count(&channel, &queue).await == 3 }
    })
    .await;
    assert_eq!(drain(&channel, &queue).await.len(), 3);
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_missing_its_heart_beats() {
    let broker = Broker::start_with(|c| c.stomp_heartbeat_ms = 100).await;
    let connect = connect_frame("1.2").with("heart-beat", "100,0");
    let (mut client, connected) = StompClient::open_with(&broker, connect).await;
    assert_eq!(connected.header("heart-beat"), Some("100,100"));
    let started = tokio::time::Instant::now();
    client.assert_closed().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_client_that_sends_heart_beats_stays_and_receives_them() {
    let broker = Broker::start_with(|c| c.stomp_heartbeat_ms = 100).await;
    let connect = connect_frame("1.2").with("heart-beat", "100,100");
    let (mut client, _) = StompClient::open_with(&broker, connect).await;
    // Beats at well under the 100 ms promised, so a busy machine's late wake-up does not
    // make the client look silent.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        client.send_bytes(b"\n").await;
    }
    let queue = unique("beating");
    assert_alive(&mut client, &queue).await;
    assert!(
        client.heart_beats >= 2,
        "got {} heart-beats",
        client.heart_beats
    );
}

#[tokio::test]
async fn shutdown_sends_an_error_and_closes() {
    let broker = Broker::start().await;
    let mut client = StompClient::open(&broker).await;
    let shutdown = tokio::spawn(broker.shutdown());
    let error = client.expect_error().await;
    assert_eq!(error.header("message"), Some("server shutting down"));
    shutdown.await.expect("shutdown finished");
}

#[tokio::test]
async fn a_client_that_never_connects_is_refused_a_huge_first_frame() {
    let broker = Broker::start().await;
    let mut client = StompClient::connect(&broker).await;
    let mut octets = b"CONNECT\nlogin:".to_vec();
    octets.resize(70 * 1024, b'a');
    client.send_bytes(&octets).await;
    let error = client.expect_error().await;
    assert!(
        error
            .header("message")
            .is_some_and(|m| m.contains("too large"))
    );
}
