//! Listeners and lifecycle: bind every configured port, accept under a connection cap, hand
//! each socket to its protocol adapter on its own task, and shut down gracefully.
//!
//! Task topology (ARCHITECTURE.md has the picture): one accept task per listener; one task per
//! client connection (the adapter's); one task per queue (the core's). Shutdown: the watch
//! channel flips, accept tasks stop, every connection closes with its protocol's own close, and
//! `shutdown` waits for them up to the grace period.
//!
//! The WebSocket listener (`websocket`) and the TLS twins of the listeners (`encrypted`) hand
//! their streams to the same adapters.
//!
//! Every accepted socket passes the connection guards before any protocol sees it: the
//! per-address cap (`registry`), TCP keepalive (`keepalive`) and the send timeout
//! (`send_timeout`, which wraps the socket below TLS and WebSocket).

mod encrypted;
#[doc(hidden)]
pub mod fuzzing;
mod keepalive;
pub(crate) mod registry;
mod send_timeout;
mod websocket;

pub use encrypted::TlsAddrs;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use mqbridge_amqp::AmqpSettings;
use mqbridge_broker_api::{Broker, User};
use mqbridge_mqtt::{MqttSettings, MqttShared};
use mqbridge_sns::{SnsNeighbor, SnsService};
use mqbridge_sqs::{AccessKey, SqsService, SqsSettings};
use mqbridge_stomp::StompSettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::registry::ConnectionRegistry;
use self::send_timeout::SendTimeout;
use crate::config::Config;
use crate::core::memory::MemoryGauge;
use crate::core::{Bootstrap, Core, DEFAULT_VHOST};
use crate::management::{self, Management};
use crate::store::{FsyncPolicy, Journal, JournalOptions, Recovered, Store};
use crate::tls::Tls;

/// The broker, before it runs.
pub struct Server;

/// A running broker: its bound addresses and the means to stop it.
#[derive(Debug)]
pub struct RunningServer {
    pub amqp_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    pub stomp_addr: SocketAddr,
    /// MQTT and STOMP over WebSocket.
    pub ws_addr: SocketAddr,
    /// The Amazon SQS API (HTTP).
    pub sqs_addr: SocketAddr,
    /// The management HTTP API and `/metrics`.
    pub management_addr: SocketAddr,
    /// The TLS listeners, when a certificate and key are configured.
    pub tls_addrs: Option<TlsAddrs>,
    tls: Option<Arc<Tls>>,
    shutdown: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: u32,
    accept_tasks: Vec<JoinHandle<()>>,
    grace: Duration,
    journal: Arc<Journal>,
}

impl Server {
    /// Binds every listener and starts accepting. Returns once all ports are bound, so a
    /// caller can connect as soon as this returns.
    pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
        // Checked before anything starts, so a bad key list leaves nothing running.
        let sqs = sqs_settings(&config)?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let (broker, journal) = open_core(&config)?;
        check_access_keys(&broker, &sqs)?;
        let system = broker.system();
        let core: Arc<dyn Broker> = broker.clone();
        let max_connections = u32::try_from(config.max_connections).unwrap_or(u32::MAX >> 3);
        let registry = Arc::new(ConnectionRegistry::new(max_connections as usize));
        let connections = Arc::clone(registry.slots());
        let (shutdown, _) = watch::channel(false);
        let tls = encrypted::load(&config)?;

        let listeners = Listeners {
            config: &config,
            core: &core,
            system: &system,
            logins: &broker,
            connections: &connections,
            shutdown: &shutdown,
            registry: &registry,
            bound: Mutex::default(),
            mqtt: mqtt_shared(&config),
            sqs,
        };
        let (amqp_addr, accept_amqp) = listeners.amqp().await?;
        let (mqtt_addr, accept_mqtt) = listeners.mqtt().await?;
        let (stomp_addr, accept_stomp) = listeners.stomp().await?;
        let (ws_addr, accept_ws) = listeners.websocket().await?;
        let (sqs_addr, accept_sqs) = listeners.sqs().await?;
        let mut accept_tasks = vec![
            accept_amqp,
            accept_mqtt,
            accept_stomp,
            accept_ws,
            accept_sqs,
        ];
        let tls_addrs = match &tls {
            Some(tls) => Some(listeners.encrypted(tls, &mut accept_tasks).await?),
            None => None,
        };
        let bound = listeners.take_bound();
        let management = Management::new(broker, core, registry, bound, Arc::clone(&journal));
        let (management_addr, accept_management) =
            start_management(&config, management, shutdown.subscribe()).await?;
        accept_tasks.push(accept_management);
        tracing::info!(data_dir = %config.data_dir.display(), "broker started");
        Ok(RunningServer {
            amqp_addr,
            mqtt_addr,
            stomp_addr,
            ws_addr,
            sqs_addr,
            management_addr,
            tls_addrs,
            tls,
            shutdown,
            connections,
            max_connections,
            accept_tasks,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            journal,
        })
    }
}

impl RunningServer {
    /// Reads the TLS certificate, key and client CA files again (SIGHUP): new handshakes use
    /// them, open connections keep theirs. Without TLS configured there is nothing to do.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Stops accepting, asks every connection to close, and waits for them (bounded).
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.shutdown.send_replace(true);
        for task in self.accept_tasks {
            let _ = task.await;
        }
        let drained = tokio::time::timeout(
            self.grace,
            self.connections.acquire_many(self.max_connections),
        );
        match drained.await {
            Ok(_) => tracing::info!("all connections closed"),
            Err(_) => tracing::warn!("shutdown grace period over; closing remaining connections"),
        }
        // Writes what is still pending; its own thread, so do not block the runtime on it.
        let journal = self.journal;
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
    }
}

/// The management API's listener (RabbitMQ's paths, and `/metrics`).
async fn start_management(
    config: &Config,
    management: Arc<Management>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = bind(config, "management", config.management_port)?;
    let address = listener.local_addr()?;
    let sample_interval = Duration::from_millis(config.collect_statistics_interval_ms);
    let header_read_timeout = handshake_timeout(config);
    let accept = management::spawn(
        listener,
        management,
        sample_interval,
        header_read_timeout,
        send_timeout(config),
        shutdown,
    );
    tracing::info!(protocol = "http", %address, "listening (management API, /metrics)");
    Ok((address, accept))
}

/// The core, with what the journal kept and the definitions file applied.
fn open_core(config: &Config) -> anyhow::Result<(Arc<Core>, Arc<Journal>)> {
    let bootstrap = Bootstrap {
        default_user: config.default_user.clone(),
        default_pass: config.default_pass.clone(),
        loopback_users: config.loopback_users.clone(),
        limits: config.limits(),
    };
    let gauge = MemoryGauge::new(config.memory_high_watermark_bytes)
        .with_disk_free_limit(config.disk_free_limit_bytes);
    let gauge = Arc::new(gauge);
    crate::core::disk::watch(&config.data_dir, &gauge);
    let (journal, recovered) = open_journal(config, &gauge)?;
    let store: Arc<dyn Store> = journal.clone();
    let core = Core::new(bootstrap, gauge, store, recovered);
    if let Some(path) = &config.definitions_file {
        load_definitions(&core, path)?;
    }
    Ok((core, journal))
}

/// Opens the journal in `<data_dir>/journal`; its disk alarm blocks publishers like the
/// memory alarm.
fn open_journal(
    config: &Config,
    gauge: &Arc<MemoryGauge>,
) -> anyhow::Result<(Arc<Journal>, Recovered)> {
    let fsync = match config.fsync_interval_ms {
        0 => FsyncPolicy::Always,
        ms => FsyncPolicy::Every(Duration::from_millis(ms)),
    };
    let options = JournalOptions {
        segment_bytes: config.journal_segment_bytes,
        fsync,
    };
    let alarm = {
        let gauge = Arc::clone(gauge);
        Box::new(move |on| gauge.set_disk_alarm(on))
    };
    let dir = config.data_dir.join("journal");
    Ok(Journal::open(&dir, options, alarm)?)
}

/// Connections the kernel may hold completed but not yet accepted. tokio's own `bind` asks
/// for 1,024; when thousands of devices reconnect at once (after a restart, a network
/// outage) the overflow is dropped and each of those clients waits a second or more to retry
/// its SYN. Linux caps the figure at `net.core.somaxconn` (4,096 by default).
const LISTEN_BACKLOG: u32 = 4096;

fn bind(config: &Config, protocol: &str, port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(config.bind, port);
    listen(address).with_context(|| format!("cannot listen for {protocol} on {address}"))
}

/// What `TcpListener::bind` does, with [`LISTEN_BACKLOG`].
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // A restarted broker must not wait for its old sockets' TIME_WAIT to end.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What every listener is started with.
struct Listeners<'a> {
    config: &'a Config,
    /// The broker as clients see it: every vhost guarded by the user's permissions.
    core: &'a Arc<dyn Broker>,
    /// The broker unguarded, for services that check their callers themselves.
    system: &'a Arc<dyn Broker>,
    logins: &'a Arc<Core>,
    connections: &'a Arc<Semaphore>,
    shutdown: &'a watch::Sender<bool>,
    /// Every accepted connection, for the management API.
    registry: &'a Arc<ConnectionRegistry>,
    /// Every listener started so far, by name, for the management API.
    bound: Mutex<Vec<(&'static str, SocketAddr)>>,
    /// One per broker: the MQTT, MQTTS and WebSocket listeners share client ids and retained
    /// messages.
    mqtt: Arc<MqttShared>,
    sqs: SqsSettings,
}

impl Listeners<'_> {
    async fn amqp(&self) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let settings = amqp_settings(self.config);
        self.plain(
            "amqp",
            self.config.amqp_port,
            move |stream, peer, broker, shutdown| {
                mqbridge_amqp::serve(stream, peer, broker, Arc::clone(&settings), shutdown)
            },
        )
        .await
    }

    async fn mqtt(&self) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let config = self.config;
        let shared = Arc::clone(&self.mqtt);
        let vhost = self.system.vhost(
            DEFAULT_VHOST,
            &User {
                name: config.default_user.clone(),
            },
        )?;
        shared.restore_retained(vhost.take_retained());
        shared.restore_sessions(&vhost, vhost.take_session_states());
        // `$SYS/broker/messages/*` are the connections' own counts, the ones `/metrics` sums.
        let registry = Arc::clone(self.registry);
        let totals: mqbridge_mqtt::MessageTotals = Arc::new(move || {
            let mut sum = mqbridge_broker_api::MessageCounts::default();
            registry
                .message_totals()
                .into_values()
                .for_each(|c| sum += c);
            (sum.published, sum.delivered)
        });
        let statistics = mqbridge_mqtt::publish_statistics(
            Arc::clone(&shared),
            vhost,
            totals,
            self.shutdown.subscribe(),
        );
        tokio::spawn(statistics);
        let sockets = PlainSockets {
            send_timeout: send_timeout(config),
            registry: Arc::clone(self.registry),
        };
        let lot = mqbridge_mqtt::ParkingLot::start(sockets, &shared, self.shutdown.subscribe())
            .context("cannot start the MQTT parking lot")?;
        self.plain(
            "mqtt",
            config.mqtt_port,
            move |stream, peer, broker, shutdown| {
                mqbridge_mqtt::serve_parking(stream, peer, broker, lot.clone(), shutdown)
            },
        )
        .await
    }

    async fn stomp(&self) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let settings = stomp_settings(self.config);
        self.plain(
            "stomp",
            self.config.stomp_port,
            move |stream, peer, broker, shutdown| {
                mqbridge_stomp::serve(stream, peer, broker, Arc::clone(&settings), shutdown)
            },
        )
        .await
    }

    /// Every listener started so far, by name.
    fn take_bound(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *bound)
    }

    /// What an accept loop for `listener` (bound to `address`) shares: the connection cap and
    /// the registry.
    fn accepting(&self, listener: &'static str, address: SocketAddr) -> Accepting {
        self.bound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((listener, address));
        Accepting {
            connections: Arc::clone(self.connections),
            logins: Arc::clone(self.logins),
            registry: Arc::clone(self.registry),
            listener,
            per_address_max: self.config.max_connections_per_address,
            send_timeout: send_timeout(self.config),
        }
    }

    /// Binds a plain TCP listener for `protocol` and runs `serve` for each connection.
    async fn plain<F, Fut>(
        &self,
        protocol: &'static str,
        port: u16,
        serve: F,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<()>)>
    where
        F: Fn(Accepted, SocketAddr, Arc<dyn Broker>, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = bind(self.config, &protocol.to_uppercase(), port)?;
        let address = listener.local_addr()?;
        let accept = spawn_acceptor(
            listener,
            self.accepting(protocol, address),
            self.shutdown.subscribe(),
            serve,
        );
        tracing::info!(protocol, %address, "listening");
        Ok((address, accept))
    }

    /// The SQS API: one service (queue metadata, visibility leases) shared by every HTTP
    /// connection.
    async fn sqs(&self) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let config = self.config;
        let listener = bind(config, "SQS", config.sqs_port)?;
        let address = listener.local_addr()?;
        let settings = self.sqs.clone();
        let sns_settings = mqbridge_sns::SnsSettings {
            vhost: settings.vhost.clone(),
            user: settings.user.clone(),
        };
        let service =
            SqsService::start(self.system, self.core, settings, self.shutdown.subscribe())?;
        // SNS shares the endpoint: the SQS front hands it the requests it claims.
        let sns = SnsService::start(
            self.system,
            self.core,
            &sns_settings,
            self.shutdown.subscribe(),
        )?;
        let neighbor: Arc<dyn mqbridge_sqs::Neighbor> = Arc::new(SnsNeighbor(sns));
        let accept = spawn_acceptor(
            listener,
            self.accepting("sqs", address),
            self.shutdown.subscribe(),
            // Each request acts as its access key's user: the connection reports only the
            // messages its requests move, and holds `broker` only to stay registered.
            move |stream, peer, broker, shutdown| {
                let serving = Box::pin(mqbridge_sqs::serve_reporting(
                    stream,
                    peer,
                    Arc::clone(&service),
                    Some(Arc::clone(&neighbor)),
                    broker.report(),
                    shutdown,
                ));
                async move {
                    serving.await;
                    drop(broker);
                }
            },
        );
        let access_keys = self.sqs.access_keys.len();
        tracing::info!(protocol = "sqs+sns", %address, access_keys, "listening");
        Ok((address, accept))
    }
}

// The settings of each adapter, shared by its plain, TLS and WebSocket listeners.

fn amqp_settings(config: &Config) -> Arc<AmqpSettings> {
    Arc::new(AmqpSettings {
        heartbeat_secs: config.heartbeat_secs,
        frame_max: config.frame_max,
        channel_max: config.channel_max,
        handshake_timeout: handshake_timeout(config),
    })
}

fn mqtt_shared(config: &Config) -> Arc<MqttShared> {
    MqttShared::new(MqttSettings {
        vhost: DEFAULT_VHOST.to_owned(),
        max_packet_size: config.mqtt_max_packet_size,
        anonymous: config
            .mqtt_anonymous
            .then(|| (config.default_user.clone(), config.default_pass.clone())),
        max_keep_alive: config.mqtt_max_keep_alive,
        sys_interval: Duration::from_secs(config.mqtt_sys_interval.max(1).into()),
        handshake_timeout: handshake_timeout(config),
    })
}

fn stomp_settings(config: &Config) -> Arc<StompSettings> {
    Arc::new(StompSettings {
        default_vhost: DEFAULT_VHOST.to_owned(),
        frame_size_max: usize::try_from(config.stomp_max_frame_size).unwrap_or(usize::MAX),
        heart_beat_ms: config.stomp_heartbeat_ms,
        anonymous: config
            .stomp_anonymous
            .then(|| (config.default_user.clone(), config.default_pass.clone())),
        handshake_timeout: handshake_timeout(config),
    })
}

/// `handshake_timeout_ms`, the bound on each step before a client is logged in: the TLS
/// handshake, the WebSocket upgrade, the protocol's own opening.
fn handshake_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.handshake_timeout_ms.max(1))
}

/// `send_timeout_ms`, how long a write may find the client's socket full (see `send_timeout`).
fn send_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.send_timeout_ms.max(1))
}

/// The SQS settings, with the configured access keys checked: each names a user the broker
/// has, and no key id appears twice.
fn sqs_settings(config: &Config) -> anyhow::Result<SqsSettings> {
    let mut seen = HashSet::new();
    let mut access_keys = Vec::with_capacity(config.aws_access_keys.len());
    for key in &config.aws_access_keys {
        let id = &key.access_key_id;
        anyhow::ensure!(
            !id.is_empty() && !key.secret_access_key.is_empty(),
            "aws_access_keys: every key needs an access_key_id and a secret_access_key"
        );
        anyhow::ensure!(seen.insert(id), "aws_access_keys: key {id} appears twice");
        access_keys.push(AccessKey {
            access_key_id: id.clone(),
            secret_access_key: key.secret_access_key.clone(),
            user: key.user.clone(),
            loopback_only: config.loopback_users.contains(&key.user),
        });
    }
    Ok(SqsSettings {
        vhost: DEFAULT_VHOST.to_owned(),
        user: config.default_user.clone(),
        request_size_max: mqbridge_sqs::REQUEST_SIZE_MAX_DEFAULT,
        access_keys,
        header_read_timeout: handshake_timeout(config),
    })
}

/// Applies a definitions file (RabbitMQ's JSON format) on top of what the store kept.
fn load_definitions(core: &Arc<Core>, path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read definitions file {}", path.display()))?;
    let definitions = serde_json::from_str(&text)
        .with_context(|| format!("invalid definitions file {}", path.display()))?;
    core.import(definitions)
        .with_context(|| format!("cannot apply definitions file {}", path.display()))?;
    tracing::info!(path = %path.display(), "definitions loaded");
    Ok(())
}

/// Every SQS access key acts as a user the broker has.
fn check_access_keys(core: &Core, sqs: &SqsSettings) -> anyhow::Result<()> {
    for key in &sqs.access_keys {
        anyhow::ensure!(
            core.access().user(&key.user).is_some(),
            "aws_access_keys: key {} acts as user '{}', which the broker does not have",
            key.access_key_id,
            key.user
        );
    }
    Ok(())
}

/// What an accept loop shares with the rest of the broker.
struct Accepting {
    /// The connection cap, over all listeners.
    connections: Arc<Semaphore>,
    /// Who failed to log in lately: their new connections wait (`Access::login_delay`).
    logins: Arc<Core>,
    registry: Arc<ConnectionRegistry>,
    /// The listener's name in the registry (`amqp`, `mqtts`, ...).
    listener: &'static str,
    /// `max_connections_per_address` (0: no cap).
    per_address_max: usize,
    send_timeout: Duration,
}

/// An accepted socket as the adapters get it: guarded by the send timeout.
pub(crate) type Accepted = SendTimeout<TcpStream>;

/// Accepts connections, each once a slot under `max_connections` is free (so a full broker
/// stops accepting rather than accepting and failing), and runs `serve` for each on its own
/// task, registered for the management API while it runs.
fn spawn_acceptor<F, Fut>(
    listener: TcpListener,
    accepting: Accepting,
    mut shutdown: watch::Receiver<bool>,
    serve: F,
) -> JoinHandle<()>
where
    F: Fn(Accepted, SocketAddr, Arc<dyn Broker>, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let broker: Arc<dyn Broker> = Arc::clone(&accepting.logins) as Arc<dyn Broker>;
    let bound = listener.local_addr().ok();
    let mut refusals = RefusalLog::default();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Running out of file descriptors is transient; back off briefly.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            // The slot is taken after `accept`: a listener nobody connects to then never holds
            // one that a client waiting on another listener needs. At the cap each listener
            // holds at most this one accepted socket, and takes no other until a slot frees.
            let permit = tokio::select! {
                permit = Arc::clone(&accepting.connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                _ = shutdown.changed() => return,
            };
            let local = stream.local_addr().ok().or(bound).unwrap_or(peer);
            let Some(registration) = accepting.registry.register(
                accepting.listener,
                peer,
                local,
                accepting.per_address_max,
            ) else {
                // Before any handshake, so the protocol's own refusal cannot be sent: the
                // socket is closed as it is dropped.
                refusals.refused(accepting.listener, peer, accepting.per_address_max);
                continue;
            };
            let stream = guard(stream, peer, accepting.send_timeout, &accepting.registry);
            let delay = accepting.logins.access().login_delay(peer.ip());
            // The connection is registered, and holds its permit, while its adapter holds this.
            let reporting = registration.into_reporting(Arc::clone(&broker), permit);
            // Boxed, as is the delay below: this task lives as long as its connection, and an
            // async block stores a future it captured and then awaits twice (once captured,
            // once awaited), which doubled every idle connection's memory.
            let connection = Box::pin(serve(stream, peer, reporting, shutdown.clone()));
            tokio::spawn(async move {
                // A peer guessing passwords waits before its next try is even read.
                if !delay.is_zero() {
                    Box::pin(tokio::time::sleep(delay)).await;
                }
                connection.await;
            });
        }
    })
}

/// An accepted socket made ready for any listener's connection: no Nagle delay, TCP
/// keepalive so a vanished peer is reaped, and the send timeout (slow readers are counted in
/// `registry`).
pub(crate) fn guard(
    stream: TcpStream,
    peer: SocketAddr,
    send_timeout: Duration,
    registry: &Arc<ConnectionRegistry>,
) -> Accepted {
    let _ = stream.set_nodelay(true);
    if let Err(error) = keepalive::enable(&stream) {
        tracing::debug!(%peer, %error, "cannot set TCP keepalive");
    }
    SendTimeout::new(stream, send_timeout, Arc::clone(registry))
}

/// How the plain MQTT listener's sockets leave tokio for the parking lot and come back with
/// the guards `guard` gave them (the socket options stay with the socket).
struct PlainSockets {
    send_timeout: Duration,
    registry: Arc<ConnectionRegistry>,
}

impl mqbridge_mqtt::Parking for PlainSockets {
    type Stream = Accepted;

    fn park(&self, stream: Accepted) -> std::io::Result<std::net::TcpStream> {
        stream.into_inner().into_std()
    }

    fn unpark(&self, socket: std::net::TcpStream) -> std::io::Result<Accepted> {
        let stream = TcpStream::from_std(socket)?;
        let registry = Arc::clone(&self.registry);
        Ok(SendTimeout::new(stream, self.send_timeout, registry))
    }
}

/// Pause after a failed accept (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A host opening connection after connection over its cap is logged once per this, with
/// how many were refused, rather than once per connection.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Connections refused by the per-address cap since the last log line of one accept loop.
#[derive(Debug, Default)]
struct RefusalLog {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn refused(&mut self, listener: &str, peer: SocketAddr, max: usize) {
        self.unlogged += 1;
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL);
        if due {
            tracing::warn!(
                listener,
                address = %peer.ip(),
                max_connections_per_address = max,
                refused = self.unlogged,
                "connections refused: too many from one address"
            );
            self.logged_at = Some(Instant::now());
            self.unlogged = 0;
        }
    }
}
