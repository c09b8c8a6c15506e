//! The TLS listeners, each the twin of a plain one with a TLS handshake in front: AMQPS 5671,
//! MQTTS 8883, STOMP over TLS 61614 and WSS 15676 (the ports RabbitMQ, ActiveMQ and Amazon MQ
//! use). They start only when a certificate and key are configured; the HTTPS APIs will take
//! their acceptor from the same `Tls`.
//!
//! The handshake runs on the connection's task, never the accept loop, so a slow or failing
//! client delays nobody else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use mqbridge_broker_api::Broker;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

use super::{Accepted, Listeners, amqp_settings, bind, spawn_acceptor, stomp_settings, websocket};
use crate::config::Config;
use crate::tls::{CertificateLogin, Tls, TlsFiles};

/// Where the TLS listeners listen.
#[derive(Debug, Clone, Copy)]
pub struct TlsAddrs {
    pub amqps: SocketAddr,
    pub mqtts: SocketAddr,
    pub stomps: SocketAddr,
    pub wss: SocketAddr,
}

/// The TLS configuration, if the certificate and key are both set.
pub(super) fn load(config: &Config) -> anyhow::Result<Option<Arc<Tls>>> {
    match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Ok(Some(Tls::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: config.tls_client_ca_file.clone(),
        })?)),
        (None, None) => {
            anyhow::ensure!(
                config.tls_client_ca_file.is_none(),
                "tls_client_ca_file needs tls_cert_file and tls_key_file"
            );
            tracing::info!("TLS listeners off: set tls_cert_file and tls_key_file to start them");
            Ok(None)
        }
        _ => anyhow::bail!("tls_cert_file and tls_key_file go together: set both or neither"),
    }
}

impl Listeners<'_> {
    /// Starts every TLS listener, adding their accept tasks to `tasks`.
    pub(super) async fn encrypted(
        &self,
        tls: &Arc<Tls>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> anyhow::Result<TlsAddrs> {
        let config = self.config;
        let settings = amqp_settings(config);
        let amqps = self
            .tls_listener(
                tls,
                "amqps",
                config.amqps_port,
                tasks,
                move |stream, peer, broker, shutdown| {
                    mqbridge_amqp::serve(stream, peer, broker, Arc::clone(&settings), shutdown)
                },
            )
            .await?;
        let shared = Arc::clone(&self.mqtt);
        let mqtts = self
            .tls_listener(
                tls,
                "mqtts",
                config.mqtts_port,
                tasks,
                move |stream, peer, broker, shutdown| {
                    mqbridge_mqtt::serve(stream, peer, broker, Arc::clone(&shared), shutdown)
                },
            )
            .await?;
        let settings = stomp_settings(config);
        let stomps = self
            .tls_listener(
                tls,
                "stomps",
                config.stomps_port,
                tasks,
                move |stream, peer, broker, shutdown| {
                    mqbridge_stomp::serve(stream, peer, broker, Arc::clone(&settings), shutdown)
                },
            )
            .await?;
        let route = self.websocket_route();
        let wss = self
            .tls_listener(
                tls,
                "wss",
                config.wss_port,
                tasks,
                move |stream, peer, broker, shutdown| {
                    websocket::serve(stream, peer, broker, Arc::clone(&route), shutdown)
                },
            )
            .await?;
        Ok(TlsAddrs {
            amqps,
            mqtts,
            stomps,
            wss,
        })
    }

    /// Binds `port` and serves each connection with `serve` once its TLS handshake is done,
    /// logged in by its client certificate's CN when it presented one.
    async fn tls_listener<F, Fut>(
        &self,
        tls: &Arc<Tls>,
        protocol: &'static str,
        port: u16,
        tasks: &mut Vec<JoinHandle<()>>,
        serve: F,
    ) -> anyhow::Result<SocketAddr>
    where
        F: Fn(TlsStream<Accepted>, SocketAddr, Arc<dyn Broker>, watch::Receiver<bool>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener: TcpListener = bind(self.config, protocol, port)?;
        let address = listener.local_addr()?;
        let tls = Arc::clone(tls);
        let loopback_users: Arc<[String]> = self.config.loopback_users.clone().into();
        let serve = Arc::new(serve);
        let timeout = super::handshake_timeout(self.config);
        let accept = spawn_acceptor(
            listener,
            self.accepting(protocol, address),
            self.shutdown.subscribe(),
            move |stream, peer, broker, shutdown| {
                let (tls, users, serve) = (
                    Arc::clone(&tls),
                    Arc::clone(&loopback_users),
                    Arc::clone(&serve),
                );
                async move {
                    let Some(accepted) = tls.accept(stream, peer, timeout).await else {
                        return;
                    };
                    let broker = match accepted.identity {
                        Some(name) => CertificateLogin::wrap(broker, name, &users),
                        None => broker,
                    };
                    serve(accepted.stream, peer, broker, shutdown).await;
                }
            },
        );
        tasks.push(accept);
        tracing::info!(protocol, %address, "listening");
        Ok(address)
    }
}
