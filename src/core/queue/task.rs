//! The queue task: drains the inbox in batches, runs the state machine, waits for stalled
//! consumers and timers, and deletes the queue when it asks to be deleted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use futures_util::stream::{FuturesUnordered, StreamExt};
use mqbridge_broker_api::{BoxFuture, ConsumerId, DeliverySink, Message};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::QueueState;
use super::{
    Command, MessageTotals, QueueConfig, QueueCounters, QueueRef, QueueStore, notify_cancelled,
};
use crate::core::limits::Limits;
use crate::core::memory::MemoryGauge;
use crate::core::vhost::VHost;

/// Commands a queue buffers before publishers wait. Large enough that a burst from a few
/// publishers does not stall them on every message, small enough to bound memory per queue.
const INBOX_CAPACITY: usize = 4096;

/// Commands handled per wake-up; amortises the wake-up over many messages.
const BATCH_MAX: usize = 256;

/// What a queue is created with.
#[derive(Debug)]
pub struct QueueSetup {
    pub name: String,
    pub vhost: Weak<VHost>,
    pub vhost_name: String,
    pub config: QueueConfig,
    pub auto_delete: bool,
    pub gauge: Arc<MemoryGauge>,
    /// The vhost's message totals, which the queue adds to once per batch.
    pub totals: Arc<MessageTotals>,
    /// Set for a durable queue.
    pub store: Option<QueueStore>,
    /// Messages the store recovered for it: id, message, delivered before.
    pub recovered: Vec<(u64, Arc<Message>, bool)>,
    /// The broker's limits; the queue enforces the per-consumer and per-queue ones.
    pub limits: Limits,
}

/// Starts a queue task and returns its handle.
pub fn spawn(setup: QueueSetup) -> Arc<QueueRef> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let (inbox, commands) = mpsc::channel(INBOX_CAPACITY);
    let counters = Arc::new(QueueCounters::default());
    let handle = Arc::new(QueueRef {
        name: setup.name.clone(),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        inbox,
        counters: Arc::clone(&counters),
    });
    let mut state = QueueState::new(
        setup.name,
        setup.vhost_name,
        setup.config,
        setup.auto_delete,
        counters,
        setup.gauge,
        setup.totals,
    );
    state.set_store(setup.store, setup.recovered);
    state.set_limits(&setup.limits);
    let task = QueueTask {
        state,
        vhost: setup.vhost,
        id: handle.id,
    };
    tokio::spawn(task.run(commands));
    handle
}

type Wait = BoxFuture<'static, (ConsumerId, bool)>;

struct QueueTask {
    state: QueueState,
    vhost: Weak<VHost>,
    id: u64,
}

impl QueueTask {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Grown by `recv_many` as batches arrive, so an idle queue (an MQTT session, say)
        // keeps no batch-sized buffer.
        let mut batch = Vec::new();
        let mut waits: FuturesUnordered<Wait> = FuturesUnordered::new();
        loop {
            let deadline = self.state.next_deadline();
            tokio::select! {
                received = commands.recv_many(&mut batch, BATCH_MAX) => {
                    if received == 0 {
                        break;
                    }
                    self.state.begin_batch(Instant::now().into_std());
                    let mut stop = false;
                    for command in batch.drain(..) {
                        stop |= self.handle(command);
                    }
                    if stop {
                        return self.finish();
                    }
                }
                Some((consumer, open)) = waits.next(), if !waits.is_empty() => {
                    self.state.begin_batch(Instant::now().into_std());
                    self.state.unstall(consumer, open);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.state.begin_batch(Instant::now().into_std());
                    self.state.expire();
                }
            }
            self.state.deliver();
            self.state.enforce_limits();
            for (consumer, sink) in self.state.take_stalled() {
                waits.push(wait_for_room(consumer, sink));
            }
            self.route_dead_letters();
            self.state.flush_counters();
            if self.state.wants_deletion() {
                if let Some(vhost) = self.vhost.upgrade() {
                    vhost.forget_queue(self.state.name(), self.id);
                }
                return self.finish();
            }
        }
    }

    /// Handles one command; returns true when the queue must stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Publish(message, confirm) => self.state.publish(message, confirm),
            Command::Consume(spec, reply) => {
                let _ = reply.send(self.state.consume(spec));
            }
            Command::Cancel(consumer, reply) => {
                let _ = reply.send(self.state.cancel(consumer));
            }
            Command::Settle(owner, tags, settlement) => self.state.settle(owner, &tags, settlement),
            Command::Get(owner, no_ack, max, reply) => {
                let taken = std::iter::from_fn(|| self.state.get(owner, no_ack))
                    .take(max)
                    .collect();
                let _ = reply.send(taken);
            }
            Command::Purge(reply) => {
                let _ = reply.send(self.state.purge());
            }
            Command::Touch => self.state.touch(),
            Command::Consumers(reply) => {
                let _ = reply.send(self.state.consumers());
            }
            Command::Reconfigure(config, generation) => {
                self.state.reconfigure(*config, generation);
            }
            Command::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                let Some(reply) = reply else { return true };
                let verdict = self.state.check_delete(if_unused, if_empty);
                let stop = verdict.is_ok();
                let _ = reply.send(verdict);
                return stop;
            }
        }
        false
    }

    fn route_dead_letters(&mut self) {
        let letters = self.state.take_dead_letters();
        if letters.is_empty() {
            return;
        }
        let Some(vhost) = self.vhost.upgrade() else {
            return;
        };
        let mut targets = Vec::new();
        for letter in letters {
            targets.clear();
            vhost.route_internal(&letter, &mut targets);
            let letter: Arc<Message> = Arc::new(letter);
            for target in &targets {
                target.publish_detached(Arc::clone(&letter));
            }
        }
    }

    fn finish(mut self) {
        notify_cancelled(self.state.shutdown());
    }
}

fn wait_for_room(consumer: ConsumerId, sink: DeliverySink) -> Wait {
    Box::pin(async move {
        // The permit is dropped at once: it only tells us there is room; the next delivery
        // uses try_send and may find the room taken, in which case we wait again.
        let open = sink.reserve_owned().await.is_ok();
        (consumer, open)
    })
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(Instant::from_std(deadline)).await;
    }
}
