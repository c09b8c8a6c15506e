//! `sqs-batch`: SendMessageBatch producers and ReceiveMessage + DeleteMessageBatch consumers on
//! one fresh queue, then a drain and a check that every message sent was received.
//!
//! - A producer sends batches of 10 messages, one request at a time, each with ids of its own
//!   (`wire::message_id`), and counts a message sent when the answer lists it as successful.
//!   It waits while more than `--backlog-max` messages are sent and not yet deleted, so that a
//!   slow consumer side measures as slow instead of growing the queue without bound.
//! - A consumer asks for up to 10 messages with `WaitTimeSeconds = --wait-seconds` and
//!   deletes what it got with one DeleteMessageBatch, keeping every id it received.
//! - After the measured window the producers stop, the consumers go on until as many
//!   messages were deleted as were sent (or `DRAIN_TIMEOUT` passes), and then the ids are
//!   checked: `lost` counts ids sent and never received, `duplicates` ids received twice
//!   (SQS delivers at least once, so duplicates are legal and only reported).
//!
//! The figure is messages deleted per second: each went producer -> queue -> consumer -> delete.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::watch;

use super::client::{Action, Endpoint, SqsConnection};
use super::wire::{self, Received, Template};
use super::{Limit, Queue, SqsArgs, SqsMeter, measure};
use crate::scenario::{ClientTask, StopSignal, join_all};

/// Longest the consumers may take to receive what is left once the producers stop: the
/// default visibility timeout (30 s) plus room for a slow endpoint to hand out the backlog.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the drain and a producer waiting on the backlog look at the counters again.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Arguments of the `sqs-batch` scenario.
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    #[command(flatten)]
    pub common: SqsArgs,
    /// Producer tasks, each with its own connection and one request outstanding.
    #[arg(long, default_value_t = 4)]
    pub producers: u32,
    /// Consumer tasks, each with its own connection and one request outstanding.
    #[arg(long, default_value_t = 4)]
    pub consumers: u32,
    /// WaitTimeSeconds of each ReceiveMessage (0 to 20; 0 is short polling).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
    /// Producers wait while more than this many messages are sent and not yet deleted.
    /// A shallow queue keeps the figure about the server, not the depth: moto's work per
    /// message grows with the number of messages in the queue.
    #[arg(long, default_value_t = 100)]
    pub backlog_max: u64,
    /// Send this many messages (rounded up to whole batches) and measure until all are
    /// deleted, instead of measuring for `--duration` after `--warmup`.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "sqs-batch")]
    pub scenario: String,
}

/// State the client tasks share with the run.
struct Shared {
    meter: SqsMeter,
    /// Messages each producer has had stored; its ids are `message_id(p, 0..count)`.
    produced: Vec<AtomicU64>,
    /// Batches the producers may still send, in `--messages` mode.
    batches_left: Option<AtomicU64>,
    /// Every id the consumers received, gathered when each consumer stops.
    received_ids: Mutex<Vec<u64>>,
    backlog_max: u64,
}

impl Shared {
    /// Takes one batch from the budget; false when the budget is spent.
    fn claim_batch(&self) -> bool {
        self.batches_left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    fn backlog_full(&self) -> bool {
        let in_queue = self
            .meter
            .sent
            .get()
            .saturating_sub(self.meter.deleted.get());
        in_queue >= self.backlog_max
    }
}

/// Runs `sqs-batch` and prints progress and the `RESULT` line.
pub async fn run(args: BatchArgs) -> anyhow::Result<()> {
    args.common.check()?;
    let endpoint = Endpoint::parse(&args.common.endpoint)?;
    let shared = Arc::new(Shared {
        meter: SqsMeter::default(),
        produced: (0..args.producers).map(|_| AtomicU64::new(0)).collect(),
        batches_left: args
            .messages
            .map(|n| AtomicU64::new(n.div_ceil(wire::BATCH_ENTRIES_MAX as u64))),
        received_ids: Mutex::new(Vec::new()),
        backlog_max: args.backlog_max,
    });
    let queue = Queue::create(&endpoint, &shared.meter).await?;
    eprintln!(
        "{}: {} producers x SendMessageBatch(10 x {} B), {} consumers x ReceiveMessage(10, \
         wait {} s) + DeleteMessageBatch",
        queue.url, args.producers, args.common.size, args.consumers, args.wait_seconds
    );
    let (stop_consumers, consumer_stop) = watch::channel(false);
    let (stop_producers, producer_stop) = watch::channel(false);
    let consumers = spawn_consumers(&args, &endpoint, &queue, &shared, &consumer_stop);
    let producers = spawn_producers(&args, &endpoint, &queue, &shared, &producer_stop);
    let measured = measure_window(&args, &shared, &producers, &consumers).await;
    let _ = stop_producers.send(true);
    let producers_stopped = join_all(producers, "producer").await;
    let drained = drain(&shared.meter).await;
    let _ = stop_consumers.send(true);
    let consumers_stopped = join_all(consumers, "consumer").await;
    let check = Check::of(&shared);
    let deleted_queue = queue.delete(&endpoint, &shared.meter).await;
    let window = measured?;
    println!(
        "RESULT scenario={} endpoint={} producers={} consumers={} size={} wait_seconds={} {} \
         sent_total={} deleted_total={} duplicates={} lost={} unknown={} {}",
        args.scenario,
        args.common.endpoint,
        args.producers,
        args.consumers,
        args.common.size,
        args.wait_seconds,
        window.rate_fields(),
        check.expected,
        shared.meter.deleted.get(),
        check.duplicates,
        check.lost,
        check.unknown,
        window.cpu_fields(),
    );
    producers_stopped?;
    consumers_stopped?;
    deleted_queue?;
    if !drained {
        eprintln!("the queue was not drained within {DRAIN_TIMEOUT:?}");
    }
    check.verdict()
}

/// The measured window: after the warm-up for `--duration`, or from the start until every
/// message of `--messages` is deleted.
async fn measure_window(
    args: &BatchArgs,
    shared: &Shared,
    producers: &[ClientTask],
    consumers: &[ClientTask],
) -> anyhow::Result<super::Window> {
    let limit = match args.messages {
        Some(count) => {
            let batch = wire::BATCH_ENTRIES_MAX as u64;
            Limit::Deleted(count.div_ceil(batch) * batch)
        }
        None => {
            tokio::time::sleep(args.common.warmup).await;
            Limit::Duration(args.common.duration)
        }
    };
    // In `--messages` mode a producer ends by itself when the budget is spent.
    let failed = || {
        consumers.iter().any(|task| task.is_finished())
            || (args.messages.is_none() && producers.iter().any(|task| task.is_finished()))
    };
    measure(&shared.meter, limit, args.common.broker_pid, failed).await
}

/// Waits until the consumers have deleted as many messages as were sent; false on timeout.
/// Runs after the producers have stopped, so `sent` no longer moves.
async fn drain(meter: &SqsMeter) -> bool {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while meter.deleted.get() < meter.sent.get() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    true
}

fn spawn_producers(
    args: &BatchArgs,
    endpoint: &Endpoint,
    queue: &Queue,
    shared: &Arc<Shared>,
    stop: &StopSignal,
) -> Vec<ClientTask> {
    let template = Template::send_batch(&queue.url, wire::BATCH_ENTRIES_MAX, args.common.size);
    (0..args.producers)
        .map(|index| {
            let connection = SqsConnection::new(endpoint.clone());
            let producer = produce(
                index,
                connection,
                template.clone(),
                shared.clone(),
                stop.clone(),
            );
            tokio::spawn(producer)
        })
        .collect()
}

/// One producer: a SendMessageBatch at a time until stopped or the budget is spent.
async fn produce(
    index: u32,
    mut connection: SqsConnection,
    template: Template,
    shared: Arc<Shared>,
    stop: StopSignal,
) -> anyhow::Result<()> {
    let meter = &shared.meter;
    let mut sequence = 0;
    while !*stop.borrow() {
        if shared.backlog_full() {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        if !shared.claim_batch() {
            break;
        }
        let body = template.render(wire::message_id(index, sequence));
        let answer = connection
            .call(Action::SendMessageBatch, body, Duration::ZERO, meter)
            .await?;
        let stored = wire::batch_successes(&answer)?;
        if stored != template.messages() {
            bail!("{stored} of {} entries acknowledged", template.messages());
        }
        sequence += stored as u64;
        shared.produced[index as usize].store(sequence, Ordering::Relaxed);
        meter.sent.add(stored as u64);
    }
    Ok(())
}

fn spawn_consumers(
    args: &BatchArgs,
    endpoint: &Endpoint,
    queue: &Queue,
    shared: &Arc<Shared>,
    stop: &StopSignal,
) -> Vec<ClientTask> {
    (0..args.consumers)
        .map(|_| {
            let consumer = Consumer {
                connection: SqsConnection::new(endpoint.clone()),
                queue_url: queue.url.clone(),
                size: args.common.size,
                wait: Duration::from_secs(args.wait_seconds),
                shared: shared.clone(),
                ids: Vec::new(),
            };
            tokio::spawn(consumer.run(stop.clone()))
        })
        .collect()
}

/// One consumer: ReceiveMessage, then DeleteMessageBatch of what came, until stopped.
struct Consumer {
    connection: SqsConnection,
    queue_url: String,
    size: usize,
    wait: Duration,
    shared: Arc<Shared>,
    /// The ids received so far, handed to `Shared::received_ids` on stop.
    ids: Vec<u64>,
}

impl Consumer {
    async fn run(mut self, stop: StopSignal) -> anyhow::Result<()> {
        let receive = wire::receive(&self.queue_url, self.wait.as_secs());
        let mut outcome = Ok(());
        // The stop is looked at between requests only: a receive cut short could leave its
        // messages leased to nobody until their visibility timeout.
        while !*stop.borrow() {
            outcome = self.receive_and_delete(receive.clone()).await;
            if outcome.is_err() {
                break;
            }
        }
        let ids = std::mem::take(&mut self.ids);
        if let Ok(mut all) = self.shared.received_ids.lock() {
            all.extend(ids);
        }
        outcome
    }

    async fn receive_and_delete(&mut self, receive: bytes::Bytes) -> anyhow::Result<()> {
        let meter = &self.shared.meter;
        let answer = self
            .connection
            .call(Action::ReceiveMessage, receive, self.wait, meter)
            .await?;
        let received = Received::parse(&answer)?;
        if received.messages.is_empty() {
            return Ok(());
        }
        meter.received.add(received.messages.len() as u64);
        for message in &received.messages {
            self.ids.push(wire::body_id(&message.body, self.size)?);
        }
        let delete = wire::delete_batch(&self.queue_url, &received.messages)?;
        let answer = self
            .connection
            .call(Action::DeleteMessageBatch, delete, Duration::ZERO, meter)
            .await?;
        let deleted = wire::batch_successes(&answer)?;
        meter.deleted.add(deleted as u64);
        Ok(())
    }
}

/// The loss check: the ids received against the ids the producers had stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Check {
    /// Messages stored (answered as successful) over the whole run.
    pub(super) expected: u64,
    /// Ids received more than once (extra copies).
    pub(super) duplicates: u64,
    /// Ids stored and never received.
    pub(super) lost: u64,
    /// Ids received that no producer had stored.
    pub(super) unknown: u64,
}

impl Check {
    fn of(shared: &Shared) -> Check {
        let produced: Vec<u64> = shared
            .produced
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        let mut ids = shared
            .received_ids
            .lock()
            .map(|mut ids| std::mem::take(&mut *ids))
            .unwrap_or_default();
        Check::compare(&produced, &mut ids)
    }

    /// Compares the ids one consumer side received with the counts each producer had stored.
    pub(super) fn compare(produced: &[u64], ids: &mut Vec<u64>) -> Check {
        ids.sort_unstable();
        let received = ids.len() as u64;
        ids.dedup();
        let unknown = ids
            .iter()
            .filter(|&&id| {
                let (producer, sequence) = wire::split_id(id);
                produced
                    .get(producer as usize)
                    .is_none_or(|&count| sequence >= count)
            })
            .count() as u64;
        let expected: u64 = produced.iter().sum();
        let unique = ids.len() as u64;
        Check {
            expected,
            duplicates: received - unique,
            lost: expected - (unique - unknown),
            unknown,
        }
    }

    /// Adds another queue's check to this one.
    pub(super) fn add(&mut self, other: &Check) {
        self.expected += other.expected;
        self.duplicates += other.duplicates;
        self.lost += other.lost;
        self.unknown += other.unknown;
    }

    pub(super) fn verdict(&self) -> anyhow::Result<()> {
        if self.lost > 0 || self.unknown > 0 {
            bail!(
                "{} of {} messages sent were never received; {} unknown ids received",
                self.lost,
                self.expected,
                self.unknown
            );
        }
        if self.duplicates > 0 {
            eprintln!("{} messages were received more than once", self.duplicates);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::message_id;

    #[test]
    fn the_check_finds_lost_duplicate_and_unknown_ids() {
        let produced = [3, 1];
        let mut all = vec![
            message_id(0, 0),
            message_id(0, 1),
            message_id(0, 2),
            message_id(1, 0),
        ];
        let expected = Check {
            expected: 4,
            duplicates: 0,
            lost: 0,
            unknown: 0,
        };
        assert_eq!(Check::compare(&produced, &mut all.clone()), expected);
        all.push(message_id(0, 1));
        all.remove(0);
        all.push(message_id(1, 5));
        all.push(message_id(7, 0));
        let found = Check::compare(&produced, &mut all);
        assert_eq!(
            found,
            Check {
                expected: 4,
                duplicates: 1,
                lost: 1,
                unknown: 2
            }
        );
        assert!(found.verdict().is_err());
    }

    #[test]
    fn the_budget_runs_out_after_its_batches() {
        let shared = Shared {
            meter: SqsMeter::default(),
            produced: Vec::new(),
            batches_left: Some(AtomicU64::new(2)),
            received_ids: Mutex::new(Vec::new()),
            backlog_max: 10,
        };
        assert!(shared.claim_batch());
        assert!(shared.claim_batch());
        assert!(!shared.claim_batch());
    }
}
