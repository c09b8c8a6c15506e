//! The overload run's figures, its checks and the `RESULT` line.
//!
//! Checks, each a failure with its reason when it does not hold:
//! - **memory**: the broker's peak RSS (the larger of the sampled peak and the kernel's
//!   `VmHWM`) is at most its RSS with the connections open, plus the watermark, plus the
//!   margin (`--margin-mib`). The RSS with the connections open already holds their fixed
//!   cost, measured in the same run, so the bound reads: start RSS + connections x measured
//!   cost per connection + watermark + margin;
//! - **flow control engaged**: publishers were told `connection.blocked` at least once, or
//!   the flood never crossed the watermark and the run proved nothing;
//! - **no loss**: every confirmed message was received (duplicates are counted, not failed);
//! - **drained** within `--drain-timeout`, with no client task failing;
//! - **recovery**: after the drain a fresh publisher's message is confirmed within
//!   `--recovery-bound`, and the broker does not tell it `connection.blocked`;
//! - **connections kept**: the broker closed none of the idle connections.

use std::time::Duration;

use super::ledger::Verdict;
use super::sampler::Samples;
use super::{OverloadArgs, Phases};
use crate::meter::Sample;

const KIB: u64 = 1024;
const MIB: f64 = 1024.0 * 1024.0;

/// Everything the run measured.
#[derive(Debug)]
pub struct Figures {
    /// Connections open during the flood, its own included.
    pub connections: usize,
    pub idle_connections: usize,
    /// Idle connections the broker had closed by the end.
    pub idle_closed: usize,
    /// Broker RSS before the idle connections, and with them open.
    pub rss_start_kib: u64,
    pub rss_idle_kib: u64,
    /// The kernel's peak RSS of the broker at the end (`VmHWM`).
    pub hwm_kib: u64,
    pub samples: Samples,
    pub verdict: Verdict,
    pub meter: Sample,
    pub blocked: Duration,
    pub blocked_events: u64,
    pub phases: Phases,
}

/// The bounds the figures are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub watermark_bytes: u64,
    pub margin_mib: u64,
    pub recovery_bound: Duration,
}

impl Limits {
    pub fn from_args(args: &OverloadArgs) -> Self {
        Self {
            watermark_bytes: args.watermark_bytes,
            margin_mib: args.margin_mib,
            recovery_bound: args.recovery_bound,
        }
    }
}

/// The figures with the values derived from them and the failed checks.
#[derive(Debug)]
pub struct Report {
    figures: Figures,
    limits: Limits,
    peak_rss_kib: u64,
    limit_kib: u64,
    failures: Vec<String>,
}

impl Report {
    pub fn new(figures: Figures, limits: Limits) -> Self {
        let peak_rss_kib = figures.samples.peak_rss_kib.max(figures.hwm_kib);
        let limit_kib =
            figures.rss_idle_kib + limits.watermark_bytes / KIB + limits.margin_mib * KIB;
        let failures = failures(&figures, &limits, peak_rss_kib, limit_kib);
        Self {
            figures,
            limits,
            peak_rss_kib,
            limit_kib,
            failures,
        }
    }

    /// Bytes of broker RSS each idle connection added.
    fn per_connection_bytes(&self) -> u64 {
        let grown = self
            .figures
            .rss_idle_kib
            .saturating_sub(self.figures.rss_start_kib);
        grown * KIB / (self.figures.idle_connections.max(1) as u64)
    }

    /// CPU used by everything but the client and the broker during the flood.
    fn other_cores(&self) -> Option<f64> {
        let phases = &self.figures.phases;
        Some((phases.machine_cores? - phases.client_cores? - phases.broker_cores?).max(0.0))
    }

    /// Prints the checks on stderr and the `RESULT` line on stdout.
    pub fn print(&self, args: &OverloadArgs) {
        for failure in &self.failures {
            eprintln!("FAILED: {failure}");
        }
        let (figures, phases) = (&self.figures, &self.figures.phases);
        let mib = |kib: u64| format!("{:.1}", kib as f64 / KIB as f64);
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        let millis =
            |value: Option<Duration>| value.map_or("n/a".to_owned(), |d| d.as_millis().to_string());
        println!(
            "RESULT scenario={} connections={} idle_closed={} publishers={} size={} seconds={:.1} \
             published={} confirmed={} nacked={} consumed={} lost={} duplicates={} \
             rss_start_mib={} rss_idle_mib={} per_connection_bytes={} peak_rss_mib={} \
             sampled_peak_mib={} held_at_peak={} held_max={} hwm_mib={} watermark_mib={:.1} margin_mib={} limit_mib={} \
             blocked_seconds={:.1} blocked_events={} stalled_seconds={:.1} drain_ms={} \
             recovery_ms={} client_cpu={} broker_cpu={} other_cpu={} pass={}",
            args.scenario,
            figures.connections,
            figures.idle_closed,
            args.publishers,
            args.size,
            phases.flood.as_secs_f64(),
            figures.meter.published,
            figures.verdict.confirmed,
            figures.verdict.nacked,
            figures.meter.consumed,
            figures.verdict.lost,
            figures.verdict.duplicates,
            mib(figures.rss_start_kib),
            mib(figures.rss_idle_kib),
            self.per_connection_bytes(),
            mib(self.peak_rss_kib),
            mib(figures.samples.peak_rss_kib),
            figures.samples.held_at_peak,
            figures.samples.held_max,
            mib(figures.hwm_kib),
            self.limits.watermark_bytes as f64 / MIB,
            self.limits.margin_mib,
            mib(self.limit_kib),
            figures.blocked.as_secs_f64(),
            figures.blocked_events,
            figures.samples.stalled.as_secs_f64(),
            millis(phases.drain),
            millis(phases.recovery.as_ref().ok().copied()),
            cores(phases.client_cores),
            cores(phases.broker_cores),
            cores(self.other_cores()),
            self.failures.is_empty(),
        );
    }

    /// Fails with every failed check, so the process exits non-zero.
    pub fn verdict(&self) -> anyhow::Result<()> {
        match self.failures.is_empty() {
            true => Ok(()),
            false => Err(anyhow::anyhow!("{}", self.failures.join("; "))),
        }
    }
}

/// The checks of the module comment, as reasons for each one that failed.
fn failures(figures: &Figures, limits: &Limits, peak_rss_kib: u64, limit_kib: u64) -> Vec<String> {
    let phases = &figures.phases;
    let mut failures = Vec::new();
    let mut check = |holds: bool, reason: String| {
        if !holds {
            failures.push(reason);
        }
    };
    check(
        peak_rss_kib <= limit_kib,
        format!("peak RSS {peak_rss_kib} KiB is over the limit {limit_kib} KiB"),
    );
    check(
        figures.blocked_events > 0,
        "no publisher was ever told connection.blocked: the flood did not cross the watermark, \
         or flow control did not engage"
            .to_owned(),
    );
    check(
        figures.verdict.lost == 0,
        format!(
            "{} confirmed messages were never delivered",
            figures.verdict.lost
        ),
    );
    check(
        phases.drain.is_some(),
        "the drain did not finish within the drain timeout".to_owned(),
    );
    check(
        phases.client_errors == 0,
        "a client task failed (see its error above)".to_owned(),
    );
    check(
        !figures.samples.broker_gone,
        "the broker exited during the run".to_owned(),
    );
    check(
        figures.idle_closed == 0,
        format!("the broker closed {} idle connections", figures.idle_closed),
    );
    match &phases.recovery {
        Ok(confirmed) => check(
            !phases.probe_blocked,
            format!(
                "the probe was told connection.blocked after the drain (confirmed in {confirmed:?})"
            ),
        ),
        Err(error) => check(
            false,
            format!("no recovery within {:?}: {error}", limits.recovery_bound),
        ),
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> Figures {
        Figures {
            connections: 10_000,
            idle_connections: 9_993,
            idle_closed: 0,
            rss_start_kib: 10 * 1024,
            rss_idle_kib: 60 * 1024,
            hwm_kib: 150 * 1024,
            samples: Samples {
                peak_rss_kib: 140 * 1024,
                held_at_peak: 50_000,
                held_max: 52_000,
                count: 300,
                stalled: Duration::from_secs(20),
                broker_gone: false,
            },
            verdict: Verdict {
                confirmed: 100,
                ..Verdict::default()
            },
            meter: Sample::default(),
            blocked: Duration::from_secs(25),
            blocked_events: 40,
            phases: Phases {
                flood: Duration::from_secs(30),
                client_cores: Some(0.5),
                broker_cores: Some(1.0),
                machine_cores: Some(1.6),
                drain: Some(Duration::from_secs(2)),
                client_errors: 0,
                recovery: Ok(Duration::from_millis(3)),
                probe_blocked: false,
            },
        }
    }

    const LIMITS: Limits = Limits {
        watermark_bytes: 64 << 20,
        margin_mib: 32,
        recovery_bound: Duration::from_secs(5),
    };

    #[test]
    fn a_run_within_every_bound_passes() {
        let report = Report::new(passing(), LIMITS);
        assert_eq!(report.failures, Vec::<String>::new());
        assert_eq!(report.limit_kib, (60 + 64 + 32) * 1024);
        assert_eq!(
            report.peak_rss_kib,
            150 * 1024,
            "VmHWM is above the sampled peak"
        );
        assert_eq!(report.per_connection_bytes(), 50 * 1024 * 1024 / 9_993);
        assert!((report.other_cores().unwrap() - 0.1).abs() < 1e-9);
        assert!(report.verdict().is_ok());
    }

    #[test]
    fn each_broken_bound_is_reported() {
        let mut figures = passing();
        figures.hwm_kib = 157 * 1024;
        figures.verdict.lost = 3;
        figures.blocked_events = 0;
        figures.idle_closed = 2;
        figures.phases.recovery = Err("timed out".to_owned());
        let report = Report::new(figures, LIMITS);
        assert_eq!(report.failures.len(), 5, "{:?}", report.failures);
        assert!(report.verdict().is_err());
    }

    #[test]
    fn a_probe_told_blocked_fails_even_when_confirmed() {
        let mut figures = passing();
        figures.phases.probe_blocked = true;
        assert_eq!(Report::new(figures, LIMITS).failures.len(), 1);
    }
}
