//! One MQTT session's bookkeeping, free of I/O: the subscriptions (with the options the core's
//! bindings do not carry), packet identifiers in flight both ways, and which QoS a delivery
//! gets. The connection task owns it and does the broker calls.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU16;

use mqbridge_broker_api::ConsumerId;

use crate::codec::{PacketId, QoS, Subscription};
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
    /// A retained message sent on subscribe: nothing to settle.
    Retained,
}

/// An outbound packet id's state (MQTT 4.3.2 and 4.3.3, sender side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outbound {
    /// PUBLISH sent; QoS 1 awaits PUBACK, QoS 2 awaits PUBREC.
    Sent { origin: Origin, qos: QoS },
    /// QoS 2: PUBREC received and PUBREL sent; the id is free after PUBCOMP.
    Released,
}

#[derive(Debug, Default)]
pub struct Session {
    subscriptions: Vec<Subscribed>,
    /// Outbound QoS 1 and 2 messages by packet id, until PUBACK or PUBCOMP frees the id.
    outbound: HashMap<u16, Outbound>,
    next_packet_id: u16,
    /// Inbound QoS 2 packet ids between PUBREC and PUBREL.
    inbound_exactly_once: HashSet<u16>,
    /// The client's topic aliases: alias -> topic name. They live as long as the connection
    /// [MQTT-3.3.2-7].
    aliases: HashMap<u16, String>,
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
            return self.aliases.get(&alias).cloned().ok_or((
                reason::PROTOCOL_ERROR,
                "topic alias used before it was defined",
            ));
        }
        self.aliases.insert(alias, topic.clone());
        Ok(topic)
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
                slot.insert(Outbound::Sent { origin, qos });
                return Some(id);
            }
        }
        None
    }

    /// What a PUBACK settles, if the id was a QoS 1 message in flight.
    pub fn acknowledged(&mut self, id: PacketId) -> Option<Origin> {
        match self.outbound.get(&id.get()) {
            Some(&Outbound::Sent {
                origin,
                qos: QoS::AtLeastOnce,
            }) => {
                self.outbound.remove(&id.get());
                Some(origin)
            }
            _ => None,
        }
    }

    /// PUBREC for a QoS 2 message: the client owns the message now, so its origin is settled;
    /// the id stays in use until PUBCOMP [MQTT-4.3.3-4..6]. `None` if the id was not awaiting
    /// PUBREC.
    pub fn received(&mut self, id: PacketId) -> Option<Origin> {
        let entry = self.outbound.get_mut(&id.get())?;
        let Outbound::Sent {
            origin,
            qos: QoS::ExactlyOnce,
        } = *entry
        else {
            return None;
        };
        *entry = Outbound::Released;
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
        let released = self.outbound.get(&id.get()) == Some(&Outbound::Released);
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
            .filter_map(|(_, state)| queued(state))
            .collect()
    }

    /// The unacknowledged deliveries of one consumer (a shared subscription being left).
    pub fn take_in_flight_of(&mut self, consumer: ConsumerId) -> Vec<(ConsumerId, u64)> {
        let ids: Vec<u16> = self
            .outbound
            .iter()
            .filter(|(_, state)| queued(**state).is_some_and(|(c, _)| c == consumer))
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .filter_map(|id| self.outbound.remove(id))
            .filter_map(queued)
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

fn queued(state: Outbound) -> Option<(ConsumerId, u64)> {
    match state {
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
