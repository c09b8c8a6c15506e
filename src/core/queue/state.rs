//! One queue's state machine: ready messages, deliveries awaiting settlement, consumers, and the
//! rules (TTL, length limits, dead-lettering, priorities, exclusivity) that move messages between
//! them. Runs on the queue's own task (see `task.rs`); it never awaits. Deliveries go out with
//! `try_send`: a consumer whose sink is full is marked stalled and handed to the task, which
//! waits for room without holding up the other consumers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use mqbridge_broker_api::{
    BrokerError, Confirm, ConsumeSpec, ConsumerEvent, ConsumerId, Delivery, DeliverySink, GetOk,
    MESSAGE_GROUP_HEADER, Message, Settlement,
};
use tokio::sync::mpsc::error::TrySendError;

use super::arguments::{Overflow, QueueConfig};
use super::dead_letter::{self, Reason, Target};
use super::ready::{Entry, ReadyMessages};
use super::{ConsumerInfo, MessageEvents, MessageTotals, QueueCounters, QueueStore};
use crate::core::limits::Limits;
use crate::core::memory::MemoryGauge;
use crate::store::{Durable, Record};

#[derive(Debug)]
struct Consumer {
    spec: ConsumeSpec,
    unacked: u32,
    /// Unsettled deliveries it may hold: its prefetch, capped by `max_unacked_per_consumer`
    /// (which is also what a prefetch of 0, "no limit", gets).
    credit: u32,
    /// The sink was full; the task is waiting for room.
    stalled: bool,
}

impl Consumer {
    fn can_take(&self) -> bool {
        // A consumer without acknowledgements holds nothing unsettled; only its sink limits it.
        !self.stalled && (self.spec.no_ack || self.unacked < self.credit)
    }
}

#[derive(Debug)]
struct Unacked {
    entry: Entry,
    owner: ConsumerId,
}

#[derive(Debug)]
pub struct QueueState {
    name: String,
    vhost: String,
    config: QueueConfig,
    auto_delete: bool,
    ready: ReadyMessages,
    unacked: HashMap<u64, Unacked>,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    next_tag: u64,
    next_seq: u64,
    had_consumer: bool,
    /// The policy generation of the last reconfiguration; a queue only ever receives
    /// generations newer than the one it was created at, so it starts at zero.
    generation: u64,
    last_used: Instant,
    /// The time the current batch of commands arrived; every decision in a batch uses it, so
    /// that a message with TTL 0 can still go to a consumer that is ready right now.
    now: Instant,
    dead_letters: Vec<Message>,
    stalled: Vec<(ConsumerId, DeliverySink)>,
    counters: Arc<QueueCounters>,
    gauge: Arc<MemoryGauge>,
    /// The vhost's totals; this batch's `events` go there and to `counters` at the flush.
    totals: Arc<MessageTotals>,
    events: MessageEvents,
    /// Memory accounted since the last flush to the shared gauge.
    bytes_delta: i64,
    /// Set for a durable queue: persistent messages are journaled.
    store: Option<QueueStore>,
    /// `max_consumers_per_queue` and `max_unacked_per_consumer`.
    consumers_max: usize,
    unacked_max: u32,
}

impl QueueState {
    pub fn new(
        name: String,
        vhost: String,
        config: QueueConfig,
        auto_delete: bool,
        counters: Arc<QueueCounters>,
        gauge: Arc<MemoryGauge>,
        totals: Arc<MessageTotals>,
    ) -> Self {
        let now = Instant::now();
        QueueState {
            ready: ReadyMessages::new(config.max_priority, config.message_groups),
            name,
            vhost,
            config,
            auto_delete,
            unacked: HashMap::new(),
            consumers: Vec::new(),
            next_consumer: 0,
            next_tag: 1,
            next_seq: 0,
            had_consumer: false,
            generation: 0,
            last_used: now,
            now,
            dead_letters: Vec::new(),
            stalled: Vec::new(),
            counters,
            gauge,
            totals,
            events: MessageEvents::default(),
            bytes_delta: 0,
            store: None,
            consumers_max: usize::MAX,
            unacked_max: u32::MAX,
        }
    }

    /// Applies the broker's per-queue and per-consumer limits to consumers added from now on.
    pub fn set_limits(&mut self, limits: &Limits) {
        self.consumers_max = limits.max_consumers_per_queue;
        // A cap of 0 would starve every consumer that acknowledges; one is the least that works.
        self.unacked_max = limits.max_unacked_per_consumer.max(1);
    }

    /// Makes the queue durable, with the messages the store recovered for it (oldest first;
    /// those delivered before come back marked redelivered).
    pub fn set_store(
        &mut self,
        store: Option<QueueStore>,
        recovered: Vec<(u64, Arc<Message>, bool)>,
    ) {
        self.store = store;
        for (id, message, delivered) in recovered {
            let size = message.size_estimate();
            self.bytes_delta += size as i64;
            let seq = self.next_seq;
            self.next_seq += 1;
            self.ready.push_back(Entry {
                expires_at: self.expiry_for(&message),
                group: self.group_of(&message),
                message,
                seq,
                delivery_count: u32::from(delivered),
                size,
                stored: Some(id),
            });
        }
        self.flush_counters();
    }

    /// Journals a persistent message entering a durable queue; the confirm, if any, is
    /// answered once it is on disk. Returns the store id, or gives the confirm back.
    fn journal(
        &self,
        message: &Arc<Message>,
        confirm: Option<Confirm>,
    ) -> (Option<u64>, Option<Confirm>) {
        let Some(QueueStore { id: queue, store }) = self
            .store
            .as_ref()
            .filter(|_| message.properties.is_persistent())
        else {
            return (None, confirm);
        };
        let id = store.next_id();
        let record = Record::Enqueue {
            queue: *queue,
            id,
            delivered: false,
            message: Arc::clone(message),
        };
        store.append(record, confirm.map(Durable::Confirm));
        (Some(id), None)
    }

    /// Journals an event of a stored message (its first delivery or its removal).
    fn journal_event(&self, entry: &Entry, removed: bool) {
        let (Some(QueueStore { id: queue, store }), Some(id)) = (&self.store, entry.stored) else {
            return;
        };
        let queue = *queue;
        let record = match removed {
            true => Record::Remove { queue, id },
            false => Record::Delivered { queue, id },
        };
        store.append(record, None);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn begin_batch(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn touch(&mut self) {
        self.last_used = self.now;
    }

    /// A policy changed: the limits, TTL, expiry, overflow and dead-letter target are
    /// replaced. Priorities and message groups shape the ready list, and no policy sets them.
    /// Messages already queued keep the expiry they were given, as in RabbitMQ; a shorter
    /// length limit trims the queue when the batch ends.
    pub fn reconfigure(&mut self, config: QueueConfig, generation: u64) {
        if generation <= self.generation {
            return;
        }
        self.generation = generation;
        if config.expires != self.config.expires {
            // The unused-queue lease starts again, as a new `expires` re-arms RabbitMQ's timer.
            self.last_used = self.now;
        }
        self.config = QueueConfig {
            max_priority: self.config.max_priority,
            message_groups: self.config.message_groups,
            ..config
        };
    }

    pub fn publish(&mut self, message: Arc<Message>, confirm: Option<Confirm>) {
        let overflow = self.config.overflow.unwrap_or_default();
        let accepted = match overflow {
            Overflow::DropHead => true,
            Overflow::RejectPublish | Overflow::RejectPublishDlx if self.refuses(&message) => {
                if overflow == Overflow::RejectPublishDlx {
                    self.dead_letter(&message, Reason::MaxLength);
                }
                false
            }
            Overflow::RejectPublish | Overflow::RejectPublishDlx => true,
        };
        let mut confirm = confirm;
        if accepted {
            self.events.published += 1;
            let stored;
            (stored, confirm) = self.journal(&message, confirm);
            let expires_at = self.expiry_for(&message);
            let size = message.size_estimate();
            self.bytes_delta += size as i64;
            let seq = self.next_seq;
            self.next_seq += 1;
            self.ready.push_back(Entry {
                group: self.group_of(&message),
                message,
                seq,
                expires_at,
                delivery_count: 0,
                size,
                stored,
            });
        }
        if let Some(confirm) = confirm {
            confirm.settle(accepted);
        }
    }

    /// Whether a reject-publish queue is full for `message`. Earlier messages of this batch
    /// that a consumer can take go first, as RabbitMQ hands a message straight to a waiting
    /// consumer: only messages nobody can take count against the limit.
    fn refuses(&mut self, message: &Message) -> bool {
        if !self.is_full_for(message) {
            return false;
        }
        self.deliver();
        self.is_full_for(message)
    }

    /// Delivers and trims as the task does after each batch. Commands that look at the ready
    /// messages mid-batch (get, purge, delete) call it first, so that they never see a queue
    /// longer than its limits, as in RabbitMQ, where drop-head happens on publish.
    fn catch_up(&mut self) {
        self.deliver();
        self.enforce_limits();
    }

    fn is_full_for(&self, message: &Message) -> bool {
        let by_count = self
            .config
            .max_length
            .is_some_and(|max| self.ready.len() as u64 >= max);
        let by_bytes = self
            .config
            .max_length_bytes
            .is_some_and(|max| self.ready.bytes() + message.body.len() as u64 > max);
        by_count || by_bytes
    }

    /// The message's group, if this queue has message groups and the message names one.
    fn group_of(&self, message: &Message) -> Option<Arc<str>> {
        if !self.config.message_groups {
            return None;
        }
        let group = message.properties.headers.get(MESSAGE_GROUP_HEADER)?;
        group.as_str().map(Arc::from)
    }

    fn expiry_for(&self, message: &Message) -> Option<Instant> {
        let per_message = message
            .properties
            .expiration_ms
            .map(std::time::Duration::from_millis);
        let ttl = match (self.config.message_ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ttl.map(|ttl| self.now + ttl)
    }

    /// Drop-head: once deliveries had their chance, trims the queue to its limits.
    pub fn enforce_limits(&mut self) {
        if self.config.overflow.unwrap_or_default() != Overflow::DropHead {
            return;
        }
        let over = |ready: &ReadyMessages, config: &QueueConfig| {
            config
                .max_length
                .is_some_and(|max| ready.len() as u64 > max)
                || config
                    .max_length_bytes
                    .is_some_and(|max| ready.bytes() > max)
        };
        while over(&self.ready, &self.config) {
            let Some(entry) = self.ready.pop_oldest() else {
                break;
            };
            self.dead_letter(&entry.message, Reason::MaxLength);
            self.release(entry);
        }
    }

    /// The consumers as the management API lists them.
    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        let info = |c: &Consumer| ConsumerInfo {
            connection: c.spec.connection,
            tag: c.spec.tag.clone(),
            ack_required: !c.spec.no_ack,
            exclusive: c.spec.exclusive,
            prefetch: c.spec.prefetch,
            unacknowledged: c.unacked,
        };
        self.consumers.iter().map(info).collect()
    }

    pub fn consume(&mut self, spec: ConsumeSpec) -> Result<(), BrokerError> {
        if self.consumers.iter().any(|c| c.spec.exclusive)
            || (spec.exclusive && !self.consumers.is_empty())
        {
            let target = BrokerError::describe("queue", &self.name, &self.vhost);
            return Err(BrokerError::AccessRefused(format!(
                "{target} in exclusive use"
            )));
        }
        if self.consumers.len() >= self.consumers_max {
            let target = BrokerError::describe("queue", &self.name, &self.vhost);
            return Err(BrokerError::ResourceLimit(format!(
                "cannot consume from {target}: consumer limit per queue ({}) is reached",
                self.consumers_max
            )));
        }
        let credit = match spec.prefetch {
            0 => self.unacked_max,
            prefetch => prefetch.min(self.unacked_max),
        };
        self.consumers.push(Consumer {
            spec,
            unacked: 0,
            credit,
            stalled: false,
        });
        self.had_consumer = true;
        self.touch();
        Ok(())
    }

    /// Removes a consumer. Its unsettled deliveries stay owned by it: AMQP lets a client ack
    /// after basic.cancel, and the channel requeues what is left when it closes.
    pub fn cancel(&mut self, consumer: ConsumerId) -> bool {
        let Some(index) = self
            .consumers
            .iter()
            .position(|c| c.spec.consumer == consumer)
        else {
            return false;
        };
        self.consumers.remove(index);
        self.touch();
        true
    }

    pub fn settle(&mut self, owner: ConsumerId, tags: &[u64], settlement: Settlement) {
        for tag in tags {
            // A tag from another owner, or settled twice, is ignored: adapters check tags
            // against their own records and report the peer's error themselves.
            if self.unacked.get(tag).is_none_or(|u| u.owner != owner) {
                continue;
            }
            let Some(Unacked { entry, owner }) = self.unacked.remove(tag) else {
                continue;
            };
            if let Some(consumer) = self.consumers.iter_mut().find(|c| c.spec.consumer == owner) {
                consumer.unacked = consumer.unacked.saturating_sub(1);
            }
            self.ready.let_go(&entry, owner);
            match settlement {
                Settlement::Ack => {
                    self.events.acknowledged += 1;
                    self.release(entry);
                }
                Settlement::Requeue => self.ready.requeue(entry),
                Settlement::DeadLetterOrRequeue if self.config.dead_letter_exchange.is_none() => {
                    self.ready.requeue(entry);
                }
                Settlement::Reject | Settlement::DeadLetterOrRequeue => {
                    self.dead_letter(&entry.message, Reason::Rejected);
                    self.release(entry);
                }
            }
        }
    }

    pub fn get(&mut self, owner: ConsumerId, no_ack: bool) -> Option<GetOk> {
        self.touch();
        self.catch_up();
        let mut entry = self.pop_live(owner)?;
        let delivery = self.delivery(owner, &entry);
        entry.delivery_count += 1;
        self.events.delivered += 1;
        if no_ack {
            self.release(entry);
        } else {
            if entry.delivery_count == 1 {
                self.journal_event(&entry, false);
            }
            self.ready.hold(&entry, owner);
            self.unacked.insert(delivery.tag, Unacked { entry, owner });
        }
        let message_count = u32::try_from(self.ready.len()).unwrap_or(u32::MAX);
        Some(GetOk {
            delivery,
            message_count,
        })
    }

    pub fn purge(&mut self) -> u32 {
        self.catch_up();
        let entries: Vec<Entry> = self.ready.drain().collect();
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        entries.into_iter().for_each(|entry| self.release(entry));
        count
    }

    /// Checks `queue.delete` conditions; on success the caller stops the queue.
    pub fn check_delete(&mut self, if_unused: bool, if_empty: bool) -> Result<u32, BrokerError> {
        self.catch_up();
        let target = BrokerError::describe("queue", &self.name, &self.vhost);
        if if_unused && !self.consumers.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!("{target} in use")));
        }
        if if_empty && !self.ready.is_empty() {
            return Err(BrokerError::PreconditionFailed(format!(
                "{target} is not empty"
            )));
        }
        Ok(u32::try_from(self.ready.len()).unwrap_or(u32::MAX))
    }

    /// Hands ready messages to consumers with credit, round-robin. With message groups a
    /// consumer may find nothing it can take while the next one can, so the loop ends only
    /// when every consumer with credit in turn found nothing.
    pub fn deliver(&mut self) {
        let mut found_nothing = 0;
        while !self.ready.is_empty() && found_nothing < self.consumers.len() {
            let Some(index) = self.next_ready_consumer() else {
                break;
            };
            let Some(owner) = self.consumers.get(index).map(|c| c.spec.consumer) else {
                break;
            };
            match self.pop_live(owner) {
                Some(entry) => {
                    found_nothing = 0;
                    self.deliver_to(index, entry);
                }
                None => found_nothing += 1,
            }
        }
    }

    fn deliver_to(&mut self, index: usize, mut entry: Entry) {
        let Some(consumer) = self.consumers.get(index) else {
            return;
        };
        let (id, no_ack) = (consumer.spec.consumer, consumer.spec.no_ack);
        let delivery = self.delivery(id, &entry);
        let tag = delivery.tag;
        let Some(consumer) = self.consumers.get_mut(index) else {
            return;
        };
        match consumer
            .spec
            .sink
            .try_send(ConsumerEvent::Deliver(delivery))
        {
            Ok(()) => {
                entry.delivery_count += 1;
                self.events.delivered += 1;
                if no_ack {
                    self.release(entry);
                } else {
                    consumer.unacked += 1;
                    if entry.delivery_count == 1 {
                        self.journal_event(&entry, false);
                    }
                    self.ready.hold(&entry, id);
                    self.unacked.insert(tag, Unacked { entry, owner: id });
                }
            }
            Err(TrySendError::Full(_)) => {
                consumer.stalled = true;
                self.stalled.push((id, consumer.spec.sink.clone()));
                self.ready.push_front(entry);
            }
            Err(TrySendError::Closed(_)) => {
                // The connection is gone without cancelling: forget the consumer and take back
                // what it held, so nothing waits for a settle that cannot come.
                self.ready.push_front(entry);
                self.consumers.remove(index);
                self.requeue_owned_by(id);
            }
        }
    }

    fn delivery(&mut self, consumer: ConsumerId, entry: &Entry) -> Delivery {
        let tag = self.next_tag;
        self.next_tag += 1;
        Delivery {
            consumer,
            tag,
            message: Arc::clone(&entry.message),
            redelivered: entry.delivery_count > 0,
            delivery_count: entry.delivery_count,
        }
    }

    fn next_ready_consumer(&mut self) -> Option<usize> {
        let count = self.consumers.len();
        let start = self.next_consumer;
        let index = (0..count)
            .map(|offset| (start + offset) % count)
            .find(|&i| self.consumers.get(i).is_some_and(Consumer::can_take))?;
        self.next_consumer = index + 1;
        Some(index)
    }

    fn requeue_owned_by(&mut self, owner: ConsumerId) {
        let tags: Vec<u64> = self
            .unacked
            .iter()
            .filter(|(_, u)| u.owner == owner)
            .map(|(t, _)| *t)
            .collect();
        self.settle(owner, &tags, Settlement::Requeue);
    }

    /// The next message for `owner` that has not expired; expired ones on the way are
    /// dead-lettered.
    fn pop_live(&mut self, owner: ConsumerId) -> Option<Entry> {
        loop {
            let entry = self.ready.pop_for(owner)?;
            if entry.expires_at.is_some_and(|at| at < self.now) {
                self.dead_letter(&entry.message, Reason::Expired);
                self.release(entry);
                continue;
            }
            return Some(entry);
        }
    }

    /// A stalled consumer's sink has room again.
    pub fn unstall(&mut self, consumer: ConsumerId, sink_open: bool) {
        let Some(index) = self
            .consumers
            .iter()
            .position(|c| c.spec.consumer == consumer)
        else {
            return;
        };
        if sink_open {
            if let Some(c) = self.consumers.get_mut(index) {
                c.stalled = false;
            }
        } else {
            self.consumers.remove(index);
            self.requeue_owned_by(consumer);
        }
    }

    pub fn take_stalled(&mut self) -> Vec<(ConsumerId, DeliverySink)> {
        std::mem::take(&mut self.stalled)
    }

    /// Dead-letters messages whose TTL has passed.
    pub fn expire(&mut self) {
        let mut expired = Vec::new();
        self.ready.pop_expired(self.now, &mut expired);
        for entry in expired {
            self.dead_letter(&entry.message, Reason::Expired);
            self.release(entry);
        }
    }

    /// When the task must wake next: the earliest message expiry or the unused-queue expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        let unused = self
            .config
            .expires
            .filter(|_| self.consumers.is_empty())
            .map(|expires| self.last_used + expires);
        [self.ready.next_expiry(), unused]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the queue should delete itself: auto-delete after its last consumer left, or
    /// unused for `x-expires`.
    pub fn wants_deletion(&self) -> bool {
        let auto = self.auto_delete && self.had_consumer && self.consumers.is_empty();
        let unused = self.consumers.is_empty()
            && self
                .config
                .expires
                .is_some_and(|expires| self.now >= self.last_used + expires);
        auto || unused
    }

    fn dead_letter(&mut self, message: &Message, reason: Reason) {
        let Some(exchange) = self.config.dead_letter_exchange.as_deref() else {
            return;
        };
        if dead_letter::is_cycle(message, &self.name, reason) {
            return;
        }
        let target = Target {
            queue: &self.name,
            exchange,
            routing_key: self.config.dead_letter_routing_key.as_deref(),
        };
        self.dead_letters
            .push(dead_letter::dead_letter(message, &target, reason));
    }

    pub fn take_dead_letters(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.dead_letters)
    }

    /// A message leaves the queue for good.
    fn release(&mut self, entry: Entry) {
        self.journal_event(&entry, true);
        self.forget(entry);
    }

    /// Gives back a message's memory; the store is told separately (or the queue is going).
    fn forget(&mut self, entry: Entry) {
        self.bytes_delta -= entry.size as i64;
    }

    /// Publishes counts and memory use for readers outside the task; once per batch.
    pub fn flush_counters(&mut self) {
        let unacknowledged = self.unacked.len();
        self.counters
            .store(self.ready.len(), unacknowledged, self.consumers.len());
        let events = std::mem::take(&mut self.events);
        if !events.is_empty() {
            self.counters.add(events);
            self.totals.add(events);
        }
        self.gauge.adjust(std::mem::take(&mut self.bytes_delta));
    }

    /// Cancels every consumer and gives back all memory; the queue is being deleted.
    pub fn shutdown(&mut self) -> Vec<(ConsumerId, DeliverySink)> {
        // The queue's deletion removes its messages from the store, and a broker stopping
        // must keep them: either way no message is removed one by one here.
        let entries: Vec<Entry> = self.ready.drain().collect();
        entries.into_iter().for_each(|entry| self.forget(entry));
        let unacked: Vec<Unacked> = self.unacked.drain().map(|(_, u)| u).collect();
        unacked.into_iter().for_each(|u| self.forget(u.entry));
        let consumers = self
            .consumers
            .drain(..)
            .map(|c| (c.spec.consumer, c.spec.sink))
            .collect();
        self.flush_counters();
        consumers
    }
}
