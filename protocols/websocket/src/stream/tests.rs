//! The byte stream over an in-memory pipe, with tungstenite as the client.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::*;

const PIPE_CAPACITY: usize = 64 * 1024;
const MAX_MESSAGE: usize = 1024;

async fn pair(subprotocol: Subprotocol) -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (server, client) = tokio::io::duplex(PIPE_CAPACITY);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let server = WebSocketStream::from_raw_socket(server, Role::Server, Some(config)).await;
    let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    (WsStream::new(server, subprotocol), client)
}

/// Reads exactly `n` bytes from the server side.
async fn read_exactly(server: &mut WsStream<DuplexStream>, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    server.read_exact(&mut bytes).await.expect("read");
    bytes
}

/// The client's next message that is not a ping or pong.
async fn next_data(client: &mut WebSocketStream<DuplexStream>) -> Message {
    loop {
        match client.next().await.expect("open").expect("message") {
            Message::Ping(_) | Message::Pong(_) => {}
            message => return message,
        }
    }
}

async fn close_code(client: &mut WebSocketStream<DuplexStream>) -> u16 {
    match next_data(client).await {
        Message::Close(Some(frame)) => frame.code.into(),
        other => panic!("expected Close, got {other:?}"),
    }
}

#[tokio::test]
async fn message_boundaries_do_not_matter_to_the_reader() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    // One packet split over two messages, then two packets in one message.
    client
        .send(Message::binary(vec![0x10, 0x02]))
        .await
        .expect("send");
    client
        .send(Message::binary(vec![0x00, 0x04]))
        .await
        .expect("send");
    client
        .send(Message::binary(vec![0xc0, 0x00, 0xc0, 0x00]))
        .await
        .expect("send");
    assert_eq!(
        read_exactly(&mut server, 8).await,
        [0x10, 2, 0, 4, 0xc0, 0, 0xc0, 0]
    );
}

#[tokio::test]
async fn mqtt_goes_out_in_binary_frames() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    server.write_all(b"\x20\x02\x00\x00").await.expect("write");
    assert_eq!(
        next_data(&mut client).await,
        Message::binary(b"\x20\x02\x00\x00".to_vec())
    );
}

#[tokio::test]
async fn stomp_goes_out_as_text_unless_it_is_not_utf8() {
    let (mut server, mut client) = pair(Subprotocol::Stomp).await;
    server
        .write_all(b"CONNECTED\nversion:1.2\n\n\0")
        .await
        .expect("write");
    assert_eq!(
        next_data(&mut client).await,
        Message::text("CONNECTED\nversion:1.2\n\n\0")
    );
    server
        .write_all(b"MESSAGE\n\n\xff\xfe\0")
        .await
        .expect("write");
    assert_eq!(
        next_data(&mut client).await,
        Message::binary(b"MESSAGE\n\n\xff\xfe\0".to_vec())
    );
}

#[tokio::test]
async fn stomp_reads_text_and_binary_frames() {
    let (mut server, mut client) = pair(Subprotocol::Stomp).await;
    client.send(Message::text("SEND\n\n")).await.expect("send");
    client
        .send(Message::binary(b"\xff\0".to_vec()))
        .await
        .expect("send");
    assert_eq!(read_exactly(&mut server, 8).await, b"SEND\n\n\xff\0");
}

#[tokio::test]
async fn text_frame_on_mqtt_closes_with_1003() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    client.send(Message::text("CONNECT")).await.expect("send");
    let mut bytes = [0; 16];
    assert!(server.read(&mut bytes).await.is_err());
    assert_eq!(server.close_code(), Some(1003));
    let closing = tokio::spawn(server.close(false));
    assert_eq!(close_code(&mut client).await, 1003);
    drop(client);
    closing.await.expect("closed");
}

#[tokio::test]
async fn too_large_a_message_closes_with_1009() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    client
        .send(Message::binary(vec![0; MAX_MESSAGE + 1]))
        .await
        .expect("send");
    let mut bytes = [0; 16];
    assert!(server.read(&mut bytes).await.is_err());
    let closing = tokio::spawn(server.close(false));
    assert_eq!(close_code(&mut client).await, 1009);
    drop(client);
    closing.await.expect("closed");
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let (server, mut raw) = tokio::io::duplex(PIPE_CAPACITY);
    let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
    let mut server = WsStream::new(server, Subprotocol::Mqtt);
    // RFC 6455 section 5.1: a server MUST close the connection on an unmasked client frame.
    raw.write_all(&[0x82, 0x01, 0x10]).await.expect("write");
    let mut bytes = [0; 16];
    assert!(server.read(&mut bytes).await.is_err());
    assert_eq!(server.close_code(), Some(1002));
}

#[tokio::test]
async fn pings_are_answered_while_the_adapter_reads() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    let reader = tokio::spawn(async move { read_exactly(&mut server, 1).await });
    client
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .expect("ping");
    match client.next().await.expect("open").expect("message") {
        Message::Pong(payload) => assert_eq!(payload, Bytes::from_static(b"hi")),
        other => panic!("expected Pong, got {other:?}"),
    }
    client.send(Message::binary(vec![7])).await.expect("send");
    assert_eq!(reader.await.expect("reader"), [7]);
}

#[tokio::test]
async fn the_client_closing_is_the_end_of_the_stream() {
    let (mut server, mut client) = pair(Subprotocol::Mqtt).await;
    client.close(None).await.expect("close");
    let mut bytes = Vec::new();
    server.read_to_end(&mut bytes).await.expect("EOF");
    assert!(bytes.is_empty());
    server.close(false).await;
    assert!(
        client
            .next()
            .await
            .is_none_or(|m| m.is_err() || matches!(m, Ok(Message::Close(_))))
    );
}

#[tokio::test]
async fn broker_shutdown_closes_with_1001_and_normal_end_with_1000() {
    let (server, mut client) = pair(Subprotocol::Stomp).await;
    let closing = tokio::spawn(server.close(true));
    assert_eq!(close_code(&mut client).await, 1001);
    drop(client);
    closing.await.expect("closed");
    let (server, mut client) = pair(Subprotocol::Stomp).await;
    let closing = tokio::spawn(server.close(false));
    assert_eq!(close_code(&mut client).await, 1000);
    drop(client);
    closing.await.expect("closed");
}

#[test]
fn close_reasons_fit_a_control_frame_on_a_char_boundary() {
    let reason = "é".repeat(100);
    let frame = close_frame(CloseCode::Protocol, &reason);
    assert!(frame.reason.len() <= CLOSE_REASON_MAX);
    assert!(frame.reason.chars().all(|c| c == 'é'));
}
