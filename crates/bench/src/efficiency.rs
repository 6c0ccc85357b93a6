//! `cargo xtask experiment efficiency`: always-on against cycling (idle timeout) and cycling
//! with predicted pre-warm — 1,000 real sites on this machine, 10,000 in the simulator.
//!
//! Real part ([`real`]): a `hako serve` on loopback with every site as an app (static
//! `busybox httpd` or PHP `php -S`), the Azure-like workload compressed in time ([`workload`])
//! replayed by a bounded open-loop generator ([`loadgen`]) once per mode, the instances'
//! cgroup memory and the host's MemAvailable sampled ([`memory`]), cold requests and waits
//! from the daemon's per-app metrics. Simulated part ([`simulate`]): 10,000 sites × 24 h with
//! the same policies and sweeps of them, the service-level model's prediction of the same
//! runs (`model_vs_sim_err`), and a lower bound for policies without foresight. The report
//! ([`report`]) goes to docs/experiments/efficiency.md with SVG charts. What users feel
//! ([`latency`]): the real predictor beside the oracle, timer-driven sites, and memory-time
//! against the p99 added latency per start path. The last line printed is
//! `efficiency: sites=… always_on_mib=… cycling_mib=… ratio=… cold_ratio=… model_vs_sim_err=…
//! predictor_ratio=… predictor_cold_ratio=… predictor_p99_added_ms=… oracle_ratio=…`.

mod latency;
mod latency_report;
pub(crate) mod loadgen;
pub(crate) mod memory;
pub(crate) mod neighbours;
mod options;
mod plot;
pub(crate) mod real;
mod report;
mod simulate;
pub(crate) mod sites;
mod workload;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_policy::slo::StartTime;

pub use options::{Options, human};
use simulate::{Large, Policy, SimPoint};

/// Runs the experiment (with the release-built hako beside this binary) and writes the report.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("install a signal handler")?;
    }
    let hako = if opts.sim_only {
        None
    } else {
        if !hako_runtime::is_root() {
            bail!("the experiment runs containers: run it as root (or pass --sim-only)");
        }
        crate::tools::require(&[
            ("busybox", "busybox-static"),
            ("php", "php-cli"),
            ("nft", "nftables"),
            ("ip", "iproute2"),
        ])?;
        Some(crate::paths::hako_binary()?)
    };
    let results = run(&opts, hako.as_deref(), &stop)?;
    let line = report::write(&opts, &results)?;
    println!("{line}");
    Ok(())
}

/// Everything one experiment measured.
#[derive(Debug, Clone)]
pub struct Results {
    pub real: Option<real::RealRun>,
    /// The simulator's start time (measured when the real run had cold starts).
    pub start_time: Duration,
    /// Memory of one instance for the simulated MiB figures.
    pub memory_per_instance_mib: f64,
    /// The three policies over the large workload.
    pub headline: Vec<SimPoint>,
    /// Idle-timeout sweep and predicted pre-warm sweep.
    pub cycling_sweep: Vec<SimPoint>,
    pub predicted_sweep: Vec<SimPoint>,
    /// (cold target, least memory-time share without foresight).
    pub bound: Vec<(f64, f64)>,
    /// The real predictor beside the oracle, timer-driven sites, the latency trade-off.
    pub latency: Option<latency::Latency>,
    /// Wall time of the whole experiment.
    pub took: Duration,
}

/// The real run (with `hako`), then the simulations.
pub fn run(
    opts: &Options,
    hako: Option<&std::path::Path>,
    stop: &AtomicBool,
) -> anyhow::Result<Results> {
    let t = Instant::now();
    let policies = opts.policies();
    let real = match hako {
        Some(hako) => {
            let warmup = opts.warmup();
            let span = warmup + opts.duration;
            let workload = workload::Workload::azure_like(
                opts.sites,
                opts.seed,
                opts.speedup,
                span.as_secs_f64(),
                opts.mix(),
            )?;
            let setup = real::Setup {
                workload,
                modes: opts
                    .real_modes()
                    .iter()
                    .map(|(n, p)| (*n, p.compressed(opts.speedup)))
                    .collect(),
                warmup: warmup.as_secs_f64(),
                concurrency: opts.concurrency,
                max_requests: opts.max_requests,
                sample_interval: opts.sample_interval,
            };
            let real = real::run(&setup, hako, stop)?;
            eprintln!(
                "experiment: real run done (hako serve prefix {})",
                real.prefix
            );
            Some(real)
        }
        None => None,
    };
    // The simulator gets the start time and instance memory the real run measured.
    let start_time = real
        .as_ref()
        .and_then(|r| r.modes.iter().find(|m| m.name == "cycling"))
        .and_then(real::ModeRun::mean_cold_wait)
        .map_or(Duration::from_millis(50), Duration::from_secs_f64);
    let memory_per_instance_mib = real
        .as_ref()
        .and_then(|r| r.modes.iter().find(|m| m.policy.always_on))
        .map(|m| m.mean_mib() / m.mean_instances().max(1.0))
        .unwrap_or(64.0);
    let large = Large {
        sites: opts.sim_sites,
        duration: opts.sim_duration,
        seed: opts.seed,
        start_time: StartTime::constant(start_time),
        memory_mib: memory_per_instance_mib,
        trace: None,
    };
    eprintln!(
        "experiment: simulating {} sites over {} (start time {:.0} ms)",
        large.sites,
        human(large.duration),
        start_time.as_secs_f64() * 1e3
    );
    let run_all = |ps: &[Policy]| -> anyhow::Result<Vec<SimPoint>> {
        ps.iter()
            .map(|p| {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bail!("interrupted");
                }
                large.run(p)
            })
            .collect()
    };
    let headline = run_all(&policies.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())?;
    let cycling_sweep = run_all(
        &[10, 30, 60, 120, 300, 600, 1200, 3600].map(|s| Policy::cycling(Duration::from_secs(s))),
    )?;
    let predicted_sweep = run_all(
        &[1, 2, 5, 10, 30, 60, 300]
            .map(|s| Policy::predicted(Duration::from_secs(s), PREDICTED_SWEEP_LEAD)),
    )?;
    let bound = BOUND_TARGETS
        .iter()
        .map(|c| (*c, large.bound(*c)))
        .collect();
    eprintln!("experiment: the predictor, timer-driven sites and the latency trade-off");
    let latency = latency::run(
        &large,
        &policies.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        latency::Paths {
            pool_start: opts.pool_start,
            restore_start: opts.restore_start,
            checkpoint_mib: opts.checkpoint_mib,
        },
        stop,
    )?;
    Ok(Results {
        real,
        start_time,
        memory_per_instance_mib,
        headline,
        cycling_sweep,
        predicted_sweep,
        bound,
        latency: Some(latency),
        took: t.elapsed(),
    })
}

/// A start from the shared warm pool, µs: a static site's first request from a slot
/// (`cargo xtask bench mitigation`; see docs/experiments/efficiency.md for the run).
pub const POOL_START_US: u64 = 6_000;
/// A restore to the first answered request, µs (same bench, the `php -S` site).
pub const RESTORE_START_US: u64 = 40_000;
/// A checkpoint of a small PHP site, MiB (same bench).
pub const CHECKPOINT_MIB: f64 = 4.0;

/// The sweep's pre-warm lead: real time, uncompressed, comfortably above a start.
pub const PREDICTED_SWEEP_LEAD: Duration = Duration::from_millis(500);

/// Cold-request targets for the bound.
const BOUND_TARGETS: [f64; 8] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];

/// The figures of the last line.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub sites: usize,
    pub always_on_mib: f64,
    pub cycling_mib: f64,
    pub cold_ratio: f64,
    pub model_vs_sim_err: Option<f64>,
    pub predicted_mib: f64,
    pub predicted_cold_ratio: f64,
    /// The real predictor (`--keep-alive predictive`): memory-time share, cold ratio, p99
    /// added latency (ms).
    pub predictor_ratio: Option<f64>,
    pub predictor_cold_ratio: Option<f64>,
    pub predictor_p99_added_ms: Option<f64>,
    /// The oracle (pre-warm that knows the trace): memory-time share.
    pub oracle_ratio: Option<f64>,
}

/// `efficiency: sites=… always_on_mib=… cycling_mib=… ratio=… cold_ratio=… model_vs_sim_err=…`
/// and the same for cycling with prediction (`predicted_…`).
pub fn summary_line(s: &Summary) -> String {
    let ratio = |m: f64| {
        if s.always_on_mib > 0.0 {
            format!("{:.4}", m / s.always_on_mib)
        } else {
            "-".into()
        }
    };
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    format!(
        "efficiency: sites={} always_on_mib={:.1} cycling_mib={:.1} ratio={} cold_ratio={:.5} model_vs_sim_err={} predictor_ratio={} predictor_cold_ratio={} predictor_p99_added_ms={} oracle_ratio={}",
        s.sites,
        s.always_on_mib,
        s.cycling_mib,
        ratio(s.cycling_mib),
        s.cold_ratio,
        s.model_vs_sim_err.map_or("-".into(), |e| format!("{e:.4}")),
        opt(s.predictor_ratio, 4),
        opt(s.predictor_cold_ratio, 5),
        opt(s.predictor_p99_added_ms, 1),
        opt(s.oracle_ratio, 4),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_has_the_keys_in_order() {
        let s = Summary {
            sites: 1000,
            always_on_mib: 2000.0,
            cycling_mib: 700.25,
            cold_ratio: 0.004_567,
            model_vs_sim_err: Some(0.0213),
            predicted_mib: 400.0,
            predicted_cold_ratio: 0.0,
            predictor_ratio: Some(0.25),
            predictor_cold_ratio: Some(0.0123),
            predictor_p99_added_ms: Some(41.25),
            oracle_ratio: Some(0.2),
        };
        assert_eq!(
            summary_line(&s),
            "efficiency: sites=1000 always_on_mib=2000.0 cycling_mib=700.2 ratio=0.3501 cold_ratio=0.00457 model_vs_sim_err=0.0213 predictor_ratio=0.2500 predictor_cold_ratio=0.01230 predictor_p99_added_ms=41.2 oracle_ratio=0.2000"
        );
        let none = Summary {
            always_on_mib: 0.0,
            model_vs_sim_err: None,
            ..s
        };
        let line = summary_line(&none);
        assert!(
            line.contains(" ratio=- ") && line.contains("model_vs_sim_err=- "),
            "{line}"
        );
    }

    /// The whole experiment in small: 12 real sites for a few seconds per mode, 200 simulated
    /// sites for an hour, the report written; nothing of the daemon is left behind.
    #[test]
    fn smoke_run_end_to_end() {
        assert!(
            hako_runtime::is_root(),
            "the experiment makes containers: run as root"
        );
        let out = tempfile::tempdir().unwrap();
        let opts = Options {
            sites: 12,
            duration: Duration::from_secs(4),
            warmup: Some(Duration::from_secs(2)),
            speedup: 60.0,
            seed: 3,
            idle_timeout: Duration::from_secs(60),
            predict_idle_timeout: Duration::from_secs(30),
            lead: Duration::from_secs(6),
            sim_sites: 200,
            sim_duration: Duration::from_secs(3600),
            out: out.path().to_path_buf(),
            ..Options::default()
        };
        opts.check().unwrap();
        let stop = AtomicBool::new(false);
        let hako = crate::paths::hako_binary().unwrap();
        let r = run(&opts, Some(&hako), &stop).unwrap();
        let real = r.real.as_ref().unwrap();
        let names: Vec<&str> = real.modes.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            ["always-on", "cycling", "cycling + prediction", "predictor"]
        );
        assert!(real.window_requests > 20, "{}", real.window_requests);
        let on = &real.modes[0];
        assert!(
            (11.5..=12.5).contains(&on.mean_instances()),
            "always-on kept {} instances for 12 sites",
            on.mean_instances()
        );
        assert_eq!(on.counts.cold, 0, "always-on had cold requests");
        for m in &real.modes {
            assert_eq!(
                (m.failed(), m.dropped),
                (0, 0),
                "{}: {:?}",
                m.name,
                m.first_errors
            );
            // The daemon counted every request of the window, give or take the few sent
            // while the window's first metrics were read (they may land on either side).
            let counted = m.counts.cold + m.counts.warm;
            assert!(
                counted.abs_diff(m.outcomes.len() as u64) <= m.racing as u64,
                "{}: the daemon counted {counted}, the load generator sent {} ({} racing)",
                m.name,
                m.outcomes.len(),
                m.racing
            );
        }
        for m in &real.modes[1..] {
            assert!(
                m.mean_mib() < on.mean_mib(),
                "{} uses as much as always-on",
                m.name
            );
        }
        let line = report::write(&opts, &r).unwrap();
        assert!(
            line.starts_with("efficiency: sites=12 always_on_mib="),
            "{line}"
        );
        let md = std::fs::read_to_string(out.path().join("efficiency.md")).unwrap();
        assert!(md.contains(&line));
        for svg in [
            "efficiency-memory.svg",
            "efficiency-host.svg",
            "efficiency-tradeoff.svg",
        ] {
            assert!(out.path().join(svg).exists(), "{svg}");
        }
        // One WordPress site (12 × 0.1), deleted with its database at the end.
        assert_eq!((real.wordpress_sites, real.php_sites), (1, 4));
        let left = std::process::Command::new("mariadb")
            .args(["-N", "-e"])
            .arg(format!("SHOW DATABASES LIKE '{}\\_%'", real.prefix))
            .output()
            .unwrap();
        assert!(left.status.success(), "{left:?}");
        assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "");
        // The daemon stopped every instance and removed its cgroups.
        assert!(real.prefix.starts_with("hakoe"), "{}", real.prefix);
        let left = hako_cgroup::detect(&real.prefix)
            .unwrap()
            .list()
            .unwrap_or_default();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}
