//! `amqp-fill`: stores a number of persistent messages in a durable queue and exits, leaving
//! them there, so that the broker can be restarted on them and its recovery timed
//! (`benches/compare-durable.sh`).
//!
//! Runs on the main task; the producers are the raw client's, each on its own task, each
//! stopping after its share of the messages once all of them are confirmed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::meter::Meter;
use crate::raw;
use crate::scenario::Workload;

/// How often progress is printed while filling.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `amqp-fill`.
#[derive(Debug, clap::Args)]
pub struct FillArgs {
    /// Broker URL; the vhost is the percent-encoded path (`%2F` is `/`).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2F")]
    pub url: String,
    /// Durable queue to fill: declared if missing, never deleted.
    #[arg(long)]
    pub queue: String,
    /// Messages to store, over all producers.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Unconfirmed messages allowed per producer.
    #[arg(long, default_value_t = 1000)]
    pub confirm_window: u32,
    /// Producer connections; more share each of the broker's fsyncs.
    #[arg(long, default_value_t = 4)]
    pub producers: u32,
}

/// Fills the queue, printing progress on stderr and one `RESULT` line on stdout.
pub async fn run(args: FillArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.producers > 0 && args.confirm_window > 0,
        "need producers and confirms"
    );
    let mut control = raw::Control::open(&args.url)
        .await
        .context("control connection")?;
    control.declare_queue(&args.queue, true).await?;
    let meter = Arc::new(Meter::default());
    // Never sent: each producer stops on its own after its share.
    let (_never, stop) = watch::channel(false);
    let started = Instant::now();
    let mut producers = Vec::new();
    for share in shares(args.messages, args.producers) {
        let workload = Arc::new(Workload {
            url: args.url.clone(),
            queue: args.queue.clone(),
            size: args.size,
            confirm_window: args.confirm_window,
            durable: true,
            messages_max: Some(share),
        });
        producers.push(raw::spawn_producer(workload, meter.clone(), stop.clone()).await?);
    }
    while !producers.iter().all(|task| task.is_finished()) {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        eprintln!(
            "{:6.1}s  confirmed {:>10}",
            started.elapsed().as_secs_f64(),
            meter.confirmed.get()
        );
    }
    for (index, task) in producers.into_iter().enumerate() {
        task.await?.with_context(|| format!("producer {index}"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    control.close().await?;
    let confirmed = meter.confirmed.get();
    anyhow::ensure!(
        confirmed == args.messages,
        "{confirmed} of {} confirmed",
        args.messages
    );
    println!(
        "RESULT scenario=fill queue={} messages={confirmed} size={} producers={} seconds={seconds:.2} \
         confirmed_per_s={:.0}",
        args.queue,
        args.size,
        args.producers,
        confirmed as f64 / seconds
    );
    Ok(())
}

/// `total` split over `parts` as evenly as whole messages allow.
fn shares(total: u64, parts: u32) -> Vec<u64> {
    let parts = u64::from(parts);
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(shares(1_000_000, 1), [1_000_000]);
        assert_eq!(shares(3, 4).iter().sum::<u64>(), 3);
    }
}
