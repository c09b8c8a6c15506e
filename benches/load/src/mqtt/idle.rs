//! The `mqtt-idle` scenario: what an idle MQTT connection costs the broker in memory.
//!
//! Reads the broker's resident set (`VmRSS` in `/proc/PID/status`), opens N connections
//! (CONNECT with a keep alive of `IDLE_KEEP_ALIVE_SECONDS`, each waiting for its CONNACK),
//! `OPEN_BATCH` at a time in parallel, waits `SETTLE` for the broker to finish whatever it
//! does after accepting, reads the resident set again and reports the growth per connection.
//! The connections then close all at once when the process exits.
//!
//! The figure is the broker's own view of the cost (heap, buffers, tasks or processes), not
//! the kernel's socket memory, which is the same for every broker. A broker that grows its
//! heap in large steps or returns freed memory late makes the figure coarse; 10,000
//! connections make such steps small per connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::try_join_all;
use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};

use super::connection::{Connection, Endpoint};
use super::transport::{Stream, Transport};
use super::unique_suffix;
use crate::meter::status_kib;

/// Keep Alive of the idle connections: long enough that no PINGREQ is due during the
/// measurement (the broker would close a silent connection after 1.5 periods), and a value
/// real idle devices use.
const IDLE_KEEP_ALIVE_SECONDS: u16 = 600;

/// Connections opened in parallel: enough to open 10,000 in seconds, few enough not to
/// overflow the listen backlog (128 to 4096 by broker) and drop SYNs into retry timeouts.
const OPEN_BATCH: usize = 200;

/// Read room of an idle connection's handshake: a CONNACK is 4 octets, and 10,000 large
/// buffers would cost the client gigabytes.
const IDLE_READ_BYTES: usize = 64;

/// Time to let the broker settle after the last CONNACK before reading its memory, so that
/// work it does after accepting (e.g. RabbitMQ's per-connection processes) is counted.
const SETTLE: Duration = Duration::from_secs(3);

/// A CONNACK slower than this means the broker is stuck or refusing; the run fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes per KiB, for the `kB` (really KiB) figures of `/proc/PID/status`.
const KIB: u64 = 1024;

/// Arguments of the `mqtt-idle` scenario.
#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// Broker host (an IP address).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Broker MQTT port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Process id of the broker, whose resident memory is measured.
    #[arg(long)]
    pub broker_pid: u32,
    /// User name sent in CONNECT.
    #[arg(long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(long)]
    pub password: Option<String>,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "idle")]
    pub scenario: String,
}

/// Runs the `mqtt-idle` scenario and prints the `RESULT` line.
pub async fn run_idle(args: IdleArgs) -> anyhow::Result<()> {
    let endpoint = Endpoint {
        address: SocketAddr::new(args.host, args.port),
        username: args.username.clone(),
        password: args.password.clone(),
        transport: Transport::Tcp,
    };
    let prefix = format!("idle-{}", unique_suffix());
    let rss_before = status_kib(args.broker_pid, "VmRSS")?;
    let started = std::time::Instant::now();
    let open = open_idle_many(&endpoint, &prefix, args.connections).await?;
    eprintln!(
        "{} connections open in {:.1}s; settling for {SETTLE:?}",
        open.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let rss_after = status_kib(args.broker_pid, "VmRSS")?;
    let grown_bytes = rss_after.saturating_sub(rss_before) * KIB;
    let per_connection = grown_bytes / (args.connections.max(1) as u64);
    println!(
        "RESULT scenario={} connections={} rss_before_kib={rss_before} \
         rss_after_kib={rss_after} per_connection_bytes={per_connection}",
        args.scenario, args.connections
    );
    drop(open);
    Ok(())
}

/// Opens `count` idle connections, `OPEN_BATCH` at a time, with client ids `PREFIX-N`.
pub async fn open_idle_many(
    endpoint: &Endpoint,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<IdleConnection>> {
    let mut open = Vec::with_capacity(count);
    while open.len() < count {
        let batch = open.len()..(open.len() + OPEN_BATCH).min(count);
        let opening = batch.map(|index| open_idle(endpoint, format!("{prefix}-{index}")));
        open.extend(try_join_all(opening).await?);
    }
    Ok(open)
}

/// An idle connection: only its socket halves, the buffers are dropped.
#[derive(Debug)]
pub struct IdleConnection {
    read: ReadHalf<Box<dyn Stream>>,
    _write: WriteHalf<Box<dyn Stream>>,
}

impl IdleConnection {
    /// Whether the broker has closed the connection (end of stream or an error), without
    /// waiting: an open idle connection has nothing to read. Anything the broker did send
    /// (it sends nothing to an idle MQTT 3.1.1 client) also counts as not idle any more.
    pub fn closed_by_broker(&mut self) -> bool {
        let mut octet = [0_u8; 1];
        self.read.read(&mut octet).now_or_never().is_some()
    }
}

/// Opens one connection and keeps only its socket halves: the buffers are dropped.
async fn open_idle(endpoint: &Endpoint, client_id: String) -> anyhow::Result<IdleConnection> {
    let opening = Connection::open(
        endpoint,
        client_id,
        IDLE_KEEP_ALIVE_SECONDS,
        IDLE_READ_BYTES,
    );
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, opening)
        .await
        .context("no CONNACK within the timeout")??;
    let (read, write) = connection.into_sockets();
    Ok(IdleConnection {
        read,
        _write: write,
    })
}
