//! The free-space watch: measures the free space of the data directory's filesystem and hands
//! it to the gauge, whose free-space alarm blocks publishers under `disk_free_limit_bytes`
//! (RabbitMQ's `disk_free_limit`). It owns no alarm state itself.
//!
//! One task per broker. It holds the gauge weakly, so it ends with the core.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::memory::MemoryGauge;

/// Time between measurements. `statvfs` is one system call, so checking every second costs
/// nothing and bounds what a publish flood can write between two checks better than
/// RabbitMQ's 10 s between checks far from the limit.
pub const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Measures once, so that the alarm is right before any client connects, then spawns the task
/// that measures every [`DISK_CHECK_INTERVAL`]. Needs a tokio runtime.
pub fn watch(dir: &Path, gauge: &Arc<MemoryGauge>) {
    let dir = dir.to_path_buf();
    let mut warned = false;
    record(gauge, free_bytes(&dir), &mut warned);
    let gauge = Arc::downgrade(gauge);
    tokio::spawn(run(dir, gauge, warned));
}

async fn run(dir: PathBuf, gauge: Weak<MemoryGauge>, mut warned: bool) {
    let mut ticks = tokio::time::interval(DISK_CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        // A slow filesystem (NFS) may stall `statvfs`: off the runtime's worker threads.
        let free = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || free_bytes(&dir)).await
        };
        let Some(gauge) = gauge.upgrade() else {
            return;
        };
        // The blocking pool refuses work only while the runtime shuts down.
        let Ok(free) = free else {
            return;
        };
        record(&gauge, free, &mut warned);
    }
}

/// Gives the gauge a measurement; a filesystem we cannot measure leaves the alarm as it was
/// and is logged once, as RabbitMQ logs disabling its monitor.
fn record(gauge: &MemoryGauge, free: std::io::Result<u64>, warned: &mut bool) {
    match free {
        Ok(free) => gauge.set_disk_free(free),
        Err(error) if !*warned => {
            *warned = true;
            tracing::warn!(%error, "cannot measure free disk space; its alarm stays off");
        }
        Err(_) => {}
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir` (what `df`
/// reports as available; the blocks reserved for root are not ours).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_has_measurable_free_space() {
        let free = free_bytes(&std::env::temp_dir()).expect("statvfs of the temp dir");
        assert!(free > 0);
    }

    #[test]
    fn a_limit_above_the_free_space_sets_the_alarm_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _entered = runtime.enter();
        let gauge = Arc::new(MemoryGauge::new(u64::MAX).with_disk_free_limit(u64::MAX / 2));
        watch(&std::env::temp_dir(), &gauge);
        let alarms = gauge.alarms();
        assert!(alarms.disk && !alarms.memory);
        assert!(alarms.disk_free_bytes.is_some());
    }
}
