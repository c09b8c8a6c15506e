//! Delayed messages (DelaySeconds, per message or the queue's default), kept durable with
//! nothing but the broker API.
//!
//! A delayed message for queue `q` is published, persistent and confirmed, to the durable
//! holding queue `sqs-delay.q` (the `.` keeps the name out of SQS's own name space) with its due
//! time in the [`DUE_HEADER`] header. One mover task per holding queue consumes it, keeps each
//! delivery unsettled until it is due, then publishes the message to `q` (confirmed) and acks
//! the holding delivery. After a restart the holding queue's unsettled deliveries are ready
//! again with their headers, and the mover starts when the queue is next named by any action.
//!
//! The mover runs on its own task; `Delays` is a `std::sync::Mutex`, never held across an
//! `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mqbridge_broker_api::{
    BrokerError, ConnectionId, ConsumeSpec, ConsumerEvent, ConsumerId, Delivery, HeaderValue,
    Headers, Message, QueueHandle, QueueSpec, Settlement, VirtualHost,
};
use tokio::sync::{mpsc, watch};

use crate::error::SqsError;
use crate::service::{now_ms, publish_confirmed};

/// The header holding a delayed message's due time, in milliseconds since the Unix epoch.
pub const DUE_HEADER: &str = "x-sqs-deliver-at";
/// Delayed messages one mover holds unsettled at once; beyond it they wait, ready, in the
/// holding queue (the core's memory limits apply to them there).
const HELD_MAX: u32 = 100_000;
/// How long a mover waits before retrying a move its target queue refused.
const RETRY: Duration = Duration::from_secs(1);
/// The mover's sink: deliveries are moved into its own table at once, so a small one suffices.
const SINK_CAPACITY: usize = 256;

/// Names of holding queues start with this; the `.` keeps them out of SQS's name space.
pub const HOLDING_PREFIX: &str = "sqs-delay.";

/// The holding queue of `queue`.
pub fn holding_queue(queue: &str) -> String {
    format!("{HOLDING_PREFIX}{queue}")
}

/// The movers that run, by target queue, with how many messages each holds.
#[derive(Debug, Default)]
pub struct Delays {
    movers: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

/// What a mover needs from the service.
#[derive(Clone)]
pub struct MoverContext {
    pub vhost: Arc<dyn VirtualHost>,
    pub connection: ConnectionId,
    pub shutdown: watch::Receiver<bool>,
}

impl Delays {
    /// Messages of `queue` waiting for their delay: held by the mover plus still in the holding
    /// queue.
    pub fn count(&self, context: &MoverContext, queue: &str) -> usize {
        let held = self
            .lock()
            .get(queue)
            .map_or(0, |held| held.load(Ordering::Relaxed));
        let waiting = context
            .vhost
            .queue(&holding_queue(queue), context.connection)
            .map_or(0, |q| q.message_count() as usize);
        held + waiting
    }

    /// Declares the holding queue of `queue` (durable) and makes sure its mover runs.
    pub async fn holding(
        self: &Arc<Self>,
        context: &MoverContext,
        queue: &str,
    ) -> Result<Arc<dyn QueueHandle>, SqsError> {
        let spec = QueueSpec {
            name: holding_queue(queue),
            durable: true,
            exclusive: false,
            auto_delete: false,
            arguments: Headers::new(),
        };
        context
            .vhost
            .declare_queue(spec, false, context.connection)?;
        self.ensure_mover(context, queue).await
    }

    /// Starts the mover of `queue` if its holding queue exists and no mover runs (after a
    /// restart). The start itself runs on its own task, so that callers need not await it.
    pub fn resume(self: &Arc<Self>, context: &MoverContext, queue: &str) {
        if self.lock().contains_key(queue)
            || context
                .vhost
                .queue(&holding_queue(queue), context.connection)
                .is_err()
        {
            return;
        }
        let (delays, context, queue) = (Arc::clone(self), context.clone(), queue.to_owned());
        tokio::spawn(async move {
            if let Err(error) = delays.ensure_mover(&context, &queue).await {
                tracing::warn!(%error, queue, "cannot resume delayed messages");
            }
        });
    }

    async fn ensure_mover(
        self: &Arc<Self>,
        context: &MoverContext,
        queue: &str,
    ) -> Result<Arc<dyn QueueHandle>, SqsError> {
        let hold = context
            .vhost
            .queue(&holding_queue(queue), context.connection)?;
        let held = {
            let mut movers = self.lock();
            if movers.contains_key(queue) {
                return Ok(hold);
            }
            let held = Arc::new(AtomicUsize::new(0));
            movers.insert(queue.to_owned(), Arc::clone(&held));
            held
        };
        let owner = ConsumerId::next();
        let (sink, events) = mpsc::channel(SINK_CAPACITY);
        let spec = ConsumeSpec {
            consumer: owner,
            connection: context.connection,
            tag: format!("sqs.delay.{queue}"),
            no_ack: false,
            exclusive: false,
            prefetch: HELD_MAX,
            sink,
        };
        if let Err(error) = hold.consume(spec).await {
            self.lock().remove(queue);
            return Err(error.into());
        }
        let mover = Mover {
            context: context.clone(),
            target: queue.to_owned(),
            hold: Arc::clone(&hold),
            owner,
            held,
            pending: BTreeMap::new(),
        };
        let delays = Arc::clone(self);
        tokio::spawn(async move {
            let target = mover.target.clone();
            mover.run(events).await;
            delays.lock().remove(&target);
        });
        Ok(hold)
    }

    /// Deletes the holding queue of a deleted queue (its mover ends when cancelled).
    pub async fn drop_queue(&self, context: &MoverContext, queue: &str) {
        let name = holding_queue(queue);
        match context
            .vhost
            .delete_queue(&name, false, false, context.connection)
            .await
        {
            Ok(_) | Err(BrokerError::NotFound(_)) => {}
            Err(error) => tracing::warn!(%error, queue = name, "cannot delete holding queue"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicUsize>>> {
        // Inserts and removes only; a panic cannot leave the map half-updated.
        self.movers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks `message` as due at `due_ms` and addresses it to the holding queue.
pub fn hold(message: &mut Message, queue: &str, due_ms: u64) {
    let due = i64::try_from(due_ms).unwrap_or(i64::MAX);
    message
        .properties
        .headers
        .insert(DUE_HEADER, HeaderValue::I64(due));
    message.routing_key = holding_queue(queue);
}

/// One holding queue's mover.
struct Mover {
    context: MoverContext,
    target: String,
    hold: Arc<dyn QueueHandle>,
    owner: ConsumerId,
    held: Arc<AtomicUsize>,
    /// Held deliveries by due time (ms) and tag.
    pending: BTreeMap<(u64, u64), Delivery>,
}

impl Mover {
    async fn run(mut self, mut events: mpsc::Receiver<ConsumerEvent>) {
        /// How long to sleep with nothing held; a new delivery wakes the task sooner.
        const IDLE: Duration = Duration::from_secs(3600);
        let mut shutdown = self.context.shutdown.clone();
        loop {
            let next = self.pending.keys().next().map(|(due, _)| *due);
            let wait = next.map_or(IDLE, |due| {
                Duration::from_millis(due.saturating_sub(now_ms()))
            });
            tokio::select! {
                event = events.recv() => match event {
                    Some(ConsumerEvent::Deliver(delivery)) => self.take(delivery),
                    Some(ConsumerEvent::Cancelled(_)) | None => return,
                },
                () = tokio::time::sleep(wait) => self.move_due().await,
                _ = shutdown.changed() => return,
            }
        }
    }

    fn take(&mut self, delivery: Delivery) {
        let due = match delivery.message.properties.headers.get(DUE_HEADER) {
            Some(value) => value
                .as_i64()
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
            None => 0,
        };
        self.pending.insert((due, delivery.tag), delivery);
        self.held.store(self.pending.len(), Ordering::Relaxed);
    }

    /// Publishes every due message to its queue, then acks it in the holding queue.
    async fn move_due(&mut self) {
        let now = now_ms();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let delivery = entry.remove();
            self.held.store(self.pending.len(), Ordering::Relaxed);
            let mut message = (*delivery.message).clone();
            message.properties.headers.remove(DUE_HEADER);
            message.routing_key.clone_from(&self.target);
            let target = self
                .context
                .vhost
                .queue(&self.target, self.context.connection);
            let settlement = match target {
                Ok(target) => {
                    let stored =
                        publish_confirmed(&target, vec![Arc::new(message)], &self.context.shutdown)
                            .await;
                    if !matches!(stored.as_deref(), Ok([true])) {
                        // Refused (or shutting down): keep holding it and try again later,
                        // rather than requeue it into an immediate redelivery to ourselves.
                        self.pending
                            .insert((now + RETRY.as_millis() as u64, delivery.tag), delivery);
                        self.held.store(self.pending.len(), Ordering::Relaxed);
                        return;
                    }
                    Settlement::Ack
                }
                // The queue is gone, and with it its messages, delayed ones included.
                Err(_) => Settlement::Ack,
            };
            self.hold
                .settle(self.owner, vec![delivery.tag], settlement)
                .await;
        }
    }
}
