//! The sampler: the broker's resident memory every `SAMPLE_INTERVAL`, publish stalls, and a
//! progress line every second.
//!
//! It runs on its own OS thread, not on the tokio runtime, so that a runtime busy with the
//! flood cannot delay or skip samples. It reads `VmRSS` from `/proc/PID/status`; a spike
//! shorter than the interval can fall between two samples, which is why the report also
//! reads the kernel's own peak (`VmHWM`) at the end.
//!
//! A *stall* is a sample interval during the flood in which no publisher confirm arrived:
//! the broker held the publishers back, whether or not it said so with `connection.blocked`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::flow::FlowClock;
use crate::meter::{Meter, Sample, status_kib};

/// How often the broker's memory is read: the figure, fine enough to see the alarm's
/// saw-tooth at a slow consumer's pace.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Samples between progress lines (one per second).
const SAMPLES_PER_PROGRESS: u32 = 10;

/// KiB per MiB, for progress lines.
const KIB_PER_MIB: f64 = 1024.0;

/// What the sampler saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Samples {
    pub peak_rss_kib: u64,
    /// Messages published and not yet consumed at the sample with the peak RSS: roughly what
    /// the broker held then (queued, in its buffers, or in flight to a consumer).
    pub held_at_peak: u64,
    /// The most messages published and not yet consumed at any sample.
    pub held_max: u64,
    pub count: u64,
    /// Time during the flood with no confirm progress.
    pub stalled: Duration,
    /// The broker's process could not be read (it exited).
    pub broker_gone: bool,
}

/// A running sampler; `finish` stops it and returns what it saw.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    /// Set while the publishers flood; stalls are counted only then.
    flooding: Arc<AtomicBool>,
    thread: JoinHandle<Samples>,
}

/// What the sampler thread reads.
struct Sources {
    broker_pid: u32,
    meter: Arc<Meter>,
    flow: Arc<FlowClock>,
}

impl Sampler {
    pub fn start(broker_pid: u32, meter: Arc<Meter>, flow: Arc<FlowClock>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = Arc::new(AtomicBool::new(false));
        let sources = Sources {
            broker_pid,
            meter,
            flow,
        };
        let thread = {
            let (stop, flooding) = (stop.clone(), flooding.clone());
            std::thread::spawn(move || sample(&sources, &stop, &flooding))
        };
        Self {
            stop,
            flooding,
            thread,
        }
    }

    pub fn set_flooding(&self, flooding: bool) {
        self.flooding.store(flooding, Ordering::Relaxed);
    }

    pub fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        // The thread only reads files and sleeps; it cannot panic short of a bug.
        self.thread.join().unwrap_or_default()
    }
}

fn sample(sources: &Sources, stop: &AtomicBool, flooding: &AtomicBool) -> Samples {
    let started = Instant::now();
    let mut samples = Samples::default();
    let mut next = started;
    let mut last = sources.meter.sample();
    let mut progress_from = (started, last);
    while !stop.load(Ordering::Relaxed) {
        let Ok(rss_kib) = status_kib(sources.broker_pid, "VmRSS") else {
            samples.broker_gone = true;
            break;
        };
        let now = sources.meter.sample();
        samples.held_max = samples
            .held_max
            .max(now.published.saturating_sub(now.consumed));
        if rss_kib > samples.peak_rss_kib {
            samples.peak_rss_kib = rss_kib;
            samples.held_at_peak = now.published.saturating_sub(now.consumed);
        }
        samples.count += 1;
        if flooding.load(Ordering::Relaxed) && now.confirmed == last.confirmed {
            samples.stalled += SAMPLE_INTERVAL;
        }
        last = now;
        if samples.count % u64::from(SAMPLES_PER_PROGRESS) == 0 {
            print_progress(started, progress_from, now, rss_kib, &sources.flow);
            progress_from = (Instant::now(), now);
        }
        next += SAMPLE_INTERVAL;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    samples
}

fn print_progress(
    started: Instant,
    (since, before): (Instant, Sample),
    now: Sample,
    rss_kib: u64,
    flow: &FlowClock,
) {
    let seconds = since.elapsed().as_secs_f64();
    let rate = |before: u64, after: u64| after.saturating_sub(before) as f64 / seconds;
    eprintln!(
        "{:6.1}s  rss {:7.1} MiB  published {:>8.0}/s  confirmed {:>8.0}/s  consumed {:>8.0}/s  \
         {}",
        started.elapsed().as_secs_f64(),
        rss_kib as f64 / KIB_PER_MIB,
        rate(before.published, now.published),
        rate(before.confirmed, now.confirmed),
        rate(before.consumed, now.consumed),
        if flow.is_blocked() {
            "blocked"
        } else {
            "flowing"
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_own_memory_until_finished() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let sampler = Sampler::start(
            std::process::id(),
            Arc::default(),
            Arc::new(FlowClock::default()),
        );
        sampler.set_flooding(true);
        std::thread::sleep(SAMPLE_INTERVAL * 3);
        let samples = sampler.finish();
        assert!(samples.count >= 1);
        assert!(samples.peak_rss_kib > 0);
        assert!(!samples.broker_gone);
        assert!(
            samples.stalled > Duration::ZERO,
            "nothing was confirmed while flooding"
        );
    }
}
