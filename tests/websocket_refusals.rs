//! Every way the WebSocket port refuses a client, and that a refused or failed connection
//! leaves the broker serving everyone else.

mod common;

use common::mqtt::{alive_client, assert_alive};
use common::websocket::{self, close_code, http_exchange, upgrade_request};
use common::{Broker, within};
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// Asserts an HTTP status line and that the body says `why`.
#[track_caller]
fn assert_refused(response: &str, status: &str, why: &str) {
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status}")),
        "{response}"
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains(why), "body {body:?} does not say {why:?}");
}

#[tokio::test]
async fn missing_and_unknown_subprotocols_are_400_saying_what_to_offer() {
    let broker = Broker::start().await;
    let address = broker.server.ws_addr;
    let none = http_exchange(address, &upgrade_request("/ws", "")).await;
    assert_refused(&none, "400", "no WebSocket subprotocol offered");
    let unknown = upgrade_request("/ws", "Sec-WebSocket-Protocol: amqp, wamp.2.json\r\n");
    let unknown = http_exchange(address, &unknown).await;
    assert_refused(
        &unknown,
        "400",
        "unsupported WebSocket subprotocol amqp, wamp.2.json",
    );
    assert!(unknown.contains("v12.stomp"));
}

#[tokio::test]
async fn wrong_path_plain_http_and_old_versions_are_refused() {
    let broker = Broker::start().await;
    let address = broker.server.ws_addr;
    let path = upgrade_request("/stomp", "Sec-WebSocket-Protocol: mqtt\r\n");
    assert_refused(
        &http_exchange(address, &path).await,
        "404",
        "use /ws or /mqtt",
    );
    let plain = http_exchange(address, "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_refused(&plain, "426", "send Upgrade: websocket");
    let old = upgrade_request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n")
        .replace("Version: 13", "Version: 8");
    let old = http_exchange(address, &old).await;
    assert_refused(&old, "426", "version 13");
    assert!(old.contains("Sec-WebSocket-Version: 13\r\n"));
    let garbage = http_exchange(address, "\u{1}\u{2}\u{3} nonsense\r\n\r\n").await;
    assert_refused(&garbage, "400", "malformed HTTP request");
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_403() {
    let broker = Broker::start_with(|config| {
        config.ws_allowed_origins = vec!["https://app.example".to_owned()];
    })
    .await;
    let address = broker.server.ws_addr;
    let evil = "Sec-WebSocket-Protocol: mqtt\r\nOrigin: https://evil.example\r\n";
    let refused = http_exchange(address, &upgrade_request("/ws", evil)).await;
    assert_refused(
        &refused,
        "403",
        "origin https://evil.example is not allowed",
    );
    let allowed = "Sec-WebSocket-Protocol: mqtt\r\nOrigin: https://app.example\r\n";
    let accepted = http_exchange_head(address, &upgrade_request("/ws", allowed)).await;
    assert!(accepted.starts_with("HTTP/1.1 101"), "{accepted}");
}

#[tokio::test]
async fn a_text_frame_on_mqtt_closes_with_1003() {
    let broker = Broker::start().await;
    let mut socket = websocket::open(broker.server.ws_addr, "/ws", "mqtt")
        .await
        .expect("upgrade");
    socket.send(Message::text("CONNECT")).await.expect("send");
    assert_eq!(close_code(&mut socket).await, 1003);
}

#[tokio::test]
async fn a_message_over_the_limit_closes_with_1009() {
    let broker = Broker::start_with(|config| config.ws_max_message_size = 1024).await;
    let mut socket = websocket::open(broker.server.ws_addr, "/ws", "mqtt")
        .await
        .expect("upgrade");
    socket
        .send(Message::binary(vec![0x30; 1025]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut socket).await, 1009);
}

#[tokio::test]
async fn a_frame_breaking_rfc_6455_closes_with_1002() {
    let broker = Broker::start().await;
    let mut stream = within(tokio::net::TcpStream::connect(broker.server.ws_addr))
        .await
        .expect("connect");
    let request = upgrade_request("/ws", "Sec-WebSocket-Protocol: mqtt\r\n");
    // The upgrade request and, behind it, an unmasked frame (clients must mask, section 5.1).
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&[0x82, 0x01, 0x10]);
    within(stream.write_all(&bytes)).await.expect("write");
    let mut response = Vec::new();
    let _ = within(tokio::io::AsyncReadExt::read_to_end(
        &mut stream,
        &mut response,
    ))
    .await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let head_end = text.find("\r\n\r\n").expect("head") + 4;
    let close = &response[head_end..];
    // An unmasked Close frame from the server: 0x88, length, then the code.
    assert_eq!(close.first(), Some(&0x88), "{close:?}");
    assert_eq!(
        close.get(2..4),
        Some(&1002u16.to_be_bytes()[..]),
        "{close:?}"
    );
}

#[tokio::test]
async fn refused_and_failed_connections_leave_others_working() {
    let broker = Broker::start_with(|config| config.ws_max_message_size = 1024).await;
    let mut witness = alive_client(&broker, "witness").await;
    let address = broker.server.ws_addr;
    http_exchange(address, &upgrade_request("/ws", "")).await;
    let mut socket = websocket::open(address, "/ws", "mqtt")
        .await
        .expect("upgrade");
    socket
        .send(Message::binary(vec![0; 4096]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut socket).await, 1009);
    let mut garbage = websocket::open(address, "/mqtt", "mqtt")
        .await
        .expect("upgrade");
    garbage
        .send(Message::binary(vec![0xff; 64]))
        .await
        .expect("send");
    assert_alive(&mut witness, "witness", "after bad websocket clients").await;
    let page = broker.mqtt(broker.mqtt_ws_options("page", "/ws")).await;
    page.client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn broker_shutdown_closes_websockets_with_1001() {
    let broker = Broker::start().await;
    let mut socket = websocket::open(broker.server.ws_addr, "/ws", "mqtt")
        .await
        .expect("upgrade");
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b's',
    ];
    socket
        .send(Message::binary(connect.to_vec()))
        .await
        .expect("send");
    assert!(
        common::websocket::next_message(&mut socket).await.is_some(),
        "CONNACK"
    );
    let stopping = tokio::spawn(broker.shutdown());
    assert_eq!(close_code(&mut socket).await, 1001);
    within(stopping).await.expect("stopped");
}

/// Sends `request` and returns what the broker answers within a moment, without waiting for
/// the connection to close (an accepted upgrade stays open).
async fn http_exchange_head(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = within(tokio::net::TcpStream::connect(address))
        .await
        .expect("connect");
    within(stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut response = vec![0; 1024];
    let read = within(tokio::io::AsyncReadExt::read(&mut stream, &mut response))
        .await
        .expect("read");
    String::from_utf8_lossy(&response[..read]).into_owned()
}
