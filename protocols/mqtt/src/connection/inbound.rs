//! Packets from the client: CONNECT and the session it opens, PUBLISH and its acknowledgements,
//! SUBSCRIBE and UNSUBSCRIBE, PINGREQ, DISCONNECT.

use std::sync::Arc;

use bytes::BytesMut;
use mqbridge_broker_api::{
    BindingSpec, BrokerError, ConsumerId, Destination, HeaderValue, Headers, Message, QueueHandle,
    QueueSpec, Settlement, User, VirtualHost,
};

use super::suspended::Suspended;
use super::{
    CONNECT_PACKET_MAX, Connection, End, IN_FLIGHT_DEFAULT, Opened, RECEIVE_MAXIMUM,
    SESSION_EXPIRY_NEVER, TAKEOVER_TIMEOUT,
};
use crate::codec::{
    self, Ack, AckProperties, ConnAck, ConnAckProperties, Connect, DecodeError, Disconnect, Packet,
    PacketId, ProtocolVersion, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, connack_v3,
    reason,
};
use crate::session::{Origin, Subscribed, TOPIC_ALIAS_MAXIMUM};
use crate::sys::Statistics;
use crate::topic;
use crate::translate::{self, Publisher, TOPIC_EXCHANGE};

/// Binding arguments that keep a subscription's MQTT options in the core.
const FILTER_ARGUMENT: &str = "x-mqtt-filter";
const QOS_ARGUMENT: &str = "x-mqtt-qos";
const NO_LOCAL_ARGUMENT: &str = "x-mqtt-no-local";
const RETAIN_AS_PUBLISHED_ARGUMENT: &str = "x-mqtt-retain-as-published";
const IDENTIFIER_ARGUMENT: &str = "x-mqtt-subscription-id";

impl Connection {
    /// Decodes and handles every complete packet in `input`.
    ///
    /// Every idle connection holds this future at its largest, so no packet is kept across an
    /// await: each is handled synchronously, and only what is left to do after it (publishing
    /// to queues, settling deliveries, the rare packets' boxed handlers) is awaited.
    pub(super) async fn on_input(&mut self, input: &mut BytesMut) {
        while self.closing.is_none() {
            let (max, announced) = match self.version {
                Some(_) => (self.shared.settings.max_packet_size, None),
                None => (CONNECT_PACKET_MAX, codec::peek_connect_version(input)),
            };
            if self.held_full() {
                // Blocked by a resource alarm, with as much held as we allow (`held`).
                return;
            }
            let buffered = input.len();
            let packet = match codec::decode(input, self.version, max) {
                Ok(Some(packet)) => packet,
                Ok(None) => return,
                Err(error) => return self.on_decode_error(&error, announced),
            };
            if let Some(packet) = self.hold(packet, buffered - input.len()) {
                self.handle(packet).await;
            }
        }
    }

    /// Handles one packet, read now or held during a resource alarm (`held`).
    pub(super) async fn handle(&mut self, packet: Packet) {
        match self.on_packet(packet) {
            Then::Done => {}
            Then::Forward(accepted) => self.forward(accepted).await,
            Then::Settle(delivery) => self.settle_acknowledged(delivery).await,
            Then::Rare(packet) => Box::pin(self.on_rare(*packet)).await,
        }
    }

    /// `announced`: the version a CONNECT being refused announced, if its octets had come.
    fn on_decode_error(&mut self, error: &DecodeError, announced: Option<ProtocolVersion>) {
        tracing::debug!(peer = %self.peer, %error, "bad mqtt packet");
        match (error, self.version) {
            // MQTT 5 3.2.2.2: 0x95 "Packet too large" refuses a CONNECT over the limit before
            // login, on its declared length; 3.x has no such return code and is only closed.
            (DecodeError::PacketTooLarge { .. }, None)
                if announced == Some(ProtocolVersion::V5) =>
            {
                let connack = Packet::ConnAck(ConnAck {
                    session_present: false,
                    code: reason::PACKET_TOO_LARGE,
                    properties: ConnAckProperties::default(),
                });
                if let Err(error) = codec::encode(&connack, ProtocolVersion::V5, &mut self.out) {
                    tracing::error!(%error, "cannot encode mqtt packet");
                }
                self.closing = Some(End::Abnormal);
            }
            // [MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01, then the close.
            (DecodeError::UnsupportedProtocolVersion { .. }, None) => {
                let connack = ConnAck {
                    session_present: false,
                    code: connack_v3::UNACCEPTABLE_PROTOCOL_VERSION,
                    properties: ConnAckProperties::default(),
                };
                self.send(&Packet::ConnAck(connack));
                self.closing = Some(End::Abnormal);
            }
            (_, None) => self.closing = Some(End::Abnormal),
            (error, Some(_)) => self.disconnect(error.reason_code(), &error.to_string()),
        }
    }

    fn on_packet(&mut self, packet: Packet) -> Then {
        match packet {
            Packet::Publish(publish) => return self.on_publish(publish),
            Packet::PubAck(ack) => return self.on_puback(ack.packet_id),
            Packet::PubRec(rec) => return self.on_pubrec(rec.packet_id, rec.reason),
            Packet::PubRel(rel) => {
                let known = self.session.release(rel.packet_id);
                // [MQTT-4.3.3-11] answer PUBREL with PUBCOMP, also for an id we no longer know.
                let code = if known || !self.v5() {
                    reason::SUCCESS
                } else {
                    reason::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.send(&Packet::PubComp(ack(rel.packet_id, code)));
            }
            Packet::PubComp(comp) => {
                self.session.completed(comp.packet_id);
            }
            Packet::PingReq => self.send(&Packet::PingResp),
            packet @ (Packet::Connect(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_)) => {
                return Then::Rare(Box::new(packet));
            }
            Packet::Disconnect(disconnect) => self.on_disconnect(&disconnect),
            // We offer no enhanced authentication.
            Packet::Auth(_) => self.disconnect(reason::PROTOCOL_ERROR, "unexpected AUTH"),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.disconnect(
                    reason::PROTOCOL_ERROR,
                    "a server-to-client packet from the client",
                );
            }
        }
        Then::Done
    }

    /// The packets whose handlers await the broker at length; run boxed by `on_input`.
    async fn on_rare(&mut self, packet: Packet) {
        match packet {
            Packet::Connect(connect) => self.on_connect(*connect).await,
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe).await,
            _ => {}
        }
    }

    fn on_disconnect(&mut self, disconnect: &Disconnect) {
        let expiry = disconnect.properties.session_expiry_interval;
        if self.clean && expiry.is_some_and(|secs| secs > 0) {
            // [MQTT-3.14.2-2] "If the Session Expiry Interval in the CONNECT packet was zero,
            // then it is a Protocol Error to set a non-zero Session Expiry Interval in the
            // DISCONNECT packet sent by the Client." Not a valid DISCONNECT: the will stays.
            return self.disconnect(
                reason::PROTOCOL_ERROR,
                "[MQTT-3.14.2-2] Session Expiry Interval set after 0",
            );
        }
        // 3.14.2.2.2: the DISCONNECT's Session Expiry Interval replaces the CONNECT's; 0 means
        // "the Session ends when the Network Connection is closed" (3.1.2.11.2).
        self.end_session = !self.clean && expiry == Some(0);
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; v5 reason 0x04 keeps it.
        let with_will = disconnect.reason == reason::DISCONNECT_WITH_WILL;
        self.closing = Some(if with_will {
            End::DisconnectedWithWill
        } else {
            End::Disconnected
        });
    }

    async fn on_connect(&mut self, connect: Connect) {
        if self.version.is_some() {
            return self.disconnect(reason::PROTOCOL_ERROR, "[MQTT-3.1.0-2] a second CONNECT");
        }
        self.version = Some(connect.version);
        let user = match self.login(&connect) {
            Ok(user) => user,
            Err((v3, v5)) => return self.refuse(v3, v5),
        };
        let v5 = self.v5();
        let assigned = match connect.client_id.is_empty() {
            false => None,
            // [MQTT-3.1.3-8] an empty client id needs a clean session (3.1.1); 3.1 has none.
            true if connect.version == ProtocolVersion::V3_1 || (!v5 && !connect.clean_start) => {
                return self.refuse(
                    connack_v3::IDENTIFIER_REJECTED,
                    reason::CLIENT_IDENTIFIER_NOT_VALID,
                );
            }
            true => Some(format!(
                "mqbridge-{:016x}",
                ConsumerId::next().0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )),
        };
        self.client_id = Arc::from(assigned.as_deref().unwrap_or(&connect.client_id));
        self.username = Some(user.name.clone());
        let vhost = match self.broker.vhost(&self.shared.settings.vhost, &user) {
            Ok(vhost) => vhost,
            Err(_) => return self.refuse(connack_v3::NOT_AUTHORIZED, reason::NOT_AUTHORIZED),
        };
        let Some(keep_alive) = self.grant_keep_alive(connect.keep_alive) else {
            // A 3.x client cannot be told another keep alive (Mosquitto refuses it too).
            return self.refuse(connack_v3::IDENTIFIER_REJECTED, reason::UNSPECIFIED_ERROR);
        };
        self.take_over().await;
        let (present, suspended) = match self.open_session(vhost, &connect).await {
            Ok(opened) => opened,
            Err(error) => {
                return self.refuse(connack_v3::SERVER_UNAVAILABLE, session_refused(&error));
            }
        };
        self.keep_alive =
            (keep_alive > 0).then(|| std::time::Duration::from_secs(keep_alive.into()));
        self.client_packet_max = connect.properties.maximum_packet_size;
        let aliases = connect.properties.topic_alias_maximum.unwrap_or(0);
        self.session.set_client_alias_maximum(aliases);
        self.will = connect.will.map(Box::new);
        let properties = match v5 {
            true => ConnAckProperties {
                server_keep_alive: (keep_alive != connect.keep_alive).then_some(keep_alive),
                ..self.connack_properties(assigned)
            },
            false => ConnAckProperties::default(),
        };
        self.send(&Packet::ConnAck(ConnAck {
            session_present: present,
            code: reason::SUCCESS,
            properties,
        }));
        Statistics::count(&self.shared.statistics.clients_connected, 1);
        if let Some(report) = &self.report {
            report.set_client_id(Arc::clone(&self.client_id));
        }
        if let Some(suspended) = suspended {
            self.resume(suspended).await;
        }
        tracing::debug!(peer = %self.peer, client_id = %self.client_id, "mqtt session open");
    }

    /// The keep alive the connection runs with: the client's, unless it exceeds the configured
    /// maximum (or is 0, "none", while a maximum is configured). A v5 client is then told the
    /// maximum as Server Keep Alive [MQTT-3.2.2-21]; a 3.x client is refused (`None`).
    fn grant_keep_alive(&self, requested: u16) -> Option<u16> {
        let max = self.shared.settings.max_keep_alive;
        let configured = max < u16::MAX;
        if requested <= max && !(requested == 0 && configured) {
            return Some(requested);
        }
        self.v5().then_some(max)
    }

    /// The user a CONNECT logs in as, or the CONNACK codes (v3, v5) that refuse it.
    fn login(&self, connect: &Connect) -> Result<User, (u8, u8)> {
        let bad = (
            connack_v3::BAD_USERNAME_OR_PASSWORD,
            reason::BAD_USER_NAME_OR_PASSWORD,
        );
        if connect.username.is_none()
            && let Ok(user) = self.broker.authenticate("", "", self.peer.ip())
        {
            // No username: the identity the transport proved (a TLS client certificate's CN,
            // see src/tls.rs) logs in; without one this is refused and anonymous rules apply.
            return Ok(user);
        }
        let (name, password) = match (&connect.username, &self.shared.settings.anonymous) {
            (Some(name), _) => {
                let password = connect.password.as_deref().unwrap_or_default();
                (
                    name.clone(),
                    String::from_utf8(password.to_vec()).map_err(|_| bad)?,
                )
            }
            (None, Some((name, password))) if self.peer.ip().is_loopback() => {
                (name.clone(), password.clone())
            }
            (None, _) => return Err((connack_v3::NOT_AUTHORIZED, reason::NOT_AUTHORIZED)),
        };
        self.broker
            .authenticate(&name, &password, self.peer.ip())
            .map_err(|error| {
                tracing::warn!(peer = %self.peer, user = %name, %error, "mqtt login refused");
                bad
            })
    }

    fn refuse(&mut self, v3: u8, v5: u8) {
        let code = if self.v5() { v5 } else { v3 };
        let connack = ConnAck {
            session_present: false,
            code,
            properties: ConnAckProperties::default(),
        };
        self.send(&Packet::ConnAck(connack));
        self.closing = Some(End::Abnormal);
    }

    fn connack_properties(&self, assigned: Option<String>) -> ConnAckProperties {
        ConnAckProperties {
            receive_maximum: Some(RECEIVE_MAXIMUM),
            // No Maximum QoS: we take QoS 2 PUBLISHes (absent means 2, [MQTT-3.2.2-9]).
            retain_available: Some(1),
            maximum_packet_size: Some(self.shared.settings.max_packet_size),
            assigned_client_identifier: assigned,
            topic_alias_maximum: Some(TOPIC_ALIAS_MAXIMUM),
            wildcard_subscription_available: Some(1),
            subscription_identifiers_available: Some(1),
            shared_subscription_available: Some(1),
            ..ConnAckProperties::default()
        }
    }

    /// [MQTT-3.1.4-3] a CONNECT with a client id that is connected ends the older connection
    /// first; we wait (bounded) until it has released the session.
    async fn take_over(&mut self) {
        let (woken, released) = self.shared.hold_session(&self.client_id, self.id);
        self.takeover = Some(woken);
        if let Some(released) = released {
            let _ = tokio::time::timeout(TAKEOVER_TIMEOUT, released).await;
        }
    }

    /// Declares (or finds) the session queue and consumes from it; returns whether a previous
    /// session was present, and what it left unfinished.
    async fn open_session(
        &mut self,
        vhost: Arc<dyn VirtualHost>,
        connect: &Connect,
    ) -> Result<(bool, Option<Suspended>), BrokerError> {
        let name = format!("mqtt-session-{}", self.client_id);
        let expiry = connect.properties.session_expiry_interval.unwrap_or(0);
        self.session_expiry = if self.v5() { expiry } else { 0 };
        let keep = if self.v5() {
            expiry > 0
        } else {
            !connect.clean_start
        };
        self.clean = !keep;
        if connect.clean_start {
            // [MQTT-3.1.2-4] a clean start discards any existing session.
            let _ = vhost.delete_queue(&name, false, false, self.id).await;
        }
        let suspended = self.take_suspended(connect.clean_start).await;
        let queue_present = !connect.clean_start
            && vhost
                .declare_queue(session_queue(&name, true, 0), true, self.id)
                .is_ok();
        let in_flight = connect
            .properties
            .receive_maximum
            .unwrap_or(IN_FLIGHT_DEFAULT);
        let mut opened = Opened::new(vhost, self.session_spec(), u32::from(in_flight));
        if queue_present {
            // A persistent session is back: its queue holds what arrived meanwhile.
            opened.consume_session(self.id, &self.client_id).await?;
            for binding in opened.vhost.bindings_to(&Destination::Queue(name.clone())) {
                if let Some(subscribed) = subscribed_from(&binding.arguments) {
                    self.session.restore(subscribed);
                }
            }
        }
        self.opened = Some(Box::new(opened));
        Ok((queue_present || suspended.is_some(), suspended))
    }

    /// How the session queue is declared, by what CONNECT settled: kept, and for how long
    /// without a connection, or exclusive to this one.
    pub(super) fn session_spec(&self) -> QueueSpec {
        let name = format!("mqtt-session-{}", self.client_id);
        let expiry = match self.v5() {
            true => self.session_expiry,
            false => SESSION_EXPIRY_NEVER,
        };
        session_queue(&name, !self.clean, expiry)
    }

    /// Checks an inbound PUBLISH, retains it if asked, and finds its queues; what is left is
    /// to hand it to them and acknowledge ([`Connection::forward`]).
    fn on_publish(&mut self, mut publish: Publish) -> Then {
        Statistics::count(&self.shared.statistics.publish_received, 1);
        let Some(opened) = self.opened.as_ref() else {
            return Then::Done;
        };
        if !publish.properties.subscription_identifiers.is_empty() {
            self.disconnect(
                reason::PROTOCOL_ERROR,
                "[MQTT-3.3.4-6] a Subscription Identifier in a client's PUBLISH",
            );
            return Then::Done;
        }
        let alias = publish.properties.topic_alias.take();
        let topic = std::mem::take(&mut publish.topic);
        match self.session.resolve_topic(topic, alias) {
            Ok(topic) => publish.topic = topic,
            Err((code, why)) => {
                self.disconnect(code, why);
                return Then::Done;
            }
        }
        let mut accepted = Accepted {
            qos: publish.qos,
            packet_id: publish.packet_id,
            message: None,
            routes: Vec::new(),
            retain: None,
            refused: None,
        };
        let duplicate = publish.qos == QoS::ExactlyOnce
            && publish
                .packet_id
                .is_some_and(|id| !self.session.receive_exactly_once(id));
        // [MQTT-3.3.4-9] more unacknowledged QoS 2 publishes than our Receive Maximum. QoS 1
        // publishes are acknowledged at once, so only QoS 2 ones can pile up.
        if self.session.inbound_in_flight() > usize::from(RECEIVE_MAXIMUM) {
            self.disconnect(reason::RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded");
            return Then::Done;
        }
        if !duplicate {
            let publisher = Publisher {
                client_id: &self.client_id,
                username: self.username.as_deref(),
            };
            let message = Arc::new(translate::message_in(&publish, publisher));
            // Other errors (a `$exchange/x/rk` that does not exist) leave the message unrouted.
            if let Err(BrokerError::AccessRefused(why)) = opened.vhost.route(
                &message.exchange,
                &message.routing_key,
                &message.properties.headers,
                &mut accepted.routes,
            ) {
                return self.refuse_publish(accepted, &why);
            }
            // `$queue/q` and `$exchange/x/rk` name a destination, not a topic: nothing to
            // retain.
            if publish.retain && !topic::is_address(&publish.topic) {
                self.shared.retain(&publish.topic, &message);
                accepted.retain = Some(publish.topic.clone());
            }
            accepted.message = Some(message);
            if let Some(report) = &self.report {
                report.published();
            }
        }
        Then::Forward(accepted)
    }

    /// A PUBLISH the user may not make. A v5 client is told so in its PUBACK or PUBREC
    /// (0x87), which ends a QoS 2 exchange; a QoS 0 one is dropped. A v3 client cannot be
    /// told, and acknowledging would claim the message was taken, so the connection closes
    /// [MQTT-3.3.5-2].
    fn refuse_publish(&mut self, mut accepted: Accepted, why: &str) -> Then {
        tracing::warn!(peer = %self.peer, client_id = %self.client_id, why, "mqtt publish refused");
        if !self.v5() {
            self.disconnect(reason::NOT_AUTHORIZED, why);
            return Then::Done;
        }
        match accepted.packet_id {
            Some(id) if accepted.qos != QoS::AtMostOnce => {
                if accepted.qos == QoS::ExactlyOnce {
                    self.session.release(id);
                }
                accepted.routes.clear();
                accepted.refused = Some(reason::NOT_AUTHORIZED);
                Then::Forward(accepted)
            }
            _ => Then::Done,
        }
    }

    /// Hands an accepted PUBLISH to its queues. A QoS 1 or 2 one is acknowledged once they
    /// all have it (see `acks.rs`); one that reached no queue, or was a retransmission, at
    /// once, but still after those before it.
    async fn forward(&mut self, accepted: Accepted) {
        let owed = accepted
            .packet_id
            .filter(|_| accepted.qos != QoS::AtMostOnce);
        // The retained copy is stored like one more queue.
        let queues = accepted.routes.len() + usize::from(accepted.retain.is_some());
        let ticket = match (owed, &accepted.message) {
            (Some(id), Some(_)) if queues > 0 => self.acks.expect(accepted.qos, id, queues),
            _ => None,
        };
        if let Some(id) = owed.filter(|_| ticket.is_none()) {
            let routed = accepted.message.is_none() || queues > 0;
            let code = if let Some(code) = accepted.refused {
                code
            } else if routed || !self.v5() {
                reason::SUCCESS
            } else {
                reason::NO_MATCHING_SUBSCRIBERS
            };
            self.acks.known(accepted.qos, id, code);
        }
        if let Some(message) = accepted.message {
            if let (Some(topic), Some(opened)) = (&accepted.retain, &self.opened) {
                let kept = (!message.body.is_empty()).then(|| Arc::clone(&message));
                opened.vhost.set_retained(topic, kept, ticket.clone());
            }
            for queue in accepted.routes {
                queue.publish(Arc::clone(&message), ticket.clone()).await;
            }
        }
        self.send_acks();
    }

    fn on_puback(&mut self, id: PacketId) -> Then {
        match self.session.acknowledged(id) {
            Some(Origin::Queue { consumer, tag }) => Then::Settle((consumer, tag)),
            _ => Then::Done,
        }
    }

    /// Acknowledges a delivery the client has taken.
    async fn settle_acknowledged(&self, delivery: (ConsumerId, u64)) {
        if let Some(opened) = self.opened.as_ref() {
            opened.settle(vec![delivery], Settlement::Ack).await;
            if let Some(report) = &self.report {
                report.acknowledged(1);
            }
        }
    }

    /// PUBREC for an outbound QoS 2 message: settle its delivery and release the id with
    /// PUBREL [MQTT-4.3.3-4]; a v5 error reason ends the exchange without PUBREL.
    fn on_pubrec(&mut self, id: PacketId, code: u8) -> Then {
        let refused = code >= reason::UNSPECIFIED_ERROR;
        let origin = match refused {
            true => self.session.refused(id),
            false => self.session.received(id),
        };
        if !refused {
            // A PUBREC for an id we do not know still gets its PUBREL, marked in v5.
            let known = origin.is_some() || !self.v5();
            let code = if known {
                reason::SUCCESS
            } else {
                reason::PACKET_IDENTIFIER_NOT_FOUND
            };
            self.send(&Packet::PubRel(ack(id, code)));
        }
        match origin {
            Some(Origin::Queue { consumer, tag }) => Then::Settle((consumer, tag)),
            _ => Then::Done,
        }
    }

    async fn on_subscribe(&mut self, subscribe: Subscribe) {
        let client_id = self.client_id.clone();
        let Some(opened) = self.opened.as_mut() else {
            return;
        };
        let needs_queue = subscribe
            .filters
            .iter()
            .any(|r| topic::split_shared(&r.filter).is_none());
        if needs_queue && let Err(error) = opened.consume_session(self.id, &client_id).await {
            let reasons = vec![self.subscribe_failure(&error); subscribe.filters.len()];
            let properties = AckProperties::default();
            return self.send(&Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                reasons,
                properties,
            }));
        }
        let vhost = Arc::clone(&opened.vhost);
        let queue_name = opened.queue_name().to_owned();
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        for request in &subscribe.filters {
            if topic::split_shared(&request.filter).is_some() {
                let identifier = subscribe.subscription_identifier;
                reasons.push(self.subscribe_shared(request, identifier).await);
                continue;
            }
            if let Some(old) = self.session.get(&request.filter).cloned() {
                let _ = vhost.unbind(binding(&queue_name, &old), self.id);
            }
            let identifier = subscribe.subscription_identifier;
            let is_new = self.session.subscribe(request, identifier);
            let Some(subscribed) = self.session.get(&request.filter).cloned() else {
                continue;
            };
            match vhost.bind(binding(&queue_name, &subscribed), self.id) {
                Ok(()) => reasons.push(subscribed.qos as u8),
                Err(error) => {
                    self.session.unsubscribe(&request.filter);
                    reasons.push(self.subscribe_failure(&error));
                    continue;
                }
            }
            // [MQTT-3.3.1-9..11] Retain Handling 0 sends retained messages on every subscribe,
            // 1 only on a new subscription, 2 never.
            if request.retain_handling == 0 || (request.retain_handling == 1 && is_new) {
                retained.push(subscribed);
            }
        }
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            reasons,
            properties: AckProperties::default(),
        };
        self.send(&Packet::SubAck(suback));
        for subscribed in retained {
            self.send_retained(&subscribed);
        }
    }

    /// The SUBACK code of a subscription the broker refused: 0x87 when the user may not
    /// read the topic, 0x97 past a broker limit (queues, bindings, consumers). (A 3.x SUBACK
    /// has only 0x80, which the encoder writes for any failure.)
    pub(super) fn subscribe_failure(&self, error: &BrokerError) -> u8 {
        tracing::warn!(peer = %self.peer, client_id = %self.client_id, %error, "mqtt subscribe refused");
        match error {
            BrokerError::AccessRefused(_) => reason::NOT_AUTHORIZED,
            BrokerError::ResourceLimit(_) => reason::QUOTA_EXCEEDED,
            _ => reason::UNSPECIFIED_ERROR,
        }
    }

    async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let Some(opened) = self.opened.as_ref() else {
            return;
        };
        let vhost = Arc::clone(&opened.vhost);
        let queue_name = opened.queue_name().to_owned();
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            if topic::split_shared(filter).is_some() {
                reasons.push(self.unsubscribe_shared(filter).await);
                continue;
            }
            match self.session.get(filter).cloned() {
                Some(old) => {
                    let _ = vhost.unbind(binding(&queue_name, &old), self.id);
                    self.session.unsubscribe(filter);
                    reasons.push(reason::SUCCESS);
                }
                None => reasons.push(reason::NO_SUBSCRIPTION_EXISTED),
            }
        }
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            reasons,
            properties: AckProperties::default(),
        };
        self.send(&Packet::UnsubAck(unsuback));
    }
}

/// The v5 CONNACK code of a session the broker could not open: a broker limit
/// (`max_queues`, `max_consumers_per_queue`) is a quota. 3.x has no such code, and
/// Server unavailable (0x03) is the nearest.
fn session_refused(error: &BrokerError) -> u8 {
    match error {
        BrokerError::ResourceLimit(_) => reason::QUOTA_EXCEEDED,
        _ => reason::UNSPECIFIED_ERROR,
    }
}

/// What is left to do after a packet was handled synchronously.
enum Then {
    Done,
    Forward(Accepted),
    /// A delivery to acknowledge in its queue.
    Settle((ConsumerId, u64)),
    /// CONNECT, SUBSCRIBE or UNSUBSCRIBE: handled in a boxed future, so that their state is
    /// not part of every connection's (nor is the packet, which would make this enum as large).
    Rare(Box<Packet>),
}

/// An inbound PUBLISH ready for its queues.
struct Accepted {
    qos: QoS,
    packet_id: Option<PacketId>,
    /// None for a QoS 2 retransmission already delivered [MQTT-4.3.3-10].
    message: Option<Arc<Message>>,
    routes: Vec<Arc<dyn QueueHandle>>,
    /// The topic whose retained message this PUBLISH sets (or, empty, clears).
    retain: Option<String>,
    /// The failure reason code its acknowledgement carries, if it was refused.
    refused: Option<u8>,
}

pub(super) fn ack(packet_id: PacketId, code: u8) -> Ack {
    Ack {
        packet_id,
        reason: code,
        properties: AckProperties::default(),
    }
}

fn session_queue(name: &str, keep: bool, expiry_secs: u32) -> QueueSpec {
    let mut arguments = Headers::new();
    if keep && expiry_secs > 0 && expiry_secs != SESSION_EXPIRY_NEVER {
        // A persistent v5 session ends after Session Expiry Interval without a connection.
        arguments.insert("x-expires", HeaderValue::I64(i64::from(expiry_secs) * 1000));
    }
    QueueSpec {
        name: name.to_owned(),
        durable: keep,
        exclusive: !keep,
        auto_delete: false,
        arguments,
    }
}

/// The binding that implements a subscription; its arguments carry the MQTT options.
fn binding(queue_name: &str, subscribed: &Subscribed) -> BindingSpec {
    let mut arguments = Headers::new();
    arguments.insert(
        FILTER_ARGUMENT,
        HeaderValue::String(subscribed.filter.clone()),
    );
    arguments.insert(QOS_ARGUMENT, HeaderValue::U8(subscribed.qos as u8));
    arguments.insert(NO_LOCAL_ARGUMENT, HeaderValue::Bool(subscribed.no_local));
    arguments.insert(
        RETAIN_AS_PUBLISHED_ARGUMENT,
        HeaderValue::Bool(subscribed.retain_as_published),
    );
    if let Some(id) = subscribed.identifier {
        arguments.insert(IDENTIFIER_ARGUMENT, HeaderValue::U32(id));
    }
    BindingSpec {
        source: TOPIC_EXCHANGE.to_owned(),
        destination: Destination::Queue(queue_name.to_owned()),
        routing_key: topic::filter_to_binding_key(&subscribed.filter),
        arguments,
    }
}

/// A subscription read back from its binding's arguments (persistent sessions).
fn subscribed_from(arguments: &Headers) -> Option<Subscribed> {
    let flag = |name: &str| matches!(arguments.get(name), Some(HeaderValue::Bool(true)));
    let qos = arguments
        .get(QOS_ARGUMENT)
        .and_then(HeaderValue::as_i64)
        .and_then(|q| u8::try_from(q).ok());
    Some(Subscribed {
        filter: arguments
            .get(FILTER_ARGUMENT)
            .and_then(HeaderValue::as_str)?
            .to_owned(),
        qos: QoS::from_u8(qos?)?,
        no_local: flag(NO_LOCAL_ARGUMENT),
        retain_as_published: flag(RETAIN_AS_PUBLISHED_ARGUMENT),
        identifier: arguments
            .get(IDENTIFIER_ARGUMENT)
            .and_then(HeaderValue::as_i64)
            .and_then(|i| u32::try_from(i).ok()),
    })
}
