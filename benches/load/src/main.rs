//! `mqbridge-bench`: the end-to-end load generator for mqbridge and its peers.
//!
//! It drives one broker over the network and prints what the broker sustained, so that the
//! same binary can measure mqbridge and a reference broker (RabbitMQ) in the same run; see
//! `benches/compare.sh` and `docs/BENCHMARKS.md`. Per-crate micro-benchmarks (codecs, routing,
//! store) live in each crate's `benches/` as criterion benches; this binary owns only the
//! whole-broker view.
//!
//! Layout:
//! - `scenario`: the workload (queue, producers, consumers, confirm window) and the run:
//!   set-up, warm-up, measurement, report, clean stop.
//! - `meter`: shared counters and the CPU clocks the report reads.
//! - `raw`: a small AMQP 0-9-1 client on `amq-protocol` that batches writes; the default,
//!   because it is several times faster than the broker it measures.
//! - `fill`: stores N persistent messages and exits, to time the broker's recovery.
//! - `lapin_client`: the same workload on lapin, kept to check that the figures do not depend
//!   on the client.
//! - `mqtt`: the MQTT 3.1.1 scenarios (publish/subscribe throughput, idle-connection memory)
//!   on a raw client over mqbridge's own codec, over TCP, WebSocket or TLS; see
//!   `benches/compare-mqtt.sh` and `benches/compare-ws-tls.sh`.
//! - `stomp`: 1 producer -> 1 consumer on a raw STOMP 1.2 client with `client-individual`
//!   acks; see `benches/compare-stomp.sh`.
//! - `overload`: a publish flood past the broker's memory watermark with 10,000 connections
//!   open and one slow consumer, checking memory, loss and recovery (issue 11); see
//!   `benches/overload.sh`.
//! - `sqs`: the Amazon SQS API over AWS JSON 1.0 on keep-alive HTTP/1.1 (SendMessageBatch +
//!   ReceiveMessage + DeleteMessageBatch, and single SendMessage); see `benches/compare-sqs.sh`.
//!   Also Amazon SNS, served on the same endpoint: Publish fanned out to SQS queues (Query
//!   protocol); see `benches/compare-sns.sh`.
//!
//! Invariant: the client must be faster than the broker under test, or the tool measures itself.
//! The report prints the client's CPU use so a reader can check this.

mod fill;
mod lapin_client;
mod meter;
mod mqtt;
mod overload;
mod raw;
mod scenario;
mod sqs;
mod stomp;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Measured time per run: long enough that a one-second hiccup moves the mean by under 10%,
/// short enough that the four comparison scenarios on two brokers take a few minutes.
const DURATION_DEFAULT: &str = "10s";

/// Warm-up before measuring: connections, queue processes and socket buffers settle within
/// a few hundred milliseconds on loopback.
const WARMUP_DEFAULT: &str = "1s";

/// Runtime worker threads: one per core of the 2-core reference machine, so the producer and
/// the consumer can run in parallel; the client needs far less than that.
const CLIENT_THREADS_DEFAULT: usize = 2;

/// Command line of the load generator.
#[derive(Debug, Parser)]
#[command(name = "mqbridge-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One subcommand per protocol; each runs one scenario and prints a `RESULT` line.
#[derive(Debug, Subcommand)]
enum Command {
    /// AMQP 0-9-1: producers publish to a fresh queue, consumers consume with manual acks.
    Amqp(AmqpArgs),
    /// AMQP 0-9-1: store N persistent messages in a durable queue and leave them there.
    AmqpFill(fill::FillArgs),
    /// MQTT 3.1.1: one publisher to a fresh topic, N subscribers at the same QoS.
    Mqtt(mqtt::MqttArgs),
    /// MQTT 3.1.1: open N idle connections and report the broker's memory per connection.
    MqttIdle(mqtt::IdleArgs),
    /// AMQP 0-9-1 + MQTT: a persistent publish flood past the memory watermark with N
    /// connections open and one slow consumer; checks memory, loss and recovery.
    Overload(overload::OverloadArgs),
    /// STOMP 1.2: one producer to a fresh queue, one consumer with client-individual acks.
    Stomp(stomp::StompArgs),
    /// Amazon SQS: SendMessageBatch producers, ReceiveMessage + DeleteMessageBatch consumers,
    /// and a check that no message is lost.
    SqsBatch(sqs::batch::BatchArgs),
    /// Amazon SQS: single SendMessage requests from concurrent clients.
    SqsSend(sqs::send::SendArgs),
    /// Amazon SNS: Publish to a topic with SQS queues subscribed, a consumer per queue, and
    /// a check that every publish reached every queue.
    SnsFanout(sqs::sns::FanoutArgs),
}

/// Which AMQP client library drives the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    /// The built-in client on amq-protocol with batched writes (fast).
    Raw,
    /// lapin, a general-purpose client (convenient, slower).
    Lapin,
}

/// Arguments of the `amqp` scenario.
#[derive(Debug, clap::Args)]
pub struct AmqpArgs {
    /// Broker URL; the vhost is the percent-encoded path (`%2F` is `/`).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2F")]
    pub url: String,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 16)]
    pub size: usize,
    /// Measured time, after the warm-up (`10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = DURATION_DEFAULT, value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring, so that the broker and the socket buffers reach a steady state.
    #[arg(long, default_value = WARMUP_DEFAULT, value_parser = parse_duration)]
    pub warmup: Duration,
    /// Use publisher confirms with at most this many unconfirmed messages per producer;
    /// 0 publishes without confirms.
    #[arg(long, default_value_t = 0)]
    pub confirm_window: u32,
    /// Number of producer connections.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Number of consumer connections.
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Client library.
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    pub client: ClientKind,
    /// Process id of the broker, to report its CPU use over the measured window (Linux only).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Worker threads of the client's tokio runtime.
    #[arg(long, default_value_t = CLIENT_THREADS_DEFAULT)]
    pub client_threads: usize,
    /// A durable queue and persistent messages (`delivery-mode` 2): with confirms, each
    /// confirm waits for the broker's disk.
    #[arg(long)]
    pub durable: bool,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "amqp")]
    pub scenario: String,
}

/// Parses `10s`, `250ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_seconds) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (expected e.g. 10s, 500ms, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "invalid duration `{text}`: must be a non-negative number"
        ));
    }
    Ok(Duration::from_secs_f64(value * unit_seconds))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The producer and consumer tasks must run in parallel, so the runtime is multi-threaded.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Amqp(args) => runtime.block_on(scenario::run(args)),
        Command::AmqpFill(args) => runtime.block_on(fill::run(args)),
        Command::Mqtt(args) => runtime.block_on(mqtt::run(args)),
        Command::MqttIdle(args) => runtime.block_on(mqtt::run_idle(args)),
        Command::Overload(args) => runtime.block_on(overload::run(args)),
        Command::Stomp(args) => runtime.block_on(stomp::run(args)),
        Command::SqsBatch(args) => runtime.block_on(sqs::run_batch(args)),
        Command::SqsSend(args) => runtime.block_on(sqs::run_send(args)),
        Command::SnsFanout(args) => runtime.block_on(sqs::run_sns_fanout(args)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
