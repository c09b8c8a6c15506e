//! Frames to the client that the client did not ask for just now: MESSAGE for each delivery,
//! RECEIPT once a SEND's queues have the message, and the ERROR for a refused message or a
//! subscription whose queue went away; and the end of subscriptions, which returns what the
//! client did not acknowledge.

use mqbridge_broker_api::{ConsumerEvent, Delivery, Settlement};

use super::{Connection, Subscription, Violation};
use crate::codec::{self, Version};
use crate::session::{AckMode, Pending, message_id};
use crate::translate::{self, Delivered};

impl Connection {
    /// Handles a batch of events from the queues this connection consumes.
    pub(super) fn on_events(&mut self, events: &mut Vec<ConsumerEvent>) {
        for event in events.drain(..) {
            self.on_event(event);
        }
    }

    fn on_event(&mut self, event: ConsumerEvent) {
        match event {
            ConsumerEvent::Deliver(delivery) => self.deliver(delivery),
            ConsumerEvent::Cancelled(consumer) => {
                let Some(opened) = self.opened.as_ref() else {
                    return;
                };
                // A consumer we cancelled ourselves is no longer listed.
                if let Some(id) = opened.by_consumer.get(&consumer) {
                    let detail = format!("the queue of subscription '{id}' was deleted");
                    self.fail(Violation::new("subscription cancelled", detail), None);
                }
            }
        }
    }

    /// Ends subscriptions already removed from the connection's maps: cancels their consumers
    /// and returns to their queues every delivery the client has not acknowledged, as if it had
    /// NACKed them with `requeue:true`. That includes deliveries still in the sink: once
    /// `cancel` has returned the queue sends that consumer nothing more, so the sink holds all
    /// of them, and the queue would otherwise keep them for a consumer that is gone. Other
    /// events taken from the sink meanwhile are handled as usual.
    pub(super) async fn end_subscriptions(&mut self, ended: Vec<Subscription>) {
        for subscription in &ended {
            subscription.queue.cancel(subscription.consumer).await;
        }
        let mut late = Vec::new();
        while let Some(event) = self.opened.as_mut().and_then(|o| o.events.try_recv().ok()) {
            match event {
                ConsumerEvent::Deliver(d) if ended.iter().any(|s| s.consumer == d.consumer) => {
                    late.push((d.consumer, d.tag));
                }
                other => self.on_event(other),
            }
        }
        for subscription in &ended {
            let consumer = subscription.consumer;
            let mut tags = self.unacked.take_consumer(consumer);
            if subscription.mode != AckMode::Auto {
                tags.extend(late.iter().filter(|(c, _)| *c == consumer).map(|(_, t)| *t));
            }
            if !tags.is_empty() {
                let queue = &subscription.queue;
                queue.settle(consumer, tags, Settlement::Requeue).await;
            }
        }
    }

    /// Writes one MESSAGE frame, and remembers the delivery if the subscription acknowledges.
    /// A delivery for a subscription that has ended is dropped here: its queue requeued it
    /// when the consumer was cancelled.
    fn deliver(&mut self, delivery: Delivery) {
        let Some(opened) = self.opened.as_ref() else {
            return;
        };
        let Some((id, subscription)) = opened
            .by_consumer
            .get(&delivery.consumer)
            .and_then(|id| opened.subscriptions.get_key_value(id))
        else {
            return;
        };
        let number = self.unacked.next_number();
        let mode = subscription.mode;
        if mode != AckMode::Auto {
            let pending = Pending {
                consumer: delivery.consumer,
                tag: delivery.tag,
                mode,
            };
            self.unacked.record(number, pending);
        }
        let version = self.version.unwrap_or(Version::V1_0);
        let message_id = message_id(self.id.0, number);
        let delivered = Delivered {
            message_id: &message_id,
            subscription: id,
            ack_header: version == Version::V1_2 && mode != AckMode::Auto,
            redelivered: delivery.redelivered,
        };
        let frame = translate::message_out(&delivery.message, delivered);
        codec::encode(&frame, version, &mut self.out);
        if let Some(report) = &self.report {
            report.delivered();
        }
    }

    /// Publish confirms are in: the receipts waiting for them may go. A queue that refused the
    /// message (a full queue with `x-overflow: reject-publish`) fails the SEND.
    pub(super) fn on_confirms(&mut self) {
        let Some(opened) = self.opened.as_ref() else {
            return;
        };
        let mut done = Vec::new();
        opened.confirms.drain(&mut done);
        for (confirm, accepted) in done {
            let receipt = self.receipts.confirmed(confirm);
            if !accepted {
                let detail = "a queue refused the message (it is full and rejects publishes)";
                return self.fail(Violation::new("message rejected", detail), receipt);
            }
        }
        self.release_receipts();
    }
}
