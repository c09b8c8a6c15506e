//! STOMP over WebSocket against the real broker: text and binary frames in, text frames out
//! (binary when a body is not UTF-8), on the same destinations as the other protocols.

mod common;

use common::mqtt::subscribed;
use common::websocket::{self, WebSocket, next_message};
use common::{Broker, within};
use futures_util::SinkExt;
use rumqttc::QoS;
use tokio_tungstenite::tungstenite::Message;

const CONNECT: &str = "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0";

/// A STOMP session over WebSocket offering `subprotocols`, past CONNECTED.
async fn stomp(broker: &Broker, path: &str, subprotocols: &str) -> WebSocket {
    let mut socket = websocket::open(broker.server.ws_addr, path, subprotocols)
        .await
        .expect("upgrade");
    socket.send(Message::text(CONNECT)).await.expect("send");
    let connected = next_text(&mut socket).await;
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");
    socket
}

async fn next_text(socket: &mut WebSocket) -> String {
    match next_message(socket).await {
        Some(Message::Text(text)) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next STOMP frame as bytes, whatever the WebSocket frame type; skips heart-beats.
async fn next_frame(socket: &mut WebSocket) -> Vec<u8> {
    loop {
        let bytes = match next_message(socket).await {
            Some(Message::Text(text)) => text.as_bytes().to_vec(),
            Some(Message::Binary(bytes)) => bytes.to_vec(),
            other => panic!("expected a frame, got {other:?}"),
        };
        if bytes.iter().any(|&byte| byte != b'\n') {
            return bytes;
        }
    }
}

#[tokio::test]
async fn stompjs_style_session_receives_what_mqtt_publishes() {
    let broker = Broker::start().await;
    let mut page = stomp(&broker, "/ws", "v10.stomp, v11.stomp, v12.stomp").await;
    let subscribe = "SUBSCRIBE\nid:0\ndestination:/topic/news.sport\nreceipt:r1\n\n\0";
    page.send(Message::text(subscribe))
        .await
        .expect("subscribe");
    assert!(
        next_text(&mut page)
            .await
            .starts_with("RECEIPT\nreceipt-id:r1\n")
    );
    let publisher = broker.mqtt(broker.mqtt_options("publisher")).await;
    publisher
        .client
        .publish("news/sport", QoS::AtLeastOnce, false, "goal")
        .await
        .expect("publish");
    let mut events = publisher.events;
    let publisher_loop = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let message = next_text(&mut page).await;
    assert!(message.starts_with("MESSAGE\n"), "{message}");
    assert!(message.ends_with("\n\ngoal\0"), "{message:?}");
    publisher_loop.abort();
}

#[tokio::test]
async fn binary_frames_carry_bodies_that_are_not_utf8_both_ways() {
    let broker = Broker::start().await;
    let mut receiver = broker.mqtt(broker.mqtt_options("receiver")).await;
    receiver
        .client
        .subscribe("raw/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    subscribed(&mut receiver.events).await;
    let mut page = stomp(&broker, "/mqtt", "v12.stomp").await;
    let subscribe = "SUBSCRIBE\nid:1\ndestination:/topic/raw.bytes\nreceipt:r2\n\n\0";
    page.send(Message::text(subscribe))
        .await
        .expect("subscribe");
    assert!(next_text(&mut page).await.starts_with("RECEIPT"));
    // SEND with a binary body, in a binary WebSocket frame.
    let mut send = b"SEND\ndestination:/topic/raw.bytes\ncontent-length:3\n\n".to_vec();
    send.extend_from_slice(&[0xff, 0x00, 0xfe, 0x00]);
    page.send(Message::binary(send)).await.expect("send");
    let got = common::mqtt::next_publish(&mut receiver.events).await;
    assert_eq!(&got.payload[..], [0xff, 0x00, 0xfe]);
    // The page's own subscription gets it back in a binary frame, since it is not UTF-8.
    let frame = within(async {
        match next_message(&mut page).await {
            Some(Message::Binary(bytes)) => bytes.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    })
    .await;
    assert!(frame.starts_with(b"MESSAGE\n"));
    assert!(
        frame.ends_with(&[b'\n', b'\n', 0xff, 0x00, 0xfe, 0x00]),
        "{frame:?}"
    );
}

#[tokio::test]
async fn a_stomp_error_reaches_the_page_before_the_close() {
    let broker = Broker::start().await;
    let mut socket = websocket::open(broker.server.ws_addr, "/ws", "v12.stomp")
        .await
        .expect("upgrade");
    let bad = "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:wrong\n\n\0";
    socket.send(Message::text(bad)).await.expect("send");
    let error = next_frame(&mut socket).await;
    assert!(
        error.starts_with(b"ERROR\n"),
        "{}",
        String::from_utf8_lossy(&error)
    );
    assert_eq!(websocket::close_code(&mut socket).await, 1000);
}
