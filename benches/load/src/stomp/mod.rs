//! The STOMP scenario: one producer and one consumer on a fresh queue, over raw STOMP 1.2.
//!
//! - The producer SENDs pre-encoded messages to `/queue/bench-<pid>-<nanos>` in batches of
//!   about 64 KiB; the last SEND of each batch asks for a `receipt` whose id is the count of
//!   messages sent so far, and at most `PRODUCER_WINDOW` messages may be sent beyond the last
//!   receipt (brokers answer receipts in order, so one receipt covers every earlier SEND).
//! - The consumer SUBSCRIBEs with `ack:client-individual` and a prefetch of
//!   `CONSUMER_PREFETCH` unacknowledged messages (`prefetch-count` for RabbitMQ and mqbridge,
//!   `activemq.prefetchSize` for ActiveMQ), and ACKs every MESSAGE by its `ack` header; the
//!   ACKs of one read are written together.
//!
//! After the warm-up it measures for the requested duration and prints received msg/s with
//! the CPU use of the client, the broker and everything else, as the MQTT scenario does.
//! Messages are not persistent (no `persistent:true`), the STOMP default on every broker here.

mod frame;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Notify, watch};

use crate::meter::{Meter, cores_used, machine_cpu_time, process_cpu_time};
use crate::scenario::{ClientTask, StopSignal, join_all, unique_suffix};
use crate::{DURATION_DEFAULT, WARMUP_DEFAULT, parse_duration};
use frame::{FrameReader, FrameWriter, connect};

/// Messages sent and not yet covered by a receipt: the same window as the AMQP confirm and
/// MQTT QoS 1 scenarios.
const PRODUCER_WINDOW: u64 = 1000;

/// Unacknowledged messages the broker may push to the consumer.
const CONSUMER_PREFETCH: &str = "1000";

/// Bytes per write syscall of the producer (as the AMQP and MQTT raw clients).
const SEND_BATCH_BYTES: usize = 64 * 1024;

/// Read room per read: one read brings in many messages (as the other raw clients).
const READ_BUFFER_BYTES: usize = 512 * 1024;

/// Subscription id of the consumer's one SUBSCRIBE.
const SUBSCRIPTION_ID: &[u8] = b"0";

/// How long the producer waits for its last receipts on stop before closing anyway.
const STOP_RECEIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often progress is printed during the measured window.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of the `stomp` scenario.
#[derive(Debug, clap::Args)]
pub struct StompArgs {
    /// Broker host (an IP address).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Broker STOMP port.
    #[arg(long, default_value_t = 61613)]
    pub port: u16,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Measured time, after the warm-up (`10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = DURATION_DEFAULT, value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring, so that the broker and the socket buffers settle.
    #[arg(long, default_value = WARMUP_DEFAULT, value_parser = parse_duration)]
    pub warmup: Duration,
    /// Process id of the broker, to report its CPU use over the measured window (Linux only).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// `login` header of CONNECT.
    #[arg(long, default_value = "guest")]
    pub login: String,
    /// `passcode` header of CONNECT.
    #[arg(long, default_value = "guest")]
    pub passcode: String,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "stomp")]
    pub scenario: String,
}

/// Receipts shared by the producer's writer and reader.
#[derive(Debug, Default)]
struct Settlement {
    /// Messages covered by receipts so far; written by the reader only.
    receipted: AtomicU64,
    changed: Notify,
}

/// Runs the `stomp` scenario and prints progress and the `RESULT` line.
pub async fn run(args: StompArgs) -> anyhow::Result<()> {
    let address = SocketAddr::new(args.host, args.port);
    let destination = format!("/queue/bench-{}", unique_suffix());
    let meter = Arc::new(Meter::default());
    let (stop_consumer, consumer_stop) = watch::channel(false);
    let (stop_producer, producer_stop) = watch::channel(false);
    let consumer = spawn_consumer(&args, address, &destination, meter.clone(), consumer_stop)
        .await
        .context("consumer")?;
    let producer = spawn_producer(&args, address, &destination, meter.clone(), producer_stop)
        .await
        .context("producer")?;
    eprintln!(
        "{destination}: 1 producer, 1 consumer, client-individual acks, {} B",
        args.size
    );
    let measured = measure(&args, &meter, &producer, &consumer).await;
    let _ = stop_producer.send(true);
    let producer_stopped = join_all(vec![producer], "producer").await;
    let _ = stop_consumer.send(true);
    let consumer_stopped = join_all(vec![consumer], "consumer").await;
    let report = measured?;
    producer_stopped?;
    consumer_stopped?;
    report.print(&args);
    Ok(())
}

async fn spawn_producer(
    args: &StompArgs,
    address: SocketAddr,
    destination: &str,
    meter: Arc<Meter>,
    stop: StopSignal,
) -> anyhow::Result<ClientTask> {
    let (reader, writer) = connect(address, &args.login, &args.passcode, READ_BUFFER_BYTES).await?;
    let body: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(args.size)
        .collect();
    let head = format!(
        "SEND\ndestination:{destination}\ncontent-type:application/octet-stream\n\
         content-length:{}\n",
        args.size
    );
    Ok(tokio::spawn(async move {
        let settlement = Settlement::default();
        let writing = send(writer, head.as_bytes(), &body, &meter, &settlement, stop);
        let reading = read_receipts(reader, &meter, &settlement);
        tokio::select! {
            written = writing => written,
            read = reading => read.and_then(|()| bail!("the receipt reader stopped early")),
        }
    }))
}

/// Appends one SEND frame: `head` (command and headers), an optional receipt, the body.
fn push_send(buffer: &mut bytes::BytesMut, head: &[u8], receipt: Option<u64>, body: &[u8]) {
    buffer.extend_from_slice(head);
    if let Some(receipt) = receipt {
        buffer.extend_from_slice(format!("receipt:{receipt}\n").as_bytes());
    }
    buffer.extend_from_slice(b"\n");
    buffer.extend_from_slice(body);
    buffer.extend_from_slice(b"\0");
}

/// The writer: sends batches until stopped, then waits for the last receipt and disconnects.
async fn send(
    mut writer: FrameWriter,
    head: &[u8],
    body: &[u8],
    meter: &Meter,
    settlement: &Settlement,
    mut stop: StopSignal,
) -> anyhow::Result<()> {
    let frame_bytes = head.len() + body.len() + 2;
    let batch_messages = (SEND_BATCH_BYTES / frame_bytes).max(1) as u64;
    let mut plain = bytes::BytesMut::new();
    for _ in 1..batch_messages {
        push_send(&mut plain, head, None, body);
    }
    let mut sent: u64 = 0;
    while !*stop.borrow_and_update() {
        if sent - settlement.receipted.load(Ordering::Acquire) + batch_messages > PRODUCER_WINDOW {
            tokio::select! {
                () = settlement.changed.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        writer.buffer.extend_from_slice(&plain);
        push_send(&mut writer.buffer, head, Some(sent + batch_messages), body);
        writer.flush().await?;
        sent += batch_messages;
        meter.published.add(batch_messages);
    }
    let drained = tokio::time::timeout(STOP_RECEIPT_TIMEOUT, async {
        while settlement.receipted.load(Ordering::Acquire) < sent {
            settlement.changed.notified().await;
        }
    });
    if drained.await.is_err() {
        eprintln!("producer: receipts outstanding after {STOP_RECEIPT_TIMEOUT:?}; closing");
    }
    writer.disconnect().await
}

/// The reader: records each receipt; fails on ERROR or anything unexpected.
async fn read_receipts(
    mut reader: FrameReader,
    meter: &Meter,
    settlement: &Settlement,
) -> anyhow::Result<()> {
    loop {
        let (command, receipt) = reader.next_with("receipt-id").await?;
        if command != "RECEIPT" {
            bail!("unexpected {command} on the producer's connection");
        }
        let covered: u64 = receipt
            .parse()
            .context("a receipt-id the producer did not send")?;
        let before = settlement.receipted.swap(covered, Ordering::AcqRel);
        meter.confirmed.add(covered.saturating_sub(before));
        settlement.changed.notify_one();
    }
}

async fn spawn_consumer(
    args: &StompArgs,
    address: SocketAddr,
    destination: &str,
    meter: Arc<Meter>,
    mut stop: StopSignal,
) -> anyhow::Result<ClientTask> {
    let (mut reader, mut writer) =
        connect(address, &args.login, &args.passcode, READ_BUFFER_BYTES).await?;
    writer.push(
        "SUBSCRIBE",
        &[
            ("id", SUBSCRIPTION_ID),
            ("destination", destination.as_bytes()),
            ("ack", b"client-individual"),
            ("prefetch-count", CONSUMER_PREFETCH.as_bytes()),
            ("activemq.prefetchSize", CONSUMER_PREFETCH.as_bytes()),
            ("receipt", b"subscribed"),
        ],
    );
    writer.flush().await?;
    let (command, _) = reader.next_with("receipt-id").await?;
    if command != "RECEIPT" {
        bail!("expected the SUBSCRIBE's RECEIPT, got {command}");
    }
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                filled = reader.fill() => filled?,
            }
            let count = take_messages(&mut reader, &mut writer)?;
            meter.consumed.add(count);
            writer.flush().await?;
        }
        writer.disconnect().await
    }))
}

/// Walks the whole frames in the read buffer, queueing an ACK per MESSAGE; returns the count.
fn take_messages(reader: &mut FrameReader, writer: &mut FrameWriter) -> anyhow::Result<u64> {
    let mut count = 0;
    while let Some(head) = reader.peek()? {
        match head.command() {
            b"MESSAGE" => {
                // STOMP 1.2 acks by the `ack` header; a broker without it acks by message-id.
                let id = head
                    .header("ack")
                    .or_else(|| head.header("message-id"))
                    .context("MESSAGE without ack or message-id header")?;
                writer.push("ACK", &[("id", id), ("subscription", SUBSCRIPTION_ID)]);
                count += 1;
            }
            b"ERROR" => bail!("the broker sent ERROR: {}", head.header_text("message")),
            other => bail!(
                "unexpected {} on the consumer's connection",
                String::from_utf8_lossy(other)
            ),
        }
        reader.advance();
    }
    Ok(count)
}

/// Figures of the measured window.
#[derive(Debug)]
struct Report {
    window: Duration,
    start: crate::meter::Sample,
    end: crate::meter::Sample,
    client_cores: Option<f64>,
    broker_cores: Option<f64>,
    machine_cores: Option<f64>,
}

/// Waits out the warm-up, then measures for `args.duration`, printing progress each second.
async fn measure(
    args: &StompArgs,
    meter: &Meter,
    producer: &ClientTask,
    consumer: &ClientTask,
) -> anyhow::Result<Report> {
    tokio::time::sleep(args.warmup).await;
    let own_pid = std::process::id();
    let broker_cpu = || args.broker_pid.and_then(process_cpu_time);
    let (client_cpu_start, broker_cpu_start, machine_cpu_start) =
        (process_cpu_time(own_pid), broker_cpu(), machine_cpu_time());
    let started = Instant::now();
    let start = meter.sample();
    let mut previous = (started, start);
    while started.elapsed() < args.duration {
        let remaining = args.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(remaining.min(PROGRESS_INTERVAL)).await;
        if producer.is_finished() || consumer.is_finished() {
            bail!("a client task ended during the measurement; see its error below");
        }
        let now = (Instant::now(), meter.sample());
        let seconds = now.0.duration_since(previous.0).as_secs_f64();
        eprintln!(
            "{:6.1}s  sent {:>9.0}/s  receipted {:>9.0}/s  received {:>9.0}/s",
            now.0.duration_since(started).as_secs_f64(),
            (now.1.published - previous.1.published) as f64 / seconds,
            (now.1.confirmed - previous.1.confirmed) as f64 / seconds,
            (now.1.consumed - previous.1.consumed) as f64 / seconds,
        );
        previous = now;
    }
    let window = started.elapsed();
    Ok(Report {
        window,
        start,
        end: meter.sample(),
        client_cores: cores_used(client_cpu_start, process_cpu_time(own_pid), window),
        broker_cores: cores_used(broker_cpu_start, broker_cpu(), window),
        machine_cores: cores_used(machine_cpu_start, machine_cpu_time(), window),
    })
}

impl Report {
    fn per_second(&self, before: u64, after: u64) -> f64 {
        (after - before) as f64 / self.window.as_secs_f64()
    }

    /// CPU used by everything but the client and the broker.
    fn other_cores(&self) -> Option<f64> {
        Some((self.machine_cores? - self.client_cores? - self.broker_cores?).max(0.0))
    }

    /// Prints a human summary on stderr and the machine-readable `RESULT` line on stdout.
    fn print(&self, args: &StompArgs) {
        let sent = self.per_second(self.start.published, self.end.published);
        let receipted = self.per_second(self.start.confirmed, self.end.confirmed);
        let received = self.per_second(self.start.consumed, self.end.consumed);
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        eprintln!(
            "received {received:.0} msg/s, sent {sent:.0} msg/s over {:.2}s; client CPU {} \
             cores, broker CPU {} cores, other CPU {} cores",
            self.window.as_secs_f64(),
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
        println!(
            "RESULT scenario={} size={} seconds={:.2} sent_per_s={sent:.0} \
             receipted_per_s={receipted:.0} received_per_s={received:.0} client_cpu={} \
             broker_cpu={} other_cpu={}",
            args.scenario,
            args.size,
            self.window.as_secs_f64(),
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
    }
}
