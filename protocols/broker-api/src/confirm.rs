//! Publisher confirms: how queues tell a connection that a message was accepted or refused,
//! without ever blocking the queue.
//!
//! A connection creates one [`ConfirmSink`] and hands a [`Confirm`] ticket with each publish.
//! A message routed to several queues is confirmed once every queue has answered, and refused if
//! any refused. Finished confirms wait in the sink until the connection drains them; their number
//! is bounded by the publisher's unconfirmed window, which the publisher controls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Finished confirms for one connection, filled by queues and drained by the connection task.
#[derive(Debug, Default)]
pub struct ConfirmSink {
    state: Mutex<ConfirmState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct ConfirmState {
    done: Vec<(u64, bool)>,
    /// Messages routed to more than one queue: answers still awaited, and whether all were yes.
    split: HashMap<u64, (u32, bool)>,
}

/// One publish's ticket. `id` is the adapter's own (e.g. channel and sequence number).
#[derive(Debug, Clone)]
pub struct Confirm {
    sink: Arc<ConfirmSink>,
    id: u64,
    split: bool,
}

impl ConfirmSink {
    pub fn new() -> Arc<Self> {
        Arc::new(ConfirmSink::default())
    }

    /// Tickets for a message routed to `queues` queues. With zero queues the message is
    /// confirmed at once (AMQP: an unroutable message is confirmed, after any basic.return).
    pub fn tickets(self: &Arc<Self>, id: u64, queues: usize) -> Option<Confirm> {
        if queues == 0 {
            self.complete(id, true);
            return None;
        }
        let split = queues > 1;
        if split {
            let count = u32::try_from(queues).unwrap_or(u32::MAX);
            self.lock().split.insert(id, (count, true));
        }
        Some(Confirm {
            sink: Arc::clone(self),
            id,
            split,
        })
    }

    fn complete(&self, id: u64, accepted: bool) {
        self.lock().done.push((id, accepted));
        self.notify.notify_one();
    }

    /// Moves finished confirms into `out`, oldest first.
    pub fn drain(&self, out: &mut Vec<(u64, bool)>) {
        out.append(&mut self.lock().done);
    }

    /// Resolves when a confirm has finished since the last drain (possibly already).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConfirmState> {
        // The state is a plain list; a panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Confirm {
    /// Called by a queue once it has accepted (`true`) or refused (`false`) the message.
    pub fn settle(self, accepted: bool) {
        if !self.split {
            return self.sink.complete(self.id, accepted);
        }
        let finished = {
            let mut state = self.sink.lock();
            let Some(entry) = state.split.get_mut(&self.id) else {
                return;
            };
            entry.0 -= 1;
            entry.1 &= accepted;
            let (remaining, all_accepted) = *entry;
            if remaining == 0 {
                state.split.remove(&self.id);
                state.done.push((self.id, all_accepted));
                true
            } else {
                false
            }
        };
        if finished {
            self.sink.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_publish_is_confirmed_once_all_queues_answer() {
        let sink = ConfirmSink::new();
        let a = sink.tickets(7, 2).expect("ticket");
        let b = a.clone();
        a.settle(true);
        let mut out = Vec::new();
        sink.drain(&mut out);
        assert!(out.is_empty());
        b.settle(false);
        sink.drain(&mut out);
        assert_eq!(out, [(7, false)]);
    }

    #[test]
    fn an_unroutable_publish_is_confirmed_at_once() {
        let sink = ConfirmSink::new();
        assert!(sink.tickets(1, 0).is_none());
        let mut out = Vec::new();
        sink.drain(&mut out);
        assert_eq!(out, [(1, true)]);
    }
}
