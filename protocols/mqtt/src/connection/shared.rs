//! Shared subscriptions, `$share/{group}/{filter}` (MQTT 5 §4.8.2, also accepted from 3.1.1
//! clients as Mosquitto and EMQX do): each group is one queue bound to `amq.topic` with the
//! filter, and every member connection is one consumer of it, so messages are spread over the
//! members instead of copied to each. A persistent session keeps its shared subscriptions while
//! it is away, so the queue lives as long as any member session, connected or not
//! ([`ShareMembers`](super::suspended::ShareMembers)), and goes with the last.
//!
//! Retained messages are not sent on a shared subscription, as the spec allows (4.8.2).

use std::sync::Arc;

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
        let (Some((_, inner)), Some(name)) = (
            topic::split_shared(&request.filter),
            queue_name(&request.filter),
        ) else {
            return reason::TOPIC_FILTER_INVALID;
        };
        self.shared.join_share(&name, &self.client_id);
        let spec = QueueSpec {
            name: name.clone(),
            // Not durable: the members that keep it alive are not stored yet either.
            durable: false,
            exclusive: false,
            auto_delete: false,
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
        let queue = match joined {
            Ok(queue) => queue,
            Err(error) => return self.subscribe_failure(&error),
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
        if let Err(error) = queue.consume(spec).await {
            return self.subscribe_failure(&error);
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
        let vhost = Arc::clone(&opened.vhost);
        if let Some(queue) = queue_name(filter) {
            self.shared
                .leave_share_queue(vhost.as_ref(), &queue, &self.client_id, self.id)
                .await;
        }
        reason::SUCCESS
    }
}

/// The queue of a shared subscription's group and filter.
pub(super) fn queue_name(shared_filter: &str) -> Option<String> {
    let (group, inner) = topic::split_shared(shared_filter)?;
    Some(format!("mqtt-shared/{group}/{inner}"))
}
