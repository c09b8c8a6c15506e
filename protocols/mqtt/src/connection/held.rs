//! Publishers under a resource alarm (memory or disk): what the client sent from its first
//! PUBLISH during the alarm on is held, unhandled and in order, until the alarm clears.
//!
//! We keep reading past held publishes for a little while ([`HELD_BYTES_MAX`]) so that the
//! client's PINGREQs are answered and its acknowledgements of our deliveries settle them:
//! neither touches what is held, and without them a blocked client would drop itself for a
//! missing PINGRESP and its subscriptions would stall. Everything else (SUBSCRIBE, PUBREL,
//! DISCONNECT...) is held behind the publishes, since its effect depends on their order. Once
//! that much is held the socket is not read at all, as RabbitMQ's MQTT reader does, and TCP
//! pushes back on the client. While we do not read, the client's silence is ours: the
//! keep-alive deadline is suspended, and starts afresh when reading resumes.
//!
//! Runs on the connection task.

use std::collections::VecDeque;

use bytes::BytesMut;
use tokio::time::Instant;

use super::{Connection, End};
use crate::codec::Packet;

/// Held bytes past which a blocked connection is not read: enough to find the PINGREQs and
/// acknowledgements behind a burst of small publishes, small enough that ten thousand blocked
/// connections hold little. A blocked connection holds at most this plus one packet.
pub(super) const HELD_BYTES_MAX: usize = 16 * 1024;

/// The packets held while the alarm is on, oldest first.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Each packet with its size on the wire.
    packets: VecDeque<(Packet, usize)>,
    bytes: usize,
    /// The client closed its side with packets still held: they are handled once the alarm
    /// clears, and then the connection ends.
    pub(super) read_closed: bool,
}

impl Held {
    fn is_full(&self) -> bool {
        self.bytes >= HELD_BYTES_MAX
    }
}

/// Whether a packet that arrives behind held ones may be handled at once: keep-alive and the
/// client's acknowledgements of our deliveries, which no held packet depends on.
fn overtakes(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::PingReq | Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_)
    )
}

impl Connection {
    /// Whether a resource alarm blocks publishers now. A closed alarm channel means the
    /// broker is going away; it blocks nobody.
    pub(super) fn publish_blocked(&self) -> bool {
        self.alarm_open && *self.alarm.borrow()
    }

    /// Whether the socket is read: not once closing, and not once a blocked connection holds
    /// [`HELD_BYTES_MAX`] or its client has closed its side.
    pub(super) fn reading(&self) -> bool {
        self.closing.is_none() && !self.reading_paused()
    }

    /// Reading stopped because of the alarm, not because the client went quiet.
    pub(super) fn reading_paused(&self) -> bool {
        self.held
            .as_ref()
            .is_some_and(|held| held.is_full() || held.read_closed)
    }

    /// Whether `on_input` stops decoding: what it decodes now would only be held, over the
    /// bound.
    pub(super) fn held_full(&self) -> bool {
        self.held.as_ref().is_some_and(|held| held.is_full())
    }

    /// Holds `packet` (of `size` octets on the wire) if the alarm or packets already held
    /// call for it; otherwise gives it back to be handled now.
    pub(super) fn hold(&mut self, packet: Packet, size: usize) -> Option<Packet> {
        let holding = match &self.held {
            Some(_) => !overtakes(&packet),
            None => matches!(packet, Packet::Publish(_)) && self.publish_blocked(),
        };
        if !holding {
            return Some(packet);
        }
        let held = self.held.get_or_insert_with(Box::default);
        held.packets.push_back((packet, size));
        held.bytes += size;
        None
    }

    /// The client closed its side while packets are held: nothing more to read, but what is
    /// held still goes in once the alarm clears.
    pub(super) fn close_read(&mut self) {
        if let Some(held) = self.held.as_mut() {
            held.read_closed = true;
        }
    }

    /// The alarm changed while packets are held: once it is clear, handles them in order, then
    /// whatever `input` still has. Boxed by the caller: it runs once per alarm, not per packet.
    pub(super) async fn release_held(&mut self, input: &mut BytesMut) {
        if self.publish_blocked() {
            return;
        }
        if self.reading_paused() {
            // The client's keep-alive packets were waiting unread behind ours.
            self.last_read = Instant::now();
        }
        let read_closed = self.held.as_ref().is_some_and(|held| held.read_closed);
        while self.closing.is_none() && !self.publish_blocked() {
            let Some(held) = self.held.as_mut() else {
                break;
            };
            let Some((packet, size)) = held.packets.pop_front() else {
                break;
            };
            held.bytes -= size;
            self.handle(packet).await;
        }
        if self
            .held
            .as_ref()
            .is_some_and(|held| !held.packets.is_empty())
        {
            // The alarm came back: the rest waits for the next clearing.
            return;
        }
        self.held = None;
        self.on_input(input).await;
        if read_closed && self.held.is_none() && self.closing.is_none() {
            self.closing = Some(End::Abnormal);
        }
    }
}
