//! The `overload` scenario (issue 11): a publish flood past the broker's memory watermark
//! while 10,000 connections are open and one slow consumer drains, checking that the broker
//! holds its memory, loses no confirmed message and recovers.
//!
//! Phases, all against one broker whose process id and `--memory-high-watermark-bytes` the
//! caller passes (`benches/overload.sh` starts it):
//!
//! 1. **Connections**: reads the broker's `VmRSS`, opens the idle MQTT connections (clean
//!    session, keep alive 600 s, 200 at a time, as `mqtt-idle`) so that with the flood's own
//!    connections `--connections` are open, waits `SETTLE`, reads `VmRSS` again: the growth is
//!    the connections' fixed cost.
//! 2. **Flood**: on a fresh durable queue, one slow consumer (`--slow-prefetch`, acking after
//!    `--slow-ack-delay` per message) and `--publishers` publishers with confirms (window
//!    `--confirm-window`) publishing persistent numbered messages as fast as the broker lets
//!    them, for `--duration`. The sampler thread reads `VmRSS` every 100 ms.
//! 3. **Drain**: the publishers stop (they finish once the broker confirms what it read), a
//!    fast consumer joins, and the drain ends when every confirmed id has been received.
//! 4. **Recovery**: a fresh publisher publishes one persistent message; the broker must
//!    confirm it within `--recovery-bound` without saying `connection.blocked`.
//! 5. **Report**: the `RESULT` line and the checks (see `report`); a failed check makes the
//!    run exit non-zero after printing its figures.
//!
//! The client runs on the caller's tokio runtime (publishers, consumers and the idle
//! connections' sockets) plus the sampler's OS thread.

mod consumer;
mod flow;
mod ledger;
mod publisher;
mod report;
mod sampler;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::meter::{Meter, cores_used, machine_cpu_time, process_cpu_time, status_kib};
use crate::mqtt::{Endpoint, IdleConnection, Transport, open_idle_many};
use crate::scenario::{ClientTask, PREFETCH_COUNT, join_all, unique_suffix};
use crate::{parse_duration, raw};
use consumer::{Pace, spawn_consumer};
use flow::FlowClock;
use ledger::Ledger;
use publisher::{Flood, Records, probe, spawn_publisher};
use report::{Figures, Limits, Report};
use sampler::Sampler;

/// Time for the broker to settle after the last idle CONNACK before its memory is read, as
/// in `mqtt-idle`.
const SETTLE: Duration = Duration::from_secs(3);

/// Connections of the flood itself besides the publishers: the slow consumer, the fast
/// consumer and the control connection that declares and deletes the queue.
const ACTIVE_CONNECTIONS_BESIDES_PUBLISHERS: usize = 3;

/// File descriptors the client needs beyond one per connection (runtime, stdio, /proc reads).
const SPARE_FILES: u64 = 100;

/// How often the flood and the drain check their client tasks and the ledger.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Memory the broker may use beyond the connections' measured cost and the watermark; see
/// docs/BENCHMARKS.md "Overload (issue 11)" for how it is made up.
const MARGIN_MIB_DEFAULT: u64 = 32;

/// Arguments of the `overload` scenario.
#[derive(Debug, clap::Args)]
pub struct OverloadArgs {
    /// AMQP URL of the broker; the vhost is the percent-encoded path (`%2F` is `/`).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2F")]
    pub url: String,
    /// Host of the broker's MQTT listener (an IP address), for the idle connections.
    #[arg(long, default_value = "127.0.0.1")]
    pub mqtt_host: IpAddr,
    /// Port of the broker's MQTT listener.
    #[arg(long, default_value_t = 1883)]
    pub mqtt_port: u16,
    /// MQTT user name of the idle connections.
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password of the idle connections.
    #[arg(long)]
    pub password: Option<String>,
    /// Connections open during the flood, its own included; the rest are idle MQTT ones.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Publisher connections of the flood.
    #[arg(long, default_value_t = 4)]
    pub publishers: u32,
    /// Message body size in bytes (one body frame; at least 12 for the message id).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Unconfirmed messages allowed per publisher.
    #[arg(long, default_value_t = 1000)]
    pub confirm_window: u32,
    /// How long the publishers flood (`30s`, `2m`, ...).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Prefetch of the slow consumer.
    #[arg(long, default_value_t = 10)]
    pub slow_prefetch: u16,
    /// The slow consumer waits this long per message it read before acking them.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub slow_ack_delay: Duration,
    /// Process id of the broker, whose memory is measured (Linux only).
    #[arg(long)]
    pub broker_pid: u32,
    /// The broker's memory high watermark in bytes (its `--memory-high-watermark-bytes`).
    #[arg(long)]
    pub watermark_bytes: u64,
    /// MiB the broker's peak RSS may exceed its RSS with the connections open plus the
    /// watermark.
    #[arg(long, default_value_t = MARGIN_MIB_DEFAULT)]
    pub margin_mib: u64,
    /// Longest the drain may take before the run fails.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Longest the recovery probe's publish may wait for its confirm.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub recovery_bound: Duration,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "overload")]
    pub scenario: String,
}

/// Runs the scenario, prints the `RESULT` line and fails if a check failed.
pub async fn run(args: OverloadArgs) -> anyhow::Result<()> {
    let active = args.publishers as usize + ACTIVE_CONNECTIONS_BESIDES_PUBLISHERS;
    let idle_count = args.connections.saturating_sub(active);
    check_open_files(idle_count + active)?;
    let rss_start_kib = status_kib(args.broker_pid, "VmRSS")?;
    let mut idle = open_idle(&args, idle_count).await?;
    let rss_idle_kib = status_kib(args.broker_pid, "VmRSS")?;
    let flood = Arc::new(Flood {
        url: args.url.clone(),
        queue: format!("mqbridge-bench-overload-{}", unique_suffix()),
        size: args.size,
        confirm_window: args.confirm_window,
    });
    let records = Records {
        ledger: Arc::new(Mutex::new(Ledger::new(args.publishers))),
        flow: Arc::new(FlowClock::default()),
        meter: Arc::new(Meter::default()),
    };
    let mut control = raw::Control::open(&args.url)
        .await
        .context("control connection")?;
    control.declare_queue(&flood.queue, true).await?;
    let sampler = Sampler::start(args.broker_pid, records.meter.clone(), records.flow.clone());
    let phases = flood_and_drain(&args, &flood, &records, &sampler).await;
    let samples = sampler.finish();
    let hwm_kib = status_kib(args.broker_pid, "VmHWM").unwrap_or(0);
    let idle_closed = idle
        .iter_mut()
        .filter_map(|c| c.closed_by_broker().then_some(()))
        .count();
    control.delete_queue(&flood.queue).await?;
    control.close().await?;
    let phases = phases?;
    let verdict = publisher::lock(&records.ledger).verdict();
    let figures = Figures {
        connections: idle.len() + active,
        idle_connections: idle.len(),
        idle_closed,
        rss_start_kib,
        rss_idle_kib,
        hwm_kib,
        samples,
        verdict,
        meter: records.meter.sample(),
        blocked: records.flow.blocked_time(),
        blocked_events: records.flow.events(),
        phases,
    };
    let report = Report::new(figures, Limits::from_args(&args));
    report.print(&args);
    report.verdict()
}

/// Fails early, with the fix, when the client cannot open `connections` sockets.
fn check_open_files(connections: usize) -> anyhow::Result<()> {
    let Some(limit) = open_files_limit() else {
        return Ok(());
    };
    let needed = connections as u64 + SPARE_FILES;
    if limit < needed {
        bail!(
            "the open-file limit is {limit}, and {connections} connections need {needed}: \
             raise it with `ulimit -n` (benches/overload.sh does)"
        );
    }
    Ok(())
}

/// The soft open-file limit of this process, from `/proc/self/limits` (Linux only).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        number => number.parse().ok(),
    }
}

/// Opens the idle MQTT connections and lets the broker settle.
async fn open_idle(args: &OverloadArgs, count: usize) -> anyhow::Result<Vec<IdleConnection>> {
    let endpoint = Endpoint {
        address: SocketAddr::new(args.mqtt_host, args.mqtt_port),
        username: args.username.clone(),
        password: args.password.clone(),
        transport: Transport::Tcp,
    };
    let started = Instant::now();
    let prefix = format!("overload-{}", unique_suffix());
    let idle = open_idle_many(&endpoint, &prefix, count)
        .await
        .context("opening the idle MQTT connections")?;
    eprintln!(
        "{count} idle MQTT connections open in {:.1}s; settling for {SETTLE:?}",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    Ok(idle)
}

/// What the flood, the drain and the recovery probe measured.
#[derive(Debug)]
pub struct Phases {
    pub flood: Duration,
    pub client_cores: Option<f64>,
    pub broker_cores: Option<f64>,
    pub machine_cores: Option<f64>,
    /// From the publishers' stop until every confirmed message was received; `None` when
    /// the drain timed out.
    pub drain: Option<Duration>,
    /// Client tasks that failed (the broker closed on them, or they did not stop).
    pub client_errors: usize,
    /// The probe's confirm time, or why there was none.
    pub recovery: Result<Duration, String>,
    /// The broker told the probe `connection.blocked`.
    pub probe_blocked: bool,
}

/// Stop signals of the flood's client groups.
struct Stops {
    publishers: watch::Sender<bool>,
    consumers: watch::Sender<bool>,
}

/// Runs phases 2 to 4: flood, drain and recovery.
async fn flood_and_drain(
    args: &OverloadArgs,
    flood: &Arc<Flood>,
    records: &Records,
    sampler: &Sampler,
) -> anyhow::Result<Phases> {
    let stops = Stops {
        publishers: watch::Sender::new(false),
        consumers: watch::Sender::new(false),
    };
    let slow = Pace::Slow {
        ack_delay: args.slow_ack_delay,
    };
    let mut consumers =
        vec![start_consumer(flood, args.slow_prefetch, slow, records, &stops).await?];
    let mut publishers = Vec::new();
    for index in 0..args.publishers {
        let stop = stops.publishers.subscribe();
        publishers.push(spawn_publisher(index, flood.clone(), records.clone(), stop).await?);
    }
    eprintln!(
        "queue {}: {} publishers, {} B persistent, confirm window {}, slow consumer prefetch {} \
         acking {:?} per message; flooding for {:?}",
        flood.queue,
        args.publishers,
        args.size,
        args.confirm_window,
        args.slow_prefetch,
        args.slow_ack_delay,
        args.duration
    );
    let mut phases = flood_for(args, sampler, &publishers).await;
    let _ = stops.publishers.send(true);
    let drain_started = Instant::now();
    consumers.push(start_consumer(flood, PREFETCH_COUNT, Pace::Fast, records, &stops).await?);
    let drained = wait_drained(&publishers, records, drain_started + args.drain_timeout).await;
    phases.drain = drained.then(|| drain_started.elapsed());
    eprintln!("drain: {:?}", phases.drain);
    let publishers_stopped = join_all(publishers, "publisher").await;
    let _ = stops.consumers.send(true);
    let consumers_stopped = join_all(consumers, "consumer").await;
    phases.client_errors =
        usize::from(publishers_stopped.is_err()) + usize::from(consumers_stopped.is_err());
    match probe(flood, args.recovery_bound).await {
        Ok(probe) => {
            phases.recovery = Ok(probe.confirmed_after);
            phases.probe_blocked = probe.told_blocked;
        }
        Err(error) => phases.recovery = Err(format!("{error:#}")),
    }
    Ok(phases)
}

async fn start_consumer(
    flood: &Flood,
    prefetch: u16,
    pace: Pace,
    records: &Records,
    stops: &Stops,
) -> anyhow::Result<ClientTask> {
    let (ledger, meter) = (records.ledger.clone(), records.meter.clone());
    let stop = stops.consumers.subscribe();
    spawn_consumer(
        &flood.url,
        &flood.queue,
        prefetch,
        pace,
        ledger,
        meter,
        stop,
    )
    .await
}

/// Floods for `args.duration` (less if a publisher ends early) and measures CPU meanwhile.
async fn flood_for(args: &OverloadArgs, sampler: &Sampler, publishers: &[ClientTask]) -> Phases {
    let own_pid = std::process::id();
    let client_start = process_cpu_time(own_pid);
    let broker_start = process_cpu_time(args.broker_pid);
    let machine_start = machine_cpu_time();
    let started = Instant::now();
    sampler.set_flooding(true);
    while started.elapsed() < args.duration {
        if publishers.iter().any(|task| task.is_finished()) {
            eprintln!("a publisher ended during the flood; see its error below");
            break;
        }
        let remaining = args.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(remaining.min(POLL_INTERVAL)).await;
    }
    sampler.set_flooding(false);
    let flood = started.elapsed();
    Phases {
        flood,
        client_cores: cores_used(client_start, process_cpu_time(own_pid), flood),
        broker_cores: cores_used(broker_start, process_cpu_time(args.broker_pid), flood),
        machine_cores: cores_used(machine_start, machine_cpu_time(), flood),
        drain: None,
        client_errors: 0,
        recovery: Err("not run".to_owned()),
        probe_blocked: false,
    }
}

/// Waits until every publisher has finished (all its messages settled) and every confirmed
/// message has been received, or until `deadline`; returns whether that happened.
async fn wait_drained(publishers: &[ClientTask], records: &Records, deadline: Instant) -> bool {
    loop {
        let published_all = publishers.iter().all(|task| task.is_finished());
        if published_all && publisher::lock(&records.ledger).outstanding() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
