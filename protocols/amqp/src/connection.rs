//! The task that owns one AMQP connection: the socket, the read and write buffers, the
//! session state machine and the channels. It `select!`s over socket reads, socket writes,
//! deliveries from queues, publisher confirms, heartbeats, the memory alarm and shutdown.
//!
//! Reads and writes proceed independently (a client that publishes without reading cannot
//! wedge us, and we never stop reading while a large write drains). Outgoing frames collect in
//! `Output` and go out in one write per batch. Deliveries are taken from the sink only while
//! the unsent backlog is under [`OUTBOUND_BACKLOG_MAX`], which is how a slow reader slows its
//! queues down instead of growing our memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, BasicProperties, channel as amqp_channel, connection};
use amq_protocol::types::ShortString;
use bytes::BytesMut;
use mqbridge_broker_api::{
    Broker, ConfirmSink, ConnectionId, ConnectionReport, ConsumerEvent, ConsumerId, DeliverySink,
    QueueHandle, User, VirtualHost, close_requested,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval};

mod opening;

use crate::channel::{CONFIRM_SEQ_BITS, Channel, Next};
use crate::codec::{self, DecodeError, reply_code};
use crate::handshake;
use crate::session::{Inbound, Session, Violation};
use crate::translate::reply_name;

/// What the listener configures.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    pub heartbeat_secs: u16,
    pub frame_max: u32,
    pub channel_max: u16,
    /// RabbitMQ's `handshake_timeout`: a client that has not opened its connection by then
    /// goes.
    pub handshake_timeout: Duration,
}

/// How long we wait for close-ok after sending connection.close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest frame accepted before tune-ok. Below our default frame_max, and large enough for
/// a start-ok carrying a token as its password.
const HANDSHAKE_FRAME_MAX: u32 = 65_536;
/// Deliveries queues may put in our sink before they wait for us: the connection's outbound
/// window in messages.
const DELIVERY_SINK_CAPACITY: usize = 2048;
/// Sink events handled per wake-up.
const EVENT_BATCH_MAX: usize = 256;
/// Unsent bytes above which we stop taking deliveries until the client reads.
const OUTBOUND_BACKLOG_MAX: usize = 4 * 1024 * 1024;
/// Initial read buffer; grows to the largest frame seen.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Frames waiting to be written, and the negotiated frame size for splitting bodies.
#[derive(Debug)]
pub struct Output {
    pub buf: BytesMut,
    pub frame_max: u32,
}

impl Output {
    pub fn method(&mut self, channel: u16, method: AMQPClass) {
        if let Err(error) = codec::encode_method(channel, &method, &mut self.buf) {
            // Only our own values are encoded here; a failure is a bug, not peer input.
            tracing::error!(%error, ?method, "cannot encode method");
        }
    }

    pub fn content(
        &mut self,
        channel: u16,
        method: &AMQPClass,
        properties: &BasicProperties,
        body: &[u8],
    ) {
        if let Err(error) = codec::encode_content(
            channel,
            method,
            properties,
            body,
            self.frame_max,
            &mut self.buf,
        ) {
            tracing::error!(%error, ?method, "cannot encode content");
        }
    }
}

/// What channels share once the connection is open.
pub struct Ctx {
    pub connection: ConnectionId,
    pub user: String,
    pub vhost: Arc<dyn VirtualHost>,
    pub sink: DeliverySink,
    events: mpsc::Receiver<ConsumerEvent>,
    /// Events taken early (see `drain_deliveries`) for channels other than the one asking.
    deferred: Vec<ConsumerEvent>,
    pub confirms: Arc<ConfirmSink>,
    /// Scratch space for routing, reused by every publish.
    pub routes: Vec<Arc<dyn QueueHandle>>,
    pub consumer_channels: HashMap<ConsumerId, u16>,
    /// What operators see of this connection (user, channels, message counts).
    pub report: Option<Arc<ConnectionReport>>,
    /// The client has published on this connection; only publishers are blocked by the
    /// memory alarm, as in RabbitMQ.
    pub published: bool,
}

impl Ctx {
    /// Counts a message the client published and the broker accepted.
    pub fn published(&self) {
        if let Some(report) = &self.report {
            report.published();
        }
    }

    /// Counts deliveries the client acknowledged.
    pub fn acknowledged(&self, count: usize) {
        if let Some(report) = self.report.as_ref().filter(|_| count > 0) {
            report.acknowledged(count);
        }
    }

    /// Counts a message written to the client (basic.deliver, basic.get-ok).
    pub fn delivered(&self) {
        if let Some(report) = &self.report {
            report.delivered();
        }
    }

    /// Takes every event already in the sink. Deliveries for `channel` are handled at once
    /// (written when `write`, else only recorded for requeue); others wait in `deferred`.
    pub fn drain_deliveries(&mut self, channel: &mut Channel, out: &mut Output, write: bool) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                ConsumerEvent::Deliver(d)
                    if self.consumer_channels.get(&d.consumer) == Some(&channel.id) =>
                {
                    channel.deliver(out, d, write);
                    if write {
                        self.delivered();
                    }
                }
                other => self.deferred.push(other),
            }
        }
    }
}

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    PeerGone,
    Io(std::io::Error),
    HandshakeTimeout,
    MissedHeartbeats,
    Closed,
}

/// Serves one AMQP connection until it ends. Runs on its own task.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    settings: Arc<AmqpSettings>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut connection = Connection::new(peer, broker, settings);
    match connection.run(stream, shutdown).await {
        End::Io(error) => tracing::debug!(%peer, %error, "amqp connection ended by an I/O error"),
        end => tracing::debug!(%peer, ?end, "amqp connection ended"),
    }
    connection.cleanup().await;
}

struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    settings: Arc<AmqpSettings>,
    session: Session,
    out: Output,
    ctx: Option<Ctx>,
    channels: HashMap<u16, Channel>,
    /// Channel incarnation -> channel id, to route confirms.
    incarnations: HashMap<u64, u16>,
    next_incarnation: u64,
    header_seen: bool,
    user: Option<User>,
    capabilities: ClientCapabilities,
    heartbeat: Option<Duration>,
    last_read: Instant,
    wrote_since_tick: bool,
    /// We sent connection.close and wait for close-ok until this instant.
    closing_until: Option<Instant>,
    /// Nothing more is read; the connection ends once the output is flushed.
    done: bool,
    alarm: watch::Receiver<bool>,
    blocked_sent: bool,
    confirmed: Vec<(u64, bool)>,
    /// What operators see of this connection, and how they close it.
    report: Option<Arc<ConnectionReport>>,
}

#[derive(Debug, Default)]
struct ClientCapabilities {
    consumer_cancel_notify: bool,
    connection_blocked: bool,
}

impl Connection {
    fn new(peer: SocketAddr, broker: Arc<dyn Broker>, settings: Arc<AmqpSettings>) -> Self {
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
            session: Session::default(),
            out: Output {
                buf: BytesMut::with_capacity(READ_BUFFER_BYTES),
                frame_max: HANDSHAKE_FRAME_MAX,
            },
            ctx: None,
            channels: HashMap::new(),
            incarnations: HashMap::new(),
            next_incarnation: 1,
            header_seen: false,
            user: None,
            capabilities: ClientCapabilities::default(),
            heartbeat: None,
            last_read: Instant::now(),
            wrote_since_tick: false,
            closing_until: None,
            done: false,
            alarm,
            blocked_sent: false,
            confirmed: Vec::new(),
            report,
        }
    }

    async fn run<S>(&mut self, stream: S, mut shutdown: watch::Receiver<bool>) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut input = BytesMut::with_capacity(READ_BUFFER_BYTES);
        let mut writing = BytesMut::with_capacity(READ_BUFFER_BYTES);
        let mut events = Vec::with_capacity(EVENT_BATCH_MAX);
        let handshake_deadline = Instant::now() + self.settings.handshake_timeout;
        let mut ticker: Option<Interval> = None;
        let mut shutdown_seen = false;
        loop {
            if writing.is_empty() {
                std::mem::swap(&mut writing, &mut self.out.buf);
            }
            if self.done && writing.is_empty() {
                let _ = writer.shutdown().await;
                return End::Closed;
            }
            if ticker.is_none() {
                ticker = self.heartbeat.map(|h| tokio::time::interval(h / 2));
            }
            let backlog = writing.len() + self.out.buf.len();
            let deadline = self.deadline(handshake_deadline);
            let confirms = self.ctx.as_ref().map(|c| Arc::clone(&c.confirms));
            tokio::select! {
                written = writer.write_buf(&mut writing), if !writing.is_empty() => match written {
                    Ok(0) => return End::PeerGone,
                    Ok(_) => self.wrote_since_tick = true,
                    Err(error) => return End::Io(error),
                },
                read = reader.read_buf(&mut input), if self.reading() => match read {
                    Ok(0) => return End::PeerGone,
                    Ok(_) => {
                        self.last_read = Instant::now();
                        if let Some(end) = self.on_input(&mut input).await {
                            return end;
                        }
                    }
                    Err(error) => return End::Io(error),
                },
                received = next_events(&mut self.ctx, &mut events), if backlog < OUTBOUND_BACKLOG_MAX => {
                    if received > 0 {
                        self.on_events(&mut events);
                    }
                }
                () = ready(confirms.as_deref()), if confirms.is_some() => self.on_confirms(),
                _ = tick(&mut ticker), if ticker.is_some() => {
                    if let Some(end) = self.on_tick() {
                        return end;
                    }
                }
                changed = shutdown.changed(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if changed.is_ok() {
                        self.force_close("broker forced connection closure with reason 'shutdown'");
                    }
                }
                // An error (the broker gone) only disables the branch for this turn.
                Ok(()) = self.alarm.changed() => self.on_alarm(),
                reason = close_requested(self.report.as_deref()), if !shutdown_seen => {
                    shutdown_seen = true;
                    self.force_close(&format!("CONNECTION_FORCED - {reason}"));
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    return match self.closing_until {
                        Some(_) => End::Closed,
                        None => End::HandshakeTimeout,
                    };
                }
            }
        }
    }

    /// Whether to read from the socket: not once done, and not while the memory alarm blocks a
    /// connection that publishes (its consumers' acks then wait too, as in RabbitMQ).
    fn reading(&self) -> bool {
        let publisher = self.ctx.as_ref().is_some_and(|c| c.published);
        let paused = publisher && self.blocked();
        !self.done && !paused
    }

    fn blocked(&self) -> bool {
        *self.alarm.borrow()
    }

    fn deadline(&self, handshake: Instant) -> Option<Instant> {
        match (self.closing_until, self.session.is_running()) {
            (Some(until), _) => Some(until),
            (None, false) => Some(handshake),
            (None, true) => None,
        }
    }

    /// Decodes and handles every complete frame in `input`.
    async fn on_input(&mut self, input: &mut BytesMut) -> Option<End> {
        if !self.header_seen {
            match codec::decode_protocol_header(input) {
                Ok(None) => return None,
                Ok(Some(())) => {
                    self.header_seen = true;
                    let (product, version) = self.broker.product();
                    let start = handshake::start(product, version);
                    self.out.method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::Start(start)),
                    );
                }
                Err(_) => {
                    // [AMQP 0-9-1 §4.2.2] answer a bad header with the one we speak, then close.
                    codec::encode_protocol_header(&mut self.out.buf);
                    self.done = true;
                    return None;
                }
            }
        }
        while !self.done {
            let frame_max = if self.session.is_running() {
                self.out.frame_max
            } else {
                HANDSHAKE_FRAME_MAX
            };
            let frame = match codec::decode(input, frame_max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    self.on_decode_error(&error);
                    break;
                }
            };
            if self.closing_until.is_some() {
                self.while_closing(frame);
                continue;
            }
            match self.session.handle(frame) {
                Ok(Some(inbound)) => {
                    if let Some(end) = self.dispatch(inbound).await {
                        return Some(end);
                    }
                }
                Ok(None) => {}
                Err(violation) => self.on_violation(violation).await,
            }
        }
        // A connection opened during an alarm saw no change of it; like RabbitMQ, tell it it
        // is blocked once it publishes. A no-op when already told.
        if self.ctx.as_ref().is_some_and(|ctx| ctx.published) {
            self.on_alarm();
        }
        None
    }

    fn on_decode_error(&mut self, error: &DecodeError) {
        tracing::info!(peer = %self.peer, %error, "closing amqp connection: bad frame");
        // §4.2.3 would close a stream with an unknown frame type or a bad frame-end silently,
        // but RabbitMQ, our reference, sends connection.close 501 first, and clients report
        // that code; we do the same for every decode error.
        let (class_id, method_id) = error.class_method_ids();
        let mut violation = Violation::connection(error.reply_code(), error.to_string());
        violation.class_id = class_id;
        violation.method_id = method_id;
        self.write_close(&violation);
        // The stream cannot be parsed past a framing error: stop reading and close once flushed.
        self.done = true;
    }

    /// [AMQP 0-9-1 §2.2.4] after sending connection.close, discard everything but close-ok
    /// (or a crossing close, which we answer).
    fn while_closing(&mut self, frame: codec::Frame) {
        use connection::AMQPMethod as M;
        if let codec::Frame::Method {
            channel: 0,
            method: AMQPClass::Connection(method),
        } = frame
        {
            match method {
                M::CloseOk(_) => self.done = true,
                M::Close(_) => {
                    self.out
                        .method(0, AMQPClass::Connection(M::CloseOk(connection::CloseOk {})));
                    self.done = true;
                }
                _ => {}
            }
        }
    }

    async fn dispatch(&mut self, inbound: Inbound) -> Option<End> {
        let Inbound::Method {
            channel,
            method,
            content,
        } = inbound
        else {
            return None;
        };
        if channel == 0 {
            let AMQPClass::Connection(method) = method else {
                return None;
            };
            return self.connection_method(method).await;
        }
        let ctx = self.ctx.as_mut()?;
        if matches!(
            method,
            AMQPClass::Channel(amqp_channel::AMQPMethod::Open(_))
        ) {
            let incarnation = self.next_incarnation;
            self.next_incarnation += 1;
            self.incarnations.insert(incarnation, channel);
            self.channels
                .insert(channel, Channel::new(channel, incarnation));
            if let Some(report) = &ctx.report {
                report.set_channels(self.channels.keys().copied());
            }
        }
        let Some(open) = self.channels.get_mut(&channel) else {
            // A close or close-ok for a channel we already released after a soft error.
            if matches!(
                method,
                AMQPClass::Channel(amqp_channel::AMQPMethod::Close(_))
            ) {
                self.out.method(channel, close_ok());
            }
            return None;
        };
        match open.handle(ctx, &mut self.out, method, content).await {
            Ok(Next::Continue) => {}
            Ok(Next::Closed) => {
                self.release_channel(channel).await;
                self.out.method(channel, close_ok());
            }
            Err(violation) => self.on_violation(violation).await,
        }
        None
    }

    async fn on_violation(&mut self, violation: Violation) {
        match violation.channel {
            Some(channel) => {
                tracing::debug!(peer = %self.peer, channel, code = violation.code, text = %violation.text, "closing channel");
                let close = amqp_channel::Close {
                    reply_code: violation.code,
                    reply_text: reply_text(&violation),
                    class_id: violation.class_id,
                    method_id: violation.method_id,
                };
                self.out.method(
                    channel,
                    AMQPClass::Channel(amqp_channel::AMQPMethod::Close(close)),
                );
                self.session.closing(channel);
                self.release_channel(channel).await;
            }
            None => self.close_connection(violation),
        }
    }

    /// Closes the connection with 320 CONNECTION_FORCED: the broker is shutting down, or an
    /// operator closed it (RabbitMQ's texts for each).
    fn force_close(&mut self, text: &str) {
        let violation = Violation::connection(reply_code::CONNECTION_FORCED, text.to_owned());
        self.close_connection(violation);
    }

    fn close_connection(&mut self, violation: Violation) {
        if self.closing_until.is_some() || self.done {
            return;
        }
        tracing::info!(peer = %self.peer, code = violation.code, text = %violation.text, "closing amqp connection");
        self.write_close(&violation);
        self.closing_until = Some(Instant::now() + CLOSE_TIMEOUT);
    }

    fn write_close(&mut self, violation: &Violation) {
        let close = connection::Close {
            reply_code: violation.code,
            reply_text: reply_text(violation),
            class_id: violation.class_id,
            method_id: violation.method_id,
        };
        self.out.method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(close)),
        );
    }

    fn on_events(&mut self, events: &mut Vec<ConsumerEvent>) {
        let Some(ctx) = self.ctx.as_mut() else { return };
        let deferred = std::mem::take(&mut ctx.deferred);
        for event in deferred.into_iter().chain(events.drain(..)) {
            match event {
                ConsumerEvent::Deliver(delivery) => {
                    let channel = ctx
                        .consumer_channels
                        .get(&delivery.consumer)
                        .and_then(|id| self.channels.get_mut(id));
                    match channel {
                        Some(channel) => {
                            channel.deliver(&mut self.out, delivery, true);
                            ctx.delivered();
                        }
                        None => tracing::warn!(
                            consumer = delivery.consumer.0,
                            "delivery for an unknown consumer dropped"
                        ),
                    }
                }
                ConsumerEvent::Cancelled(consumer) => {
                    let id = ctx.consumer_channels.get(&consumer).copied();
                    if let Some(channel) = id.and_then(|id| self.channels.get_mut(&id)) {
                        let notify = self.capabilities.consumer_cancel_notify;
                        channel.consumer_cancelled(ctx, &mut self.out, consumer, notify);
                    }
                }
            }
        }
    }

    fn on_confirms(&mut self) {
        let Some(ctx) = self.ctx.as_ref() else { return };
        let mut done = std::mem::take(&mut self.confirmed);
        ctx.confirms.drain(&mut done);
        let mask = (1u64 << CONFIRM_SEQ_BITS) - 1;
        // Group by channel; almost always one channel per batch.
        while let Some(&(first, _)) = done.first() {
            let incarnation = first >> CONFIRM_SEQ_BITS;
            let (mine, rest): (Vec<_>, Vec<_>) = done
                .drain(..)
                .partition(|(id, _)| id >> CONFIRM_SEQ_BITS == incarnation);
            done = rest;
            let mut mine: Vec<(u64, bool)> =
                mine.into_iter().map(|(id, ok)| (id & mask, ok)).collect();
            let channel = self
                .incarnations
                .get(&incarnation)
                .and_then(|id| self.channels.get_mut(id));
            if let Some(channel) = channel {
                channel.confirmed(&mut self.out, &mut mine);
            }
        }
        self.confirmed = done;
    }

    fn on_tick(&mut self) -> Option<End> {
        let heartbeat = self.heartbeat?;
        // While the memory alarm pauses reading, the client's heartbeats sit unread in the
        // socket: that silence is ours, not the client's (RabbitMQ pauses its heartbeat
        // monitor while a connection is blocked).
        if !self.done && !self.reading() {
            self.last_read = Instant::now();
        }
        // [AMQP 0-9-1 §4.2.7] a peer that misses two heartbeats' worth of traffic is gone.
        if self.last_read.elapsed() > heartbeat * 2 {
            tracing::info!(peer = %self.peer, ?heartbeat, "missed heartbeats from client");
            return Some(End::MissedHeartbeats);
        }
        if !self.wrote_since_tick && self.out.buf.is_empty() {
            codec::encode_heartbeat(&mut self.out.buf);
        }
        self.wrote_since_tick = false;
        None
    }

    /// Tells a publishing connection it is blocked or released. A connection that has only
    /// consumed is never told (RabbitMQ's rule): clients such as lapin stop writing every
    /// frame once blocked, acks included, and a consumer that cannot ack cannot drain.
    fn on_alarm(&mut self) {
        let publisher = self.ctx.as_ref().is_some_and(|ctx| ctx.published);
        let blocked = publisher && self.blocked();
        if !self.capabilities.connection_blocked || blocked == self.blocked_sent {
            return;
        }
        self.blocked_sent = blocked;
        let method = match blocked {
            true => connection::AMQPMethod::Blocked(connection::Blocked {
                reason: ShortString::from("low on memory"),
            }),
            false => connection::AMQPMethod::Unblocked(connection::Unblocked {}),
        };
        self.out.method(0, AMQPClass::Connection(method));
    }

    /// Cancels a channel's consumers, takes their in-flight deliveries and requeues everything
    /// the client had not settled.
    async fn release_channel(&mut self, id: u16) {
        let Some(mut channel) = self.channels.remove(&id) else {
            return;
        };
        self.incarnations.remove(&channel.incarnation);
        let Some(ctx) = self.ctx.as_mut() else { return };
        if let Some(report) = &ctx.report {
            report.set_channels(self.channels.keys().copied());
        }
        let consumers = channel.cancel_consumers().await;
        ctx.drain_deliveries(&mut channel, &mut self.out, false);
        channel.release().await;
        for consumer in consumers {
            ctx.consumer_channels.remove(&consumer);
        }
    }

    async fn release_all(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for id in ids {
            self.release_channel(id).await;
        }
    }

    async fn cleanup(&mut self) {
        self.release_all().await;
        if let Some(ctx) = &self.ctx {
            ctx.vhost.connection_closed(self.id);
        }
    }
}

fn close_ok() -> AMQPClass {
    AMQPClass::Channel(amqp_channel::AMQPMethod::CloseOk(amqp_channel::CloseOk {}))
}

/// `NOT_FOUND - no queue 'q' in vhost '/'`, cut to fit a short string.
fn reply_text(violation: &Violation) -> ShortString {
    let mut text = format!("{} - {}", reply_name(violation.code), violation.text);
    if text.len() > 255 {
        let mut cut = 255;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    ShortString::from(text)
}

async fn next_events(ctx: &mut Option<Ctx>, events: &mut Vec<ConsumerEvent>) -> usize {
    match ctx {
        Some(ctx) if !ctx.deferred.is_empty() => 0,
        Some(ctx) => ctx.events.recv_many(events, EVENT_BATCH_MAX).await,
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
