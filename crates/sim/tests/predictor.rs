//! The predictive keep-alive (issue 11 §2) through whole simulated runs, with the daemon's
//! code: it pre-warms periodic sites before their requests, and on memoryless traffic it does
//! no worse than the fixed keep-alive it falls back to. Fixed seeds; simulated clock.

use std::time::Duration;

use hako_policy::KeepAlive;
use hako_policy::predict::PredictorSettings;
use hako_policy::slo::StartTime;
use hako_sim::rng::Rng;
use hako_sim::{Popularity, Report, SimConfig, Synthetic, Trace, Workload, run};

fn config(workload: Workload, hours: u64, predictor: bool) -> SimConfig {
    let mut c = SimConfig::azure_like(1, 7);
    c.workload = workload;
    c.duration = Duration::from_secs(hours * 3600);
    c.start_time = StartTime::constant(Duration::from_millis(10));
    c.service_time = Duration::from_millis(50);
    c.keep_alive = KeepAlive::idle(Duration::from_secs(300));
    c.predictor = predictor.then(PredictorSettings::default);
    c
}

/// Sites hit every `period` seconds (± `jitter`), like cron jobs and uptime checkers.
fn periodic(periods: &[f64], jitter: f64, hours: u64, seed: u64) -> Workload {
    let mut rng = Rng::new(seed, 0);
    let end = (hours * 3600) as f64;
    let arrivals: Vec<Vec<f64>> = periods
        .iter()
        .map(|p| {
            let mut t = p * rng.uniform();
            let mut out = Vec::new();
            while t < end {
                out.push(t);
                t += p + jitter * (2.0 * rng.uniform() - 1.0);
            }
            out
        })
        .collect();
    Workload::Trace(Trace {
        sites: (0..periods.len()).map(|i| format!("cron{i}")).collect(),
        arrivals,
        end,
    })
}

fn both(workload: Workload, hours: u64) -> (Report, Report) {
    let fixed = run(&config(workload.clone(), hours, false)).unwrap();
    let predicted = run(&config(workload, hours, true)).unwrap();
    for (name, r) in [("fixed 5m", &fixed), ("predictor", &predicted)] {
        println!(
            "{name:<10} requests {} cold {} ({:.4}) pre-warm starts {} instance-s {:.0}",
            r.requests, r.cold_requests, r.cold_ratio, r.prewarm_starts, r.instance_seconds
        );
    }
    (fixed, predicted)
}

#[test]
fn the_predictor_pre_warms_periodic_sites_before_their_requests() {
    // 15-minute and hourly cron jobs, a 10-minute uptime check; ±2 s of timer jitter.
    let periods = [900.0, 3600.0, 600.0, 900.0];
    let (fixed, pred) = both(periodic(&periods, 2.0, 48, 1), 48);
    assert_eq!(fixed.requests, pred.requests, "the same requests");
    // A 5-minute idle timeout misses every one of them.
    assert_eq!(fixed.cold_requests, fixed.requests);
    // The predictor learns each site in its first ten idle periods (≤ 10 h for the hourly
    // one); after that every request finds an instance it pre-warmed.
    let learning: u64 = 4 * 11;
    assert!(
        pred.cold_requests <= learning,
        "cold {} of {} (fixed: {})",
        pred.cold_requests,
        pred.requests,
        fixed.cold_requests
    );
    assert!(pred.prewarm_starts + learning >= pred.requests, "{pred}");
    // And it holds less memory than the fixed keep-alive that missed them all.
    assert!(
        pred.instance_seconds < 0.5 * fixed.instance_seconds,
        "predictor {:.0} vs fixed {:.0} instance-s",
        pred.instance_seconds,
        fixed.instance_seconds
    );
}

#[test]
fn on_memoryless_traffic_the_predictor_does_no_worse_than_fixed() {
    // Poisson sites from one request every 20 s to one every 2 h.
    let workload = Workload::Synthetic(Synthetic {
        sites: 200,
        popularity: Popularity::LogNormal {
            median_rate: 1.0 / 600.0,
            sigma_log10: 0.8,
            max_rate: 0.05,
        },
        diurnal: None,
        bursts: None,
    });
    let (fixed, pred) = both(workload, 24);
    assert_eq!(fixed.requests, pred.requests);
    let cold = |r: &Report| r.cold_ratio;
    // Within 2% (relative) of fixed on both axes, plus 0.2 percentage points of cold ratio
    // for the chance that a short history looks regular.
    assert!(
        cold(&pred) <= cold(&fixed) * 1.02 + 0.002,
        "cold: predictor {:.4} vs fixed {:.4}",
        cold(&pred),
        cold(&fixed)
    );
    assert!(
        pred.instance_seconds <= fixed.instance_seconds * 1.02,
        "memory-time: predictor {:.0} vs fixed {:.0}",
        pred.instance_seconds,
        fixed.instance_seconds
    );
}

#[test]
fn the_oracle_and_the_predictor_are_different_policies() {
    // The oracle (Prewarm::Predicted) knows every next request; the predictor only the past.
    let workload = periodic(&[900.0], 2.0, 6, 3);
    let mut oracle = config(workload.clone(), 6, false);
    oracle.prewarm = hako_policy::prewarm::Prewarm::Predicted {
        lead: Duration::from_secs(1),
    };
    oracle.keep_alive = KeepAlive::idle(Duration::from_secs(5));
    let o = run(&oracle).unwrap();
    let p = run(&config(workload, 6, true)).unwrap();
    // The oracle misses nothing but the very first; the predictor misses its learning period.
    assert!(o.cold_requests <= 1, "{o}");
    assert!(p.cold_requests > o.cold_requests, "{p}");
    assert!(hako_sim::predict(&config(periodic(&[900.0], 0.0, 1, 1), 1, true)).is_err());
}
