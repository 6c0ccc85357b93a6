//! The trace half of `bench mitigation`: a bursty, partly periodic schedule of requests
//! replayed at once against twin sites, one under the fixed keep-alive and one under the
//! predictive keep-alive (see the parent module's doc).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::daemon::HakoServe;
use crate::samples::{Samples, ms};
use crate::wordpress::first_byte;

/// The kinds of site, and how their requests come.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// Every `period` seconds, ±2%.
    Periodic { period: f64 },
    /// Bursts of 1–4 requests 200 ms apart; exponential gaps of `mean` seconds between bursts.
    Bursty { mean: f64 },
}

const PATTERNS: [(&str, Pattern); 4] = [
    ("cron6s", Pattern::Periodic { period: 6.0 }),
    ("cron32s", Pattern::Periodic { period: 32.0 }),
    ("burst15s", Pattern::Bursty { mean: 15.0 }),
    ("burst40s", Pattern::Bursty { mean: 40.0 }),
];

/// What one keep-alive gave.
#[derive(Debug, Default)]
pub(super) struct Variant {
    pub(super) requests: u64,
    pub(super) cold: u64,
    pub(super) p99_added_ms: f64,
    pub(super) instance_seconds: f64,
    latency: Samples,
}

/// Both keep-alives over the same schedule.
#[derive(Debug, Default)]
pub(super) struct Figures {
    pub(super) fixed: Variant,
    pub(super) predictive: Variant,
    warm_p50_ms: f64,
    seconds: u64,
    /// The predictive sites' windows and pre-warm starts, in words.
    learned: Vec<String>,
}

impl Figures {
    pub(super) fn print(&self) {
        println!(
            "replayed trace: {} s, 4 sites x 2 keep-alives (idle timeout 5 s), warm first byte p50 {:.2} ms",
            self.seconds, self.warm_p50_ms
        );
        println!(
            "{:<12} {:>9} {:>11} {:>15} {:>10} {:>18}",
            "keep-alive",
            "requests",
            "cold ratio",
            "p99 added (ms)",
            "p50 (ms)",
            "instance-seconds"
        );
        for (name, v) in [("fixed", &self.fixed), ("predictive", &self.predictive)] {
            println!(
                "{:<12} {:>9} {:>11.4} {:>15.2} {:>10} {:>18.1}",
                name,
                v.requests,
                v.cold as f64 / v.requests.max(1) as f64,
                v.p99_added_ms,
                ms(v.latency.p50()),
                v.instance_seconds
            );
        }
        for l in &self.learned {
            println!("  {l}");
        }
    }
}

/// A small seeded generator (xorshift64*): the same schedule on every run.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The requests of each pattern over `seconds`: (time from the start, pattern index).
fn schedule(seconds: f64) -> Vec<(f64, usize)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for (i, (_, p)) in PATTERNS.iter().enumerate() {
        let mut t = 0.5 + i as f64 * 0.7;
        while t < seconds {
            match *p {
                Pattern::Periodic { period } => {
                    out.push((t, i));
                    t += period * (1.0 + 0.04 * (rng.next_f64() - 0.5));
                }
                Pattern::Bursty { mean } => {
                    let n = 1 + (rng.next_f64() * 4.0) as usize;
                    for k in 0..n {
                        out.push((t + 0.2 * k as f64, i));
                    }
                    t += -mean * (1.0 - rng.next_f64()).ln() + 0.2 * n as f64;
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Runs the trace (see the module doc).
pub(super) fn run(serve: &HakoServe, code: &Path, seconds: u64) -> anyhow::Result<Figures> {
    let dir = code.join("trace");
    hako_testkit::site::static_code(&dir, "<h1>trace</h1>\n");
    let dir = dir.to_str().context("path is not UTF-8")?;
    let name = |i: usize, predictive: bool| {
        format!("t{}-{}", if predictive { "p" } else { "f" }, PATTERNS[i].0)
    };
    for i in 0..PATTERNS.len() {
        for predictive in [false, true] {
            let app = name(i, predictive);
            let host = format!("{app}.example");
            serve.cli(&[
                "app",
                "create",
                &app,
                "--host",
                &host,
                "--image",
                "base",
                "--cmd",
                hako_testkit::site::STATIC_CMD,
                "--code",
                dir,
                "--idle-timeout",
                "5s",
                "--restore",
                "never",
                "--keep-alive",
                if predictive { "predictive" } else { "fixed" },
            ])?;
        }
    }
    // A warm request's first byte: the baseline "added" latency is measured against.
    let warm_app = name(0, false);
    let warm_host = format!("{warm_app}.example");
    serve.cli(&["app", "update", &warm_app, "--min", "1"])?;
    let mut warm = Samples::default();
    first_byte(serve.proxy, &warm_host, "/")?;
    for _ in 0..30 {
        warm.push(first_byte(serve.proxy, &warm_host, "/")?);
    }
    serve.cli(&["app", "update", &warm_app, "--min", "0"])?;
    serve.wait_no_instances(&warm_app, Duration::from_secs(30))?;
    let warm_p50_ms = warm.p50().unwrap_or(0.0);
    let cold_before: Vec<[u64; 2]> = (0..PATTERNS.len())
        .map(|i| [false, true].map(|p| serve.cold_count(&name(i, p)).unwrap_or(0)))
        .collect();

    eprintln!("bench mitigation: replaying the trace for {seconds} s");
    let plan = schedule(seconds as f64);
    let latencies: Arc<Mutex<[Vec<Duration>; 2]>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let instance_seconds = Arc::new(Mutex::new([0.0f64; 2]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Instances running, per variant, sampled every 250 ms.
    let sampler = {
        let client = serve.client.clone();
        let (acc, stop) = (instance_seconds.clone(), stop.clone());
        std::thread::spawn(move || {
            let step = Duration::from_millis(250);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(all) = client.instances(None) {
                    let mut a = acc.lock().unwrap();
                    for i in all.iter().filter(|i| i.app.starts_with('t')) {
                        let k = usize::from(i.app.starts_with("tp-"));
                        a[k] += step.as_secs_f64();
                    }
                }
                std::thread::sleep(step);
            }
        })
    };
    let t0 = Instant::now();
    let proxy = serve.proxy;
    let mut workers = Vec::new();
    for (at, i) in plan {
        let due = t0 + Duration::from_secs_f64(at);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for predictive in [false, true] {
            let host = format!("{}.example", name(i, predictive));
            let (lat, errs) = (latencies.clone(), errors.clone());
            workers.push(std::thread::spawn(move || {
                match first_byte(proxy, &host, "/") {
                    Ok(d) => lat.lock().unwrap()[usize::from(predictive)].push(d),
                    Err(e) => errs.lock().unwrap().push(format!("{host}: {e}")),
                }
            }));
        }
        workers.retain(|w| !w.is_finished());
    }
    for w in workers {
        let _ = w.join();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    let errors = errors.lock().unwrap().clone();
    if !errors.is_empty() {
        anyhow::bail!(
            "{} request(s) of the trace failed, e.g. {}",
            errors.len(),
            errors[0]
        );
    }

    let mut f = Figures {
        warm_p50_ms,
        seconds,
        ..Figures::default()
    };
    let lat = latencies.lock().unwrap();
    let secs = instance_seconds.lock().unwrap();
    for (k, v) in [&mut f.fixed, &mut f.predictive].into_iter().enumerate() {
        let mut added: Vec<f64> = lat[k]
            .iter()
            .map(|d| (d.as_secs_f64() * 1e3 - warm_p50_ms).max(0.0))
            .collect();
        added.sort_by(f64::total_cmp);
        let rank = ((0.99 * added.len() as f64).ceil() as usize).clamp(1, added.len().max(1));
        v.p99_added_ms = added.get(rank - 1).copied().unwrap_or(0.0);
        v.requests = lat[k].len() as u64;
        for d in &lat[k] {
            v.latency.push(*d);
        }
        v.instance_seconds = secs[k];
        v.cold = (0..PATTERNS.len())
            .map(|i| {
                serve
                    .cold_count(&name(i, k == 1))
                    .unwrap_or(0)
                    .saturating_sub(cold_before[i][k])
            })
            .sum();
    }
    for i in 0..PATTERNS.len() {
        let app = name(i, true);
        if let Ok(r) = serve.client.slo(&app, None)
            && let Some(p) = r.predictor
        {
            f.learned.push(format!(
                "{app}: {} ({} idle periods, {} pre-warm starts)",
                p.window, p.idle_periods, p.pre_warm_starts
            ));
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_fixed_sorted_and_has_every_pattern() {
        let a = schedule(300.0);
        assert_eq!(a, schedule(300.0));
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        for i in 0..PATTERNS.len() {
            assert!(
                a.iter().filter(|(_, p)| *p == i).count() >= 5,
                "pattern {i}"
            );
        }
        // The 6 s cron: about 50 requests in 300 s.
        let cron = a.iter().filter(|(_, p)| *p == 0).count();
        assert!((45..=55).contains(&cron), "{cron}");
    }
}
