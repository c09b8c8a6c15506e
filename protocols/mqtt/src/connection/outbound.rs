//! Messages to the client: deliveries from the session queue, retained messages on subscribe,
//! and the will published for a client that went away.

use std::sync::{Arc, PoisonError};

use mqbridge_broker_api::{ConsumerEvent, Delivery, HeaderValue, Message, Settlement};

use super::Connection;
use crate::codec::{self, Packet, ProtocolVersion, Publish, QoS, Will, reason};
use crate::session::Subscribed;
use crate::topic;
use crate::topic::filter_matches;
use crate::translate::{self, CLIENT_ID_HEADER, Publisher, TOPIC_EXCHANGE};

/// The queue tag recorded for a QoS 1 message that did not come from the session queue (a
/// retained message): its PUBACK settles nothing.
pub const NOT_QUEUED: u64 = u64::MAX;

impl Connection {
    /// Handles a batch of events from the session queue. QoS 0 deliveries, and deliveries no
    /// subscription wants any more, are settled at once, in one call per batch.
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
            opened
                .queue
                .settle(opened.consumer, settled, Settlement::Ack)
                .await;
        }
    }

    fn deliver(&mut self, delivery: Delivery, settled: &mut Vec<u64>) {
        let message = &delivery.message;
        let name = topic::routing_key_to_name(&message.routing_key);
        // A key published over AMQP may not map to a valid MQTT topic name (an empty key, a
        // word `+` or `#`): no MQTT client can be sent it [MQTT-4.7.3-1].
        if topic::validate_name(&name).is_err() {
            settled.push(delivery.tag);
            return;
        }
        let from_self = message
            .properties
            .headers
            .get(CLIENT_ID_HEADER)
            .and_then(HeaderValue::as_str)
            == Some(self.client_id.as_str());
        let Some(routing) = self
            .session
            .route(&name, translate::published_qos(message), from_self)
        else {
            settled.push(delivery.tag);
            return;
        };
        let packet_id = match routing.qos {
            QoS::AtMostOnce => None,
            _ => self.session.send_at_least_once(delivery.tag),
        };
        if packet_id.is_none() {
            settled.push(delivery.tag);
        }
        let qos = if packet_id.is_some() {
            routing.qos
        } else {
            QoS::AtMostOnce
        };
        // [MQTT-3.3.1-1] DUP marks a QoS 1 message that may have been sent before.
        let dup = packet_id.is_some() && delivery.redelivered;
        let mut publish = translate::publish_out(message, qos, packet_id, dup, self.v5());
        // [MQTT-3.3.1-12, 3.3.1-13] RETAIN is 0 on a live delivery unless the subscription
        // asked for Retain As Published.
        publish.retain = routing.retain_as_published && translate::published_retain(message);
        publish.properties.subscription_identifiers = routing.identifiers;
        self.send_publish(publish, Some(delivery.tag), settled);
    }

    /// Writes a PUBLISH unless it exceeds the client's Maximum Packet Size, in which case it is
    /// dropped as if delivered [MQTT-3.1.2-25].
    fn send_publish(&mut self, publish: Publish, tag: Option<u64>, settled: &mut Vec<u64>) {
        let packet = Packet::Publish(publish);
        let version = self.version.unwrap_or(ProtocolVersion::V3_1_1);
        let too_large = self
            .client_packet_max
            .is_some_and(|max| codec::encoded_len(&packet, version) > max as usize);
        if too_large {
            if let Packet::Publish(Publish {
                packet_id: Some(id),
                ..
            }) = &packet
            {
                self.session.acknowledged(*id);
            }
            settled.extend(tag.filter(|t| *t != NOT_QUEUED && !settled.contains(t)));
            return;
        }
        self.send(&packet);
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
                _ => self.session.send_at_least_once(NOT_QUEUED),
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
        if publish.retain {
            self.retain(&publish.topic, &message);
        }
        let mut routes = Vec::new();
        let headers = &message.properties.headers;
        if opened
            .vhost
            .route(TOPIC_EXCHANGE, &message.routing_key, headers, &mut routes)
            .is_ok()
        {
            for queue in routes {
                queue.publish(Arc::clone(&message), None).await;
            }
        }
    }
}
