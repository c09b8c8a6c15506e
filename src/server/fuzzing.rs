//! The broker without its listeners, for the fuzz targets in `fuzz/`: each target hands
//! [`InMemoryBroker::serve`] the server side of an in-memory stream, and the adapter runs on
//! it exactly as on an accepted socket, against the real core and store.
//!
//! Hidden from the documentation: it is a seam for fuzzing, not an API. It reuses the
//! listeners' own settings builders so that a fuzzed connection meets what a real client
//! would; what it leaves out is what surrounds `serve` in the accept loop (the connection cap,
//! the management registry, the login delay), the MQTT statistics task and the management
//! API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mqbridge_amqp::AmqpSettings;
use mqbridge_broker_api::Broker;
use mqbridge_mqtt::MqttShared;
use mqbridge_sns::{SnsNeighbor, SnsService, SnsSettings};
use mqbridge_sqs::{Neighbor, SqsService};
use mqbridge_stomp::StompSettings;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::registry::ConnectionRegistry;
use super::websocket::{self, WebSocketRoute};
use super::{Listeners, amqp_settings, mqtt_shared, open_core, sqs_settings, stomp_settings};
use crate::config::Config;
use crate::store::Journal;

/// Which listener a connection arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Amqp,
    Mqtt,
    Stomp,
    /// The WebSocket port: an HTTP upgrade, then MQTT or STOMP by subprotocol.
    WebSocket,
    /// The SQS and SNS HTTP APIs.
    Sqs,
}

/// A broker whose connections come from the caller rather than from listening sockets.
pub struct InMemoryBroker {
    core: Arc<dyn Broker>,
    amqp: Arc<AmqpSettings>,
    mqtt: Arc<MqttShared>,
    stomp: Arc<StompSettings>,
    websocket: Arc<WebSocketRoute>,
    sqs: Arc<SqsService>,
    sns: Arc<dyn Neighbor>,
    /// Never signalled; it keeps the services' and connections' shutdown receivers open.
    shutdown: watch::Sender<bool>,
    /// Kept so that the store stays open while connections use it.
    _journal: Arc<Journal>,
}

impl InMemoryBroker {
    /// Opens the core and store on `config.data_dir` and starts the SQS and SNS services, as
    /// [`super::Server::start`] does, without binding a port. Runs inside a tokio runtime.
    pub fn start(config: &Config) -> anyhow::Result<InMemoryBroker> {
        let sqs = sqs_settings(config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        let (broker, journal) = open_core(config)?;
        let system = broker.system();
        let core: Arc<dyn Broker> = broker.clone();
        let (shutdown, _) = watch::channel(false);
        let registry = Arc::new(ConnectionRegistry::new(1));
        let listeners = Listeners {
            config,
            core: &core,
            system: &system,
            logins: &broker,
            connections: registry.slots(),
            shutdown: &shutdown,
            registry: &registry,
            bound: Mutex::default(),
            mqtt: mqtt_shared(config),
            sqs: sqs.clone(),
        };
        let websocket = listeners.websocket_route();
        let sns_settings = SnsSettings {
            vhost: sqs.vhost.clone(),
            user: sqs.user.clone(),
        };
        let sns = SnsService::start(&system, &core, &sns_settings, shutdown.subscribe())?;
        let sqs = SqsService::start(&system, &core, sqs, shutdown.subscribe())?;
        Ok(InMemoryBroker {
            amqp: amqp_settings(config),
            mqtt: Arc::clone(&listeners.mqtt),
            stomp: stomp_settings(config),
            websocket,
            sqs,
            sns: Arc::new(SnsNeighbor(sns)),
            core,
            shutdown,
            _journal: journal,
        })
    }

    /// Serves one connection on `stream` as `listener` serves a socket accepted from `peer`,
    /// until the adapter is done with it.
    pub async fn serve<S>(&self, listener: Listener, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let core = Arc::clone(&self.core);
        // A fresh receiver per connection: nothing here ever signals shutdown.
        let shutdown = self.shutdown.subscribe();
        match listener {
            Listener::Amqp => {
                let settings = Arc::clone(&self.amqp);
                mqbridge_amqp::serve(stream, peer, core, settings, shutdown).await;
            }
            Listener::Mqtt => {
                let shared = Arc::clone(&self.mqtt);
                mqbridge_mqtt::serve(stream, peer, core, shared, shutdown).await;
            }
            Listener::Stomp => {
                let settings = Arc::clone(&self.stomp);
                mqbridge_stomp::serve(stream, peer, core, settings, shutdown).await;
            }
            Listener::WebSocket => {
                let route = Arc::clone(&self.websocket);
                websocket::serve(stream, peer, core, route, shutdown).await;
            }
            Listener::Sqs => {
                let service = Arc::clone(&self.sqs);
                let sns = Some(Arc::clone(&self.sns));
                mqbridge_sqs::serve(stream, peer, service, sns, shutdown).await;
            }
        }
    }
}
