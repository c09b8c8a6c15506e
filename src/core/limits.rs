//! Broker-wide resource limits: how many queues and bindings all vhosts may hold together,
//! how many consumers one queue may have, and how many deliveries one consumer may hold
//! unsettled. Each is refused (or, for the last, simply not exceeded) before anything is
//! allocated for it.
//!
//! Queues and bindings are counted in [`Usage`]: one atomic each, changed only when a queue or
//! binding is declared or removed (never on publish). A counted object owns a [`Slot`], which
//! gives its place back when dropped, so every way an object leaves (delete, auto-delete, an
//! exclusive owner closing, `x-expires`, a vhost deleted) frees its slot, and a declaration that
//! fails after taking one drops it unused. Objects recovered from the store at start-up take a
//! slot without being refused: a lowered limit must not lose stored queues.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A queue costs a task, an inbox and its state even when idle (a few KiB); 100,000 of them
/// (an MQTT session queue per device of a large fleet) is more than one broker serves in
/// practice, and bounds what declarations alone can make it allocate to well under 1 GiB.
pub const MAX_QUEUES_DEFAULT: usize = 100_000;
/// Ten per queue at the queue limit: enough for every MQTT session to hold ten subscriptions,
/// while bounding the binding tables (a few hundred bytes per binding) to a few hundred MiB.
pub const MAX_BINDINGS_DEFAULT: usize = 1_000_000;
/// More competing consumers than any worker pool or shared-subscription group we know of;
/// bounds a queue's consumer list and the round-robin scan done for each delivery.
pub const MAX_CONSUMERS_PER_QUEUE_DEFAULT: usize = 65_536;
/// The largest credit AMQP's `basic.qos` can grant (prefetch-count is a short), so that
/// "unlimited" means no more than the largest finite prefetch; bounds the unsettled deliveries
/// a consumer that never acknowledges can pin in its queue.
pub const MAX_UNACKED_PER_CONSUMER_DEFAULT: u32 = 65_535;

/// The limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Queues over all vhosts.
    pub max_queues: usize,
    /// Bindings over all vhosts and exchanges.
    pub max_bindings: usize,
    /// Consumers of one queue at once.
    pub max_consumers_per_queue: usize,
    /// Unsettled deliveries per consumer, whatever its prefetch (0 included).
    pub max_unacked_per_consumer: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queues: MAX_QUEUES_DEFAULT,
            max_bindings: MAX_BINDINGS_DEFAULT,
            max_consumers_per_queue: MAX_CONSUMERS_PER_QUEUE_DEFAULT,
            max_unacked_per_consumer: MAX_UNACKED_PER_CONSUMER_DEFAULT,
        }
    }
}

/// What the broker holds against its limits; shared by every vhost.
#[derive(Debug)]
pub struct Usage {
    pub limits: Limits,
    pub queues: Arc<Counter>,
    pub bindings: Arc<Counter>,
}

impl Usage {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Usage {
            limits,
            queues: Arc::new(Counter::new(limits.max_queues)),
            bindings: Arc::new(Counter::new(limits.max_bindings)),
        })
    }
}

/// A count of live objects and its maximum.
#[derive(Debug)]
pub struct Counter {
    used: AtomicUsize,
    max: usize,
}

impl Counter {
    fn new(max: usize) -> Self {
        Counter {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// A slot, if fewer than the maximum are taken. Relaxed is enough: the count orders
    /// nothing else, and read-modify-write operations on one atomic never lose an update.
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < self.max).then_some(used + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(self)))
    }

    /// A slot whatever the count: for what the store recovered.
    pub fn force(self: &Arc<Self>) -> Slot {
        self.used.fetch_add(1, Ordering::Relaxed);
        Slot(Arc::clone(self))
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// One counted object's place; given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Counter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_refused_at_the_maximum_and_freed_on_drop() {
        let counter = Arc::new(Counter::new(2));
        let first = counter.take().expect("room");
        let second = counter.take().expect("room");
        assert!(counter.take().is_none());
        drop(first);
        let third = counter.take().expect("the freed slot");
        let forced = counter.force();
        assert_eq!(counter.used(), 3);
        drop((second, third, forced));
        assert_eq!(counter.used(), 0);
    }
}
