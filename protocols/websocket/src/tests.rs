//! `accept` end to end over an in-memory pipe, with tungstenite's client as the peer.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::*;

fn settings() -> WsSettings {
    WsSettings {
        origins: OriginPolicy::default(),
        max_message_size: 1024,
        handshake_timeout: std::time::Duration::from_secs(10),
    }
}

#[tokio::test]
async fn a_client_library_upgrades_and_its_bytes_come_through() {
    let (server, client) = tokio::io::duplex(4096);
    let accepting = tokio::spawn(async move { accept(server, &settings()).await });
    let mut request = "ws://localhost/mqtt"
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().expect("header"));
    let (mut client, response) = tokio_tungstenite::client_async(request, client)
        .await
        .expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    let mut stream = accepting.await.expect("task").expect("accepted");
    assert_eq!(stream.subprotocol(), Subprotocol::Mqtt);
    client
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    let mut bytes = [0; 3];
    stream.read_exact(&mut bytes).await.expect("read");
    assert_eq!(bytes, [1, 2, 3]);
    stream.write_all(&[4]).await.expect("write");
    assert_eq!(
        client.next().await.expect("open").expect("message"),
        Message::binary(vec![4])
    );
}

#[tokio::test]
async fn a_refused_client_reads_the_status_and_why() {
    let (server, mut client) = tokio::io::duplex(4096);
    let accepting = tokio::spawn(async move { accept(server, &settings()).await });
    client
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .expect("write");
    let mut response = String::new();
    client.read_to_string(&mut response).await.expect("read");
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(response.ends_with("v12.stomp\n"), "{response}");
    match accepting.await.expect("task") {
        Err(AcceptError::Refused { status: 400, .. }) => {}
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_client_that_goes_away_mid_request_is_an_io_error() {
    let (server, mut client) = tokio::io::duplex(4096);
    client
        .write_all(b"GET /ws HTTP/1.1\r\n")
        .await
        .expect("write");
    drop(client);
    assert!(matches!(
        accept(server, &settings()).await,
        Err(AcceptError::Io(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_times_out() {
    let (server, _client) = tokio::io::duplex(4096);
    assert!(matches!(
        accept(server, &settings()).await,
        Err(AcceptError::Timeout(_))
    ));
}
