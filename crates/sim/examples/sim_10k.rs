//! Times the simulator on 10,000 Azure-like sites over 24 simulated hours (issue 4's speed
//! goal: well under a minute). Run in release mode:
//! `cargo run --release -p hako-sim --example sim_10k [SITES] [HOURS] [IDLE_TIMEOUT] [PREDICT_LEAD]`
//! (e.g. `10000 24 5m`, or `10000 24 10s 1s` for pre-start 1 s before each request as predicted
//! by the simulator's oracle).
//! Prints the report, then one line `sim-10k: sites=… hours=… requests=… wall_ms=… …` (the
//! timing covers the simulation only; the model's prediction is computed afterwards).

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let sites: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let hours: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let mut config = hako_sim::SimConfig::azure_like(sites, 42);
    config.duration = Duration::from_secs(hours * 3600);
    if let Some(idle) = args.next() {
        match hako_model::units::parse_duration(&idle) {
            Ok(d) => config.keep_alive.idle_timeout = Some(d),
            Err(e) => {
                eprintln!("sim-10k: idle timeout: {e}");
                std::process::exit(2);
            }
        }
    }
    if let Some(lead) = args.next() {
        // Pre-start this long before each request, with the simulator's oracle predictor.
        match hako_model::units::parse_duration(&lead) {
            Ok(lead) => config.prewarm = hako_policy::prewarm::Prewarm::Predicted { lead },
            Err(e) => {
                eprintln!("sim-10k: prediction lead: {e}");
                std::process::exit(2);
            }
        }
    }
    let t0 = Instant::now();
    let report = match hako_sim::run(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sim-10k: {e}");
            std::process::exit(2);
        }
    };
    let wall = t0.elapsed();
    println!("{report}");
    let model = hako_sim::predict(&config)
        .map(|p| p.cold_ratio)
        .unwrap_or(f64::NAN);
    println!(
        "sim-10k: sites={sites} hours={hours} requests={} wall_ms={:.0} requests_per_s={:.0} cold_ratio={:.5} model_cold_ratio={model:.5} vs_always_on={:.4} peak_running={}",
        report.requests,
        wall.as_secs_f64() * 1e3,
        report.requests as f64 / wall.as_secs_f64(),
        report.cold_ratio,
        report.memory_time_vs_always_on,
        report.peak_running
    );
}
