//! The Amazon SQS scenarios, over AWS JSON 1.0 on plain keep-alive HTTP/1.1, so that the same
//! run can measure mqbridge's SQS listener and moto's server (`benches/compare-sqs.sh`).
//!
//! - `sqs-batch` ([`batch`]): producers send SendMessageBatch requests of 10 messages;
//!   consumers ReceiveMessage (10 at most, long polling) and DeleteMessageBatch what they got.
//!   Afterwards the queue is drained and every message id is checked: nothing may be lost.
//! - `sqs-send` ([`send`]): clients send single SendMessage requests, one at a time each.
//! - `sns-fanout` ([`sns`]): publishers Publish to an SNS topic (Query protocol) with 10 SQS
//!   queues subscribed; one consumer per queue receives and deletes; every publish must reach
//!   every queue.
//!
//! Each run creates a fresh queue `mqbridge-bench-<pid>-<nanos>` with CreateQueue, uses the
//! QueueUrl the endpoint answers, and deletes the queue at the end. Every client task owns one
//! HTTP connection ([`client`]) and has one request outstanding at a time, as an SDK client
//! does; concurrency comes from the number of tasks.
//!
//! Layout: [`client`] the HTTP connection; [`wire`] the JSON bodies; [`sns_wire`] SNS's Query
//! forms and XML answers; this file the arguments, the counters, the measured window and the
//! report.

pub mod batch;
mod client;
pub mod send;
pub mod sns;
mod sns_wire;
mod wire;

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::meter::{PaddedCounter, cores_used, machine_cpu_time, process_cpu_time};
use crate::scenario::unique_suffix;
use crate::{DURATION_DEFAULT, WARMUP_DEFAULT, parse_duration};
use client::{Action, Endpoint, SqsConnection};

pub use batch::run as run_batch;
pub use send::run as run_send;
pub use sns::run as run_sns_fanout;

/// How often progress is printed during the measured window.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments every SQS scenario takes.
#[derive(Debug, clap::Args)]
pub struct SqsArgs {
    /// The SQS endpoint, `http://IP:PORT` (mqbridge: 9324; moto_server: 5000).
    #[arg(long, default_value = "http://127.0.0.1:9324")]
    pub endpoint: String,
    /// Message body size in bytes (at least 16: the body starts with the message's id).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Measured time, after the warm-up (`10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = DURATION_DEFAULT, value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring, so that connections and the endpoint settle.
    #[arg(long, default_value = WARMUP_DEFAULT, value_parser = parse_duration)]
    pub warmup: Duration,
    /// Process id of the endpoint's server, to report its CPU use (Linux only).
    #[arg(long)]
    pub broker_pid: Option<u32>,
}

impl SqsArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.size < wire::ID_DIGITS {
            bail!("--size must be at least {} bytes", wire::ID_DIGITS);
        }
        Ok(())
    }
}

/// Counts of one run, summed over all client tasks.
#[derive(Debug, Default)]
pub struct SqsMeter {
    /// Messages the endpoint answered 200 for (stored, for mqbridge on disk).
    pub sent: PaddedCounter,
    /// Messages received by consumers.
    pub received: PaddedCounter,
    /// Messages whose DeleteMessageBatch entry succeeded.
    pub deleted: PaddedCounter,
    /// HTTP requests answered, of any action.
    pub requests: PaddedCounter,
    /// TCP connections opened.
    pub connects: PaddedCounter,
}

/// A snapshot of the meter.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    sent: u64,
    received: u64,
    deleted: u64,
    requests: u64,
    connects: u64,
}

impl SqsMeter {
    fn sample(&self) -> Sample {
        Sample {
            sent: self.sent.get(),
            received: self.received.get(),
            deleted: self.deleted.get(),
            requests: self.requests.get(),
            connects: self.connects.get(),
        }
    }
}

/// The run's queue: created fresh, deleted at the end.
struct Queue {
    url: String,
}

impl Queue {
    async fn create(endpoint: &Endpoint, meter: &SqsMeter) -> anyhow::Result<Queue> {
        let name = format!("mqbridge-bench-{}", unique_suffix());
        Queue::create_named(endpoint, meter, &name).await
    }

    async fn create_named(
        endpoint: &Endpoint,
        meter: &SqsMeter,
        name: &str,
    ) -> anyhow::Result<Queue> {
        let mut connection = SqsConnection::new(endpoint.clone());
        let body = wire::create_queue(name);
        let answer = connection
            .call(Action::CreateQueue, body, Duration::ZERO, meter)
            .await?;
        Ok(Queue {
            url: wire::queue_url(&answer)?,
        })
    }

    /// The queue's ARN as the endpoint reports it (its account id is the endpoint's own).
    async fn arn(&self, endpoint: &Endpoint, meter: &SqsMeter) -> anyhow::Result<String> {
        let mut connection = SqsConnection::new(endpoint.clone());
        let body = wire::queue_arn_request(&self.url);
        let answer = connection
            .call(Action::GetQueueAttributes, body, Duration::ZERO, meter)
            .await?;
        wire::queue_arn(&answer)
    }

    async fn delete(&self, endpoint: &Endpoint, meter: &SqsMeter) -> anyhow::Result<()> {
        let mut connection = SqsConnection::new(endpoint.clone());
        let body = wire::queue_only(&self.url);
        connection
            .call(Action::DeleteQueue, body, Duration::ZERO, meter)
            .await?;
        Ok(())
    }
}

/// When the measured window ends.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// After this long.
    Duration(Duration),
    /// When this many messages have been deleted.
    Deleted(u64),
}

/// Figures of the measured window.
#[derive(Debug)]
struct Window {
    elapsed: Duration,
    start: Sample,
    end: Sample,
    client_cores: Option<f64>,
    broker_cores: Option<f64>,
    machine_cores: Option<f64>,
}

/// Measures until `limit`, printing progress each second; fails early if `failed()` says a
/// client task has ended.
async fn measure(
    meter: &SqsMeter,
    limit: Limit,
    broker_pid: Option<u32>,
    failed: impl Fn() -> bool,
) -> anyhow::Result<Window> {
    let own_pid = std::process::id();
    let broker_cpu = || broker_pid.and_then(process_cpu_time);
    let cpu_start = (process_cpu_time(own_pid), broker_cpu(), machine_cpu_time());
    let started = Instant::now();
    let start = meter.sample();
    let mut previous = (started, start);
    let done = |sample: &Sample| match limit {
        Limit::Duration(duration) => started.elapsed() >= duration,
        Limit::Deleted(count) => sample.deleted >= count,
    };
    while !done(&previous.1) {
        let step = match limit {
            Limit::Duration(duration) => duration.saturating_sub(started.elapsed()),
            Limit::Deleted(_) => PROGRESS_INTERVAL,
        };
        tokio::time::sleep(step.min(PROGRESS_INTERVAL)).await;
        if failed() {
            bail!("a client task ended during the measurement; see its error below");
        }
        let now = (Instant::now(), meter.sample());
        print_progress(started, previous, now);
        previous = now;
    }
    let elapsed = started.elapsed();
    Ok(Window {
        elapsed,
        start,
        end: meter.sample(),
        client_cores: cores_used(cpu_start.0, process_cpu_time(own_pid), elapsed),
        broker_cores: cores_used(cpu_start.1, broker_cpu(), elapsed),
        machine_cores: cores_used(cpu_start.2, machine_cpu_time(), elapsed),
    })
}

fn print_progress(started: Instant, previous: (Instant, Sample), now: (Instant, Sample)) {
    let seconds = now.0.duration_since(previous.0).as_secs_f64().max(1e-9);
    let rate = |field: fn(&Sample) -> u64| (field(&now.1) - field(&previous.1)) as f64 / seconds;
    eprintln!(
        "{:6.1}s  sent {:>8.0}/s  received {:>8.0}/s  deleted {:>8.0}/s  requests {:>7.0}/s  \
         connects {:>6.0}/s",
        now.0.duration_since(started).as_secs_f64(),
        rate(|s| s.sent),
        rate(|s| s.received),
        rate(|s| s.deleted),
        rate(|s| s.requests),
        rate(|s| s.connects),
    );
}

impl Window {
    /// Events per second of one counter over the window.
    fn rate(&self, field: fn(&Sample) -> u64) -> f64 {
        (field(&self.end) - field(&self.start)) as f64 / self.elapsed.as_secs_f64()
    }

    /// The `seconds=` and rate fields every SQS RESULT line has.
    fn rate_fields(&self) -> String {
        format!(
            "seconds={:.2} sent_per_s={:.0} received_per_s={:.0} deleted_per_s={:.0} \
             requests_per_s={:.0} connects_per_s={:.0}",
            self.elapsed.as_secs_f64(),
            self.rate(|s| s.sent),
            self.rate(|s| s.received),
            self.rate(|s| s.deleted),
            self.rate(|s| s.requests),
            self.rate(|s| s.connects),
        )
    }

    /// The CPU fields, in cores: the tool, the endpoint's server, everything else.
    fn cpu_fields(&self) -> String {
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        format!(
            "client_cpu={} broker_cpu={} other_cpu={}",
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        )
    }

    /// CPU used by everything but the tool and the server.
    fn other_cores(&self) -> Option<f64> {
        Some((self.machine_cores? - self.client_cores? - self.broker_cores?).max(0.0))
    }
}
