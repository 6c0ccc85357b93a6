//! The autoscaler evaluation, simulated part of `cargo xtask bench autoscaler` (issue 14): hako's
//! autoscaler, a Knative-KPA-like policy and the seed's prototype on the same traces (×4 step,
//! ramp, spike, 10 h of noisy steady load), then hako's noise margin `z` swept.
//! Run in release mode: `cargo run --release -p hako-sim --example autoscaler [START_MS] [SEED] [--json]`
//! (e.g. `140` for WordPress's start). Ends with one line
//! `autoscaler: hako_step_detect_s=… kpa_step_detect_s=… seed_step_detect_s=… hako_false_per_h=… kpa_false_per_h=…`.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut nums = args.iter().filter(|a| !a.starts_with("--"));
    let mut bench = hako_sim::autoscale::AutoscaleBench::default();
    if let Some(ms) = nums.next() {
        match ms.parse::<u64>() {
            Ok(ms) => bench.start_time = Duration::from_millis(ms),
            Err(_) => {
                eprintln!(
                    "autoscaler: START_MS must be a whole number of milliseconds, got {ms:?}"
                );
                std::process::exit(2);
            }
        }
    }
    if let Some(seed) = nums.next() {
        match seed.parse() {
            Ok(s) => bench.seed = s,
            Err(_) => {
                eprintln!("autoscaler: SEED must be a whole number, got {seed:?}");
                std::process::exit(2);
            }
        }
    }
    let t0 = Instant::now();
    let report = hako_sim::autoscale::run(&bench);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
        return;
    }
    eprintln!("(simulated in {:.1} s)", t0.elapsed().as_secs_f64());
    println!("{report}");
}
