//! The messages of a queue that wait for a consumer, in delivery order: highest priority first,
//! then oldest first. Without `x-max-priority` there is one level. With `x-message-groups`,
//! messages of a group another owner holds are passed over (see `groups.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use mqbridge_broker_api::{ConsumerId, Message};

use super::groups::Groups;

/// A message in a queue, with what this queue knows about it.
#[derive(Debug)]
pub struct Entry {
    pub message: Arc<Message>,
    /// Enqueue order, so that a requeued message goes back to its original place.
    pub seq: u64,
    pub expires_at: Option<Instant>,
    /// Deliveries so far.
    pub delivery_count: u32,
    /// `size_estimate` of the message, kept so accounting never recomputes it differently.
    pub size: usize,
    /// The store's id for a persistent message on a durable queue.
    pub stored: Option<u64>,
    /// The message's group, in a queue with message groups.
    pub group: Option<Arc<str>>,
}

#[derive(Debug)]
pub struct ReadyMessages {
    /// Index is the priority level.
    levels: Vec<VecDeque<Entry>>,
    /// Messages counted here, parked ones included.
    len: usize,
    bytes: u64,
    /// With message groups: who holds which group, and the messages parked for them.
    groups: Option<Groups>,
}

impl ReadyMessages {
    pub fn new(max_priority: Option<u8>, message_groups: bool) -> Self {
        let count = usize::from(max_priority.unwrap_or(0)) + 1;
        ReadyMessages {
            levels: (0..count).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
            groups: message_groups.then(Groups::default),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Body bytes of ready messages, for `x-max-length-bytes`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn level(&self, entry: &Entry) -> usize {
        let top = self.levels.len() - 1;
        usize::from(entry.message.properties.priority.unwrap_or(0)).min(top)
    }

    pub fn push_back(&mut self, entry: Entry) {
        let level = self.level(&entry);
        self.account_in(&entry);
        self.levels[level].push_back(entry);
    }

    /// Puts a message back where it was by enqueue order.
    pub fn requeue(&mut self, entry: Entry) {
        let level = self.level(&entry);
        self.account_in(&entry);
        let list = &mut self.levels[level];
        let at = list.partition_point(|e| e.seq < entry.seq);
        list.insert(at, entry);
    }

    /// The next message to deliver to `owner`.
    pub fn pop_for(&mut self, owner: ConsumerId) -> Option<Entry> {
        let Some(groups) = &mut self.groups else {
            let entry = self.levels.iter_mut().rev().find_map(VecDeque::pop_front)?;
            self.account_out(&entry);
            return Some(entry);
        };
        // The first message at a head that is in no group another owner holds; the others
        // met on the way are parked for their holders.
        let mut found = None;
        for level in self.levels.iter_mut().rev() {
            while let Some(entry) = level.pop_front() {
                match groups.holder(&entry) {
                    Some(holder) if holder != owner => groups.park(holder, entry),
                    _ => {
                        found = Some(entry);
                        break;
                    }
                }
            }
            if found.is_some() {
                break;
            }
        }
        // A message parked for `owner` is older than any of its groups' messages still here.
        let entry = match (found, groups.first_parked(owner)) {
            (Some(entry), Some(seq)) if seq < entry.seq => {
                let level = usize::from(entry.message.properties.priority.unwrap_or(0))
                    .min(self.levels.len() - 1);
                self.levels[level].push_front(entry);
                groups.pop_parked(owner)
            }
            (None, Some(_)) => groups.pop_parked(owner),
            (found, _) => found,
        }?;
        self.account_out(&entry);
        Some(entry)
    }

    /// `owner` took `entry` unsettled: with message groups, it now holds its group.
    pub fn hold(&mut self, entry: &Entry, owner: ConsumerId) {
        if let Some(groups) = &mut self.groups {
            groups.take(entry, owner);
        }
    }

    /// `owner` settled `entry`, which it held: a group it no longer holds gets its parked
    /// messages back among the ready ones.
    pub fn let_go(&mut self, entry: &Entry, owner: ConsumerId) {
        let Some(groups) = &mut self.groups else {
            return;
        };
        for freed in groups.settle(entry, owner) {
            // Still counted: parked messages never left `len` and `bytes`.
            let level = self.level(&freed);
            let list = &mut self.levels[level];
            let at = list.partition_point(|e| e.seq < freed.seq);
            list.insert(at, freed);
        }
    }

    pub fn push_front(&mut self, entry: Entry) {
        let level = self.level(&entry);
        self.account_in(&entry);
        self.levels[level].push_front(entry);
    }

    /// Removes the oldest message of the lowest priority (what drop-head drops).
    pub fn pop_oldest(&mut self) -> Option<Entry> {
        let entry = self.levels.iter_mut().find_map(VecDeque::pop_front)?;
        self.account_out(&entry);
        Some(entry)
    }

    /// Removes the heads of every level that expired before `now`.
    pub fn pop_expired(&mut self, now: Instant, out: &mut Vec<Entry>) {
        for level in 0..self.levels.len() {
            while self.levels[level]
                .front()
                .is_some_and(|e| e.expires_at.is_some_and(|t| t < now))
            {
                if let Some(entry) = self.levels[level].pop_front() {
                    self.account_out(&entry);
                    out.push(entry);
                }
            }
        }
    }

    /// The earliest expiry among the heads (only heads expire, as in RabbitMQ).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.levels
            .iter()
            .filter_map(|l| l.front().and_then(|e| e.expires_at))
            .min()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.len = 0;
        self.bytes = 0;
        let parked = self.groups.iter_mut().flat_map(Groups::drain_parked);
        self.levels
            .iter_mut()
            .flat_map(|l| l.drain(..))
            .chain(parked)
    }

    fn account_in(&mut self, entry: &Entry) {
        self.len += 1;
        self.bytes += entry.message.body.len() as u64;
    }

    fn account_out(&mut self, entry: &Entry) {
        self.len -= 1;
        self.bytes -= entry.message.body.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, priority: Option<u8>) -> Entry {
        let mut message = Message::default();
        message.properties.priority = priority;
        Entry {
            stored: None,
            message: Arc::new(message),
            seq,
            expires_at: None,
            delivery_count: 0,
            size: 0,
            group: None,
        }
    }

    fn grouped(seq: u64, group: &str) -> Entry {
        Entry {
            group: Some(Arc::from(group)),
            ..entry(seq, None)
        }
    }

    fn pop_all(ready: &mut ReadyMessages, owner: ConsumerId) -> Vec<u64> {
        std::iter::from_fn(|| ready.pop_for(owner))
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn higher_priority_first_then_fifo() {
        let mut ready = ReadyMessages::new(Some(5), false);
        ready.push_back(entry(1, None));
        ready.push_back(entry(2, Some(9)));
        ready.push_back(entry(3, Some(3)));
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop_for(ConsumerId(1)))
            .map(|e| e.seq)
            .collect();
        assert_eq!(order, [2, 3, 1]);
    }

    #[test]
    fn requeue_restores_original_position() {
        let mut ready = ReadyMessages::new(None, false);
        for seq in 1..=3 {
            ready.push_back(entry(seq, None));
        }
        let first = ready.pop_for(ConsumerId(1)).expect("one");
        let second = ready.pop_for(ConsumerId(1)).expect("two");
        ready.requeue(second);
        ready.requeue(first);
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop_for(ConsumerId(1)))
            .map(|e| e.seq)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(ready.len(), 0);
    }

    #[test]
    fn a_held_group_goes_only_to_its_holder_and_in_order() {
        let (a, b) = (ConsumerId(1), ConsumerId(2));
        let mut ready = ReadyMessages::new(None, true);
        for (seq, group) in [(1, "g"), (2, "g"), (3, "h"), (4, "g")] {
            ready.push_back(grouped(seq, group));
        }
        let first = ready.pop_for(a).expect("a takes g");
        assert_eq!(first.seq, 1);
        ready.hold(&first, a);
        // b passes over g (held by a) and gets h; g's messages are parked for a.
        let other = ready.pop_for(b).expect("b takes h");
        assert_eq!(other.seq, 3);
        ready.hold(&other, b);
        assert_eq!(ready.pop_for(b).map(|e| e.seq), None);
        assert_eq!(ready.len(), 2);
        // The holder gets the rest of its group from the parked list, in order.
        let second = ready.pop_for(a).expect("a continues g");
        assert_eq!(second.seq, 2);
        ready.hold(&second, a);
        // a requeues its first message and acks the second: g is free again, in order.
        ready.let_go(&second, a);
        ready.let_go(&first, a);
        ready.requeue(first);
        assert_eq!(pop_all(&mut ready, b), [1, 4]);
        assert_eq!(ready.len(), 0);
    }

    #[test]
    fn messages_without_a_group_go_to_anyone_and_purge_takes_parked_ones() {
        let (a, b) = (ConsumerId(1), ConsumerId(2));
        let mut ready = ReadyMessages::new(None, true);
        ready.push_back(grouped(1, "g"));
        ready.push_back(grouped(2, "g"));
        ready.push_back(entry(3, None));
        let first = ready.pop_for(a).expect("a takes g");
        ready.hold(&first, a);
        assert_eq!(ready.pop_for(b).map(|e| e.seq), Some(3));
        assert_eq!(ready.len(), 1);
        assert_eq!(ready.drain().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        assert!(ready.is_empty());
    }
}
