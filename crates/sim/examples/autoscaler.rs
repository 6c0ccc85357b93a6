//! The autoscaler evaluation, simulated part of `cargo xtask bench autoscaler` (issue 14): hako's
//! autoscaler, a Knative-KPA-like policy and the seed's prototype on the same traces (×4 step,
//! ramp, spike, 10 h of noisy steady load), then hako's surge factor swept.
//! Run in release mode: `cargo run --release -p hako-sim --example autoscaler -- [OPTIONS]`
//! with `--start-ms N` (10; 140 for WordPress), `--seed N` (1), `--target X` (10),
//! `--workers N` (15), `--base-rate R` (55 requests/s), `--burst-factor X` (2),
//! `--batch-max N` (5), `--noisy-hours H` (10), `--json`. Ends with one line
//! `autoscaler: hako_step_detect_s=… kpa_step_detect_s=… seed_step_detect_s=… hako_false_per_h=… kpa_false_per_h=…`.

use std::time::{Duration, Instant};

use hako_sim::autoscale::AutoscaleBench;

fn usage(msg: &str) -> ! {
    eprintln!("autoscaler: {msg}");
    eprintln!(
        "usage: autoscaler [--start-ms N] [--seed N] [--target X] [--workers N] [--base-rate R] \
         [--burst-factor X] [--batch-max N] [--noisy-hours H] [--json]"
    );
    std::process::exit(2);
}

fn main() {
    let mut bench = AutoscaleBench::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        let Some(value) = args.next() else {
            usage(&format!("{flag} needs a value"));
        };
        let num = |v: &str| -> f64 {
            v.parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .unwrap_or_else(|| usage(&format!("{flag} takes a non-negative number, got {v:?}")))
        };
        let x = num(&value);
        match flag.as_str() {
            "--start-ms" => bench.start_time = Duration::from_secs_f64(x / 1e3),
            "--seed" => bench.seed = x as u64,
            "--target" if x > 0.0 => bench.target = x,
            "--workers" if x >= 1.0 => bench.slots = x as u32,
            "--base-rate" if x > 0.0 => bench.base_rate = x,
            "--burst-factor" => bench.noise.burst_factor = x,
            "--batch-max" if x >= 1.0 => bench.noise.batch_max = x as u32,
            "--noisy-hours" => bench.noisy_hours = x,
            _ => usage(&format!(
                "unknown option or value out of range: {flag} {value}"
            )),
        }
    }
    let t0 = Instant::now();
    let report = hako_sim::autoscale::run(&bench);
    eprintln!("(simulated in {:.1} s)", t0.elapsed().as_secs_f64());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
    } else {
        println!("{report}");
    }
}
