//! The MQTT scenarios: a raw MQTT 3.1.1 client on mqbridge's own codec, and two workloads.
//!
//! - `mqtt`: one publisher publishes to a fresh topic (`bench/<pid>-<nanos>`) as fast as the
//!   broker allows (QoS 0: TCP backpressure only; QoS 1: at most `QOS1_WINDOW` unacknowledged),
//!   and N subscribers, subscribed at the same QoS, count what they receive (at QoS 1 they
//!   PUBACK every message). After the warm-up it measures for the requested duration and
//!   prints received msg/s, summed and per subscriber, with the CPU use of the client, the
//!   broker and everything else, as the AMQP scenario does.
//! - `mqtt-idle`: opens N idle connections and reports how much the broker's resident memory
//!   grew per connection (see `idle`).
//!
//! The client works like the AMQP raw client (`crate::raw`): pre-encoded messages written in
//! 64 KiB batches, 512 KiB reads, acknowledgements queued during a read's walk and written
//! once. Each connection is its own tokio task; they share only `Meter` counters.

mod connection;
mod idle;
mod publisher;
mod subscriber;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mqbridge_mqtt::codec::QoS;
use tokio::sync::watch;

use crate::meter::{Meter, PaddedCounter, cores_used, machine_cpu_time, process_cpu_time};
use crate::scenario::{ClientTask, join_all, unique_suffix};
use crate::{DURATION_DEFAULT, WARMUP_DEFAULT, parse_duration};
pub use connection::Endpoint;
pub use idle::{IdleArgs, IdleConnection, open_idle_many, run_idle};
pub use transport::Transport;
use transport::TransportKind;

/// Keep Alive of the benchmark's connections: 0 turns it off (spec 3.1.2.10). A busy
/// benchmark connection never needs a PINGREQ, and a subscriber at QoS 0 sends nothing at all,
/// so any other value would have the broker close it after 1.5 keep-alive periods.
const BENCH_KEEP_ALIVE_SECONDS: u16 = 0;

/// Read buffer room per read: one read brings in thousands of small messages, which keeps the
/// subscriber's syscall count far below the message rate (as the AMQP raw consumer).
const READ_BUFFER_BYTES: usize = 512 * 1024;

/// How often progress is printed during the measured window.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of the `mqtt` scenario.
#[derive(Debug, clap::Args)]
pub struct MqttArgs {
    /// Broker host (an IP address).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Broker MQTT port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// QoS of the publishes and of the subscriptions: 0 or 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Message payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Number of subscriber connections; each receives every message.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Measured time, after the warm-up (`10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = DURATION_DEFAULT, value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring, so that the broker and the socket buffers settle.
    #[arg(long, default_value = WARMUP_DEFAULT, value_parser = parse_duration)]
    pub warmup: Duration,
    /// Process id of the broker, to report its CPU use over the measured window (Linux only).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// User name sent in CONNECT (RabbitMQ needs one; mqbridge and Mosquitto accept any).
    #[arg(long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(long)]
    pub password: Option<String>,
    /// How to reach the broker: plain TCP, WebSocket (`ws://`, subprotocol `mqtt`) or TLS.
    #[arg(long, value_enum, default_value_t = TransportKind::Tcp)]
    pub transport: TransportKind,
    /// URL path of the WebSocket endpoint (`--transport ws`).
    #[arg(long, default_value = "/ws")]
    pub ws_path: String,
    /// PEM file of the CA certificates to trust (`--transport tls`); the broker's certificate
    /// must name the `--host` address.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "mqtt")]
    pub scenario: String,
}

/// Everything the client tasks need to know about the workload; shared read-only.
#[derive(Debug)]
pub struct Workload {
    pub endpoint: Endpoint,
    /// The topic of this run, used by nobody else.
    pub topic: String,
    /// Client identifiers are this prefix plus `-pub` or `-sub<index>`.
    pub client_id_prefix: String,
    pub qos: QoS,
    /// Payload size in bytes.
    pub size: usize,
}

/// Runs the `mqtt` scenario and prints progress and the `RESULT` line.
pub async fn run(args: MqttArgs) -> anyhow::Result<()> {
    let unique = unique_suffix();
    let workload = Arc::new(Workload {
        endpoint: Endpoint {
            address: SocketAddr::new(args.host, args.port),
            username: args.username.clone(),
            password: args.password.clone(),
            transport: Transport::new(args.transport, &args.ws_path, args.ca_file.as_deref())?,
        },
        topic: format!("bench/{unique}"),
        client_id_prefix: format!("bench-{unique}"),
        qos: QoS::from_u8(args.qos).context("QoS must be 0 or 1")?,
        size: args.size,
    });
    let meter = Arc::new(Meter::default());
    let (stop_subscribers, subscribers_stop) = watch::channel(false);
    let (stop_publisher, publisher_stop) = watch::channel(false);
    let mut subscribers = Vec::new();
    let mut counters = Vec::new();
    for index in 0..args.subscribers {
        let counter = Arc::new(PaddedCounter::default());
        let (workload, meter, stop) = (workload.clone(), meter.clone(), subscribers_stop.clone());
        let task = subscriber::spawn_subscriber(index, workload, meter, counter.clone(), stop);
        subscribers.push(task.await?);
        counters.push(counter);
    }
    let publisher =
        publisher::spawn_publisher(workload.clone(), meter.clone(), publisher_stop).await?;
    eprintln!(
        "topic {}: 1 publisher, {} subscriber(s), QoS {}, {} B",
        workload.topic, args.subscribers, args.qos, args.size
    );
    let measured = measure(&args, &meter, &counters, &publisher, &subscribers).await;
    let _ = stop_publisher.send(true);
    let publisher_stopped = join_all(vec![publisher], "publisher").await;
    let _ = stop_subscribers.send(true);
    let subscribers_stopped = join_all(subscribers, "subscriber").await;
    let report = measured?;
    publisher_stopped?;
    subscribers_stopped?;
    report.print(&args);
    Ok(())
}

/// Counts at one instant: published, PUBACKed, and received per subscriber.
#[derive(Debug, Clone)]
struct Sample {
    published: u64,
    acked: u64,
    received: Vec<u64>,
}

fn sample(meter: &Meter, counters: &[Arc<PaddedCounter>]) -> Sample {
    Sample {
        published: meter.published.get(),
        acked: meter.confirmed.get(),
        received: counters.iter().map(|counter| counter.get()).collect(),
    }
}

/// Figures of the measured window.
#[derive(Debug)]
struct Report {
    window: Duration,
    start: Sample,
    end: Sample,
    client_cores: Option<f64>,
    broker_cores: Option<f64>,
    machine_cores: Option<f64>,
}

/// Waits out the warm-up, then measures for `args.duration`, printing progress each second.
/// Fails early if a client task ends, since that means the broker closed on it.
async fn measure(
    args: &MqttArgs,
    meter: &Meter,
    counters: &[Arc<PaddedCounter>],
    publisher: &ClientTask,
    subscribers: &[ClientTask],
) -> anyhow::Result<Report> {
    let all_running = || !publisher.is_finished() && subscribers.iter().all(|t| !t.is_finished());
    tokio::time::sleep(args.warmup).await;
    let own_pid = std::process::id();
    let broker_cpu = || args.broker_pid.and_then(process_cpu_time);
    let (client_cpu_start, broker_cpu_start, machine_cpu_start) =
        (process_cpu_time(own_pid), broker_cpu(), machine_cpu_time());
    let started = Instant::now();
    let start = sample(meter, counters);
    let mut previous = (started, start.clone());
    while started.elapsed() < args.duration {
        let remaining = args.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(remaining.min(PROGRESS_INTERVAL)).await;
        if !all_running() {
            bail!("a client task ended during the measurement; see its error below");
        }
        let now = (Instant::now(), sample(meter, counters));
        print_progress(started, &previous, &now);
        previous = now;
    }
    let window = started.elapsed();
    Ok(Report {
        window,
        start,
        end: sample(meter, counters),
        client_cores: cores_used(client_cpu_start, process_cpu_time(own_pid), window),
        broker_cores: cores_used(broker_cpu_start, broker_cpu(), window),
        machine_cores: cores_used(machine_cpu_start, machine_cpu_time(), window),
    })
}

fn print_progress(started: Instant, previous: &(Instant, Sample), now: &(Instant, Sample)) {
    let seconds = now.0.duration_since(previous.0).as_secs_f64();
    let rate = |before: u64, after: u64| (after - before) as f64 / seconds;
    let received = |sample: &Sample| sample.received.iter().sum::<u64>();
    eprintln!(
        "{:6.1}s  published {:>10.0}/s  acked {:>10.0}/s  received {:>10.0}/s",
        now.0.duration_since(started).as_secs_f64(),
        rate(previous.1.published, now.1.published),
        rate(previous.1.acked, now.1.acked),
        rate(received(&previous.1), received(&now.1)),
    );
}

impl Report {
    fn per_second(&self, before: u64, after: u64) -> f64 {
        (after - before) as f64 / self.window.as_secs_f64()
    }

    /// CPU used by everything but the client and the broker; above a few tenths of a core,
    /// other work competed for the cores and the figures are suspect.
    fn other_cores(&self) -> Option<f64> {
        Some((self.machine_cores? - self.client_cores? - self.broker_cores?).max(0.0))
    }

    /// Prints a human summary on stderr and the machine-readable `RESULT` line on stdout.
    fn print(&self, args: &MqttArgs) {
        let published = self.per_second(self.start.published, self.end.published);
        let acked = self.per_second(self.start.acked, self.end.acked);
        let per_subscriber: Vec<f64> = (self.start.received.iter().zip(&self.end.received))
            .map(|(&before, &after)| self.per_second(before, after))
            .collect();
        let received: f64 = per_subscriber.iter().sum();
        let mean = received / per_subscriber.len().max(1) as f64;
        let min = per_subscriber.iter().copied().fold(f64::INFINITY, f64::min);
        let max = per_subscriber.iter().copied().fold(0.0, f64::max);
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        eprintln!(
            "received {received:.0} msg/s ({mean:.0} per subscriber), published {published:.0} \
             msg/s over {:.2}s; client CPU {} cores, broker CPU {} cores, other CPU {} cores",
            self.window.as_secs_f64(),
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
        println!(
            "RESULT scenario={} transport={:?} qos={} size={} subscribers={} seconds={:.2} \
             published_per_s={published:.0} acked_per_s={acked:.0} received_per_s={received:.0} \
             per_subscriber_per_s={mean:.0} per_subscriber_min_per_s={:.0} \
             per_subscriber_max_per_s={max:.0} client_cpu={} broker_cpu={} other_cpu={}",
            args.scenario,
            args.transport,
            args.qos,
            args.size,
            args.subscribers,
            self.window.as_secs_f64(),
            if min.is_finite() { min } else { 0.0 },
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
    }
}
