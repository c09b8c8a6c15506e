//! Messages to the client: deliveries from the session queue, retained messages on subscribe,
//! and the will published for a client that went away.

use std::sync::{Arc, PoisonError};

use mqbridge_broker_api::{
    ConsumerEvent, ConsumerId, Delivery, HeaderValue, Message, Settlement, VirtualHost,
};

use super::{Connection, MqttShared};
use crate::codec::{self, Packet, ProtocolVersion, Publish, QoS, Will, reason};
use crate::session::{Origin, Routing, Subscribed};
use crate::sys::Statistics;
use crate::topic;
use crate::topic::filter_matches;
use crate::translate::{self, CLIENT_ID_HEADER, Publisher};

/// Deliveries to settle at the end of a batch: (consumer, queue tag).
type Settled = Vec<(ConsumerId, u64)>;

impl Connection {
    /// Handles a batch of events from the queues this connection consumes. QoS 0 deliveries,
    /// and deliveries no subscription wants any more, are settled at once, in one call per
    /// consumer per batch.
    pub(super) async fn on_events(&mut self, events: &mut Vec<ConsumerEvent>) {
        let mut settled = Vec::new();
        for event in events.drain(..) {
            match event {
                ConsumerEvent::Deliver(delivery) => self.deliver(delivery, &mut settled),
                ConsumerEvent::Cancelled(_) => {
                    self.disconnect(
                        reason::ADMINISTRATIVE_ACTION,
                        "the session queue was deleted",
                    );
                }
            }
        }
        if let Some(opened) = self.opened.as_ref().filter(|_| !settled.is_empty()) {
            opened.settle(settled, Settlement::Ack).await;
        }
    }

    /// How a delivery goes out: by the session's subscriptions for its own queue, by the one
    /// shared subscription for a share's queue.
    fn routing(&self, delivery: &Delivery, name: &str) -> Option<Routing> {
        let message = &delivery.message;
        let published = translate::published_qos(message);
        let opened = self.opened.as_ref()?;
        if !opened.is_session_consumer(delivery.consumer) {
            let share = opened
                .shares
                .values()
                .find(|s| s.consumer == delivery.consumer)?;
            return Some(Routing {
                qos: share.qos.min(published),
                identifiers: share.identifier.into_iter().collect(),
                retain_as_published: false,
            });
        }
        let from_self = message
            .properties
            .headers
            .get(CLIENT_ID_HEADER)
            .and_then(HeaderValue::as_str)
            == Some(&*self.client_id);
        self.session.route(name, published, from_self)
    }

    fn deliver(&mut self, delivery: Delivery, settled: &mut Settled) {
        let source = (delivery.consumer, delivery.tag);
        let message = &delivery.message;
        let name = topic::delivered_name(&message.routing_key);
        // The empty key (or one too long) has no MQTT topic name: no MQTT client can be sent
        // it [MQTT-4.7.3-1]. Wildcard characters were encoded already.
        if topic::validate_name(&name).is_err() {
            settled.push(source);
            return;
        }
        let Some(routing) = self.routing(&delivery, &name) else {
            settled.push(source);
            return;
        };
        let origin = Origin::Queue {
            consumer: delivery.consumer,
            tag: delivery.tag,
        };
        let packet_id = match routing.qos {
            QoS::AtMostOnce => None,
            qos => self.session.send_with_id(origin, qos),
        };
        if packet_id.is_none() {
            settled.push(source);
        }
        let qos = if packet_id.is_some() {
            routing.qos
        } else {
            QoS::AtMostOnce
        };
        // [MQTT-3.3.1-1] DUP marks a QoS 1 or 2 message that may have been sent before.
        let dup = packet_id.is_some() && delivery.redelivered;
        let mut publish = translate::publish_out(message, qos, packet_id, dup, self.v5());
        // [MQTT-3.3.1-12, 3.3.1-13] RETAIN is 0 on a live delivery unless the subscription
        // asked for Retain As Published.
        publish.retain = routing.retain_as_published && translate::published_retain(message);
        publish.properties.subscription_identifiers = routing.identifiers;
        self.send_publish(publish, Some(source), settled);
    }

    /// Writes a PUBLISH unless it exceeds the client's Maximum Packet Size, in which case it is
    /// dropped as if delivered [MQTT-3.1.2-25].
    fn send_publish(
        &mut self,
        publish: Publish,
        source: Option<(ConsumerId, u64)>,
        settled: &mut Settled,
    ) {
        let packet = Packet::Publish(publish);
        let version = self.version.unwrap_or(ProtocolVersion::V3_1_1);
        let too_large = self
            .client_packet_max
            .is_some_and(|max| codec::encoded_len(&packet, version) > max as usize);
        let Packet::Publish(publish) = packet else {
            return;
        };
        if too_large {
            if let Some(id) = publish.packet_id {
                self.session.abandon(id);
            }
            settled.extend(source.filter(|s| !settled.contains(s)));
            return;
        }
        Statistics::count(&self.shared.statistics.publish_sent, 1);
        if let Some(report) = &self.report {
            report.delivered();
        }
        let mut packet = Packet::Publish(publish);
        let named = match &mut packet {
            Packet::Publish(publish) => self.apply_alias(publish),
            _ => None,
        };
        self.send(&packet);
        let Packet::Publish(mut publish) = packet else {
            return;
        };
        if let Some(id) = publish.packet_id {
            // What is held is sent again on another connection, where the alias means nothing.
            publish.properties.topic_alias = None;
            if let Some(topic) = named {
                publish.topic = topic;
            }
            self.session.hold(id, publish);
        }
    }

    /// Sends a topic the client has an alias for as the alias alone (MQTT 5, 3.3.2.3.4);
    /// returns the topic name it took out of the packet.
    fn apply_alias(&mut self, publish: &mut Publish) -> Option<String> {
        let (alias, defines) = self.session.outbound_alias(&publish.topic)?;
        publish.properties.topic_alias = Some(alias);
        (!defines).then(|| std::mem::take(&mut publish.topic))
    }

    /// Sends the retained messages matching a new subscription, with the retain flag set.
    pub(super) fn send_retained(&mut self, subscribed: &Subscribed) {
        let matching: Vec<(String, Arc<Message>)> = {
            let retained = self
                .shared
                .retained
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            retained
                .iter()
                .filter(|(name, _)| filter_matches(&subscribed.filter, name))
                .map(|(name, message)| (name.clone(), Arc::clone(message)))
                .collect()
        };
        let mut ignored = Vec::new();
        for (_, message) in matching {
            let qos = subscribed.qos.min(translate::published_qos(&message));
            let packet_id = match qos {
                QoS::AtMostOnce => None,
                qos => self.session.send_with_id(Origin::Session, qos),
            };
            let qos = if packet_id.is_some() {
                qos
            } else {
                QoS::AtMostOnce
            };
            let mut publish = translate::publish_out(&message, qos, packet_id, false, self.v5());
            publish.retain = true;
            publish.properties.subscription_identifiers =
                subscribed.identifier.into_iter().collect();
            self.send_publish(publish, None, &mut ignored);
        }
    }

    /// Publishes the will of a client that ended without a normal DISCONNECT [MQTT-3.1.2-8].
    pub(super) async fn publish_will(&mut self, will: Will) {
        let Some(opened) = self.opened.as_ref() else {
            return;
        };
        // [MQTT-3.1.3-9] Will Delay Interval: wait, but not past the end of the session, and
        // not at all if the client reconnects meanwhile.
        let delay = will.delay_interval.unwrap_or(0).min(self.session_expiry);
        let retain = will.retain && !topic::is_address(&will.topic);
        let topic = will.topic.clone();
        let publish = Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic,
            packet_id: None,
            payload: will.payload,
            properties: will.properties,
        };
        let publisher = Publisher {
            client_id: &self.client_id,
            username: self.username.as_deref(),
        };
        let message = Arc::new(translate::message_in(&publish, publisher));
        let vhost = Arc::clone(&opened.vhost);
        if delay == 0 {
            return deliver_will(&self.shared, vhost.as_ref(), &topic, retain, message).await;
        }
        let (shared, client_id) = (Arc::clone(&self.shared), self.client_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(delay.into())).await;
            if !shared.has_session(&client_id) {
                deliver_will(&shared, vhost.as_ref(), &topic, retain, message).await;
            }
        });
    }
}

/// Publishes a will message: to its retained slot if asked, and to every queue it routes to.
async fn deliver_will(
    shared: &MqttShared,
    vhost: &dyn VirtualHost,
    topic: &str,
    retain: bool,
    message: Arc<Message>,
) {
    if retain {
        shared.retain(topic, &message);
        let kept = (!message.body.is_empty()).then(|| Arc::clone(&message));
        vhost.set_retained(topic, kept, None);
    }
    let mut routes = Vec::new();
    let headers = &message.properties.headers;
    if vhost
        .route(
            &message.exchange,
            &message.routing_key,
            headers,
            &mut routes,
        )
        .is_ok()
    {
        for queue in routes {
            queue.publish(Arc::clone(&message), None).await;
        }
    }
}
