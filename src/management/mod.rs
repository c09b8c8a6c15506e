//! The management HTTP API on its own listener (15672), compatible with RabbitMQ's for the
//! common paths so that `rabbitmqadmin`, `curl` scripts and monitoring work unchanged, and the
//! Prometheus text at `/metrics` (no authentication, as RabbitMQ's prometheus plugin).
//!
//! Layer: beside the protocol adapters, on the core. Reads go through `core::inspect`
//! (snapshots copied under the vhost's read lock); every change (declare, delete, bind,
//! publish, get, purge) goes through the `VirtualHost` trait, with the checks any protocol
//! client gets, under the API's own `ConnectionId` (so another connection's exclusive queue is
//! locked to it).
//!
//! Tasks: one accept task; one task per HTTP connection (hyper's HTTP/1.1 driver), at most
//! [`HTTP_CONNECTIONS_MAX`] at once, apart from the protocols' connection cap so that a full
//! broker can still be looked at. On shutdown the accept task stops and each connection
//! finishes its request in flight and closes.
//!
//! Files: `http.rs` (paths, bodies, errors), `auth.rs` (basic auth, tags), one file per
//! resource family (`overview.rs`, `queues.rs`, `exchanges.rs`, `bindings.rs`,
//! `connections.rs`, `consumers.rs`, `policies.rs`; `access.rs` for users, permissions,
//! vhosts and definitions), `json.rs` (typed values as JSON), `metrics.rs` (Prometheus),
//! `console.rs` (the web console's static files at `/`, which call this API from the
//! browser), `rates.rs`
//! (message rates, sampled by their own task).

mod access;
mod auth;
mod bindings;
mod connections;
mod console;
mod consumers;
mod exchanges;
mod http;
mod json;
mod metrics;
mod overview;
mod policies;
mod queues;
mod rates;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mqbridge_broker_api::{Broker, ConnectionId, User, VirtualHost};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use self::http::{ApiError, HttpResponse, Query};
use crate::core::Core;
use crate::core::inspect::VHostView;
use crate::server::{self, registry::ConnectionRegistry};
use crate::store::Journal;

/// HTTP connections served at once; more wait in the kernel's accept queue. Management
/// clients are few (operators, scrapers, tools); this bounds what a misbehaving one costs.
const HTTP_CONNECTIONS_MAX: usize = 64;

/// The RabbitMQ release whose management API this one follows; tools read `rabbitmq_version`
/// and `management_version` to decide what they may ask.
const RABBITMQ_API_VERSION: &str = "3.13.0";

/// What every request handler reads.
pub struct Management {
    core: Arc<Core>,
    broker: Arc<dyn Broker>,
    registry: Arc<ConnectionRegistry>,
    /// Every protocol listener: its name (`amqp`, `mqtts`, ...) and address.
    listeners: Vec<(&'static str, SocketAddr)>,
    journal: Arc<Journal>,
    /// The API's own connection: the owner of nothing, so exclusive queues are locked to it.
    connection: ConnectionId,
    /// The node's name in RabbitMQ's form, `mqbridge@<host>`.
    node: String,
    started: Instant,
    /// This listener's own address, filled once bound.
    address: std::sync::OnceLock<SocketAddr>,
    /// Message rates, sampled by their own task.
    rates: Arc<rates::Rates>,
}

impl Management {
    pub fn new(
        core: Arc<Core>,
        broker: Arc<dyn Broker>,
        registry: Arc<ConnectionRegistry>,
        listeners: Vec<(&'static str, SocketAddr)>,
        journal: Arc<Journal>,
    ) -> Arc<Self> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Arc::new(Management {
            core,
            broker,
            registry,
            listeners,
            journal,
            connection: ConnectionId::next(),
            node: format!("mqbridge@{host}"),
            started: Instant::now(),
            address: std::sync::OnceLock::new(),
            rates: Arc::default(),
        })
    }

    /// A vhost for a change, opened as `user`, and its read view. 404 if it does not exist.
    fn vhost(
        &self,
        name: &str,
        user: &User,
    ) -> Result<(Arc<dyn VirtualHost>, VHostView), ApiError> {
        let view = self.core.vhost_view(name).ok_or(ApiError::NotFound)?;
        let vhost = self.broker.vhost(name, user).map_err(|error| match error {
            mqbridge_broker_api::BrokerError::NotAllowed(reason) => ApiError::NotAuthorized(reason),
            other => ApiError::from(other),
        })?;
        Ok((vhost, view))
    }

    /// The vhosts a listing covers: all, or the one named (404 if it does not exist). As in
    /// RabbitMQ, administrators and monitoring users see every vhost, other users only those
    /// they have permissions in (401 for another one named).
    fn views(&self, vhost: Option<&str>, user: &User) -> Result<Vec<VHostView>, ApiError> {
        let sees_all = auth::sees_every_vhost(self, user);
        let visible = |view: &VHostView| {
            sees_all || self.core.access().grant(&user.name, view.name()).is_ok()
        };
        match vhost {
            None => Ok(self
                .core
                .vhost_views()
                .into_iter()
                .filter(visible)
                .collect()),
            Some(name) => {
                let view = self.core.vhost_view(name).ok_or(ApiError::NotFound)?;
                if !visible(&view) {
                    return Err(ApiError::AccessRefused(format!(
                        "access to vhost '{name}' refused for user '{}'",
                        user.name
                    )));
                }
                Ok(vec![view])
            }
        }
    }
}

/// One authenticated API request, its path after `/api`.
pub struct ApiRequest {
    pub method: Method,
    pub path: Vec<String>,
    pub query: Query,
    pub body: bytes::Bytes,
    pub user: User,
}

/// Starts the accept task of `listener`, and the task sampling message rates every
/// `sample_interval`.
pub fn spawn(
    listener: TcpListener,
    management: Arc<Management>,
    sample_interval: std::time::Duration,
    header_read_timeout: std::time::Duration,
    send_timeout: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    if let Ok(address) = listener.local_addr() {
        let _ = management.address.set(address);
    }
    rates::spawn(
        Arc::clone(&management.rates),
        Arc::clone(&management.core),
        sample_interval,
        shutdown.clone(),
    );
    let slots = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "management accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let delay = management.core.access().login_delay(peer.ip());
            let stream = server::guard(stream, peer, send_timeout, &management.registry);
            let management = Arc::clone(&management);
            let connection = serve(
                stream,
                peer,
                management,
                header_read_timeout,
                shutdown.clone(),
            );
            tokio::spawn(async move {
                // A peer guessing passwords waits before its next try is even read.
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                connection.await;
                drop(permit);
            });
        }
    })
}

/// Pause after a failed accept (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves one HTTP connection until the peer closes it or the broker shuts down.
async fn serve(
    stream: server::Accepted,
    peer: SocketAddr,
    management: Arc<Management>,
    header_read_timeout: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let handler = service_fn(move |request| {
        let management = Arc::clone(&management);
        async move { Ok::<_, Infallible>(respond(&management, peer, request).await) }
    });
    // Connections are few (HTTP_CONNECTIONS_MAX): without a bound on the request head, that
    // many silent peers would lock operators out for good.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "management connection ended");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn respond(
    management: &Management,
    peer: SocketAddr,
    request: hyper::Request<Incoming>,
) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let outcome = async {
        let mut path = http::segments(parts.uri.path())?;
        match path.first().map(String::as_str) {
            Some("metrics") if parts.method == Method::GET => {
                return metrics::render(management, &path[1..]);
            }
            Some("api") => {}
            _ if parts.method == Method::GET => {
                return console::asset(&path).ok_or(ApiError::NotFound);
            }
            _ => return Err(ApiError::NotFound),
        }
        path.remove(0);
        let user = auth::authenticate(
            &management.core,
            &*management.broker,
            &parts.headers,
            peer.ip(),
        )?;
        let body = match parts.method {
            Method::PUT | Method::POST => http::read_body(&parts.headers, body).await?,
            _ => bytes::Bytes::new(),
        };
        let request = ApiRequest {
            method: parts.method.clone(),
            path,
            query: Query::parse(parts.uri.query()),
            body,
            user,
        };
        route(management, &request).await
    };
    outcome.await.unwrap_or_else(|error| {
        tracing::debug!(method = %parts.method, path = parts.uri.path(), %error, "management request refused");
        error.response()
    })
}

async fn route(management: &Management, request: &ApiRequest) -> Result<HttpResponse, ApiError> {
    let path: Vec<&str> = request.path.iter().map(String::as_str).collect();
    let columns = request.query.get("columns");
    let listing = |value: serde_json::Value| Ok(http::ok(&http::select_columns(value, columns)));
    match path.as_slice() {
        ["exchanges", rest @ ..] => exchanges::route(management, request, rest).await,
        ["queues", rest @ ..] => queues::route(management, request, rest).await,
        ["bindings", rest @ ..] => bindings::route(management, request, rest),
        ["policies", rest @ ..] => policies::route(management, request, rest),
        ["connections", rest @ ..] => connections::route(management, request, rest),
        [
            "users" | "permissions" | "topic-permissions" | "definitions",
            ..,
        ] => access::route(management, request, &path).await,
        ["vhosts", _] if request.method != Method::GET => {
            access::route(management, request, &path).await
        }
        _ if request.method != Method::GET => Err(ApiError::MethodNotAllowed),
        ["overview"] => listing(overview::overview(management)),
        ["whoami"] => listing(overview::whoami(management, &request.user)),
        ["nodes"] => listing(serde_json::Value::Array(vec![overview::node(management)])),
        ["nodes", name] if *name == management.node => listing(overview::node(management)),
        ["vhosts"] => listing(overview::vhosts(management, &request.user, None)?),
        ["vhosts", name] => listing(overview::vhosts(management, &request.user, Some(name))?),
        ["health", "checks", "alarms"] => Ok(overview::alarms(management)),

        ["channels"] => listing(connections::channels(management, request)),
        ["consumers"] => consumers::list(management, request, None).await,
        ["consumers", vhost] => consumers::list(management, request, Some(vhost)).await,
        _ => Err(ApiError::NotFound),
    }
}

/// The answer to a declaration: 201 if it made something new, 204 if it was already there.
fn declared(created: bool) -> HttpResponse {
    match created {
        true => http::empty(StatusCode::CREATED),
        false => http::empty(StatusCode::NO_CONTENT),
    }
}
