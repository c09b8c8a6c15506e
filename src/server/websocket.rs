//! The WebSocket listener: one port, paths `/ws` and `/mqtt`, MQTT or STOMP by subprotocol
//! (ActiveMQ's and Amazon MQ's one-port habit; RabbitMQ uses a port per protocol). The WSS
//! listener in `encrypted` runs the same `serve` behind TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use mqbridge_broker_api::Broker;
use mqbridge_mqtt::MqttShared;
use mqbridge_stomp::StompSettings;
use mqbridge_websocket::{OriginPolicy, Subprotocol, WsSettings};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Listeners, bind, spawn_acceptor, stomp_settings};

/// What a WebSocket connection needs to reach the adapter its subprotocol names.
pub(super) struct WebSocketRoute {
    settings: WsSettings,
    mqtt: Arc<MqttShared>,
    stomp: Arc<StompSettings>,
}

impl Listeners<'_> {
    pub(super) fn websocket_route(&self) -> Arc<WebSocketRoute> {
        Arc::new(WebSocketRoute {
            settings: WsSettings {
                origins: OriginPolicy {
                    allowed: self.config.ws_allowed_origins.clone(),
                },
                max_message_size: self.config.ws_max_message_size,
                handshake_timeout: super::handshake_timeout(self.config),
            },
            mqtt: Arc::clone(&self.mqtt),
            stomp: stomp_settings(self.config),
        })
    }

    pub(super) async fn websocket(&self) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = bind(self.config, "WebSocket", self.config.ws_port)?;
        let address = listener.local_addr()?;
        let route = self.websocket_route();
        let accept = spawn_acceptor(
            listener,
            self.accepting("ws", address),
            self.shutdown.subscribe(),
            move |stream, peer, broker, shutdown| {
                serve(stream, peer, broker, Arc::clone(&route), shutdown)
            },
        );
        tracing::info!(protocol = "websocket", %address, paths = "/ws /mqtt", "listening");
        Ok((address, accept))
    }
}

/// One WebSocket connection, plain or TLS: the upgrade, the adapter, the closing handshake.
/// Runs on the connection's task.
pub(super) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    route: Arc<WebSocketRoute>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut socket = match mqbridge_websocket::accept(stream, &route.settings).await {
        Ok(socket) => socket,
        Err(error) => {
            tracing::info!(%peer, %error, "websocket upgrade failed");
            return;
        }
    };
    match socket.subprotocol() {
        Subprotocol::Mqtt => {
            let shared = Arc::clone(&route.mqtt);
            mqbridge_mqtt::serve(&mut socket, peer, broker, shared, shutdown.clone()).await;
        }
        Subprotocol::Stomp => {
            let settings = Arc::clone(&route.stomp);
            mqbridge_stomp::serve(&mut socket, peer, broker, settings, shutdown.clone()).await;
        }
    }
    if let Some(code) = socket.close_code() {
        tracing::debug!(%peer, code, "websocket closed for a protocol violation");
    }
    let shutting_down = *shutdown.borrow();
    socket.close(shutting_down).await;
}
