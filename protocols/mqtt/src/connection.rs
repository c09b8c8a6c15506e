//! The task that owns one MQTT connection (3.1, 3.1.1 or 5): the socket, the session's queue
//! and consumer, keep-alive and will. It `select!`s over socket reads and writes, deliveries
//! from the session queue, the keep-alive deadline, a session takeover, shutdown and, while a
//! blocked publisher's packets are held (`held`), the resource alarm.
//!
//! Mapping onto the core (ARCHITECTURE.md): a session is one queue, `mqtt-session-{client id}`,
//! exclusive to the connection for a clean session and durable otherwise; each subscription is
//! a binding from `amq.topic` to it, carrying the MQTT options as binding arguments so that a
//! persistent session gets them back on reconnect.

mod acks;
mod held;
mod inbound;
mod kept;
mod outbound;
mod parked;
mod shared;
mod suspended;
mod takeover;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use mqbridge_broker_api::{
    Broker, BrokerError, ConnectionId, ConnectionReport, ConsumeSpec, ConsumerEvent, ConsumerId,
    DeliverySink, Message, QueueHandle, QueueSpec, Settlement, VirtualHost, close_requested,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::codec::{
    self, Disconnect, DisconnectProperties, Packet, ProtocolVersion, QoS, Will, reason,
};
use crate::session::Session;
use crate::sys::Statistics;
use suspended::{ShareMembers, Suspended};

pub use parked::{Parking, ParkingLot};

/// What the listener configures.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// The vhost MQTT clients use.
    pub vhost: String,
    /// Largest packet accepted from an authenticated client.
    pub max_packet_size: u32,
    /// Credentials a client without a username is logged in with, from loopback only
    /// (Mosquitto and RabbitMQ allow anonymous clients only when configured to).
    pub anonymous: Option<(String, String)>,
    /// Longest keep alive granted, in seconds (`u16::MAX`: whatever the client asks).
    pub max_keep_alive: u16,
    /// Time between `$SYS` updates.
    pub sys_interval: std::time::Duration,
    /// A client that has not sent CONNECT by then is dropped [MQTT-3.1.4] (RabbitMQ's
    /// `handshake_timeout`).
    pub handshake_timeout: Duration,
}

/// State shared by every MQTT connection of one listener.
#[derive(Debug)]
pub struct MqttShared {
    pub settings: MqttSettings,
    /// Live sessions by client id, to take a session over (`takeover`).
    sessions: Mutex<takeover::Sessions>,
    /// The retained message of each topic name.
    retained: Mutex<HashMap<String, Arc<Message>>>,
    /// Persistent sessions with no connection, by client id.
    suspended: Mutex<HashMap<String, Suspended>>,
    /// The member sessions of each shared subscription queue.
    share_members: Mutex<ShareMembers>,
    /// What `$SYS/broker/...` reports.
    pub(crate) statistics: Statistics,
    /// The parking lot of the listener that parks idle connections, to wake one whose session
    /// is taken over.
    parking: OnceLock<Arc<parked::Inbox>>,
}

impl MqttShared {
    /// [MQTT-3.3.1-5..7] a retained PUBLISH replaces the topic's retained message; an empty
    /// payload removes it.
    pub(crate) fn retain(&self, topic_name: &str, message: &Arc<Message>) {
        let mut retained = self.retained.lock().unwrap_or_else(PoisonError::into_inner);
        if message.body.is_empty() {
            retained.remove(topic_name);
        } else {
            retained.insert(topic_name.to_owned(), Arc::clone(message));
        }
    }

    /// Loads the retained messages kept from before a restart.
    pub fn restore_retained(&self, kept: Vec<(String, Arc<Message>)>) {
        let mut retained = self.retained.lock().unwrap_or_else(PoisonError::into_inner);
        retained.extend(kept);
    }

    pub(crate) fn retained_count(&self) -> usize {
        self.retained
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn new(settings: MqttSettings) -> Arc<Self> {
        Arc::new(MqttShared {
            settings,
            sessions: Mutex::default(),
            retained: Mutex::default(),
            suspended: Mutex::default(),
            share_members: Mutex::default(),
            statistics: Statistics::default(),
            parking: OnceLock::new(),
        })
    }

    fn set_parking(&self, inbox: Arc<parked::Inbox>) {
        let _ = self.parking.set(inbox);
    }

    /// Wakes connection `id` if it waits in the parking lot.
    fn wake_parked(&self, id: ConnectionId) {
        if let Some(inbox) = self.parking.get() {
            inbox.wake(id);
        }
    }
}

/// RabbitMQ's `mqtt.max_packet_size_unauthenticated`: the most a client may send before it
/// has logged in. A will message counts against it; wills are small status notes in practice,
/// and a larger bound would let every unauthenticated socket make us buffer that much.
const CONNECT_PACKET_MAX: u32 = 65_536;
/// Deliveries the session queue may put in our sink before it waits for us.
const DELIVERY_SINK_CAPACITY: usize = 1024;
/// Outbound QoS 1 messages awaiting PUBACK when the client states no Receive Maximum (v3).
const IN_FLIGHT_DEFAULT: u16 = 64;
/// Inbound QoS 1 and 2 publishes we accept at once, announced as Receive Maximum (v5).
pub const RECEIVE_MAXIMUM: u16 = 1024;
/// Sink events handled per wake-up.
const EVENT_BATCH_MAX: usize = 256;
/// Unsent bytes above which we stop taking deliveries until the client reads.
const OUTBOUND_BACKLOG_MAX: usize = 4 * 1024 * 1024;
/// v5 "session never expires".
const SESSION_EXPIRY_NEVER: u32 = u32::MAX;
/// How long a new connection waits for the one it takes the session from to finish.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The read size of a connection that starts sending: a CONNECT and a few small packets.
const READ_SIZE_INITIAL: usize = 1024;
/// Idle devices are the common case for MQTT. A connection that has never filled a read
/// buffer releases it whenever nothing is left in it, and waits for its next packet with only
/// this many octets of room inside its task (see `read_some`).
const IDLE_READ: usize = 32;
/// Output buffers above this size are released once written, so a burst does not leave its
/// buffer behind for the life of the connection.
const WRITE_BUFFER_KEEP: usize = 64 * 1024;
/// The read size a busy connection grows to: one read then takes many packets.
const READ_SIZE_MAX: usize = 64 * 1024;

/// Serves one MQTT connection until it ends. Runs on its own task.
///
/// The socket is split before the future is made: a future keeps what it was made from for
/// its whole life, and the socket (over a kilobyte with TLS) would sit in every connection's
/// task twice, once here and once inside the split.
pub fn serve<S>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    shared: Arc<MqttShared>,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut connection = Box::new(Connection::new(peer, broker, shared));
    async move {
        let end = match connection.run(reader, writer, shutdown, None).await {
            Stop::Ended(end) => end,
            // Only a connection offered a parking lot comes to rest.
            Stop::AtRest(..) => End::Abnormal,
        };
        finish(connection, end).await;
    }
}

/// [`serve`] for a listener with a parking lot: the connection waits there, without a task,
/// whenever it is idle.
pub fn serve_parking<P: Parking>(
    stream: P::Stream,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    lot: ParkingLot<P>,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let (reader, writer) = tokio::io::split(stream);
    let connection = Box::new(Connection::new(peer, broker, Arc::clone(&lot.shared)));
    drive(connection, reader, writer, lot, shutdown, Rest::Opened)
}

/// A parked connection's new task, started by the lot when the connection has work again.
async fn resume<P: Parking>(
    lot: ParkingLot<P>,
    id: ConnectionId,
    resting: Box<parked::Resting>,
    shutdown: watch::Receiver<bool>,
) {
    let (connection, socket) = resting.into_connection(id, Arc::clone(&lot.shared));
    match lot.parking.unpark(socket) {
        Ok(stream) => {
            let (reader, writer) = tokio::io::split(stream);
            // Tokio has not yet seen what the socket holds: a connection parked again at once
            // would only be woken again.
            let rest = Rest::Quiet(Instant::now());
            drive(connection, reader, writer, lot, shutdown, rest).await;
        }
        Err(error) => {
            tracing::warn!(%error, client_id = %connection.client_id, "cannot resume a parked mqtt connection");
            finish(connection, End::Abnormal).await;
        }
    }
}

/// Runs a connection, parking it whenever it comes to rest, until it ends or parks.
async fn drive<P: Parking>(
    mut connection: Box<Connection>,
    mut reader: ReadHalf<P::Stream>,
    mut writer: WriteHalf<P::Stream>,
    lot: ParkingLot<P>,
    shutdown: watch::Receiver<bool>,
    rest: Rest,
) {
    let mut rest = Some(rest);
    loop {
        let stop = connection.run(reader, writer, shutdown.clone(), rest).await;
        let (rest_reader, rest_writer) = match stop {
            Stop::Ended(end) => return finish(connection, end).await,
            Stop::AtRest(reader, writer) => (reader, writer),
        };
        if !connection.forget_task() {
            (reader, writer) = (rest_reader, rest_writer);
            continue;
        }
        match lot.park(connection, rest_reader.unsplit(rest_writer)) {
            Ok(()) => return,
            // The lot has closed (the broker is stopping): the connection keeps its task.
            Err((back, Ok(stream))) => {
                connection = back;
                (reader, writer) = tokio::io::split(stream);
                rest = None;
            }
            Err((back, Err(error))) => {
                tracing::warn!(%error, client_id = %back.client_id, "cannot park an mqtt connection");
                return finish(back, End::Abnormal).await;
            }
        }
    }
}

async fn finish(mut connection: Box<Connection>, end: End) {
    tracing::debug!(peer = %connection.peer, client_id = %connection.client_id, ?end, "mqtt connection ended");
    // Boxed: the task's size is its largest state, and every idle connection would pay for
    // the end of a connection (the will, a suspended session) all its life.
    Box::pin(connection.cleanup(end)).await;
}

/// When a connection at rest may park.
#[derive(Debug, Clone, Copy)]
enum Rest {
    /// As soon as its handshake is done. A device that connects and then sends nothing for a
    /// while is the common case, and a reconnecting fleet then never holds a task per device;
    /// a client that goes on at once is woken at once.
    Opened,
    /// Once it has read nothing for [`parked::PARK_AFTER`], counted from this time at the
    /// earliest.
    Quiet(Instant),
}

/// Why [`Connection::run`] returned.
enum Stop<S> {
    Ended(End),
    /// Nothing is in progress, and the connection has been at rest as long as its [`Rest`]
    /// asks: it can wait in the parking lot. Its socket's halves, to be put together.
    AtRest(ReadHalf<S>, WriteHalf<S>),
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// DISCONNECT without a will (reason 0x00).
    Disconnected,
    /// DISCONNECT asking for the will (v5 reason 0x04).
    DisconnectedWithWill,
    /// Anything else: the will is published [MQTT-3.1.2-8].
    Abnormal,
}

/// The broker objects of an open session.
pub struct Opened {
    pub vhost: Arc<dyn VirtualHost>,
    /// How the session queue is declared when the session first needs it; its name is the
    /// session queue's.
    queue_spec: QueueSpec,
    /// The session queue and our consumer of it. A session gets its queue only when it
    /// subscribes (or a persistent one is found on connect): a client that only publishes, the
    /// common IoT case, costs no queue task at all.
    consuming: Option<(Arc<dyn QueueHandle>, ConsumerId)>,
    /// Credit of each consumer of this connection: the client's Receive Maximum.
    prefetch: u32,
    /// Where every queue this connection consumes delivers (the session queue and shares);
    /// created with the first consumer.
    sink: Option<DeliverySink>,
    events: Option<mpsc::Receiver<ConsumerEvent>>,
    /// Shared subscriptions by their full filter (`$share/{group}/{filter}`).
    shares: HashMap<String, Share>,
}

/// One shared subscription: this connection is one consumer of the group's queue, so the
/// group's members take turns, as MQTT 5 §4.8.2 asks.
pub struct Share {
    pub queue: Arc<dyn QueueHandle>,
    pub consumer: ConsumerId,
    pub qos: QoS,
    pub identifier: Option<u32>,
}

impl Opened {
    fn new(vhost: Arc<dyn VirtualHost>, queue_spec: QueueSpec, prefetch: u32) -> Self {
        Opened {
            vhost,
            queue_spec,
            consuming: None,
            prefetch,
            sink: None,
            events: None,
            shares: HashMap::new(),
        }
    }

    /// The sink every consumer of this connection delivers to, created on first use.
    fn sink(&mut self) -> DeliverySink {
        if let Some(sink) = &self.sink {
            return sink.clone();
        }
        let (sink, events) = mpsc::channel(DELIVERY_SINK_CAPACITY);
        self.events = Some(events);
        self.sink = Some(sink.clone());
        sink
    }

    pub fn queue_name(&self) -> &str {
        &self.queue_spec.name
    }

    fn is_session_consumer(&self, consumer: ConsumerId) -> bool {
        self.consuming.as_ref().is_some_and(|(_, c)| *c == consumer)
    }

    /// Declares the session queue (replacing one declared with other settings: the new
    /// CONNECT decides) and consumes it, unless that is done already.
    async fn consume_session(
        &mut self,
        connection: ConnectionId,
        tag: &str,
    ) -> Result<(), BrokerError> {
        if self.consuming.is_some() {
            return Ok(());
        }
        let vhost = Arc::clone(&self.vhost);
        if vhost
            .declare_queue(self.queue_spec.clone(), false, connection)
            .is_err()
        {
            let _ = vhost
                .delete_queue(self.queue_name(), false, false, connection)
                .await;
            vhost.declare_queue(self.queue_spec.clone(), false, connection)?;
        }
        let queue = vhost.queue(self.queue_name(), connection)?;
        let consumer = ConsumerId::next();
        let spec = ConsumeSpec {
            consumer,
            connection,
            tag: tag.to_owned(),
            no_ack: false,
            exclusive: false,
            prefetch: self.prefetch,
            sink: self.sink(),
        };
        queue.consume(spec).await?;
        self.consuming = Some((queue, consumer));
        Ok(())
    }

    /// The deliveries waiting in the sink, unread; the consumers must be cancelled first.
    fn take_unread(&mut self) -> Vec<(ConsumerId, u64)> {
        let mut unread = Vec::new();
        if let Some(events) = self.events.as_mut() {
            while let Ok(event) = events.try_recv() {
                if let ConsumerEvent::Deliver(delivery) = event {
                    unread.push((delivery.consumer, delivery.tag));
                }
            }
        }
        unread
    }

    /// The queue a consumer of this connection consumes.
    fn queue_of(&self, consumer: ConsumerId) -> Option<&Arc<dyn QueueHandle>> {
        if let Some((queue, _)) = self.consuming.as_ref().filter(|(_, c)| *c == consumer) {
            return Some(queue);
        }
        self.shares
            .values()
            .find(|s| s.consumer == consumer)
            .map(|s| &s.queue)
    }

    /// Settles deliveries, one call per consumer.
    async fn settle(&self, mut deliveries: Vec<(ConsumerId, u64)>, settlement: Settlement) {
        deliveries.sort_unstable();
        for group in deliveries.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(consumer, _)) = group.first() else {
                continue;
            };
            if let Some(queue) = self.queue_of(consumer) {
                let tags = group.iter().map(|(_, tag)| *tag).collect();
                queue.settle(consumer, tags, settlement).await;
            }
        }
    }
}

pub struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    broker: Arc<dyn Broker>,
    shared: Arc<MqttShared>,
    version: Option<ProtocolVersion>,
    /// Shared with the session table and the report.
    client_id: Arc<str>,
    username: Option<String>,
    /// Boxed: a connection that has not sent CONNECT (or never will) carries a pointer, not
    /// the whole of it.
    opened: Option<Box<Opened>>,
    session: Session,
    out: BytesMut,
    keep_alive: Option<Duration>,
    last_read: Instant,
    /// Boxed: most clients have none, and every idle connection would carry its size.
    will: Option<Box<Will>>,
    clean: bool,
    /// Session Expiry Interval from CONNECT (v5; 0 for 3.x), which bounds the Will Delay.
    session_expiry: u32,
    /// A v5 DISCONNECT set Session Expiry Interval 0 on a persistent session: the session
    /// ends with this connection.
    end_session: bool,
    /// The client's Maximum Packet Size (v5): larger messages are not sent to it.
    client_packet_max: Option<u32>,
    /// Wakes the task when another connection takes the session over (`takeover`).
    takeover: Option<oneshot::Receiver<()>>,
    /// The handoff of the connection that took the session over, fired once this one has
    /// released it.
    taken_over_by: Option<oneshot::Sender<()>>,
    /// Nothing more is read; the connection ends once the output is flushed.
    closing: Option<End>,
    /// PUBACKs and PUBRECs owed, waiting for the queues to confirm.
    acks: acks::InboundAcks,
    /// What operators see of this connection (client id, message counts).
    report: Option<Arc<ConnectionReport>>,
    /// On while a resource alarm blocks publishers (`held`).
    alarm: watch::Receiver<bool>,
    alarm_open: bool,
    /// What a blocked publisher sent, not yet handled; boxed, as most connections never
    /// hold anything.
    held: Option<Box<held::Held>>,
}

impl Connection {
    fn new(peer: SocketAddr, broker: Arc<dyn Broker>, shared: Arc<MqttShared>) -> Self {
        let id = ConnectionId::next();
        let report = broker.report();
        if let Some(report) = &report {
            report.set_connection(id);
        }
        let alarm = broker.publish_blocked();
        Connection {
            id,
            peer,
            report,
            alarm,
            alarm_open: true,
            held: None,
            broker,
            shared,
            version: None,
            client_id: Arc::from(""),
            username: None,
            opened: None,
            session: Session::default(),
            out: BytesMut::new(),
            keep_alive: None,
            last_read: Instant::now(),
            will: None,
            clean: true,
            session_expiry: 0,
            end_session: false,
            client_packet_max: None,
            takeover: None,
            taken_over_by: None,
            closing: None,
            acks: acks::InboundAcks::default(),
        }
    }

    fn v5(&self) -> bool {
        self.version == Some(ProtocolVersion::V5)
    }

    /// Queues a packet for writing, in the connection's protocol version.
    fn send(&mut self, packet: &Packet) {
        let version = self.version.unwrap_or(ProtocolVersion::V3_1_1);
        if let Err(error) = codec::encode(packet, version, &mut self.out) {
            tracing::error!(%error, "cannot encode mqtt packet");
        }
    }

    /// Ends the connection: with a DISCONNECT carrying `code` for v5 clients, silently for
    /// v3 clients, whose protocol has no server DISCONNECT.
    fn disconnect(&mut self, code: u8, why: &str) {
        if self.closing.is_some() {
            return;
        }
        tracing::debug!(peer = %self.peer, client_id = %self.client_id, code, why, "closing mqtt connection");
        if self.v5() {
            let properties = DisconnectProperties {
                reason_string: Some(why.to_owned()),
                ..DisconnectProperties::default()
            };
            self.send(&Packet::Disconnect(Disconnect {
                reason: code,
                properties,
            }));
        }
        self.closing = Some(End::Abnormal);
    }

    /// The task is about to end for the parking lot: its takeover channel goes (the lot wakes
    /// a parked connection instead). Dropping the channel also lets go of this task's waker,
    /// which the last poll left there and which keeps the whole task's memory. `false` when the
    /// session was taken over meanwhile, which the task must see to.
    fn forget_task(&mut self) -> bool {
        self.takeover = None;
        if self.shared.release_wake(&self.client_id, self.id) {
            return true;
        }
        let done = self.shared.take_handoff(self.id);
        self.leave_for(done);
        false
    }

    /// A resumed connection takes its takeover channel back, or finds it was taken over while
    /// parked.
    fn claim_session(&mut self) {
        match self.shared.claim(&self.client_id, self.id) {
            Ok(woken) => self.takeover = Some(woken),
            Err(done) => self.leave_for(done),
        }
    }

    /// Another connection took the session over: this one ends, and tells it through `done`
    /// once it has released the session.
    fn leave_for(&mut self, done: Option<oneshot::Sender<()>>) {
        self.taken_over_by = done;
        self.disconnect(
            reason::SESSION_TAKEN_OVER,
            "another connection took the session over",
        );
    }

    /// Whether nothing is in progress that needs a task: the session consumes nothing,
    /// nothing waits to be written, acknowledged or let through after an alarm.
    /// Only a connection with a report parks: the report keeps what it then does not.
    fn at_rest(&self) -> bool {
        self.version.is_some()
            && self.report.is_some()
            && self.closing.is_none()
            && self.out.is_empty()
            && self.held.is_none()
            && !self.acks.waiting()
            && self.taken_over_by.is_none()
            && self
                .opened
                .as_ref()
                .is_some_and(|opened| opened.sink.is_none())
    }

    async fn run<S>(
        &mut self,
        mut reader: ReadHalf<S>,
        mut writer: WriteHalf<S>,
        mut shutdown: watch::Receiver<bool>,
        rest: Option<Rest>,
    ) -> Stop<S>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut input = BytesMut::new();
        let mut idle_room = [0; IDLE_READ];
        let mut read_size = READ_SIZE_INITIAL;
        let mut writing = BytesMut::new();
        let mut events = Vec::new();
        let connect_deadline = Instant::now() + self.shared.settings.handshake_timeout;
        loop {
            self.next_output(&mut writing);
            if let Some(end) = self.closing.filter(|_| writing.is_empty()) {
                let _ = writer.shutdown().await;
                return Stop::Ended(end);
            }
            let backlog = writing.len() + self.out.len();
            let keep_alive = self.deadline(connect_deadline);
            let idle = input.is_empty() && writing.is_empty();
            let deadline = self.wake_at(keep_alive, rest.filter(|_| idle));
            tokio::select! {
                written = writer.write_buf(&mut writing), if !writing.is_empty() => match written {
                    Ok(0) | Err(_) => return Stop::Ended(End::Abnormal),
                    Ok(_) => {}
                },
                read = read_some(&mut reader, &mut input, &mut idle_room, &mut read_size), if self.reading() => match read {
                    Ok(0) if self.held.is_some() => self.close_read(),
                    Ok(0) | Err(_) => return Stop::Ended(End::Abnormal),
                    Ok(_) => {
                        self.last_read = Instant::now();
                        // Boxed, as the rare branches below: a future is as large as its
                        // largest state, and an idle connection waits in the smallest one.
                        Box::pin(self.on_input(&mut input)).await;
                        // A connection that never filled its first buffer is not busy: it
                        // lets the buffer go until its next packet.
                        if input.is_empty() && read_size == READ_SIZE_INITIAL {
                            input = BytesMut::new();
                        }
                    }
                },
                received = next_events(&mut self.opened, &mut events), if backlog < OUTBOUND_BACKLOG_MAX && self.closing.is_none() => {
                    if received == 0 {
                        self.disconnect(reason::UNSPECIFIED_ERROR, "session queue closed");
                    } else {
                        self.on_events(&mut events).await;
                    }
                }
                () = boxed(|| self.acks.ready()), if self.acks.waiting() => self.send_acks(),
                changed = boxed(|| self.alarm.changed()), if self.alarm_open && self.held.is_some() => {
                    self.alarm_open = changed.is_ok();
                    self.alarm.borrow_and_update();
                    Box::pin(self.release_held(&mut input)).await;
                }
                () = taken_over(&mut self.takeover) => {
                    let done = self.shared.take_handoff(self.id);
                    self.leave_for(done);
                }
                changed = shutdown.changed(), if self.closing.is_none() => {
                    if changed.is_ok() {
                        self.disconnect(reason::SERVER_SHUTTING_DOWN, "broker shutdown");
                    }
                }
                why = close_requested(self.report.as_deref()), if self.closing.is_none() => {
                    // v5: DISCONNECT 0x98 Administrative action; v3 has no word for it.
                    self.disconnect(reason::ADMINISTRATIVE_ACTION, &why);
                }
                () = sleep_until(deadline) => {
                    if keep_alive.is_none_or(|expiry| expiry > Instant::now()) {
                        // Only a connection at rest waits for a time other than its keep alive.
                        return Stop::AtRest(reader, writer);
                    }
                    return Stop::Ended(self.expired());
                }
            }
        }
    }

    /// Once `writing` is written, makes what was queued since the next write, and lets a
    /// large buffer go.
    fn next_output(&mut self, writing: &mut BytesMut) {
        if writing.is_empty() {
            if writing.capacity() > WRITE_BUFFER_KEEP {
                *writing = BytesMut::new();
            }
            std::mem::swap(writing, &mut self.out);
        }
    }

    /// [MQTT-3.1.2-24] no packet within one and a half keep-alive periods (or no CONNECT in
    /// time): the network connection is closed.
    fn expired(&self) -> End {
        tracing::debug!(peer = %self.peer, client_id = %self.client_id, "mqtt keep alive expired");
        End::Abnormal
    }

    /// When the connection's timer fires: at `keep_alive`'s expiry or, for a connection at
    /// rest that may park, when `rest` says, whichever comes first.
    fn wake_at(&self, keep_alive: Option<Instant>, rest: Option<Rest>) -> Option<Instant> {
        let rest = rest.filter(|_| self.at_rest()).map(|rest| match rest {
            Rest::Opened => Instant::now(),
            Rest::Quiet(since) => since.max(self.last_read) + parked::PARK_AFTER,
        });
        match (keep_alive, rest) {
            (Some(expiry), Some(rest)) => Some(expiry.min(rest)),
            (expiry, rest) => expiry.or(rest),
        }
    }

    fn deadline(&self, connect: Instant) -> Option<Instant> {
        match (self.version, self.keep_alive) {
            (None, _) => Some(connect),
            // An alarm stopped our reading: the client's PINGREQs wait in the socket.
            (Some(_), _) if self.reading_paused() => None,
            (Some(_), Some(keep_alive)) => Some(self.last_read + keep_alive * 3 / 2),
            (Some(_), None) => None,
        }
    }

    /// Releases the session's broker state; publishes the will when the end calls for it.
    async fn cleanup(&mut self, end: End) {
        if let Some(will) = self.will.take().filter(|_| end != End::Disconnected) {
            self.publish_will(*will).await;
        }
        if let Some(mut opened) = self.opened.take() {
            Statistics::count(&self.shared.statistics.clients_connected, -1);
            if let Some((queue, consumer)) = &opened.consuming {
                queue.cancel(*consumer).await;
            }
            for share in opened.shares.values() {
                share.queue.cancel(share.consumer).await;
            }
            // Deliveries still in the sink were never written: back to their queues, or a
            // persistent session's queue would hold them for a consumer that is gone.
            let unsent = opened.take_unread();
            opened.settle(unsent, Settlement::Requeue).await;
            if self.clean || self.end_session {
                self.end_session(&opened).await;
            } else {
                self.suspend(&opened).await;
            }
            opened.vhost.connection_closed(self.id);
        }
        let handoff = self.shared.let_go(&self.client_id, self.id);
        if let Some(done) = self.taken_over_by.take().or(handoff) {
            let _ = done.send(());
        }
    }
}

impl Connection {
    /// Ends a session with its connection: what was in flight goes back to its queues, the
    /// shared subscriptions are left, and the session queue goes.
    async fn end_session(&mut self, opened: &Opened) {
        opened
            .settle(self.session.take_in_flight(), Settlement::Requeue)
            .await;
        let vhost = opened.vhost.as_ref();
        for filter in opened.shares.keys() {
            if let Some(queue) = shared::queue_name(filter) {
                self.shared
                    .leave_share_queue(vhost, &queue, &self.client_id, self.id)
                    .await;
            }
        }
        if self.end_session {
            let name = opened.queue_name();
            let _ = vhost.delete_queue(name, false, false, self.id).await;
        }
    }
}

/// Reads what the client sent into `input`. A connection without a read buffer (idle, see
/// [`IDLE_READ`]) waits with `idle_room` and allocates only when octets arrive; a read that
/// fills the buffer grows the next one, since more was probably waiting.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    input: &mut BytesMut,
    idle_room: &mut [u8; IDLE_READ],
    read_size: &mut usize,
) -> std::io::Result<usize> {
    if input.capacity() == 0 {
        let read = reader.read(idle_room).await?;
        let arrived = idle_room.get(..read).unwrap_or_default();
        input.reserve(*read_size);
        input.extend_from_slice(arrived);
        return Ok(read);
    }
    if input.capacity() - input.len() < *read_size {
        input.reserve(*read_size);
    }
    let spare = input.capacity() - input.len();
    let read = reader.read_buf(input).await?;
    if read == spare {
        *read_size = (*read_size * 2).min(READ_SIZE_MAX);
    }
    Ok(read)
}

async fn next_events(opened: &mut Option<Box<Opened>>, events: &mut Vec<ConsumerEvent>) -> usize {
    match opened.as_deref_mut() {
        Some(Opened {
            events: Some(receiver),
            ..
        }) => receiver.recv_many(events, EVENT_BATCH_MAX).await,
        _ => std::future::pending().await,
    }
}

/// Makes and awaits a future in a box, on first poll. `select!` keeps every branch's future
/// in the task, enabled or not; a branch an idle connection never enables then costs a few
/// bytes instead of its future's size.
async fn boxed<F: Future>(make: impl FnOnce() -> F) -> F::Output {
    Box::pin(make()).await
}

/// Completes when another connection takes the session over.
async fn taken_over(takeover: &mut Option<oneshot::Receiver<()>>) {
    let Some(receiver) = takeover else {
        return std::future::pending().await;
    };
    let received = receiver.await;
    // A oneshot is polled to completion once; without a sender nobody can take over.
    *takeover = None;
    if received.is_err() {
        std::future::pending().await
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
