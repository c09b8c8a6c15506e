//! Hostile STOMP input on fresh raw connections. STOMP 1.2 ("ERROR"): the server "MAY send
//! ERROR frames if something goes wrong", the frame "SHOULD contain a message header with a
//! short description of the error", carries `receipt-id` when the offending frame asked for a
//! receipt, and the server "MUST then close the connection". Each case asserts that ERROR's
//! `message` header, the close, and that a well-behaved STOMP client and the AMQP bystander
//! (tests/common/hostile.rs) still work with no stored message lost or gained.

mod common;

use common::Broker;
use common::hostile::{Bystander, promptly};
use common::stomp::{StompClient, assert_alive, unique};
use mqbridge_stomp::codec::{Frame, HEADER_COUNT_MAX};

struct Scene {
    broker: Broker,
    bystander: Bystander,
    witness: StompClient,
}

impl Scene {
    async fn start() -> Scene {
        let broker = Broker::start().await;
        let bystander = Bystander::start(&broker).await;
        let witness = StompClient::open(&broker).await;
        Scene {
            broker,
            bystander,
            witness,
        }
    }

    /// The well-behaved clients still work and nothing stored is gone.
    async fn check(mut self) {
        assert_alive(&mut self.witness, &unique("witness")).await;
        self.bystander.check().await;
    }

    /// Sends `octets` on a fresh logged-in connection; returns the ERROR after which the
    /// broker closed the connection.
    async fn error_after_login(&self, octets: &[u8]) -> Frame {
        let mut client = StompClient::open(&self.broker).await;
        client.send_bytes(octets).await;
        promptly("an ERROR frame", client.expect_error()).await
    }

    /// Sends `octets` as the first thing on a fresh connection; returns the ERROR.
    async fn error_before_login(&self, octets: &[u8]) -> Frame {
        let mut client = StompClient::connect(&self.broker).await;
        client.send_bytes(octets).await;
        promptly("an ERROR frame", client.expect_error()).await
    }
}

#[track_caller]
fn assert_message(error: &Frame, message: &str) {
    assert_eq!(error.header("message"), Some(message), "{error:?}");
}

#[tokio::test]
async fn thousands_of_headers_are_refused() {
    let scene = Scene::start().await;
    let mut octets = b"SEND\ndestination:/queue/bystander-store\n".to_vec();
    for n in 0..5_000 {
        octets.extend_from_slice(format!("h{n}:v\n").as_bytes());
    }
    octets.extend_from_slice(b"\nnever stored\0");
    let error = scene.error_after_login(&octets).await;
    assert_message(&error, "headers too large");
    let body = String::from_utf8_lossy(&error.body).into_owned();
    assert!(body.contains(&HEADER_COUNT_MAX.to_string()), "{body}");
    scene.check().await;
}

#[tokio::test]
async fn an_endless_header_line_is_refused_before_it_ends() {
    let scene = Scene::start().await;
    // 100 KB of one header value with no end of line: refused once the header block passes
    // 64 KiB, without waiting for a NUL that never comes.
    let mut octets = b"SEND\ndestination:/queue/q\nx:".to_vec();
    octets.resize(100 * 1024, b'a');
    let error = scene.error_after_login(&octets).await;
    assert_message(&error, "headers too large");
    scene.check().await;
}

#[tokio::test]
async fn a_huge_content_length_before_login_is_refused_on_the_header() {
    let scene = Scene::start().await;
    // Declares a terabyte and sends none of it; before login frames are capped at 64 KiB.
    let octets = b"CONNECT\naccept-version:1.2\ncontent-length:1000000000000\n\n";
    let error = scene.error_before_login(octets).await;
    assert_message(&error, "frame too large");
    scene.check().await;
}

#[tokio::test]
async fn a_content_length_that_is_not_a_number_is_refused() {
    let scene = Scene::start().await;
    for length in ["ten", "-5", "1e3", "18446744073709551616"] {
        let octets = format!("SEND\ndestination:/queue/q\ncontent-length:{length}\n\nx\0");
        let error = scene.error_after_login(octets.as_bytes()).await;
        assert_message(&error, "bad content-length");
    }
    scene.check().await;
}

#[tokio::test]
async fn a_header_without_a_colon_is_malformed() {
    let scene = Scene::start().await;
    let error = scene
        .error_after_login(b"SEND\ndestination:/queue/q\nno colon here\n\nx\0")
        .await;
    assert_message(&error, "malformed header");
    scene.check().await;
}

#[tokio::test]
async fn headers_that_are_not_utf8_are_malformed() {
    let scene = Scene::start().await;
    // STOMP 1.2 "Value Encoding": headers are UTF-8.
    let error = scene
        .error_after_login(b"SEND\ndestination:/queue/q\nname:\xC3\x28\n\nx\0")
        .await;
    assert_message(&error, "malformed header");
    scene.check().await;
}

#[tokio::test]
async fn a_lower_case_command_is_unknown() {
    let scene = Scene::start().await;
    // Commands are case-sensitive: "send" is not SEND.
    let error = scene
        .error_after_login(b"send\ndestination:/queue/q\n\nx\0")
        .await;
    assert_message(&error, "unknown command");
    scene.check().await;
}

#[tokio::test]
async fn a_second_connect_is_refused() {
    let scene = Scene::start().await;
    let octets = b"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nreceipt:again\n\n\0";
    let error = scene.error_after_login(octets).await;
    assert_message(&error, "already connected");
    assert_eq!(error.header("receipt-id"), Some("again"));
    scene.check().await;
}

#[tokio::test]
async fn a_frame_only_servers_send_is_refused() {
    let scene = Scene::start().await;
    let octets = b"MESSAGE\ndestination:/queue/q\nmessage-id:1\nsubscription:s\n\nforged\0";
    let error = scene.error_after_login(octets).await;
    assert_message(&error, "unexpected frame");
    scene.check().await;
}

#[tokio::test]
async fn an_unknown_ack_mode_is_refused() {
    let scene = Scene::start().await;
    let octets = b"SUBSCRIBE\nid:s\ndestination:/queue/q\nack:sometimes\nreceipt:r\n\n\0";
    let error = scene.error_after_login(octets).await;
    assert_message(&error, "invalid ack mode");
    assert_eq!(error.header("receipt-id"), Some("r"));
    scene.check().await;
}

#[tokio::test]
async fn a_prefetch_count_that_is_not_a_number_is_refused() {
    let scene = Scene::start().await;
    let octets = b"SUBSCRIBE\nid:s\ndestination:/queue/q\nack:client\nprefetch-count:-1\n\n\0";
    let error = scene.error_after_login(octets).await;
    assert_message(&error, "invalid header");
    scene.check().await;
}

#[tokio::test]
async fn a_subscribe_without_an_id_names_its_receipt() {
    let scene = Scene::start().await;
    // STOMP 1.2 SUBSCRIBE: "id" is required.
    let octets = b"SUBSCRIBE\ndestination:/queue/q\nreceipt:no-id\n\n\0";
    let error = scene.error_after_login(octets).await;
    assert_message(&error, "missing header");
    assert_eq!(error.header("receipt-id"), Some("no-id"));
    scene.check().await;
}

#[tokio::test]
async fn an_unsubscribe_of_an_unknown_id_is_refused() {
    let scene = Scene::start().await;
    let error = scene
        .error_after_login(b"UNSUBSCRIBE\nid:never-made\n\n\0")
        .await;
    assert_message(&error, "unknown subscription");
    scene.check().await;
}

#[tokio::test]
async fn a_nack_of_an_unknown_id_is_refused() {
    let scene = Scene::start().await;
    let error = scene.error_after_login(b"NACK\nid:12345\n\n\0").await;
    assert_message(&error, "unknown message id");
    scene.check().await;
}

#[tokio::test]
async fn commit_of_an_unknown_transaction_and_begin_twice_are_refused() {
    let scene = Scene::start().await;
    let error = scene
        .error_after_login(b"COMMIT\ntransaction:nope\n\n\0")
        .await;
    assert_message(&error, "invalid transaction");
    let error = scene
        .error_after_login(b"BEGIN\ntransaction:t\n\n\0BEGIN\ntransaction:t\n\n\0")
        .await;
    assert_message(&error, "invalid transaction");
    scene.check().await;
}

#[tokio::test]
async fn sends_of_a_transaction_that_dies_with_its_connection_are_never_stored() {
    let scene = Scene::start().await;
    // Three SENDs to the bystander's durable queue inside a transaction, then a bad frame:
    // the ERROR ends the connection and the transaction with it (STOMP 1.2 BEGIN: "any
    // started transactions which have not been committed will be implicitly aborted").
    let mut octets = b"BEGIN\ntransaction:doomed\n\n\0".to_vec();
    for n in 0..3 {
        let send = format!(
            "SEND\ndestination:/queue/bystander-store\ntransaction:doomed\npersistent:true\n\n\
             doomed {n}\0"
        );
        octets.extend_from_slice(send.as_bytes());
    }
    octets.extend_from_slice(b"NOT-A-COMMAND\n\n\0");
    let error = scene.error_after_login(&octets).await;
    assert_message(&error, "unknown command");
    // check() finds exactly the bystander's own messages in that queue.
    scene.check().await;
}

#[tokio::test]
async fn a_send_to_a_temp_queue_or_an_unknown_prefix_is_an_invalid_destination() {
    let scene = Scene::start().await;
    for destination in ["/temp-queue/mine", "/nowhere/x", "queue-without-slash"] {
        let octets = format!("SEND\ndestination:{destination}\n\nx\0");
        let error = scene.error_after_login(octets.as_bytes()).await;
        assert_message(&error, "invalid destination");
    }
    scene.check().await;
}

#[tokio::test]
async fn a_malformed_heart_beat_is_refused_at_connect() {
    let scene = Scene::start().await;
    let octets = b"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nheart-beat:soon\n\n\0";
    let error = scene.error_before_login(octets).await;
    assert_message(&error, "invalid heart-beat");
    scene.check().await;
}

#[tokio::test]
async fn only_unknown_versions_are_refused_with_the_versions_spoken() {
    let scene = Scene::start().await;
    let octets = b"CONNECT\naccept-version:2.0,9.9\nlogin:guest\npasscode:guest\n\n\0";
    let error = scene.error_before_login(octets).await;
    assert_message(&error, "unsupported protocol version");
    // STOMP 1.2 CONNECT: the ERROR "MUST" include a version header listing ours.
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
    scene.check().await;
}

#[tokio::test]
async fn a_wrong_passcode_is_access_refused() {
    let scene = Scene::start().await;
    let octets = b"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:wrong\n\n\0";
    let error = scene.error_before_login(octets).await;
    assert_message(&error, "access refused");
    scene.check().await;
}
