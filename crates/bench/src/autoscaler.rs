//! `cargo xtask bench autoscaler`: the autoscaler evaluated twice.
//!
//! 1. **Simulated** (`hako_sim::autoscale`): hako's autoscaler, a Knative-KPA-like policy
//!    (60 s stable / 6 s panic windows, 2 s tick, panic at 200%) and the seed's prototype (15 s
//!    samples, 3 min decisions) on the same simulated requests — a ×4 step, a ramp, a spike
//!    and 10 h of noisy steady load: detection delay, needless scale-ups per hour,
//!    instance-seconds, requests that waited over 100 ms.
//! 2. **Real**: a `hako serve` site whose requests take 40 ms (a CGI that sleeps: an app
//!    waiting on its database), target concurrency 2, at most 4 instances; a bounded open-loop
//!    load (hako-bench's generator: per-request timestamps, which per-phase figures need and
//!    wrk does not give) at 30 requests/s (about 1.4 in flight, 70% of one instance's target)
//!    for 20 s, then ×4 for 20 s. Measured: the time from the step to the second instance
//!    taking requests (its start event: ready and routed), and the p99 before, during (step
//!    to that moment) and after.
//!
//! Ends with `autoscaler: hako_step_detect_s=… kpa_step_detect_s=… seed_step_detect_s=…
//! hako_false_per_h=… kpa_false_per_h=… real_step_to_ready_s=…`.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hako_model::EventKind;

use crate::daemon::HakoServe;
use crate::efficiency::loadgen;
use crate::phases::{self, p99_ms};

const APP: &str = "auto";
/// Each request's work.
const WORK_MS: u64 = 40;
const BASE_RATE: f64 = 30.0;
const STEP_AT: f64 = 20.0;
const END: f64 = 40.0;

/// Parses the options (none but `--sim-only`) and runs the benchmark.
pub fn main(args: &[&str]) -> anyhow::Result<()> {
    let sim_only = match args {
        [] => false,
        ["--sim-only"] => true,
        other => bail!("unknown options {other:?} (bench autoscaler takes --sim-only)"),
    };
    let t = Instant::now();
    let report = hako_sim::autoscale::run(&hako_sim::autoscale::AutoscaleBench::default());
    eprintln!("(simulated in {:.1} s)", t.elapsed().as_secs_f64());
    let text = report.to_string();
    // Its own summary line is printed again below, with the real measure added.
    for line in text.lines().filter(|l| !l.starts_with("autoscaler:")) {
        println!("{line}");
    }
    let real = if sim_only { None } else { Some(real()?) };
    println!(
        "{} real_step_to_ready_s={}",
        report.summary_line(),
        real.map_or("none".into(), |r| format!("{r:.2}"))
    );
    Ok(())
}

/// The real step; returns the seconds from the step to the second instance taking requests.
fn real() -> anyhow::Result<f64> {
    if !hako_runtime::is_root() {
        bail!("the real part runs hako serve and containers: run it as root (or --sim-only)");
    }
    crate::tools::require(&[
        ("busybox", "busybox-static"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ])?;
    let hako = crate::paths::hako_binary()?;
    let tmp = tempfile::Builder::new()
        .prefix("hako-bench-autoscaler-")
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    phases::site_code(&code, WORK_MS)?;
    let serve = HakoServe::start(&hako)?;
    phases::create_app(
        &serve,
        APP,
        &code,
        &[
            "--target-concurrency",
            "2",
            "--max",
            "4",
            "--idle-timeout",
            "10m",
        ],
    )?;
    let host = format!("{APP}.bench");
    let requests = vec![phases::request(&host, "/cgi-bin/work")];
    let mut schedule = phases::constant(0.0, STEP_AT, BASE_RATE);
    schedule.extend(phases::constant(STEP_AT, END, BASE_RATE * 4.0));
    let config = loadgen::Config {
        proxy: serve.proxy,
        concurrency: 64,
        queue: 1024,
        max_requests: schedule.len(),
        timeout: Duration::from_secs(10),
    };
    eprintln!(
        "bench autoscaler (real): {APP} with {WORK_MS} ms requests, target 2, max 4; \
         {BASE_RATE} req/s for {STEP_AT} s, then {} req/s until {END} s (prefix {})",
        BASE_RATE * 4.0,
        serve.prefix
    );
    let t0 = Instant::now();
    let t0_unix = hako_model::now_unix_ms();
    let stop = AtomicBool::new(false);
    let report = loadgen::run(&config, &schedule, &requests, t0, &stop)?;
    let up = phases::wait_event(&serve, APP, EventKind::Start, Duration::from_secs(5), |r| {
        r.starts_with("scale 1→")
    })
    .context("the autoscaler never added an instance after the step")?;
    let scale = phases::wait_event(&serve, APP, EventKind::Scale, Duration::from_secs(1), |r| {
        r.starts_with("scale 1→")
    })?;
    let ready_at = phases::run_secs(t0_unix, up);
    let detected_at = phases::run_secs(t0_unix, scale);
    let decision = serve
        .client
        .events(APP, Some(1000))?
        .into_iter()
        .find(|e| e.kind == EventKind::Scale)
        .map(|e| e.reason)
        .unwrap_or_default();
    let instances = serve.instances(APP)?.len();
    drop(serve);
    let failed = report
        .outcomes
        .iter()
        .filter(|o| !(200..300).contains(&o.status))
        .count() as u64
        + report.dropped;
    let step_to_ready = ready_at - STEP_AT;
    let ms = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.1}"));
    println!();
    println!("real step (×4 at {STEP_AT} s): {decision}");
    println!(
        "  decided {:.2} s after the step, second instance taking requests {:.2} s after it; {} instances at the end; {} requests, {} failed",
        detected_at - STEP_AT,
        step_to_ready,
        instances,
        report.outcomes.len(),
        failed
    );
    println!(
        "  p99 ms: before {} (5–{STEP_AT} s), during {} (step to second instance), after {} (then to {END} s)",
        ms(p99_ms(&report.outcomes, 5.0, STEP_AT)),
        ms(p99_ms(&report.outcomes, STEP_AT, ready_at)),
        ms(p99_ms(&report.outcomes, ready_at, END)),
    );
    if !report.errors.is_empty() {
        eprintln!("  first errors: {:?}", report.errors);
    }
    Ok(step_to_ready)
}
