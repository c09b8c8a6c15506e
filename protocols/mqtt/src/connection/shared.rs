//! Shared subscriptions, `$share/{group}/{filter}` (MQTT 5 §4.8.2, also accepted from 3.1.1
//! clients as Mosquitto and EMQX do): each group is one queue bound to `amq.topic` with the
//! filter, and every member connection is one consumer of it, so messages are spread over the
//! members instead of copied to each. The queue is auto-delete: it goes when its last member
//! leaves.
//!
//! Deviations: a shared subscription does not survive its member's reconnection (it is not part
//! of the persistent session), and retained messages are not sent on it, as the spec allows.

use mqbridge_broker_api::{
    BindingSpec, ConsumeSpec, ConsumerId, Destination, HeaderValue, Headers, QueueSpec, Settlement,
};

use super::{Connection, Share};
use crate::codec::{Subscription, reason};
use crate::session::GRANTED_QOS_MAX;
use crate::topic;
use crate::translate::TOPIC_EXCHANGE;

impl Connection {
    /// Joins (or, for a filter already joined, updates) a shared subscription; returns the
    /// SUBACK reason code.
    pub(super) async fn subscribe_shared(
        &mut self,
        request: &Subscription,
        identifier: Option<u32>,
    ) -> u8 {
        let qos = request.qos.min(GRANTED_QOS_MAX);
        let Some(opened) = self.opened.as_mut() else {
            return reason::UNSPECIFIED_ERROR;
        };
        if let Some(share) = opened.shares.get_mut(&request.filter) {
            share.qos = qos;
            share.identifier = identifier;
            return qos as u8;
        }
        let Some((group, inner)) = topic::split_shared(&request.filter) else {
            return reason::TOPIC_FILTER_INVALID;
        };
        let name = format!("mqtt-shared/{group}/{inner}");
        let spec = QueueSpec {
            name: name.clone(),
            durable: false,
            exclusive: false,
            auto_delete: true,
            arguments: Headers::new(),
        };
        let mut arguments = Headers::new();
        arguments.insert("x-mqtt-filter", HeaderValue::String(request.filter.clone()));
        let binding = BindingSpec {
            source: TOPIC_EXCHANGE.to_owned(),
            destination: Destination::Queue(name.clone()),
            routing_key: topic::filter_to_binding_key(inner),
            arguments,
        };
        let vhost = &opened.vhost;
        let joined = vhost
            .declare_queue(spec, false, self.id)
            .and_then(|_| vhost.bind(binding, self.id))
            .and_then(|()| vhost.queue(&name, self.id));
        let Ok(queue) = joined else {
            return reason::UNSPECIFIED_ERROR;
        };
        let consumer = ConsumerId::next();
        let spec = ConsumeSpec {
            consumer,
            connection: self.id,
            tag: format!("{}:{}", self.client_id, request.filter),
            no_ack: false,
            exclusive: false,
            prefetch: opened.prefetch,
            sink: opened.sink(),
        };
        if queue.consume(spec).await.is_err() {
            return reason::UNSPECIFIED_ERROR;
        }
        opened.shares.insert(
            request.filter.clone(),
            Share {
                queue,
                consumer,
                qos,
                identifier,
            },
        );
        qos as u8
    }

    /// Leaves a shared subscription: the consumer goes, and what it held unacknowledged goes
    /// back to the group's queue for another member. Returns the UNSUBACK reason code.
    pub(super) async fn unsubscribe_shared(&mut self, filter: &str) -> u8 {
        let Some(opened) = self.opened.as_mut() else {
            return reason::UNSPECIFIED_ERROR;
        };
        let Some(share) = opened.shares.remove(filter) else {
            return reason::NO_SUBSCRIPTION_EXISTED;
        };
        let held: Vec<u64> = self
            .session
            .take_in_flight_of(share.consumer)
            .into_iter()
            .map(|(_, tag)| tag)
            .collect();
        if !held.is_empty() {
            share
                .queue
                .settle(share.consumer, held, Settlement::Requeue)
                .await;
        }
        share.queue.cancel(share.consumer).await;
        reason::SUCCESS
    }
}
