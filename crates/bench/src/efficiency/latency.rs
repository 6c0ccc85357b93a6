//! What users feel (issue 11 §3): the real predictor (`--keep-alive predictive`, the daemon's
//! own `hako_policy::predict`) beside the oracle that knows the trace, on the Azure-like
//! workload and on the same workload with timer-driven sites mixed in, and the trade-off as
//! memory-time against the p99 **added latency** (and the cold ratio) for each start path — a
//! cold start, a start from the warm pool, a restore from a checkpoint — with what each
//! mitigation holds counted in the memory-time.
//!
//! **Timer-driven sites.** The synthetic workload is memoryless within each slice, so no real
//! predictor can gain on it. Shahrad et al. (ATC'20) report that 15.6% of Azure's functions
//! are timer-triggered; [`timer_trace`] turns that share of the sites (drawn by the seed) into
//! cron-like ones — every 1, 5, 10, 15, 30 or 60 minutes, ±1 s — and keeps the others' requests
//! exactly as the synthetic workload makes them.
//!
//! **Start paths.** The simulator's start time is the real run's measured cold start; the
//! warm pool's and the restore's are options (`--pool-start-ms`, `--restore-start-ms`, from
//! `cargo xtask bench mitigation`). Their memory: the shared warm pool's slots run no process
//! (a cgroup and a network namespace each), counted as nothing; a checkpoint is counted as
//! held in the page cache all the time, `--checkpoint-mib` per site.

use std::sync::Arc;
use std::time::Duration;

use hako_policy::slo::StartTime;
use hako_sim::rng::Rng;
use hako_sim::{Synthetic, Trace};

use super::simulate::{Large, Policy, SimPoint};

/// Shahrad et al., "Serverless in the Wild" (ATC'20): share of functions with a timer trigger.
pub const TIMER_SHARE: f64 = 0.156;

/// Periods of the timer-driven sites, seconds (cron's usual ones).
const PERIODS: [f64; 6] = [60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];

/// The Azure-like workload of `sites` sites over `horizon` seconds with `share` of them
/// timer-driven (see the module doc).
pub fn timer_trace(sites: usize, seed: u64, horizon: f64, share: f64) -> Trace {
    let mut arrivals = hako_sim::synthetic_arrivals(&Synthetic::azure_like(sites), seed, horizon);
    let mut rng = Rng::new(seed ^ 0x7133_3e5d, 0);
    for a in arrivals.iter_mut() {
        if rng.uniform() >= share {
            continue;
        }
        let period = PERIODS[((rng.uniform() * PERIODS.len() as f64) as usize).min(5)];
        let mut t = period * rng.uniform();
        a.clear();
        while t < horizon {
            a.push(t);
            t += period + 2.0 * rng.uniform() - 1.0;
        }
    }
    Trace {
        sites: (0..sites).map(|i| format!("site{i}")).collect(),
        arrivals,
        end: horizon,
    }
}

/// Start times and memory of the mitigations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paths {
    pub pool_start: Duration,
    pub restore_start: Duration,
    /// A checkpoint's size, held in the page cache (MiB per site).
    pub checkpoint_mib: f64,
}

/// One point of the trade-off.
#[derive(Debug, Clone)]
pub struct Point {
    /// The series: a start path, or the predictor / the oracle.
    pub series: &'static str,
    pub policy: Policy,
    /// Memory-time share of always-on's, with what the mitigation holds.
    pub memory: f64,
    pub cold: f64,
    pub p99_added_ms: f64,
}

/// Everything this part measured.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The real predictor on the Azure-like workload.
    pub predictor: SimPoint,
    /// On the workload with timer-driven sites: always-on, cycling, the predictor, the oracle.
    pub timer: Vec<SimPoint>,
    pub timer_share: f64,
    pub paths: Paths,
    /// The trade-off on the Azure-like workload.
    pub tradeoff: Vec<Point>,
    /// The same on the workload with timer-driven sites.
    pub timer_tradeoff: Vec<Point>,
}

impl Latency {
    /// The predictor on the workload with timer-driven sites.
    pub fn timer_predictor(&self) -> Option<&SimPoint> {
        self.timer.iter().find(|p| p.policy.predictor)
    }
}

/// Idle timeouts swept for each start path, seconds (workload time).
const SWEEP: [u64; 7] = [10, 30, 60, 120, 300, 600, 1800];

/// Runs the predictor, the timer workload and the trade-off sweeps.
pub fn run(
    large: &Large,
    policies: &[Policy],
    paths: Paths,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<Latency> {
    let check = || {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            anyhow::bail!("interrupted");
        }
        Ok(())
    };
    let cycling_timeout = policies
        .iter()
        .find(|p| !p.always_on && p.lead.is_none() && !p.predictor)
        .map_or(Duration::from_secs(300), |p| p.idle_timeout);
    let predictor = large.run(&Policy::predictor(cycling_timeout))?;
    check()?;
    let timer_large = Large {
        trace: Some(Arc::new(timer_trace(
            large.sites,
            large.seed,
            large.duration.as_secs_f64(),
            TIMER_SHARE,
        ))),
        ..large.clone()
    };
    let mut timer = Vec::new();
    for p in policies {
        check()?;
        timer.push(timer_large.run(p)?);
    }
    let tradeoff = sweep(large, paths, &check)?;
    let timer_tradeoff = sweep(&timer_large, paths, &check)?;
    Ok(Latency {
        predictor,
        timer,
        timer_share: TIMER_SHARE,
        paths,
        tradeoff,
        timer_tradeoff,
    })
}

fn sweep(
    large: &Large,
    paths: Paths,
    check: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Point>> {
    let mut out = Vec::new();
    let with_start = |start: Duration| Large {
        start_time: StartTime::constant(start),
        ..large.clone()
    };
    let pool = with_start(paths.pool_start);
    let restore = with_start(paths.restore_start);
    let checkpoint_share = paths.checkpoint_mib / large.memory_mib.max(1e-9);
    for s in SWEEP {
        let t = Duration::from_secs(s);
        for (series, l, extra, policy) in [
            ("cold start", large, 0.0, Policy::cycling(t)),
            ("warm pool (shared)", &pool, 0.0, Policy::cycling(t)),
            ("restore", &restore, checkpoint_share, Policy::cycling(t)),
            ("predictor, cold start", large, 0.0, Policy::predictor(t)),
            (
                "predictor + restore",
                &restore,
                checkpoint_share,
                Policy::predictor(t),
            ),
        ] {
            check()?;
            let p = l.run(&policy)?;
            out.push(Point {
                series,
                policy,
                memory: p.report.memory_time_vs_always_on + extra,
                cold: p.report.cold_ratio,
                p99_added_ms: p.report.wait_p99_ms,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_the_sites_becomes_periodic_and_the_rest_is_unchanged() {
        let plain = hako_sim::synthetic_arrivals(&Synthetic::azure_like(400), 5, 7200.0);
        let t = timer_trace(400, 5, 7200.0, 0.25);
        let changed: Vec<usize> = (0..400).filter(|i| t.arrivals[*i] != plain[*i]).collect();
        let share = changed.len() as f64 / 400.0;
        assert!((0.15..0.35).contains(&share), "{share}");
        for i in changed {
            let a = &t.arrivals[i];
            assert!(a.len() >= 2, "site {i}");
            let gap = a[1] - a[0];
            assert!(
                PERIODS.iter().any(|p| (gap - p).abs() <= 1.0),
                "site {i}: gap {gap}"
            );
        }
        assert_eq!(timer_trace(400, 5, 7200.0, 0.25).arrivals, t.arrivals);
    }
}
