//! The messages of a queue that wait for a consumer, in delivery order: highest priority first,
//! then oldest first. Without `x-max-priority` there is one level.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use mqbridge_broker_api::Message;

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
}

#[derive(Debug)]
pub struct ReadyMessages {
    /// Index is the priority level.
    levels: Vec<VecDeque<Entry>>,
    len: usize,
    bytes: u64,
}

impl ReadyMessages {
    pub fn new(max_priority: Option<u8>) -> Self {
        let count = usize::from(max_priority.unwrap_or(0)) + 1;
        ReadyMessages {
            levels: (0..count).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
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

    /// The next message to deliver.
    pub fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.levels.iter_mut().rev().find_map(VecDeque::pop_front)?;
        self.account_out(&entry);
        Some(entry)
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
        self.levels.iter_mut().flat_map(|l| l.drain(..))
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
        }
    }

    #[test]
    fn higher_priority_first_then_fifo() {
        let mut ready = ReadyMessages::new(Some(5));
        ready.push_back(entry(1, None));
        ready.push_back(entry(2, Some(9)));
        ready.push_back(entry(3, Some(3)));
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop_front())
            .map(|e| e.seq)
            .collect();
        assert_eq!(order, [2, 3, 1]);
    }

    #[test]
    fn requeue_restores_original_position() {
        let mut ready = ReadyMessages::new(None);
        for seq in 1..=3 {
            ready.push_back(entry(seq, None));
        }
        let first = ready.pop_front().expect("one");
        let second = ready.pop_front().expect("two");
        ready.requeue(second);
        ready.requeue(first);
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop_front())
            .map(|e| e.seq)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(ready.len(), 0);
    }
}
