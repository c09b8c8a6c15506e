//! The AMQP workload and one run of it: set-up, warm-up, measurement, report, clean stop.
//!
//! A run declares a fresh queue (non-durable, auto-delete, unique name) on a control
//! connection, starts the consumers (each on its own connection, consuming with manual acks,
//! acking with `multiple=true`), then the producers (each on its own connection, publishing
//! transient messages to the default exchange as fast as the broker accepts them, optionally
//! under a window of unconfirmed messages). After the warm-up it measures for the requested
//! duration, then stops producers before consumers, cancels the consumers and deletes the queue.
//! With `--durable` the queue is durable (and not auto-delete) and every message persistent
//! (`delivery-mode` 2), so with confirms each confirm waits for the broker's disk.
//!
//! Runs on the main task; every producer and consumer is its own tokio task, so they run in
//! parallel on the multi-thread runtime. The queue is managed with the raw client whatever
//! `--client` says, because declaring and deleting it is outside the measured window.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::meter::{Meter, Sample, cores_used, machine_cpu_time, process_cpu_time};
use crate::{AmqpArgs, ClientKind, lapin_client, raw};

/// Deliveries a consumer may hold unacked: at 150,000 msg/s that is about 7 ms of traffic,
/// many loopback ack round trips, so the broker never idles waiting for credit.
pub const PREFETCH_COUNT: u16 = 1000;

/// A consumer acks with `multiple=true` after this many deliveries: one ack frame per 100
/// messages keeps ack traffic negligible, and it is well below `PREFETCH_COUNT / 2`, so the
/// broker never runs out of credit while the ack travels.
pub const ACK_EVERY: u64 = 100;

/// How often progress is printed during the measured window.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Time allowed for each group of tasks to stop (wait for confirms, cancel, close); a broker
/// that does not answer by then is reported as failing to stop cleanly.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything the client tasks need to know about the workload; shared read-only.
#[derive(Debug)]
pub struct Workload {
    /// Broker URL as given on the command line.
    pub url: String,
    /// Name of the queue declared for this run.
    pub queue: String,
    /// Message body size in bytes.
    pub size: usize,
    /// Unconfirmed messages allowed per producer; 0 disables publisher confirms.
    pub confirm_window: u32,
    /// A durable queue and persistent messages (`delivery-mode` 2) instead of transient ones.
    pub durable: bool,
    /// Each producer stops after this many messages (and their confirms); `None`: when told.
    pub messages_max: Option<u64>,
}

/// AMQP `delivery-mode` values: 1 transient, 2 persistent (stored on a durable queue).
const DELIVERY_MODE_TRANSIENT: u8 = 1;
const DELIVERY_MODE_PERSISTENT: u8 = 2;

impl Workload {
    /// The `delivery-mode` every published message carries.
    pub fn delivery_mode(&self) -> u8 {
        if self.durable {
            DELIVERY_MODE_PERSISTENT
        } else {
            DELIVERY_MODE_TRANSIENT
        }
    }
}

/// Set to `true` to ask a group of tasks to stop.
pub type StopSignal = watch::Receiver<bool>;

/// A running producer or consumer; it returns once stopped or on error.
pub type ClientTask = JoinHandle<anyhow::Result<()>>;

/// Runs the scenario described by `args` and prints progress and the `RESULT` line.
pub async fn run(args: AmqpArgs) -> anyhow::Result<()> {
    let workload = Arc::new(Workload {
        url: args.url.clone(),
        queue: unique_queue_name(),
        size: args.size,
        confirm_window: args.confirm_window,
        durable: args.durable,
        messages_max: None,
    });
    let meter = Arc::new(Meter::default());
    let mut control = raw::Control::open(&workload.url)
        .await
        .context("control connection")?;
    control
        .declare_queue(&workload.queue, workload.durable)
        .await?;
    let (stop_consumers, consumers_stop) = watch::channel(false);
    let (stop_producers, producers_stop) = watch::channel(false);
    let mut consumers = Vec::new();
    for _ in 0..args.consumers {
        consumers.push(spawn_consumer(&args, &workload, &meter, &consumers_stop).await?);
    }
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        producers.push(spawn_producer(&args, &workload, &meter, &producers_stop).await?);
    }
    eprintln!(
        "queue {}: {} producer(s), {} consumer(s), {} B, confirm window {}, client {:?}",
        workload.queue, args.producers, args.consumers, args.size, args.confirm_window, args.client
    );
    let measured = measure(&args, &meter, &producers, &consumers).await;
    let _ = stop_producers.send(true);
    let producers_stopped = join_all(producers, "producer").await;
    let _ = stop_consumers.send(true);
    let consumers_stopped = join_all(consumers, "consumer").await;
    control.delete_queue(&workload.queue).await?;
    control.close().await?;
    let report = measured?;
    producers_stopped?;
    consumers_stopped?;
    report.print(&args);
    Ok(())
}

async fn spawn_consumer(
    args: &AmqpArgs,
    workload: &Arc<Workload>,
    meter: &Arc<Meter>,
    stop: &StopSignal,
) -> anyhow::Result<ClientTask> {
    let (workload, meter, stop) = (workload.clone(), meter.clone(), stop.clone());
    match args.client {
        ClientKind::Raw => raw::spawn_consumer(workload, meter, stop).await,
        ClientKind::Lapin => lapin_client::spawn_consumer(workload, meter, stop).await,
    }
}

async fn spawn_producer(
    args: &AmqpArgs,
    workload: &Arc<Workload>,
    meter: &Arc<Meter>,
    stop: &StopSignal,
) -> anyhow::Result<ClientTask> {
    let (workload, meter, stop) = (workload.clone(), meter.clone(), stop.clone());
    match args.client {
        ClientKind::Raw => raw::spawn_producer(workload, meter, stop).await,
        ClientKind::Lapin => lapin_client::spawn_producer(workload, meter, stop).await,
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
    args: &AmqpArgs,
    meter: &Meter,
    producers: &[ClientTask],
    consumers: &[ClientTask],
) -> anyhow::Result<Report> {
    let all_running = || {
        producers
            .iter()
            .chain(consumers)
            .all(|task| !task.is_finished())
    };
    tokio::time::sleep(args.warmup).await;
    let own_pid = std::process::id();
    let broker_pid = args.broker_pid;
    let (client_cpu_start, broker_cpu_start, machine_cpu_start) = (
        process_cpu_time(own_pid),
        broker_pid.and_then(process_cpu_time),
        machine_cpu_time(),
    );
    let started = Instant::now();
    let start = meter.sample();
    let mut previous = (started, start);
    while started.elapsed() < args.duration {
        let remaining = args.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(remaining.min(PROGRESS_INTERVAL)).await;
        if !all_running() {
            bail!("a client task ended during the measurement; see its error below");
        }
        let now = (Instant::now(), meter.sample());
        print_progress(started, previous, now);
        previous = now;
    }
    let window = started.elapsed();
    let end = meter.sample();
    Ok(Report {
        window,
        start,
        end,
        client_cores: cores_used(client_cpu_start, process_cpu_time(own_pid), window),
        broker_cores: cores_used(
            broker_cpu_start,
            broker_pid.and_then(process_cpu_time),
            window,
        ),
        machine_cores: cores_used(machine_cpu_start, machine_cpu_time(), window),
    })
}

fn print_progress(started: Instant, previous: (Instant, Sample), now: (Instant, Sample)) {
    let seconds = now.0.duration_since(previous.0).as_secs_f64();
    let rate = |before: u64, after: u64| (after - before) as f64 / seconds;
    eprintln!(
        "{:6.1}s  published {:>10.0}/s  confirmed {:>10.0}/s  consumed {:>10.0}/s",
        now.0.duration_since(started).as_secs_f64(),
        rate(previous.1.published, now.1.published),
        rate(previous.1.confirmed, now.1.confirmed),
        rate(previous.1.consumed, now.1.consumed),
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
    fn print(&self, args: &AmqpArgs) {
        let published = self.per_second(self.start.published, self.end.published);
        let consumed = self.per_second(self.start.consumed, self.end.consumed);
        let confirmed = self.per_second(self.start.confirmed, self.end.confirmed);
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        eprintln!(
            "consumed {consumed:.0} msg/s, published {published:.0} msg/s over {:.2}s; \
             client CPU {} cores, broker CPU {} cores, other CPU {} cores",
            self.window.as_secs_f64(),
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
        println!(
            "RESULT scenario={} client={:?} size={} confirm={} durable={} producers={} \
             consumers={} seconds={:.2} published_per_s={published:.0} \
             confirmed_per_s={confirmed:.0} consumed_per_s={consumed:.0} client_cpu={} \
             broker_cpu={} other_cpu={}",
            args.scenario,
            args.client,
            args.size,
            args.confirm_window,
            args.durable,
            args.producers,
            args.consumers,
            self.window.as_secs_f64(),
            cores(self.client_cores),
            cores(self.broker_cores),
            cores(self.other_cores()),
        );
    }
}

/// Waits for each task, for at most `STOP_TIMEOUT` in total; the first failure is returned
/// after all have been waited for, so that no task is left running unobserved.
pub async fn join_all(tasks: Vec<ClientTask>, role: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    let mut first_error = None;
    for (index, mut task) in tasks.into_iter().enumerate() {
        let outcome = match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(()))) => continue,
            Ok(Ok(Err(error))) => error,
            Ok(Err(join_error)) => anyhow::Error::new(join_error),
            Err(_) => {
                // A task that does not stop in time is ended, so the run still terminates.
                task.abort();
                anyhow::anyhow!("did not stop within {STOP_TIMEOUT:?}")
            }
        };
        eprintln!("{role} {index}: {outcome:#}");
        first_error.get_or_insert(outcome.context(format!("{role} {index}")));
    }
    first_error.map_or(Ok(()), Err)
}

/// A queue name no earlier run used.
fn unique_queue_name() -> String {
    format!("mqbridge-bench-{}", unique_suffix())
}

/// A suffix no earlier run used: the process id and the wall clock in nanoseconds.
pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos());
    format!("{}-{nanos}", std::process::id())
}
