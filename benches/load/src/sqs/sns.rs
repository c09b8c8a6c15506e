//! `sns-fanout`: Publish to an SNS topic with `--subscribers` SQS queues subscribed, one
//! consumer per queue, then a drain and a check that every publish reached every queue.
//!
//! - Set-up: CreateTopic, then per subscriber CreateQueue, GetQueueAttributes (the queue's
//!   ARN as the endpoint spells it: moto's account id is not mqbridge's) and Subscribe
//!   (`sqs`, the Notification envelope unless `--raw`).
//! - A publisher sends Publish requests (Query protocol, one `--size` message each, with an
//!   id of its own: `wire::message_id`), one at a time, and counts a publish when the answer
//!   carries a MessageId. It waits while more than `--backlog-max` deliveries are outstanding
//!   (publishes x subscribers, less deliveries deleted), so that a slow delivery or consumer
//!   side measures as slow instead of growing the queues without bound.
//! - A consumer per queue asks for up to 10 messages with `WaitTimeSeconds = --wait-seconds`,
//!   takes the published text out of each envelope, keeps its id and deletes what it got with
//!   one DeleteMessageBatch.
//! - After the measured window the publishers stop, the consumers go on until every
//!   delivery is deleted (or `DRAIN_TIMEOUT` passes), and then each queue's ids are checked
//!   against the publishers' counts: `lost` (deliveries that never came) must be 0.
//!
//! The figure is deliveries per second: messages received and deleted across all the queues,
//! each having gone publisher -> topic -> subscription -> queue -> consumer -> delete.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use super::batch::Check;
use super::client::{Action, Endpoint, SqsConnection};
use super::wire::{self, Received, Template};
use super::{Limit, Queue, SqsArgs, SqsMeter, Window, measure, sns_wire};
use crate::scenario::{ClientTask, StopSignal, join_all, unique_suffix};

/// Longest the consumers may take to receive what is left once the publishers stop: the
/// default visibility timeout (30 s) plus room for a slow endpoint to hand out the backlog.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the drain and a publisher waiting on the backlog look at the counters again.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Arguments of the `sns-fanout` scenario.
#[derive(Debug, clap::Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: SqsArgs,
    /// Publisher tasks, each with its own connection and one Publish outstanding.
    #[arg(long, default_value_t = 4)]
    pub publishers: u32,
    /// SQS queues subscribed to the topic, each read by one consumer task.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub subscribers: u32,
    /// WaitTimeSeconds of each ReceiveMessage (0 to 20; 0 is short polling).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
    /// Publishers wait while more than this many deliveries (over all queues) are
    /// outstanding: published to the topic and not yet deleted from a queue.
    #[arg(long, default_value_t = 1000)]
    pub backlog_max: u64,
    /// Subscribe with RawMessageDelivery=true: queues get the bare message, no envelope.
    #[arg(long)]
    pub raw: bool,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "sns-fanout")]
    pub scenario: String,
}

/// State the client tasks share with the run.
struct Shared {
    /// `sent` counts publishes; `received` and `deleted` count deliveries.
    meter: SqsMeter,
    /// Publishes each publisher has had answered; its ids are `message_id(p, 0..count)`.
    produced: Vec<AtomicU64>,
    /// The ids each queue's consumer received, stored when it stops.
    received_ids: Vec<Mutex<Vec<u64>>>,
    subscribers: u64,
    backlog_max: u64,
}

impl Shared {
    /// Deliveries published and not yet deleted.
    fn outstanding(&self) -> u64 {
        let due = self.meter.sent.get().saturating_mul(self.subscribers);
        due.saturating_sub(self.meter.deleted.get())
    }
}

/// The run's topic and its subscribed queues; all deleted at the end.
struct Topology {
    topic_arn: String,
    queues: Vec<Queue>,
}

impl Topology {
    async fn create(
        args: &FanoutArgs,
        endpoint: &Endpoint,
        meter: &SqsMeter,
    ) -> anyhow::Result<Topology> {
        let name = format!("mqbridge-bench-{}", unique_suffix());
        let mut control = SqsConnection::new(endpoint.clone());
        let answer = control
            .call_sns("CreateTopic", sns_wire::create_topic(&name), meter)
            .await?;
        let mut topology = Topology {
            topic_arn: sns_wire::element(&answer, "TopicArn")?,
            queues: Vec::new(),
        };
        for index in 0..args.subscribers {
            let queue = Queue::create_named(endpoint, meter, &format!("{name}-{index}")).await?;
            let queue_arn = queue.arn(endpoint, meter).await?;
            topology.queues.push(queue);
            let subscribe = sns_wire::subscribe_queue(&topology.topic_arn, &queue_arn, args.raw);
            let answer = control.call_sns("Subscribe", subscribe, meter).await?;
            sns_wire::element(&answer, "SubscriptionArn").context("Subscribe answer")?;
        }
        Ok(topology)
    }

    /// Deletes the topic (and with it the subscriptions), then every queue; the first
    /// failure is returned after all were tried.
    async fn delete(&self, endpoint: &Endpoint, meter: &SqsMeter) -> anyhow::Result<()> {
        let mut control = SqsConnection::new(endpoint.clone());
        let mut outcome = control
            .call_sns(
                "DeleteTopic",
                sns_wire::delete_topic(&self.topic_arn),
                meter,
            )
            .await
            .map(drop);
        for queue in &self.queues {
            let deleted = queue.delete(endpoint, meter).await;
            outcome = outcome.and(deleted);
        }
        outcome
    }
}

/// Runs `sns-fanout` and prints progress and the `RESULT` line.
pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    args.common.check()?;
    let endpoint = Endpoint::parse(&args.common.endpoint)?;
    let shared = Arc::new(Shared {
        meter: SqsMeter::default(),
        produced: (0..args.publishers).map(|_| AtomicU64::new(0)).collect(),
        received_ids: (0..args.subscribers)
            .map(|_| Mutex::new(Vec::new()))
            .collect(),
        subscribers: u64::from(args.subscribers),
        backlog_max: args.backlog_max,
    });
    let topology = Topology::create(&args, &endpoint, &shared.meter).await?;
    eprintln!(
        "{}: {} publishers x Publish({} B), {} SQS subscribers ({}), one consumer each x \
         ReceiveMessage(10, wait {} s) + DeleteMessageBatch",
        topology.topic_arn,
        args.publishers,
        args.common.size,
        args.subscribers,
        if args.raw { "raw" } else { "envelope" },
        args.wait_seconds
    );
    let (stop_consumers, consumer_stop) = watch::channel(false);
    let (stop_publishers, publisher_stop) = watch::channel(false);
    let consumers = spawn_consumers(&args, &endpoint, &topology, &shared, &consumer_stop);
    let publishers = spawn_publishers(&args, &endpoint, &topology, &shared, &publisher_stop);
    tokio::time::sleep(args.common.warmup).await;
    let failed = || consumers.iter().chain(&publishers).any(|t| t.is_finished());
    let limit = Limit::Duration(args.common.duration);
    let measured = measure(&shared.meter, limit, args.common.broker_pid, failed).await;
    let _ = stop_publishers.send(true);
    let publishers_stopped = join_all(publishers, "publisher").await;
    let drained = drain(&shared).await;
    let _ = stop_consumers.send(true);
    let consumers_stopped = join_all(consumers, "consumer").await;
    let check = check(&shared);
    let deleted = topology.delete(&endpoint, &shared.meter).await;
    report(&args, &shared, &measured?, &check);
    publishers_stopped?;
    consumers_stopped?;
    deleted?;
    if !drained {
        eprintln!("the queues were not drained within {DRAIN_TIMEOUT:?}");
    }
    check.verdict()
}

fn report(args: &FanoutArgs, shared: &Shared, window: &Window, check: &Check) {
    println!(
        "RESULT scenario={} endpoint={} publishers={} subscribers={} delivery={} size={} \
         wait_seconds={} {} publishes_per_s={:.0} deliveries_per_s={:.0} published_total={} \
         sent_total={} deleted_total={} duplicates={} lost={} unknown={} {}",
        args.scenario,
        args.common.endpoint,
        args.publishers,
        args.subscribers,
        if args.raw { "raw" } else { "envelope" },
        args.common.size,
        args.wait_seconds,
        window.rate_fields(),
        window.rate(|s| s.sent),
        window.rate(|s| s.deleted),
        shared.meter.sent.get(),
        check.expected,
        shared.meter.deleted.get(),
        check.duplicates,
        check.lost,
        check.unknown,
        window.cpu_fields(),
    );
}

/// Waits until the consumers have deleted every delivery due; false on timeout. Runs after
/// the publishers have stopped, so the number due no longer moves.
async fn drain(shared: &Shared) -> bool {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.outstanding() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    true
}

/// Each queue's ids against the publishers' counts, added up: `expected` is deliveries due.
fn check(shared: &Shared) -> Check {
    let produced: Vec<u64> = shared
        .produced
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    let mut total = Check::default();
    for ids in &shared.received_ids {
        let mut ids = ids
            .lock()
            .map(|mut ids| std::mem::take(&mut *ids))
            .unwrap_or_default();
        total.add(&Check::compare(&produced, &mut ids));
    }
    total
}

fn spawn_publishers(
    args: &FanoutArgs,
    endpoint: &Endpoint,
    topology: &Topology,
    shared: &Arc<Shared>,
    stop: &StopSignal,
) -> Vec<ClientTask> {
    let template = sns_wire::publish_template(&topology.topic_arn, args.common.size);
    (0..args.publishers)
        .map(|index| {
            let connection = SqsConnection::new(endpoint.clone());
            let publisher = publish(
                index,
                connection,
                template.clone(),
                shared.clone(),
                stop.clone(),
            );
            tokio::spawn(publisher)
        })
        .collect()
}

/// One publisher: a Publish at a time until stopped.
async fn publish(
    index: u32,
    mut connection: SqsConnection,
    template: Template,
    shared: Arc<Shared>,
    stop: StopSignal,
) -> anyhow::Result<()> {
    let meter = &shared.meter;
    let mut sequence = 0;
    while !*stop.borrow() {
        if shared.outstanding() >= shared.backlog_max {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        let body = template.render(wire::message_id(index, sequence));
        let answer = connection.call_sns("Publish", body, meter).await?;
        sns_wire::element(&answer, "MessageId").context("Publish answer")?;
        sequence += 1;
        shared.produced[index as usize].store(sequence, Ordering::Relaxed);
        meter.sent.add(1);
    }
    Ok(())
}

fn spawn_consumers(
    args: &FanoutArgs,
    endpoint: &Endpoint,
    topology: &Topology,
    shared: &Arc<Shared>,
    stop: &StopSignal,
) -> Vec<ClientTask> {
    topology
        .queues
        .iter()
        .enumerate()
        .map(|(index, queue)| {
            let consumer = Consumer {
                index,
                connection: SqsConnection::new(endpoint.clone()),
                queue_url: queue.url.clone(),
                size: args.common.size,
                raw: args.raw,
                wait: Duration::from_secs(args.wait_seconds),
                shared: shared.clone(),
                ids: Vec::new(),
            };
            tokio::spawn(consumer.run(stop.clone()))
        })
        .collect()
}

/// The consumer of one subscribed queue: ReceiveMessage, then DeleteMessageBatch of what
/// came, until stopped.
struct Consumer {
    /// Which queue, as an index into `Shared::received_ids`.
    index: usize,
    connection: SqsConnection,
    queue_url: String,
    size: usize,
    raw: bool,
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
        if let Ok(mut all) = self.shared.received_ids[self.index].lock() {
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
            let id = if self.raw {
                wire::body_id(&message.body, self.size)?
            } else {
                wire::body_id(&sns_wire::envelope_message(&message.body)?, self.size)?
            };
            self.ids.push(id);
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
