//! `cargo xtask bench cycling`: a site under steady bounded load through one lifetime
//! recycle, one deploy, one rollout and one scale-in, and the fairness of one site's flood
//! to another.
//!
//! 1. **Cycling**: a static site (min 1, max 3) gets 100 requests/s for 48 s from hako-bench's
//!    open-loop generator (keep-alive connections, per-request timestamps: the failures and
//!    the p99 of each phase need them, which wrk does not give). Meanwhile: its max lifetime
//!    drops to 4 s (a recycle of the older instance: the successor first), a deploy, a rollout, then three instances
//!    (`--min 3`) cut to one (`--min 1 --max 1`: the autoscaler drains two). Each phase's
//!    window runs from the command to the old instance's stop; the p99 is over the requests
//!    due in it, `steady` over the first 5 s.
//! 2. **Fairness**: two static sites; one's p99 under a 50 requests/s probe alone, then
//!    while wrk (2 threads, 64 connections) floods the other.
//!
//! Ends with `cycling: failed=… recycle_p99_ms=… deploy_p99_ms=… rollout_p99_ms=…
//! scalein_p99_ms=… steady_p99_ms=…` (failed: requests of the whole run without a 2xx answer,
//! or not sent).

mod fairness;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_model::EventKind;

use crate::daemon::HakoServe;
use crate::efficiency::loadgen;
use crate::phases::{self, p99_ms};

const APP: &str = "cyc";
const RATE: f64 = 100.0;
const END: f64 = 48.0;
/// How long a phase's command may take to finish.
const PHASE_LIMIT: Duration = Duration::from_secs(20);

/// One phase's window, in seconds of the run.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: f64,
    to: f64,
}

/// Parses the options (none) and runs the benchmark.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    if !args.is_empty() {
        bail!("bench cycling takes no options, got {args:?}");
    }
    if !hako_runtime::is_root() {
        bail!("the cycling benchmark runs hako serve and containers: run it as root");
    }
    crate::tools::require(&[
        ("busybox", "busybox-static"),
        ("wrk", "wrk"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-cycling-")
        .tempdir()
        .context("create a temp dir")?;
    let serve = HakoServe::start(&hako)?;
    let (windows, outcomes, not_sent) = cycle(&serve, tmp.path())?;
    let fair = fairness::run(&serve, tmp.path())?;
    drop(serve);

    let ms = |x: Option<f64>| x.map_or("none".into(), |v| format!("{v:.1}"));
    let failed = outcomes
        .iter()
        .filter(|o| !(200..300).contains(&o.status))
        .count() as u64
        + not_sent;
    println!();
    println!(
        "{:<10} {:>8} {:>8} {:>9} {:>8}",
        "phase", "from_s", "to_s", "p99_ms", "failed"
    );
    let steady = Window { from: 0.5, to: 5.0 };
    let rows = [("steady", steady)].into_iter().chain(
        ["recycle", "deploy", "rollout", "scale-in"]
            .into_iter()
            .zip(windows),
    );
    let mut p99 = Vec::new();
    for (name, w) in rows {
        let p = p99_ms(&outcomes, w.from, w.to);
        p99.push(p);
        println!(
            "{name:<10} {:>8.2} {:>8.2} {:>9} {:>8}",
            w.from,
            w.to,
            ms(p),
            phases::failed(&outcomes, w.from, w.to)
        );
    }
    println!(
        "{} requests in {END} s, {failed} failed ({not_sent} not sent: the generator's queue was full)",
        outcomes.len()
    );
    println!();
    println!(
        "fairness: quiet site p99 {:.2} ms alone, {:.2} ms while the other site takes {:.0} req/s from wrk (×{:.2})",
        fair.quiet_p99_ms,
        fair.flooded_p99_ms,
        fair.flood_rps,
        fair.flooded_p99_ms / fair.quiet_p99_ms
    );
    println!(
        "fairness: quiet_p99_ms={:.2} flooded_p99_ms={:.2} ratio={:.2}",
        fair.quiet_p99_ms,
        fair.flooded_p99_ms,
        fair.flooded_p99_ms / fair.quiet_p99_ms
    );
    println!(
        "cycling: failed={failed} recycle_p99_ms={} deploy_p99_ms={} rollout_p99_ms={} scalein_p99_ms={} steady_p99_ms={}",
        ms(p99[1]),
        ms(p99[2]),
        ms(p99[3]),
        ms(p99[4]),
        ms(p99[0])
    );
    Ok(())
}

/// The load and the four phases; returns their windows, every request's outcome and the
/// requests not sent.
fn cycle(
    serve: &HakoServe,
    tmp: &std::path::Path,
) -> anyhow::Result<([Window; 4], Vec<loadgen::Outcome>, u64)> {
    let code = tmp.join("code");
    phases::site_code(&code, 1)?;
    phases::create_app(
        serve,
        APP,
        &code,
        &["--min", "1", "--max", "3", "--idle-timeout", "10m"],
    )?;
    let host = format!("{APP}.bench");
    let requests = vec![phases::request(&host, "/index.html")];
    let schedule = phases::constant(0.0, END, RATE);
    let config = loadgen::Config {
        proxy: serve.proxy,
        concurrency: 32,
        queue: 512,
        max_requests: schedule.len(),
        timeout: Duration::from_secs(10),
    };
    let code2 = tmp.join("code2");
    phases::site_code(&code2, 1)?;
    eprintln!(
        "bench cycling: {APP} at {RATE} req/s for {END} s through a recycle, a deploy, a rollout and a scale-in (prefix {})",
        serve.prefix
    );
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let t0_unix = hako_model::now_unix_ms();
    let (load, windows) = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run(&config, &schedule, &requests, t0, &stop));
        let windows = drive(serve, t0, t0_unix, &code2);
        if windows.is_err() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        (load.join().expect("load thread panicked"), windows)
    });
    let windows = windows?;
    let load = load?;
    if !load.errors.is_empty() {
        eprintln!("  first errors: {:?}", load.errors);
    }
    Ok((windows, load.outcomes, load.dropped))
}

/// Sleeps until `at` seconds into the run.
fn at(t0: Instant, secs: f64) {
    let due = t0 + Duration::from_secs_f64(secs);
    let now = Instant::now();
    if due > now {
        // The benchmark's script of actions, not a readiness wait.
        std::thread::sleep(due - now);
    }
}

/// The phases' commands, at their times; returns their windows.
fn drive(
    serve: &HakoServe,
    t0: Instant,
    t0_unix: u64,
    code2: &std::path::Path,
) -> anyhow::Result<[Window; 4]> {
    let now = || t0.elapsed().as_secs_f64();
    let stopped = |why: &'static str, nth: usize| {
        move |serve: &HakoServe| -> anyhow::Result<f64> {
            let deadline = Instant::now() + PHASE_LIMIT;
            loop {
                let events = serve.client.events(APP, Some(1000))?;
                let stops: Vec<_> = events
                    .iter()
                    .filter(|e| e.kind == EventKind::Stop && e.reason.contains(why))
                    .collect();
                if let Some(e) = stops.get(nth - 1) {
                    return Ok(phases::run_secs(t0_unix, e.time_unix_ms));
                }
                if Instant::now() >= deadline {
                    bail!("no stop #{nth} for {why:?} within {PHASE_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // A lifetime recycle: the instance is older than 4 s already, its successor is not.
    at(t0, 6.0);
    let from = now();
    serve.cli(&["app", "update", APP, "--max-lifetime", "4s"])?;
    let to = stopped("max lifetime", 1)(serve)?;
    serve.cli(&["app", "update", APP, "--max-lifetime", "24h"])?;
    let recycle = Window { from, to: to + 0.5 };

    at(t0, to + 4.0);
    let from = now();
    serve.cli(&[
        "app",
        "deploy",
        APP,
        "--code",
        code2.to_str().context("the temp dir path is not UTF-8")?,
    ])?;
    let to = stopped("the app changed", 1)(serve)?;
    let deploy = Window { from, to: to + 0.5 };

    at(t0, to + 4.0);
    let from = now();
    serve.cli(&["app", "rollout", APP])?;
    let to = stopped("the app changed", 2)(serve)?;
    let rollout = Window { from, to: to + 0.5 };

    at(t0, to + 3.0);
    serve.cli(&["app", "update", APP, "--min", "3"])?;
    crate::phases::wait_until(PHASE_LIMIT, "three instances", || {
        Ok(serve.instances(APP)?.len() == 3)
    })?;
    at(t0, now() + 2.0);
    let from = now();
    serve.cli(&["app", "update", APP, "--min", "1", "--max", "1"])?;
    let to = stopped("scale 3→1", 2)(serve)?;
    let scale_in = Window { from, to: to + 0.5 };
    if now() > END - 1.0 {
        bail!("the phases took longer than the load ({:.1} s)", now());
    }
    Ok([recycle, deploy, rollout, scale_in])
}
