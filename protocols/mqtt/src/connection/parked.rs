//! The parking lot: where idle MQTT connections on plain TCP wait without a task.
//!
//! Most MQTT connections are devices that publish now and then and otherwise send PINGREQ.
//! A tokio task waiting on a socket registered with tokio's reactor costs such a connection
//! about 730 bytes before any state of its own (docs/BENCHMARKS.md), nearly all of what
//! Mosquitto spends on a whole connection. So a connection at rest (its session consumes
//! nothing, nothing waits to be written or acknowledged) leaves its task, right after its
//! handshake and later once it has read nothing for [`PARK_AFTER`]: the socket leaves tokio's
//! reactor for the lot's own `epoll` (`mio`), the connection's state waits in the lot's table
//! in a compact form ([`Resting`]), and the task ends.
//!
//! The lot's thread answers PINGREQs itself: it peeks at two octets, and a PINGREQ is `C0 00`
//! in every version, its PINGRESP `D0 00`. It hands the connection back to a new task
//! ([`resume`](super::resume)) when anything else arrives (the octets stay in the socket for
//! the task to read), the socket ends or fails, the keep alive runs out, another connection
//! takes the session over, an operator asks to close it, or the broker shuts down; the task
//! then does what it would have done had it waited itself.
//!
//! Topology: one thread per listener that parks (the plain MQTT one), blocked in `epoll_wait`;
//! the connections' tasks and the broker reach it through its [`Inbox`] and a `mio::Waker`.
//! Keep alives and close requests are checked once per [`SWEEP_EVERY`], which costs nothing
//! per connection; takeovers and shutdown wake the thread at once.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use mqbridge_broker_api::{Broker, ConnectionId, ConnectionReport, VirtualHost};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Connection, MqttShared, Opened, acks};
use crate::codec::{ProtocolVersion, Will};
use crate::session::Session;

/// How long a connection at rest has read nothing before it parks. A device publishing every
/// few seconds parks between its messages (a few system calls each way); a busier client
/// keeps its task.
pub(super) const PARK_AFTER: Duration = Duration::from_secs(1);
/// How often the lot looks for keep alives run out and close requests: a keep alive ends at
/// most this late, on top of its one and a half periods [MQTT-3.1.2-24].
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: [u8; 2] = [0xD0, 0x00];
/// The waker's token; connections use their `ConnectionId`, which starts at 1 and counts up.
const WAKER: Token = Token(usize::MAX);
const EVENTS_PER_WAIT: usize = 1024;

/// How a listener's streams leave tokio for the parking lot and come back.
pub trait Parking: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The plain socket under `stream`, taken out of tokio's reactor (still non-blocking).
    fn park(&self, stream: Self::Stream) -> io::Result<std::net::TcpStream>;

    /// `socket` as a stream again, registered with the reactor of the runtime this runs on.
    fn unpark(&self, socket: std::net::TcpStream) -> io::Result<Self::Stream>;
}

/// One listener's way into its parking lot; cheap to clone.
pub struct ParkingLot<P> {
    pub(super) parking: Arc<P>,
    pub(super) shared: Arc<MqttShared>,
    inbox: Arc<Inbox>,
}

impl<P> Clone for ParkingLot<P> {
    fn clone(&self) -> Self {
        ParkingLot {
            parking: Arc::clone(&self.parking),
            shared: Arc::clone(&self.shared),
            inbox: Arc::clone(&self.inbox),
        }
    }
}

impl<P: Parking> ParkingLot<P> {
    /// Starts the lot's thread. Runs inside the runtime that serves the connections: parked
    /// ones are resumed onto it. The lot closes, handing every connection back to a task, when
    /// `shutdown` changes, its sender goes, or the runtime ends.
    pub fn start(
        parking: P,
        shared: &Arc<MqttShared>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let inbox = Arc::new(Inbox {
            commands: Mutex::new(Some(Vec::new())),
            waker,
        });
        let lot = ParkingLot {
            parking: Arc::new(parking),
            shared: Arc::clone(shared),
            inbox: Arc::clone(&inbox),
        };
        let yard = Yard {
            poll,
            parked: HashMap::new(),
            lot: lot.clone(),
            // Never marked seen: every clone handed to a resumed connection sees the change.
            shutdown: shutdown.clone(),
            runtime: Handle::current(),
            swept_at: Instant::now(),
        };
        std::thread::Builder::new()
            .name("mqtt-parking".to_owned())
            .spawn(move || yard.run())?;
        let closer = CloseOnDrop(Arc::clone(&inbox));
        tokio::spawn(async move {
            let _closer = closer;
            let _ = shutdown.changed().await;
        });
        shared.set_parking(inbox);
        Ok(lot)
    }

    /// Hands an idle connection to the lot. Gives it back, with its stream, when the lot is
    /// closed; fails when the socket cannot leave tokio or come back.
    pub(super) fn park(
        &self,
        connection: Box<Connection>,
        stream: P::Stream,
    ) -> Result<(), (Box<Connection>, io::Result<P::Stream>)> {
        let socket = match self.parking.park(stream) {
            Ok(socket) => TcpStream::from_std(socket),
            Err(error) => return Err((connection, Err(error))),
        };
        let id = connection.id;
        let resting = match Resting::new(connection, socket) {
            Ok(resting) => Box::new(resting),
            Err((connection, socket)) => {
                return Err((connection, self.parking.unpark(socket.into())));
            }
        };
        match self.inbox.send(Command::Park(id, resting)) {
            Err(Command::Park(id, resting)) => {
                let shared = Arc::clone(&self.shared);
                let (connection, socket) = resting.into_connection(id, shared);
                Err((connection, self.parking.unpark(socket)))
            }
            // `send` gives back only the command it was given.
            _ => Ok(()),
        }
    }
}

/// What the lot's thread is asked to do.
enum Command {
    Park(ConnectionId, Box<Resting>),
    /// Another connection took this one's session over.
    Wake(ConnectionId),
    /// The broker shuts down (or its runtime ends): every connection goes back to a task, and
    /// the lot closes.
    Close,
}

/// What a connection at rest keeps while parked (128 bytes): its socket, and its `Connection`
/// without what only a task uses (buffers, the acknowledgement queue, the alarm watch and the
/// takeover channel, all empty or unneeded at rest) or what can be had again (the peer's
/// address and the user name are in the report, the session queue's declaration follows from
/// the rest), with its session objects reduced to what makes them again. Its id is the lot's
/// key for it, kept there only. Every parked connection carries this, so it is kept small.
pub(super) struct Resting {
    socket: TcpStream,
    broker: Arc<dyn Broker>,
    /// Only connections with a report park (see `Connection::at_rest`).
    report: Arc<ConnectionReport>,
    version: Option<ProtocolVersion>,
    client_id: Arc<str>,
    /// The vhost and the credit of `Opened` (a connection at rest has one, with no consumer).
    vhost: Option<Arc<dyn VirtualHost>>,
    prefetch: u32,
    /// `None` for a bare session ([`Session::bare`]), which keeps one number.
    session: Option<Box<Session>>,
    client_alias_maximum: u16,
    /// In seconds, 0 for none: CONNECT grants whole seconds, up to `u16::MAX`.
    keep_alive: u16,
    last_read: Instant,
    will: Option<Box<Will>>,
    clean: bool,
    session_expiry: u32,
    end_session: bool,
    /// Never 0 [MQTT-5.0 3.1.2.11.4].
    client_packet_max: Option<NonZeroU32>,
    /// How many octets of a PINGRESP the socket did not take.
    unsent: u8,
}

impl Resting {
    /// `connection`, at rest, and its socket; both back if it has no report.
    fn new(
        mut connection: Box<Connection>,
        socket: TcpStream,
    ) -> Result<Self, (Box<Connection>, TcpStream)> {
        let Some(report) = connection.report.take() else {
            return Err((connection, socket));
        };
        let Connection {
            id: _,
            peer: _,
            broker,
            shared: _,
            version,
            client_id,
            username: _,
            opened,
            session,
            out: _,
            keep_alive,
            last_read,
            will,
            clean,
            session_expiry,
            end_session,
            client_packet_max,
            takeover: _,
            taken_over_by: _,
            closing: _,
            acks: _,
            report: _,
            alarm: _,
            alarm_open: _,
            held: _,
        } = *connection;
        Ok(Resting {
            socket,
            broker,
            report,
            version,
            client_id,
            vhost: opened.as_ref().map(|opened| Arc::clone(&opened.vhost)),
            prefetch: opened.map_or(0, |opened| opened.prefetch),
            client_alias_maximum: session.bare().unwrap_or(0),
            session: session.bare().is_none().then(|| Box::new(session)),
            keep_alive: keep_alive.map_or(0, |period| {
                u16::try_from(period.as_secs()).unwrap_or(u16::MAX)
            }),
            last_read,
            will,
            clean,
            session_expiry,
            end_session,
            client_packet_max: client_packet_max.and_then(NonZeroU32::new),
            unsent: 0,
        })
    }

    /// The connection again, as a task needs it, and its socket.
    pub(super) fn into_connection(
        self,
        id: ConnectionId,
        shared: Arc<MqttShared>,
    ) -> (Box<Connection>, std::net::TcpStream) {
        let alarm = self.broker.publish_blocked();
        let sent = PINGRESP.len() - usize::from(self.unsent);
        let mut connection = Box::new(Connection {
            id,
            peer: self.report.origin.peer,
            broker: self.broker,
            shared,
            version: self.version,
            client_id: self.client_id,
            // The report has the user this connection logged in as: it opened the vhost.
            username: self.report.user(),
            opened: None,
            session: self
                .session
                .map_or_else(|| bare(self.client_alias_maximum), |session| *session),
            out: BytesMut::from(PINGRESP.get(sent..).unwrap_or_default()),
            keep_alive: (self.keep_alive > 0).then(|| Duration::from_secs(self.keep_alive.into())),
            last_read: self.last_read,
            will: self.will,
            clean: self.clean,
            session_expiry: self.session_expiry,
            end_session: self.end_session,
            client_packet_max: self.client_packet_max.map(NonZeroU32::get),
            takeover: None,
            taken_over_by: None,
            closing: None,
            acks: acks::InboundAcks::default(),
            report: Some(self.report),
            alarm,
            alarm_open: true,
            held: None,
        });
        if let Some(vhost) = self.vhost {
            let spec = connection.session_spec();
            connection.opened = Some(Box::new(Opened::new(vhost, spec, self.prefetch)));
        }
        connection.claim_session();
        (connection, self.socket.into())
    }
}

/// A bare session again ([`Session::bare`]).
fn bare(client_alias_maximum: u16) -> Session {
    let mut session = Session::default();
    session.set_client_alias_maximum(client_alias_maximum);
    session
}

/// Where connections and the broker reach the lot's thread.
pub(crate) struct Inbox {
    /// `None` once the lot has closed: whoever would park keeps its task.
    commands: Mutex<Option<Vec<Command>>>,
    waker: Waker,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    fn send(&self, command: Command) -> Result<(), Command> {
        let mut commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(commands) = commands.as_mut() else {
            return Err(command);
        };
        commands.push(command);
        if let Err(error) = self.waker.wake() {
            tracing::error!(%error, "cannot wake the mqtt parking lot");
        }
        Ok(())
    }

    /// Wakes the parked connection `id`, if it is parked: its session was taken over.
    pub(crate) fn wake(&self, id: ConnectionId) {
        let _ = self.send(Command::Wake(id));
    }

    /// Closes the inbox and takes what was left in it.
    fn close(&self) -> Vec<Command> {
        let mut commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        commands.take().unwrap_or_default()
    }

    fn take(&self) -> Vec<Command> {
        let mut commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        commands.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Closes the lot when the task watching for shutdown ends, whichever way it ends.
struct CloseOnDrop(Arc<Inbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Command::Close);
    }
}

/// The lot's thread and what it owns.
struct Yard<P> {
    poll: Poll,
    parked: HashMap<ConnectionId, Box<Resting>>,
    lot: ParkingLot<P>,
    shutdown: watch::Receiver<bool>,
    runtime: Handle,
    swept_at: Instant,
}

impl<P: Parking> Yard<P> {
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_WAIT);
        loop {
            let timeout = (!self.parked.is_empty()).then_some(SWEEP_EVERY);
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "the mqtt parking lot cannot wait; its connections go back to tasks");
                return self.close();
            }
            for event in &events {
                if event.token() != WAKER {
                    self.readable(ConnectionId(event.token().0 as u64));
                }
            }
            for command in self.lot.inbox.take() {
                match command {
                    Command::Park(id, parked) => self.admit(id, parked),
                    Command::Wake(id) => {
                        if let Some(parked) = self.parked.remove(&id) {
                            self.resume(id, parked);
                        }
                    }
                    Command::Close => return self.close(),
                }
            }
            if self.swept_at.elapsed() >= SWEEP_EVERY {
                self.sweep();
            }
        }
    }

    fn admit(&mut self, id: ConnectionId, mut parked: Box<Resting>) {
        // A takeover before this point woke nothing: the connection was on its way here.
        if must_wake(&parked, Instant::now()) || self.lot.shared.handed_over(id) {
            return self.resume(id, parked);
        }
        let token = Token(usize::try_from(id.0).unwrap_or(usize::MAX - 1));
        let registry = self.poll.registry();
        match registry.register(&mut parked.socket, token, Interest::READABLE) {
            Ok(()) => {
                parked.report.set_parked(true);
                self.parked.insert(id, parked);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot park an mqtt connection");
                self.resume(id, parked);
            }
        }
    }

    /// Answers the PINGREQs in a parked connection's socket; anything else resumes it.
    fn readable(&mut self, id: ConnectionId) {
        let Some(parked) = self.parked.get_mut(&id) else {
            return;
        };
        if !answer_pings(parked)
            && let Some(parked) = self.parked.remove(&id)
        {
            self.resume(id, parked);
        }
    }

    /// Resumes the connections whose keep alive ran out or that an operator asked to close.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.swept_at = now;
        let due: Vec<ConnectionId> = self
            .parked
            .iter()
            .filter(|(_, parked)| must_wake(parked, now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(parked) = self.parked.remove(&id) {
                self.resume(id, parked);
            }
        }
    }

    /// Hands a connection back to a task of its own.
    fn resume(&self, id: ConnectionId, mut parked: Box<Resting>) {
        if let Err(error) = self.poll.registry().deregister(&mut parked.socket) {
            // Not registered yet (or the socket failed): nothing to undo.
            tracing::trace!(%error, "mqtt parking lot deregister");
        }
        parked.report.set_parked(false);
        let resumed = super::resume(self.lot.clone(), id, parked, self.shutdown.clone());
        // After the runtime's end this drops the connection, as the runtime dropped the rest.
        self.runtime.spawn(resumed);
    }

    /// Every connection goes back to a task; later ones keep theirs.
    fn close(mut self) {
        let parked: Vec<(ConnectionId, Box<Resting>)> = self.parked.drain().collect();
        for (id, parked) in parked {
            self.resume(id, parked);
        }
        for command in self.lot.inbox.close() {
            if let Command::Park(id, parked) = command {
                self.resume(id, parked);
            }
        }
    }
}

/// Whether a parked connection's task must take over: an operator asked to close it, or its
/// keep alive ran out. (A takeover wakes it through the inbox.)
fn must_wake(connection: &Resting, now: Instant) -> bool {
    let close_asked = connection.report.close_asked();
    let keep_alive = Duration::from_secs(connection.keep_alive.into());
    let expired = connection.keep_alive > 0 && connection.last_read + keep_alive * 3 / 2 <= now;
    close_asked || expired
}

/// Answers the PINGREQs waiting in a parked connection's socket. `false` when something else
/// is there (another packet, the end of the stream, an error): the connection's task must
/// read it, and anything not yet answered is in the connection's output.
fn answer_pings(parked: &mut Resting) -> bool {
    let mut octets = [0; 2];
    loop {
        match parked.socket.peek(&mut octets) {
            Ok(2) if octets == PINGREQ => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            _ => return false,
        }
        if (&parked.socket).read_exact(&mut octets).is_err() {
            return false;
        }
        parked.last_read = Instant::now();
        let written = (&parked.socket).write(&PINGRESP).unwrap_or(0);
        if written < PINGRESP.len() {
            // At most the two octets of one PINGRESP.
            parked.unsent = (PINGRESP.len() - written) as u8;
            return false;
        }
    }
}
