//! Counters shared by the client tasks, and the CPU clocks and memory figures of `/proc` read
//! around the measured window.
//!
//! Client tasks only add to the counters; the scenario task only reads them, at the start and
//! the end of the measured window, so the counters need no ordering beyond `Relaxed`.
//! Each counter sits on its own cache line: the producer and the consumer run on different
//! cores and would otherwise slow each other down on every update.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// A counter alone on a cache line (128 bytes covers adjacent-line prefetching on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct PaddedCounter(AtomicU64);

impl PaddedCounter {
    /// Adds `count`; called by the task that owns the event.
    pub fn add(&self, count: u64) {
        self.0.fetch_add(count, Ordering::Relaxed);
    }

    /// Reads the current total.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Message counts of one run, summed over all producers and consumers.
#[derive(Debug, Default)]
pub struct Meter {
    /// Messages written to the socket by producers.
    pub published: PaddedCounter,
    /// Messages confirmed (acked or nacked) by the broker; stays 0 without confirms.
    pub confirmed: PaddedCounter,
    /// Deliveries received by consumers.
    pub consumed: PaddedCounter,
}

/// A snapshot of the meter, used to compute rates over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub published: u64,
    pub confirmed: u64,
    pub consumed: u64,
}

impl Meter {
    /// Reads all counters.
    pub fn sample(&self) -> Sample {
        Sample {
            published: self.published.get(),
            confirmed: self.confirmed.get(),
            consumed: self.consumed.get(),
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times; the kernel's USER_HZ is 100 on every
/// mainstream Linux architecture, and reading it properly would need libc.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system) consumed so far by a process, or `None` off Linux or when the
/// process is gone.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces, so count fields after its closing `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come state (field 3) ... utime (field 14) and stime (field 15).
    let user_ticks: u64 = fields.nth(11)?.parse().ok()?;
    let system_ticks: u64 = fields.next()?.parse().ok()?;
    let seconds = (user_ticks + system_ticks) as f64 / CLOCK_TICKS_PER_SECOND;
    Some(Duration::from_secs_f64(seconds))
}

/// CPU time (all but idle and I/O wait) consumed so far by the whole machine, summed over
/// cores, or `None` off Linux. Comparing it with the client's and the broker's CPU shows
/// whether other work shared the cores during a measurement.
pub fn machine_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // First line: "cpu user nice system idle iowait irq softirq steal guest guest_nice".
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let (idle, iowait) = (*ticks.get(3)?, *ticks.get(4)?);
    let busy_ticks = ticks.iter().sum::<u64>() - idle - iowait;
    Some(Duration::from_secs_f64(
        busy_ticks as f64 / CLOCK_TICKS_PER_SECOND,
    ))
}

/// A `kB` (really KiB) field of `/proc/PID/status`, such as `VmRSS` (resident set now) or
/// `VmHWM` (its peak so far); Linux only.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(value) = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
    else {
        bail!("no {field} line in {path}");
    };
    let value = value.trim().trim_end_matches("kB").trim();
    value
        .parse()
        .with_context(|| format!("cannot parse {field} `{value}` from {path}"))
}

/// CPU time of a process over a window, in cores (1.0 = one core fully busy).
pub fn cores_used(
    before: Option<Duration>,
    after: Option<Duration>,
    window: Duration,
) -> Option<f64> {
    let busy = after?.checked_sub(before?)?;
    Some(busy.as_secs_f64() / window.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_time(std::process::id()).is_some());
        }
    }

    #[test]
    fn machine_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(machine_cpu_time().is_some());
        }
    }

    #[test]
    fn own_resident_set_and_its_peak_are_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let resident = status_kib(std::process::id(), "VmRSS").unwrap();
            let peak = status_kib(std::process::id(), "VmHWM").unwrap();
            assert!(resident > 0 && peak >= resident);
            assert!(status_kib(std::process::id(), "NoSuchField").is_err());
        }
    }

    #[test]
    fn cores_used_divides_busy_time_by_the_window() {
        let used = cores_used(
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(3)),
            Duration::from_secs(4),
        );
        assert_eq!(used, Some(0.5));
        assert_eq!(
            cores_used(None, Some(Duration::ZERO), Duration::from_secs(1)),
            None
        );
    }
}
