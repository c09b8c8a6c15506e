//! The task that owns one STOMP connection: the socket, the read and write buffers, the session
//! bookkeeping and the subscriptions. It `select!`s over socket reads and writes, deliveries
//! from the queues it consumes, publish confirms (for receipts), heart-beats, the memory alarm
//! and shutdown.
//!
//! Reads and writes proceed independently, as in the other adapters. Deliveries are taken from
//! the sink only while the unsent backlog is under [`OUTBOUND_BACKLOG_MAX`], so a client that
//! does not read slows its queues down instead of growing our memory. Any bad frame gets an
//! ERROR frame (with `receipt-id` when the frame asked for a receipt), after which nothing more
//! is read and the connection closes once the ERROR is written (STOMP 1.2, ERROR: the server
//! "MUST then close the connection just after sending the ERROR frame").

mod frames;
mod login;
mod outbound;
mod subscriptions;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqbridge_broker_api::{
    Broker, BrokerError, ConfirmSink, ConnectionId, ConnectionReport, ConsumerEvent, ConsumerId,
    DeliverySink, QueueHandle, VirtualHost, close_requested,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval};

use crate::codec::{self, Command, Decoder, Frame, Version};
use crate::session::{AckMode, HeartBeat, Receipts, TransactionError, Transactions, Unacked};

/// What the listener configures.
#[derive(Debug, Clone)]
pub struct StompSettings {
    /// The vhost of clients whose `host` header names none we know.
    pub default_vhost: String,
    /// Largest frame accepted from a logged-in client, in octets.
    pub frame_size_max: usize,
    /// The heart-beat period we offer both ways, in milliseconds (0: none). A client asking for
    /// a slower one gets the slower one, never a faster one.
    pub heart_beat_ms: u64,
    /// Credentials a CONNECT without `login` is logged in with, from loopback only (RabbitMQ's
    /// `stomp.default_user`).
    pub anonymous: Option<(String, String)>,
    /// A client that has not sent CONNECT by then is dropped, as in the other adapters
    /// (RabbitMQ's `handshake_timeout`).
    pub handshake_timeout: Duration,
}

/// The most a client may send before it has logged in (RabbitMQ's MQTT adapter uses the same
/// bound for its unauthenticated packets).
const CONNECT_FRAME_MAX: usize = 64 * 1024;
/// How long a closing connection may take to write its last frames to a client that does not
/// read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Deliveries queues may put in our sink before they wait for us.
const DELIVERY_SINK_CAPACITY: usize = 1024;
/// Sink events handled per wake-up.
const EVENT_BATCH_MAX: usize = 256;
/// Unsent bytes above which we stop taking deliveries until the client reads.
const OUTBOUND_BACKLOG_MAX: usize = 4 * 1024 * 1024;
/// Initial read buffer; it grows for larger frames.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// How many expected heart-beat periods of silence we tolerate before dropping a client:
/// STOMP leaves the tolerance to us, and one lost beat to timer jitter must not end a session.
const HEART_BEAT_TOLERANCE: u32 = 2;
/// Unacknowledged deliveries per `client` or `client-individual` subscription when the
/// SUBSCRIBE has no `prefetch-count`: ActiveMQ's default prefetch, so a subscriber that never
/// acknowledges cannot pull a whole queue into its connection.
pub const PREFETCH_DEFAULT: u32 = 1000;

/// Serves one STOMP connection until it ends. Runs on its own task.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    settings: Arc<StompSettings>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut connection = Connection::new(peer, broker, settings);
    let end = connection.run(stream, shutdown).await;
    tracing::debug!(%peer, ?end, "stomp connection ended");
    connection.cleanup().await;
}

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    PeerGone,
    Closed,
    ConnectTimeout,
    MissedHeartBeats,
    CloseTimeout,
}

/// A frame the client got wrong: what goes into the ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The ERROR frame's `message` header: short, stable text.
    pub message: String,
    /// The ERROR frame's body: what was wrong, for a human.
    pub detail: String,
    /// More headers for the ERROR frame.
    pub extra: Vec<(&'static str, String)>,
}

impl Violation {
    pub fn new(message: &str, detail: impl Into<String>) -> Violation {
        Violation {
            message: message.to_owned(),
            detail: detail.into(),
            extra: Vec::new(),
        }
    }

    /// Adds a header to the ERROR frame.
    pub fn with(mut self, name: &'static str, value: String) -> Violation {
        self.extra.push((name, value));
        self
    }

    /// A required header is missing.
    pub fn missing(command: Command, header: &str) -> Violation {
        Violation::new(
            "missing header",
            format!("{command} frame without the required '{header}' header"),
        )
    }

    /// The broker refused a request; the message names the kind as RabbitMQ's STOMP adapter does.
    pub fn broker(error: &BrokerError) -> Violation {
        let message = match error {
            BrokerError::NotFound(_) => "not_found",
            BrokerError::Locked(_) => "resource_locked",
            BrokerError::AccessRefused(_) => "access_refused",
            BrokerError::PreconditionFailed(_) => "precondition_failed",
            BrokerError::NotAllowed(_) => "not_allowed",
            BrokerError::ResourceLimit(_) => "resource_error",
            _ => "internal_error",
        };
        Violation::new(message, error.to_string())
    }
}

impl From<TransactionError> for Violation {
    fn from(error: TransactionError) -> Violation {
        Violation::new("invalid transaction", error.to_string())
    }
}

/// One SUBSCRIBE: the queue it consumes and how its deliveries are acknowledged.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub queue: Arc<dyn QueueHandle>,
    pub consumer: ConsumerId,
    pub mode: AckMode,
    /// The queue of a durable topic subscription, which an UNSUBSCRIBE with `durable:true`
    /// deletes.
    pub durable_queue: Option<String>,
}

/// The broker objects of a logged-in connection.
pub(crate) struct Opened {
    pub vhost: Arc<dyn VirtualHost>,
    /// Who logged in: every SEND's `user_id`.
    pub user: String,
    pub sink: DeliverySink,
    events: mpsc::Receiver<ConsumerEvent>,
    pub confirms: Arc<ConfirmSink>,
    next_confirm: u64,
    /// Subscriptions by their STOMP id.
    pub subscriptions: HashMap<String, Subscription>,
    /// The STOMP id of each consumer's subscription.
    pub by_consumer: HashMap<ConsumerId, String>,
    /// Temp queues by their `/temp-queue/` name, to the real queue name.
    pub temp_queues: HashMap<String, String>,
    /// Queues this connection has declared or checked, so a SEND does not redeclare.
    pub known_queues: HashSet<String>,
    /// Scratch space for routing, reused by every SEND.
    pub routes: Vec<Arc<dyn QueueHandle>>,
    /// The client has sent a message; only publishers are paused by the memory alarm.
    pub published: bool,
}

impl Opened {
    fn new(vhost: Arc<dyn VirtualHost>, user: String) -> Opened {
        let (sink, events) = mpsc::channel(DELIVERY_SINK_CAPACITY);
        Opened {
            vhost,
            user,
            sink,
            events,
            confirms: ConfirmSink::new(),
            next_confirm: 0,
            subscriptions: HashMap::new(),
            by_consumer: HashMap::new(),
            temp_queues: HashMap::new(),
            known_queues: HashSet::new(),
            routes: Vec::new(),
            published: false,
        }
    }

    /// A fresh id for a publish confirm.
    pub fn next_confirm(&mut self) -> u64 {
        self.next_confirm += 1;
        self.next_confirm
    }
}

pub(crate) struct Connection {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub broker: Arc<dyn Broker>,
    pub settings: Arc<StompSettings>,
    /// Set by CONNECT; `None` until then.
    pub version: Option<Version>,
    decoder: Decoder,
    out: BytesMut,
    pub opened: Option<Opened>,
    pub unacked: Unacked,
    pub transactions: Transactions,
    pub receipts: Receipts,
    pub heart_beat: HeartBeat,
    last_read: Instant,
    wrote_since_tick: bool,
    alarm: watch::Receiver<bool>,
    alarm_open: bool,
    /// DISCONNECT came: nothing more is read, and the connection closes once the receipts owed
    /// (including the DISCONNECT's) are out.
    pub disconnecting: bool,
    /// Nothing more is read or delivered; the connection ends once the output is flushed, or
    /// at this deadline.
    closing_until: Option<Instant>,
    /// What operators see of this connection (message counts).
    pub report: Option<Arc<ConnectionReport>>,
}

impl Connection {
    fn new(peer: SocketAddr, broker: Arc<dyn Broker>, settings: Arc<StompSettings>) -> Self {
        let alarm = broker.publish_blocked();
        let report = broker.report();
        let id = ConnectionId::next();
        if let Some(report) = &report {
            report.set_connection(id);
        }
        Connection {
            id,
            peer,
            broker,
            settings,
            version: None,
            decoder: Decoder::new(CONNECT_FRAME_MAX),
            out: BytesMut::new(),
            opened: None,
            unacked: Unacked::default(),
            transactions: Transactions::default(),
            receipts: Receipts::default(),
            heart_beat: HeartBeat {
                send: None,
                expect: None,
            },
            last_read: Instant::now(),
            wrote_since_tick: false,
            alarm,
            alarm_open: true,
            disconnecting: false,
            closing_until: None,
            report,
        }
    }

    /// Queues a frame for writing, in the connection's version.
    pub fn send(&mut self, frame: &Frame) {
        codec::encode(frame, self.version.unwrap_or(Version::V1_0), &mut self.out);
    }

    pub fn closing(&self) -> bool {
        self.closing_until.is_some()
    }

    /// Ends the connection once what is queued is written.
    pub fn close(&mut self) {
        if self.closing_until.is_none() {
            self.closing_until = Some(Instant::now() + CLOSE_TIMEOUT);
        }
    }

    /// Sends an ERROR frame for `violation` and closes. `receipt` is the failing frame's
    /// `receipt` header: STOMP 1.2 asks for it back as `receipt-id`.
    pub fn fail(&mut self, violation: Violation, receipt: Option<String>) {
        if self.closing() {
            return;
        }
        tracing::debug!(peer = %self.peer, message = %violation.message, detail = %violation.detail, "stomp error");
        let mut frame = Frame::new(Command::Error).with("message", violation.message);
        if let Some(receipt) = receipt {
            frame = frame.with("receipt-id", receipt);
        }
        for (name, value) in violation.extra {
            frame = frame.with(name, value);
        }
        let frame = frame
            .with("content-type", "text/plain")
            .with_body(violation.detail.into_bytes());
        self.send(&frame);
        self.close();
    }

    async fn run<S>(&mut self, stream: S, mut shutdown: watch::Receiver<bool>) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut input = BytesMut::with_capacity(READ_BUFFER_BYTES);
        let mut writing = BytesMut::new();
        let mut events = Vec::with_capacity(EVENT_BATCH_MAX);
        let connect_deadline = Instant::now() + self.settings.handshake_timeout;
        let mut ticker: Option<Interval> = None;
        loop {
            if writing.is_empty() {
                std::mem::swap(&mut writing, &mut self.out);
            }
            if self.closing() && writing.is_empty() {
                let _ = writer.shutdown().await;
                return End::Closed;
            }
            if ticker.is_none() {
                ticker = self
                    .heart_beat
                    .send
                    .map(|period| tokio::time::interval_at(Instant::now() + period, period));
            }
            let backlog = writing.len() + self.out.len();
            let taking = backlog < OUTBOUND_BACKLOG_MAX && !self.closing() && !self.disconnecting;
            let (deadline, timeout) = self.deadline(connect_deadline);
            let confirms = self.opened.as_ref().map(|o| Arc::clone(&o.confirms));
            tokio::select! {
                written = writer.write_buf(&mut writing), if !writing.is_empty() => match written {
                    Ok(0) | Err(_) => return End::PeerGone,
                    Ok(_) => self.wrote_since_tick = true,
                },
                read = reader.read_buf(&mut input), if self.reading() => match read {
                    Ok(0) | Err(_) => return End::PeerGone,
                    Ok(_) => {
                        self.last_read = Instant::now();
                        self.on_input(&mut input).await;
                    }
                },
                received = next_events(&mut self.opened, &mut events), if taking => {
                    if received > 0 {
                        self.on_events(&mut events);
                    }
                }
                () = ready(confirms.as_deref()), if confirms.is_some() => self.on_confirms(),
                _ = tick(&mut ticker), if ticker.is_some() => self.on_tick(),
                _ = shutdown.changed(), if !self.closing() => {
                    // A change, or the server dropping the sender: both mean shutdown, and
                    // waiting on a dropped sender again would return at once, forever.
                    let violation = Violation::new("server shutting down", "the broker is shutting down");
                    self.fail(violation, None);
                }
                why = close_requested(self.report.as_deref()), if !self.closing() => {
                    self.fail(Violation::new("connection closed", why), None);
                }
                changed = self.alarm.changed(), if self.alarm_open => {
                    // A closed alarm means the broker is going away; reading goes on meanwhile.
                    self.alarm_open = changed.is_ok();
                }
                () = sleep_until(deadline) => return timeout,
            }
        }
    }

    /// Whether to read from the socket: not once closing or disconnecting, and not while the
    /// memory alarm blocks a connection that publishes.
    fn reading(&self) -> bool {
        let publisher = self.opened.as_ref().is_some_and(|o| o.published);
        let paused = publisher && *self.alarm.borrow();
        !self.closing() && !self.disconnecting && !paused
    }

    /// The next deadline and what its passing means.
    fn deadline(&self, connect: Instant) -> (Option<Instant>, End) {
        if let Some(until) = self.closing_until {
            return (Some(until), End::CloseTimeout);
        }
        if self.version.is_none() {
            return (Some(connect), End::ConnectTimeout);
        }
        // While the alarm pauses reading, the client's heart-beats sit unread in the socket:
        // that silence is ours, not the client's.
        let expect = self.heart_beat.expect.filter(|_| self.reading());
        let deadline = expect.map(|period| self.last_read + period * HEART_BEAT_TOLERANCE);
        (deadline, End::MissedHeartBeats)
    }

    /// Sends a heart-beat if nothing else went out since the last tick.
    fn on_tick(&mut self) {
        if !self.wrote_since_tick && self.out.is_empty() && !self.closing() {
            codec::encode_heart_beat(&mut self.out);
        }
        self.wrote_since_tick = false;
        if !self.reading() {
            self.last_read = Instant::now();
        }
    }

    /// Decodes and handles every complete frame in `input`.
    async fn on_input(&mut self, input: &mut BytesMut) {
        while !self.closing() && !self.disconnecting {
            match self.decoder.decode(input) {
                Ok(Some(frame)) => self.on_frame(frame).await,
                Ok(None) => return,
                Err(error) => {
                    return self.fail(Violation::new(error.summary(), error.to_string()), None);
                }
            }
        }
    }

    /// Applies the negotiated version and the logged-in frame limit to the decoder.
    fn configure_decoder(&mut self, version: Version) {
        self.decoder
            .configure(version, self.settings.frame_size_max);
    }

    /// Releases the connection's broker state: consumers are cancelled (their unacknowledged
    /// deliveries go back to their queues) and exclusive queues are deleted.
    async fn cleanup(&mut self) {
        let Some(opened) = self.opened.as_mut() else {
            return;
        };
        opened.by_consumer.clear();
        let ended = opened.subscriptions.drain().map(|(_, s)| s).collect();
        self.end_subscriptions(ended).await;
        if let Some(opened) = self.opened.take() {
            opened.vhost.connection_closed(self.id);
        }
    }
}

/// The versions we speak, as the `version` header lists them.
pub(crate) fn supported_versions() -> String {
    let versions: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
    versions.join(",")
}

async fn next_events(opened: &mut Option<Opened>, events: &mut Vec<ConsumerEvent>) -> usize {
    match opened {
        Some(opened) => opened.events.recv_many(events, EVENT_BATCH_MAX).await,
        None => std::future::pending().await,
    }
}

async fn ready(confirms: Option<&ConfirmSink>) {
    match confirms {
        Some(confirms) => confirms.ready().await,
        None => std::future::pending().await,
    }
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
