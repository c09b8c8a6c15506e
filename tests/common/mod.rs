//! Shared test harness: the real broker on an ephemeral loopback port, lapin connections to it,
//! and the few helpers every test file needs (reply codes, publish, get, declare).

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod hostile;

pub mod interop;

pub mod management;

pub mod mqtt;

pub mod raw;

pub mod sns;

pub mod sqs;

pub mod stomp;

pub mod tls;

pub mod websocket;

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use lapin::message::{BasicGetMessage, Delivery};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, Event};
use mqbridge::{Config, RunningServer, Server};

/// Upper bound for any single wait in a test, so a broken broker fails the test instead of
/// hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

/// Pause between two looks at state the broker only exposes eventually (queue counters,
/// self-deleting queues). Only `eventually` uses it.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub struct Broker {
    pub server: RunningServer,
    _data: TempDir,
}

impl Broker {
    pub async fn start() -> Broker {
        Broker::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Broker {
        Broker::start_in(TempDir::new(), adjust).await
    }

    /// Stops the broker and starts a new one on the same data directory (new ports).
    pub async fn restart(self) -> Broker {
        let Broker {
            server,
            _data: data,
        } = self;
        server.shutdown().await;
        Broker::start_in(data, |_| {}).await
    }

    /// Starts a broker on loopback with free ports and `data` as its data directory.
    pub async fn start_in(data: TempDir, adjust: impl FnOnce(&mut Config)) -> Broker {
        let mut config = Config {
            amqp_port: 0,
            mqtt_port: 0,
            stomp_port: 0,
            ws_port: 0,
            sqs_port: 0,
            management_port: 0,
            data_dir: data.0.clone(),
            heartbeat_secs: 0,
            ..Config::default()
        };
        adjust(&mut config);
        let server = Server::start(config).await.expect("broker starts");
        Broker {
            server,
            _data: data,
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self._data.0
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.server.amqp_addr)
    }

    pub async fn connect(&self) -> Connection {
        connect_url(&self.amqp_url()).await.expect("connect")
    }

    /// Shuts the broker down gracefully, as the binary does on SIGTERM.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let connection = self.connect().await;
        let channel = within(connection.create_channel()).await.expect("channel");
        (connection, channel)
    }
}

/// Has the broker load `definitions` (RabbitMQ's JSON format: users, permissions...) at start.
pub fn with_definitions(config: &mut Config, definitions: &serde_json::Value) {
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    let path = config.data_dir.join("definitions.json");
    std::fs::write(&path, definitions.to_string()).expect("definitions written");
    config.definitions_file = Some(path);
}

/// Connects to `url`, bounded by [`WAIT`].
pub async fn connect_url(url: &str) -> lapin::Result<Connection> {
    within(Connection::connect(url, ConnectionProperties::default())).await
}

/// A data directory removed when the test ends.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mqbridge-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Awaits a future with the test-wide bound.
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("finished in time")
}

/// Polls `check` until it returns true, bounded by [`WAIT`]. Only for state the broker
/// documents as eventually consistent, where there is nothing to await.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became true: {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The AMQP reply code of a channel or connection error, if it is one.
pub fn reply_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// Asserts that `result` failed with the AMQP reply `code`.
#[track_caller]
pub fn assert_reply<T: std::fmt::Debug>(result: lapin::Result<T>, code: u16) {
    match result {
        Ok(value) => panic!("expected reply code {code}, got Ok({value:?})"),
        Err(error) => assert_eq!(reply_code(&error), Some(code), "error was {error:?}"),
    }
}

/// The next error the connection reports (a channel or the connection closed by the broker).
/// Needed for methods without a reply (publish, ack), whose errors arrive later.
pub async fn next_error(events: &mut (impl Stream<Item = Event> + Unpin)) -> lapin::Error {
    loop {
        match within(events.next()).await {
            Some(Event::Error(error)) => return error,
            Some(_) => {}
            None => panic!("event stream ended without an error"),
        }
    }
}

/// A field table from name/value pairs.
pub fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert((*name).into(), value.clone());
    }
    table
}

/// A text value for a field table.
pub fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// Declares a non-durable queue with `arguments`.
pub async fn declare(channel: &Channel, name: &str, arguments: FieldTable) -> lapin::Queue {
    within(channel.queue_declare(name.into(), QueueDeclareOptions::default(), arguments))
        .await
        .expect("queue.declare")
}

/// Publishes `body` without properties.
pub async fn publish(channel: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    publish_with(
        channel,
        exchange,
        routing_key,
        body,
        BasicProperties::default(),
    )
    .await;
}

pub async fn publish_with(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    within(channel.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        properties,
    ))
    .await
    .expect("basic.publish");
}

/// basic.get with acknowledgement off.
pub async fn get(channel: &Channel, queue: &str) -> Option<BasicGetMessage> {
    let options = BasicGetOptions { no_ack: true };
    within(channel.basic_get(queue.into(), options))
        .await
        .expect("basic.get")
}

/// The bodies basic.get returns until the queue is empty.
pub async fn drain(channel: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    while let Some(message) = get(channel, queue).await {
        bodies.push(message.delivery.data);
    }
    bodies
}

/// The next delivery of a consumer, bounded by [`WAIT`].
pub async fn next_delivery(consumer: &mut lapin::Consumer) -> Delivery {
    within(consumer.next())
        .await
        .expect("consumer still open")
        .expect("delivery")
}

/// Publishes and gets a message on a fresh channel of `connection`: proves the connection
/// (and the broker) still work after something went wrong elsewhere.
pub async fn assert_round_trip(connection: &Connection, queue: &str) {
    let channel = within(connection.create_channel()).await.expect("channel");
    declare(&channel, queue, FieldTable::default()).await;
    publish(&channel, "", queue, b"still alive").await;
    let message = get(&channel, queue).await.expect("a message");
    assert_eq!(message.delivery.data, b"still alive");
}
