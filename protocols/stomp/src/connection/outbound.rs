//! Frames to the client that the client did not ask for just now: MESSAGE for each delivery,
//! RECEIPT once a SEND's queues have the message, and the ERROR for a refused message or a
//! subscription whose queue went away.

use mqbridge_broker_api::{ConsumerEvent, Delivery};

use super::{Connection, Violation};
use crate::codec::{self, Version};
use crate::session::{AckMode, Pending, message_id};
use crate::translate::{self, Delivered};

impl Connection {
    /// Handles a batch of events from the queues this connection consumes.
    pub(super) fn on_events(&mut self, events: &mut Vec<ConsumerEvent>) {
        for event in events.drain(..) {
            match event {
                ConsumerEvent::Deliver(delivery) => self.deliver(delivery),
                ConsumerEvent::Cancelled(consumer) => {
                    let Some(opened) = self.opened.as_ref() else {
                        continue;
                    };
                    // A consumer we cancelled ourselves is no longer listed.
                    if let Some(id) = opened.by_consumer.get(&consumer) {
                        let detail = format!("the queue of subscription '{id}' was deleted");
                        self.fail(Violation::new("subscription cancelled", detail), None);
                    }
                }
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
