//! WebSocket clients against the test broker: rumqttc over `ws://` and `wss://`, tungstenite
//! for raw frames, and plain TCP for what a WebSocket client library would never send.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Broker, within};

pub type WebSocket = WebSocketStream<TcpStream>;

impl Broker {
    /// rumqttc options for MQTT over `ws://` on `path`.
    pub fn mqtt_ws_options(&self, client_id: &str, path: &str) -> MqttOptions {
        let address = self.server.ws_addr;
        let url = format!("ws://{address}{path}");
        let mut options = MqttOptions::new(client_id, url, address.port());
        options.set_transport(Transport::Ws);
        options.set_keep_alive(std::time::Duration::from_secs(30));
        options
    }
}

/// rumqttc options for MQTT over `wss://localhost:{port}/mqtt` with `tls` as the client config.
pub fn mqtt_wss_options(client_id: &str, port: u16, tls: Arc<ClientConfig>) -> MqttOptions {
    let url = format!("wss://localhost:{port}/mqtt");
    let mut options = MqttOptions::new(client_id, url, port);
    options.set_transport(Transport::Wss(TlsConfiguration::Rustls(tls)));
    options.set_keep_alive(std::time::Duration::from_secs(30));
    options
}

/// Opens a WebSocket on `path` offering `subprotocols`; the HTTP error if refused.
pub async fn open(
    address: SocketAddr,
    path: &str,
    subprotocols: &str,
) -> Result<WebSocket, tokio_tungstenite::tungstenite::Error> {
    let stream = within(TcpStream::connect(address))
        .await
        .expect("tcp connect");
    let mut request = format!("ws://{address}{path}")
        .into_client_request()
        .expect("request");
    if !subprotocols.is_empty() {
        let value = subprotocols.parse().expect("header value");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    within(tokio_tungstenite::client_async(request, stream))
        .await
        .map(|(socket, _)| socket)
}

/// Sends `request` as raw bytes and returns everything the broker answers before closing.
pub async fn http_exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = within(TcpStream::connect(address))
        .await
        .expect("tcp connect");
    within(stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response))
        .await
        .expect("read");
    String::from_utf8(response).expect("utf-8 response")
}

/// A WebSocket upgrade request for `path` with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// The next data message, skipping pings and pongs; `None` if the connection closed.
pub async fn next_message(socket: &mut WebSocket) -> Option<Message> {
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
}

/// The code of the Close frame the broker sends next.
pub async fn close_code(socket: &mut WebSocket) -> u16 {
    match next_message(socket).await {
        Some(Message::Close(Some(frame))) => frame.code.into(),
        other => panic!("expected a Close frame, got {other:?}"),
    }
}
