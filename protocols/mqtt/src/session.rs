//! One MQTT session's bookkeeping, free of I/O: the subscriptions (with the options the core's
//! bindings do not carry), packet identifiers in flight both ways, and which QoS a delivery
//! gets. The connection task owns it and does the broker calls.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;

use mqbridge_broker_api::ConsumerId;

use crate::codec::{PacketId, Publish, QoS, Subscription};
use crate::topic::filter_matches;

/// The options of one subscription, kept beside the binding that implements it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub filter: String,
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub identifier: Option<u32>,
}

/// The highest QoS we grant and deliver with.
pub const GRANTED_QOS_MAX: QoS = QoS::ExactlyOnce;

/// Topic aliases a client may define (Topic Alias Maximum in CONNACK): enough for a device
/// cycling over its topics, small enough that the table stays tiny per connection.
pub const TOPIC_ALIAS_MAXIMUM: u16 = 64;

/// What a delivery should look like for this session, if any subscription wants it.
#[derive(Debug, PartialEq, Eq)]
pub struct Routing {
    pub qos: QoS,
    pub identifiers: Vec<u32>,
    pub retain_as_published: bool,
}

/// Where an outbound QoS 1 or 2 message came from, so that its acknowledgement settles the
/// right delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A delivery from a queue the connection consumes (its session queue or a shared one).
    Queue { consumer: ConsumerId, tag: u64 },
    /// Owned by the session itself, nothing to settle: a retained message sent on subscribe,
    /// or a message carried over from the session's previous connection.
    Session,
}

/// An outbound packet id's state (MQTT 4.3.2 and 4.3.3, sender side). `seq` orders the
/// states by first sending, the order in which a resumed session sends them again
/// [MQTT-4.6.0-1].
#[derive(Debug)]
enum Outbound {
    /// PUBLISH sent; QoS 1 awaits PUBACK, QoS 2 awaits PUBREC. The packet is kept (once
    /// written) so that a persistent session can send it again after a reconnect.
    Sent {
        origin: Origin,
        qos: QoS,
        seq: u64,
        publish: Option<Box<Publish>>,
    },
    /// QoS 2: PUBREC received and PUBREL sent; the id is free after PUBCOMP.
    Released { seq: u64 },
}

/// What a persistent session keeps of its packet identifiers while no connection holds it
/// (MQTT 4.1 "Session State"): the exchanges to finish when it resumes.
#[derive(Debug, Default)]
pub struct Unfinished {
    /// PUBLISH packets awaiting PUBACK/PUBREC and PUBREL packets awaiting PUBCOMP, in the
    /// order they were first sent.
    pub outbound: Vec<Resend>,
    /// Inbound QoS 2 packet ids between PUBREC and PUBREL.
    pub inbound_exactly_once: HashSet<u16>,
}

/// A persistent session leaving its connection.
#[derive(Debug)]
pub struct Suspension {
    /// What to finish on the next connection.
    pub unfinished: Unfinished,
    /// The deliveries the carried-over PUBLISHes came from: the session owns the messages now,
    /// so their queues may let them go.
    pub owned: Vec<(ConsumerId, u64)>,
    /// Deliveries whose PUBLISH was never written: nothing to carry over, back to their queue.
    pub unsent: Vec<(ConsumerId, u64)>,
}

/// One outbound exchange a resumed session finishes.
#[derive(Debug)]
pub enum Resend {
    Publish(Box<Publish>),
    Release(PacketId),
}

#[derive(Debug, Default)]
pub struct Session {
    subscriptions: Vec<Subscribed>,
    /// Outbound QoS 1 and 2 messages by packet id, until PUBACK or PUBCOMP frees the id.
    outbound: HashMap<u16, Outbound>,
    next_packet_id: u16,
    /// Counts outbound states as they start, to order them.
    next_seq: u64,
    /// Inbound QoS 2 packet ids between PUBREC and PUBREL.
    inbound_exactly_once: HashSet<u16>,
    /// Topic aliases both ways, made by the first alias defined: most clients use none, and
    /// every idle connection would carry two empty maps.
    aliases: Option<Box<Aliases>>,
    client_alias_maximum: u16,
}

#[derive(Debug, Default)]
struct Aliases {
    /// The client's topic aliases: alias -> topic name. They live as long as the connection
    /// [MQTT-3.3.2-7].
    from_client: HashMap<u16, String>,
    /// Our topic aliases towards the client: topic name -> alias, at most the client's Topic
    /// Alias Maximum of them [MQTT-3.3.2-10].
    to_client: HashMap<String, u16>,
}

impl Session {
    /// Adds or replaces (same filter) a subscription; returns whether it is new.
    pub fn subscribe(&mut self, request: &Subscription, identifier: Option<u32>) -> bool {
        let entry = Subscribed {
            filter: request.filter.clone(),
            qos: request.qos.min(GRANTED_QOS_MAX),
            no_local: request.no_local,
            retain_as_published: request.retain_as_published,
            identifier,
        };
        match self
            .subscriptions
            .iter_mut()
            .find(|s| s.filter == request.filter)
        {
            Some(existing) => {
                *existing = entry;
                false
            }
            None => {
                self.subscriptions.push(entry);
                true
            }
        }
    }

    /// The topic name of an inbound PUBLISH, resolving its Topic Alias: a name with an alias
    /// (re)defines it, an empty name uses it. Errors carry the v5 reason code.
    pub fn resolve_topic(
        &mut self,
        topic: String,
        alias: Option<u16>,
    ) -> Result<String, (u8, &'static str)> {
        use crate::codec::reason;
        let Some(alias) = alias else {
            return match topic.is_empty() {
                true => Err((
                    reason::PROTOCOL_ERROR,
                    "[MQTT-3.3.2-1] empty topic name without a topic alias",
                )),
                false => Ok(topic),
            };
        };
        if alias == 0 || alias > TOPIC_ALIAS_MAXIMUM {
            // [MQTT-3.3.2-8, 3.3.2-9] 0 and values above our maximum are invalid.
            return Err((reason::TOPIC_ALIAS_INVALID, "topic alias out of range"));
        }
        if topic.is_empty() {
            let defined = self
                .aliases
                .as_ref()
                .and_then(|a| a.from_client.get(&alias));
            return defined.cloned().ok_or((
                reason::PROTOCOL_ERROR,
                "topic alias used before it was defined",
            ));
        }
        let aliases = self.aliases.get_or_insert_default();
        aliases.from_client.insert(alias, topic.clone());
        Ok(topic)
    }

    /// Lets us send up to `maximum` topic aliases (the client's Topic Alias Maximum).
    pub fn set_client_alias_maximum(&mut self, maximum: u16) {
        self.client_alias_maximum = maximum;
    }

    /// The client's Topic Alias Maximum, when that is all the session holds: no subscription,
    /// no exchange in flight either way, no topic alias. Such a session is made again from
    /// that number (`Session::default` and [`set_client_alias_maximum`]), so a parked
    /// connection keeps no more of it.
    ///
    /// [`set_client_alias_maximum`]: Self::set_client_alias_maximum
    pub fn bare(&self) -> Option<u16> {
        let bare = self.subscriptions.is_empty()
            && self.outbound.is_empty()
            && self.inbound_exactly_once.is_empty()
            && self.aliases.is_none();
        bare.then_some(self.client_alias_maximum)
    }

    /// The alias to send `topic` with, and whether this PUBLISH defines it (and so must carry
    /// the name too). The first topics sent take the aliases and keep them for the connection:
    /// a device's topics rarely change, and a fixed table never makes the client re-learn one.
    pub fn outbound_alias(&mut self, topic: &str) -> Option<(u16, bool)> {
        if self.client_alias_maximum == 0 {
            return None;
        }
        let to_client = &mut self.aliases.get_or_insert_default().to_client;
        if let Some(&alias) = to_client.get(topic) {
            return Some((alias, false));
        }
        let next = u16::try_from(to_client.len() + 1).ok()?;
        if next > self.client_alias_maximum {
            return None;
        }
        to_client.insert(topic.to_owned(), next);
        Some((next, true))
    }

    /// The subscription with exactly this filter.
    pub fn get(&self, filter: &str) -> Option<&Subscribed> {
        self.subscriptions.iter().find(|s| s.filter == filter)
    }

    /// Restores a subscription of a persistent session.
    pub fn restore(&mut self, subscribed: Subscribed) {
        self.subscriptions.retain(|s| s.filter != subscribed.filter);
        self.subscriptions.push(subscribed);
    }

    pub fn unsubscribe(&mut self, filter: &str) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| s.filter != filter);
        self.subscriptions.len() != before
    }

    /// How a message on `topic_name`, published with `published` QoS by `from_self` (this
    /// client), is delivered: the highest QoS of the matching subscriptions, capped by the
    /// publisher's [MQTT-3.8.4-8]. `None` if no subscription wants it.
    pub fn route(&self, topic_name: &str, published: QoS, from_self: bool) -> Option<Routing> {
        let mut routing: Option<Routing> = None;
        for sub in self
            .subscriptions
            .iter()
            .filter(|s| filter_matches(&s.filter, topic_name))
        {
            // [MQTT-3.8.3-3] No Local: never send a client its own messages on this subscription.
            if sub.no_local && from_self {
                continue;
            }
            let current = routing.get_or_insert(Routing {
                qos: QoS::AtMostOnce,
                identifiers: Vec::new(),
                retain_as_published: false,
            });
            current.qos = current.qos.max(sub.qos);
            current.identifiers.extend(sub.identifier);
            current.retain_as_published |= sub.retain_as_published;
        }
        routing.map(|mut r| {
            r.qos = r.qos.min(published);
            r
        })
    }

    /// A free packet identifier for an outbound QoS 1 or 2 message from `origin`. `None` when
    /// all 65,535 identifiers are in use (the caller then sends at QoS 0).
    pub fn send_with_id(&mut self, origin: Origin, qos: QoS) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            let Some(id) = NonZeroU16::new(self.next_packet_id) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = self.outbound.entry(id.get()) {
                self.next_seq += 1;
                slot.insert(Outbound::Sent {
                    origin,
                    qos,
                    seq: self.next_seq,
                    publish: None,
                });
                return Some(id);
            }
        }
        None
    }

    /// Keeps the PUBLISH written for `id`, to send again if the session resumes on another
    /// connection before it is acknowledged.
    pub fn hold(&mut self, id: PacketId, written: Publish) {
        if let Some(Outbound::Sent { publish, .. }) = self.outbound.get_mut(&id.get()) {
            *publish = Some(Box::new(written));
        }
    }

    /// What a PUBACK settles, if the id was a QoS 1 message in flight.
    pub fn acknowledged(&mut self, id: PacketId) -> Option<Origin> {
        match self.outbound.get(&id.get()) {
            Some(&Outbound::Sent {
                origin,
                qos: QoS::AtLeastOnce,
                ..
            }) => {
                self.outbound.remove(&id.get());
                Some(origin)
            }
            _ => None,
        }
    }

    /// Frees an id whose PUBLISH was never written (too large for the client).
    pub fn abandon(&mut self, id: PacketId) -> Option<Origin> {
        match self.outbound.remove(&id.get()) {
            Some(Outbound::Sent { origin, .. }) => Some(origin),
            _ => None,
        }
    }

    /// PUBREC for a QoS 2 message: the client owns the message now, so its origin is settled;
    /// the id stays in use until PUBCOMP [MQTT-4.3.3-4..6]. `None` if the id was not awaiting
    /// PUBREC.
    pub fn received(&mut self, id: PacketId) -> Option<Origin> {
        let entry = self.outbound.get_mut(&id.get())?;
        let &mut Outbound::Sent {
            origin,
            qos: QoS::ExactlyOnce,
            seq,
            ..
        } = entry
        else {
            return None;
        };
        *entry = Outbound::Released { seq };
        Some(origin)
    }

    /// PUBREC with an error reason (v5): the client refused the message; the exchange ends.
    pub fn refused(&mut self, id: PacketId) -> Option<Origin> {
        let origin = self.received(id);
        self.outbound.remove(&id.get());
        origin
    }

    /// PUBCOMP: the id is free again. False if it was not awaiting PUBCOMP.
    pub fn completed(&mut self, id: PacketId) -> bool {
        let released = matches!(
            self.outbound.get(&id.get()),
            Some(Outbound::Released { .. })
        );
        if released {
            self.outbound.remove(&id.get());
        }
        released
    }

    pub fn in_flight(&self) -> usize {
        self.outbound.len()
    }

    /// Every delivery not yet acknowledged (the connection requeues them on close). Messages
    /// past PUBREC belong to the client already and are not among them.
    pub fn take_in_flight(&mut self) -> Vec<(ConsumerId, u64)> {
        self.outbound
            .drain()
            .filter_map(|(_, state)| queued(&state))
            .collect()
    }

    /// Ends this connection's part of a persistent session.
    pub fn suspend(&mut self) -> Suspension {
        let mut states: Vec<(u16, Outbound)> = self.outbound.drain().collect();
        states.sort_by_key(|(_, state)| match state {
            Outbound::Sent { seq, .. } | Outbound::Released { seq } => *seq,
        });
        let (mut owned, mut unsent) = (Vec::new(), Vec::new());
        let mut outbound = Vec::with_capacity(states.len());
        for (id, state) in states {
            let source = queued(&state);
            match (state, PacketId::new(id)) {
                (
                    Outbound::Sent {
                        publish: Some(publish),
                        ..
                    },
                    _,
                ) => {
                    owned.extend(source);
                    outbound.push(Resend::Publish(publish));
                }
                (Outbound::Sent { publish: None, .. }, _) => unsent.extend(source),
                (Outbound::Released { .. }, Some(id)) => outbound.push(Resend::Release(id)),
                (Outbound::Released { .. }, None) => {}
            }
        }
        let unfinished = Unfinished {
            outbound,
            inbound_exactly_once: std::mem::take(&mut self.inbound_exactly_once),
        };
        Suspension {
            unfinished,
            owned,
            unsent,
        }
    }

    /// Takes up the exchanges a persistent session left unfinished; returns them in the order
    /// to send again: each PUBLISH with DUP set and its original packet id [MQTT-4.4.0-1].
    pub fn resume(&mut self, unfinished: Unfinished) -> Vec<Resend> {
        self.inbound_exactly_once = unfinished.inbound_exactly_once;
        let mut resend = Vec::with_capacity(unfinished.outbound.len());
        for item in unfinished.outbound {
            self.next_seq += 1;
            let seq = self.next_seq;
            match item {
                Resend::Publish(mut publish) => {
                    let Some(id) = publish.packet_id else {
                        continue;
                    };
                    publish.dup = true;
                    let state = Outbound::Sent {
                        origin: Origin::Session,
                        qos: publish.qos,
                        seq,
                        publish: Some(publish.clone()),
                    };
                    self.outbound.insert(id.get(), state);
                    resend.push(Resend::Publish(publish));
                }
                Resend::Release(id) => {
                    self.outbound.insert(id.get(), Outbound::Released { seq });
                    resend.push(Resend::Release(id));
                }
            }
        }
        resend
    }

    /// The unacknowledged deliveries of one consumer (a shared subscription being left).
    pub fn take_in_flight_of(&mut self, consumer: ConsumerId) -> Vec<(ConsumerId, u64)> {
        let ids: Vec<u16> = self
            .outbound
            .iter()
            .filter(|(_, state)| queued(state).is_some_and(|(c, _)| c == consumer))
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .filter_map(|id| self.outbound.remove(id))
            .filter_map(|state| queued(&state))
            .collect()
    }

    /// Records an inbound QoS 2 PUBLISH; false if it is a retransmission already received,
    /// which must not be delivered again [MQTT-4.3.3-10].
    pub fn receive_exactly_once(&mut self, id: PacketId) -> bool {
        self.inbound_exactly_once.insert(id.get())
    }

    /// Inbound QoS 2 exchanges between PUBREC and PUBREL.
    pub fn inbound_in_flight(&self) -> usize {
        self.inbound_exactly_once.len()
    }

    /// Ends an inbound QoS 2 exchange (PUBREL); false if the id was unknown.
    pub fn release(&mut self, id: PacketId) -> bool {
        self.inbound_exactly_once.remove(&id.get())
    }
}

fn queued(state: &Outbound) -> Option<(ConsumerId, u64)> {
    match *state {
        Outbound::Sent {
            origin: Origin::Queue { consumer, tag },
            ..
        } => Some((consumer, tag)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(filter: &str, qos: QoS, no_local: bool) -> Subscription {
        Subscription {
            filter: filter.to_owned(),
            qos,
            no_local,
            retain_as_published: false,
            retain_handling: 0,
        }
    }

    #[test]
    fn delivery_qos_is_the_best_subscription_capped_by_the_publisher() {
        let mut session = Session::default();
        session.subscribe(&request("a/#", QoS::AtMostOnce, false), Some(1));
        session.subscribe(&request("a/b", QoS::AtLeastOnce, false), Some(2));
        let routing = session
            .route("a/b", QoS::ExactlyOnce, false)
            .expect("routed");
        assert_eq!(routing.qos, QoS::AtLeastOnce);
        assert_eq!(routing.identifiers, [1, 2]);
        assert_eq!(
            session.route("a/b", QoS::AtMostOnce, false).map(|r| r.qos),
            Some(QoS::AtMostOnce)
        );
        assert_eq!(session.route("b", QoS::AtLeastOnce, false), None);
    }

    #[test]
    fn no_local_drops_own_messages() {
        let mut session = Session::default();
        session.subscribe(&request("chat", QoS::AtLeastOnce, true), None);
        assert_eq!(session.route("chat", QoS::AtLeastOnce, true), None);
        assert!(session.route("chat", QoS::AtLeastOnce, false).is_some());
    }

    #[test]
    fn packet_ids_are_never_zero_and_never_reused_while_in_flight() {
        let mut session = Session::default();
        let origin = |tag| Origin::Queue {
            consumer: ConsumerId(1),
            tag,
        };
        let first = session
            .send_with_id(origin(10), QoS::AtLeastOnce)
            .expect("free");
        session.next_packet_id = u16::MAX;
        let wrapped = session
            .send_with_id(origin(11), QoS::AtLeastOnce)
            .expect("free");
        assert_eq!(wrapped.get(), 2, "skips 0, and 1 is still in flight");
        assert_eq!(first.get(), 1);
        assert_eq!(session.acknowledged(first), Some(origin(10)));
        assert_eq!(session.in_flight(), 1);
    }

    #[test]
    fn an_exactly_once_id_is_held_from_publish_to_pubcomp() {
        let mut session = Session::default();
        let origin = Origin::Queue {
            consumer: ConsumerId(1),
            tag: 5,
        };
        let id = session
            .send_with_id(origin, QoS::ExactlyOnce)
            .expect("free");
        assert_eq!(
            session.acknowledged(id),
            None,
            "a PUBACK does not end QoS 2"
        );
        assert!(!session.completed(id), "PUBCOMP before PUBREC");
        assert_eq!(session.received(id), Some(origin));
        assert_eq!(
            session.received(id),
            None,
            "a second PUBREC settles nothing"
        );
        assert!(
            session.take_in_flight_of(ConsumerId(1)).is_empty(),
            "the client owns it"
        );
        assert!(session.completed(id));
        assert_eq!(session.in_flight(), 0);
    }

    #[test]
    fn topic_aliases_are_defined_then_used() {
        let mut session = Session::default();
        assert_eq!(
            session.resolve_topic("a/b".into(), Some(3)),
            Ok("a/b".into())
        );
        assert_eq!(
            session.resolve_topic(String::new(), Some(3)),
            Ok("a/b".into())
        );
        assert_eq!(
            session.resolve_topic("c".into(), Some(3)),
            Ok("c".into()),
            "redefined"
        );
        assert_eq!(
            session.resolve_topic(String::new(), Some(3)),
            Ok("c".into())
        );
        assert!(
            session.resolve_topic(String::new(), Some(4)).is_err(),
            "undefined"
        );
        assert!(
            session
                .resolve_topic("x".into(), Some(TOPIC_ALIAS_MAXIMUM + 1))
                .is_err()
        );
        assert!(session.resolve_topic(String::new(), None).is_err());
    }

    #[test]
    fn exactly_once_ids_are_remembered_until_released() {
        let mut session = Session::default();
        let id = PacketId::new(7).expect("non-zero");
        assert!(session.receive_exactly_once(id));
        assert!(!session.receive_exactly_once(id), "a retransmission");
        assert!(session.release(id));
        assert!(!session.release(id));
    }
}
