//! The real run: one `hako serve` on loopback with every site as an app, and the same
//! compressed request trace replayed once per mode — always-on, cycling, cycling with
//! predicted pre-warm — while the instances' cgroup memory and the host's available memory
//! are sampled.
//!
//! Each mode replays the trace from its start; the first `warmup` seconds are not measured.
//! A fixed idle timeout makes a site's state at time t depend only on its requests in the
//! last idle timeout, so a warm-up one idle timeout long leaves every site exactly as if the
//! mode had always run — whatever the previous mode left running.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::loadgen::{self, Outcome};
use super::memory::{self, Sample, Sampler, SplitByKind};
use super::neighbours::NeighbourLimits;
use super::simulate::{Policy, Twin, twin};
use super::sites::{Counts, Sites, patch, patch_with, write_code};
use super::workload::{Kind, MinChange, Workload, prewarm_plan};
use crate::daemon::HakoServe;

/// Sites whose minimum is raised at once while ramping up always-on.
const RAMP_BATCH: usize = 20;
/// Longest the always-on ramp may take.
const RAMP_LIMIT: Duration = Duration::from_secs(1800);
/// Stop ramping up when the host has less memory available than this.
const MIN_AVAILABLE: u64 = 2 << 30;

/// The real run's settings (times already compressed to real seconds).
#[derive(Debug, Clone)]
pub struct Setup {
    pub workload: Workload,
    /// The modes, in order: (name, policy in real time).
    pub modes: Vec<(&'static str, Policy)>,
    /// Seconds of each run not measured.
    pub warmup: f64,
    pub concurrency: usize,
    pub max_requests: usize,
    pub sample_interval: Duration,
}

/// What one mode measured.
#[derive(Debug, Clone)]
pub struct ModeRun {
    pub name: &'static str,
    /// The policy, real time.
    pub policy: Policy,
    pub samples: Vec<Sample>,
    /// The measured window, seconds from the run's start.
    pub window: (f64, f64),
    /// Requests due in the window.
    pub outcomes: Vec<Outcome>,
    /// Requests sent while the window's first metrics were read (see [`races`]): the
    /// daemon's counts over the window may differ from `outcomes` by at most this many.
    pub racing: usize,
    pub dropped: u64,
    pub first_errors: Vec<String>,
    /// The daemon's counts over the window, summed over the sites, and by kind of site.
    pub counts: Counts,
    pub counts_by_kind: [Counts; Kind::COUNT],
    /// Pre-warm minimum changes sent, and how late they went out (seconds).
    pub prewarm_changes: usize,
    pub prewarm_late: Vec<f64>,
    /// The simulator on the same requests and policy.
    pub twin: Twin,
}

impl ModeRun {
    fn span(&self) -> f64 {
        self.window.1 - self.window.0
    }

    /// Mean of the instances' memory over the window, MiB.
    pub fn mean_mib(&self) -> f64 {
        memory::mib(memory::integrate(
            &self.samples,
            self.window.0,
            self.window.1,
            |s| s.memory as f64,
        )) / self.span()
    }

    /// MiB-seconds of the instances over the window.
    pub fn mib_seconds(&self) -> f64 {
        self.mean_mib() * self.span()
    }

    /// Mean memory of the instances of one kind over the window, MiB.
    pub fn mean_mib_of(&self, kind: Kind) -> f64 {
        memory::mib(memory::integrate(
            &self.samples,
            self.window.0,
            self.window.1,
            |s| s.by_kind.memory[kind.index()] as f64,
        )) / self.span()
    }

    /// Mean number of instances of one kind over the window.
    pub fn mean_instances_of(&self, kind: Kind) -> f64 {
        memory::integrate(&self.samples, self.window.0, self.window.1, |s| {
            f64::from(s.by_kind.instances[kind.index()])
        }) / self.span()
    }

    /// Mean number of instances over the window.
    pub fn mean_instances(&self) -> f64 {
        memory::integrate(&self.samples, self.window.0, self.window.1, |s| {
            f64::from(s.instances)
        }) / self.span()
    }

    /// Mean host memory in use above `baseline_available` (bytes), MiB.
    pub fn host_used_mib(&self, baseline_available: u64) -> f64 {
        memory::mib(memory::integrate(
            &self.samples,
            self.window.0,
            self.window.1,
            |s| baseline_available as f64 - s.available as f64,
        )) / self.span()
    }

    /// Cold requests / all requests the proxy counted in the window.
    pub fn cold_ratio(&self) -> f64 {
        let n = self.counts.cold + self.counts.warm;
        if n == 0 {
            0.0
        } else {
            self.counts.cold as f64 / n as f64
        }
    }

    /// Mean wait of a cold request for its start, seconds (None without cold requests).
    pub fn mean_cold_wait(&self) -> Option<f64> {
        (self.counts.cold > 0).then(|| self.counts.wait_ms / self.counts.cold as f64 / 1e3)
    }

    /// Requests answered with a status other than 2xx, or not at all.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| !(200..300).contains(&o.status))
            .count()
    }

    /// Client-side latency percentile (0–100) over the window's answered requests, seconds.
    pub fn latency(&self, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .outcomes
            .iter()
            .filter(|o| o.status != 0)
            .map(|o| f64::from(o.latency))
            .collect();
        percentile(&mut v, p)
    }

    /// [`ModeRun::latency`] over the requests to sites of one kind (`kinds`: by site).
    pub fn latency_of(&self, kinds: &[Kind], kind: Kind, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .outcomes
            .iter()
            .filter(|o| o.status != 0 && kinds.get(o.site as usize) == Some(&kind))
            .map(|o| f64::from(o.latency))
            .collect();
        percentile(&mut v, p)
    }

    /// Added latency percentile (0–100), ms: each answered request's time past `warm` for its
    /// kind of site (always-on's median: a WordPress page takes tens of milliseconds warm, a
    /// static file one), at least 0. None without requests or a warm figure.
    pub fn added_latency(
        &self,
        kinds: &[Kind],
        warm: &[Option<f64>; Kind::COUNT],
        p: f64,
    ) -> Option<f64> {
        let mut v: Vec<f64> = self
            .outcomes
            .iter()
            .filter(|o| o.status != 0)
            .filter_map(|o| {
                let warm = warm[kinds.get(o.site as usize)?.index()]?;
                Some((f64::from(o.latency) - warm).max(0.0) * 1e3)
            })
            .collect();
        percentile(&mut v, p)
    }

    /// Cold requests / all requests the proxy counted in the window, for one kind of site.
    pub fn cold_ratio_of(&self, kind: Kind) -> f64 {
        let c = &self.counts_by_kind[kind.index()];
        let n = c.cold + c.warm;
        if n == 0 {
            0.0
        } else {
            c.cold as f64 / n as f64
        }
    }

    /// Mean client-side latency over the window's answered requests, seconds.
    pub fn mean_latency(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .outcomes
            .iter()
            .filter(|o| o.status != 0)
            .map(|o| f64::from(o.latency))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// How late requests left (queueing for a worker), percentile, seconds.
    pub fn lateness(&self, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.outcomes.iter().map(|o| f64::from(o.late)).collect();
        percentile(&mut v, p)
    }
}

/// Nearest-rank percentile (0–100).
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Everything the real run measured.
#[derive(Debug, Clone)]
pub struct RealRun {
    pub sites: usize,
    /// Requests in one replay, and in its measured window.
    pub requests: usize,
    pub window_requests: usize,
    /// Where the replay starts in the workload's day, seconds after midnight.
    pub day_offset: f64,
    /// Each site's kind, by site number.
    pub kinds: Vec<Kind>,
    pub php_sites: usize,
    pub wordpress_sites: usize,
    /// The daemon's runtime prefix (its kernel objects' names).
    pub prefix: String,
    /// MemAvailable before any site existed, bytes.
    pub baseline_available: u64,
    pub modes: Vec<ModeRun>,
}

impl RealRun {
    /// Always-on's median latency per kind of site, seconds: a warm request of each kind.
    pub fn warm_by_kind(&self) -> [Option<f64>; Kind::COUNT] {
        let on = self.modes.iter().find(|m| m.policy.always_on);
        Kind::ALL.map(|k| on.and_then(|m| m.latency_of(&self.kinds, k, 50.0)))
    }
}

/// A /21 (2,046 addresses: a thousand instances and their replacements) per pid, apart from
/// the test and bench subnets (10.50–53, 10.88, 10.100–103).
pub fn subnet(pid: u32) -> String {
    let n = pid % 256;
    format!("10.{}.{}.0/21", 160 + n / 32, (n % 32) * 8)
}

/// Runs every mode against a fresh `hako serve` from the binary `hako`.
pub fn run(setup: &Setup, hako: &Path, stop: &AtomicBool) -> anyhow::Result<RealRun> {
    let w = &setup.workload;
    if w.requests() > setup.max_requests {
        bail!(
            "the trace has {} requests per mode, above the cap of {}: lower --sites or --speedup",
            w.requests(),
            setup.max_requests
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!("hako-experiment-{}-", std::process::id()))
        .tempdir()
        .context("create a temp dir")?;
    let code = tmp.path().join("code");
    write_code(&code)?;
    let pid = std::process::id();
    // Dropped after `serve` (declared first): the limits hold until every instance is gone.
    let _neighbours = NeighbourLimits::raise()?;
    // The image store is the benchmarks' shared one: the WordPress image is built once per
    // machine.
    let serve = HakoServe::from_builder(
        HakoServe::builder(hako)
            .names(hako_testkit::Names::unique('e').with_subnet(subnet(pid)))
            .shared_images(crate::wordpress::IMAGES),
    )?;
    eprintln!(
        "experiment: hako serve on {} (prefix {}), {} sites, {} requests per mode",
        serve.proxy,
        serve.prefix,
        w.kinds.len(),
        w.requests()
    );
    let baseline_available = baseline_available()?;
    let first_idle = setup
        .modes
        .first()
        .map_or(Duration::from_secs(300), |m| m.1.idle_timeout);
    if w.kinds.contains(&Kind::WordPress) {
        crate::wordpress::build_image(&serve, "experiment")?;
    }
    let sites = Sites::create(&serve, &w.kinds, &code, first_idle)?;
    let requests: Vec<Vec<u8>> = sites
        .hosts
        .iter()
        .map(|h| format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n").into_bytes())
        .collect();
    let mut modes = Vec::new();
    for (name, policy) in &setup.modes {
        check(stop)?;
        eprintln!("experiment: {name} ({})", policy.label());
        let keep_alive = if policy.predictor {
            hako_model::KeepAliveMode::Predictive
        } else {
            hako_model::KeepAliveMode::Fixed
        };
        if policy.always_on {
            sites.update_all(&patch_with(
                None,
                Some(policy.idle_timeout),
                Some(keep_alive),
            ))?;
            ramp(&sites, stop)?;
        } else {
            sites.update_all(&patch_with(
                Some(0),
                Some(policy.idle_timeout),
                Some(keep_alive),
            ))?;
        }
        let m = run_mode(setup, &serve, &sites, &requests, name, policy, stop)?;
        eprintln!(
            "experiment: {name}: {:.0} MiB mean over {} instances, {:.3}% cold, {} dropped, {} failed \
             ({} counted by the daemon, {} sent, {} of them at the window's edge)",
            m.mean_mib(),
            m.mean_instances().round(),
            m.cold_ratio() * 100.0,
            m.dropped,
            m.failed(),
            m.counts.cold + m.counts.warm,
            m.outcomes.len(),
            m.racing
        );
        modes.push(m);
    }
    drop(sites);
    let prefix = serve.prefix.clone();
    drop(serve);
    // Reported, not fatal: the measurements stand (the smoke test asserts a clean stop).
    let left = hako_testkit::leftovers(&prefix);
    if !left.is_empty() {
        eprintln!("experiment: warning: hako serve left kernel objects behind: {left:?}");
    }
    Ok(RealRun {
        prefix,
        sites: w.kinds.len(),
        requests: w.requests(),
        window_requests: w.requests_from(setup.warmup),
        day_offset: w.day_offset,
        kinds: w.kinds.clone(),
        php_sites: w.kinds.iter().filter(|k| **k == Kind::Php).count(),
        wordpress_sites: w.kinds.iter().filter(|k| **k == Kind::WordPress).count(),
        baseline_available,
        modes,
    })
}

fn check(stop: &AtomicBool) -> anyhow::Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// MemAvailable before the sites exist: the mean of five readings 100 ms apart.
fn baseline_available() -> anyhow::Result<u64> {
    let mut sum = 0;
    for _ in 0..5 {
        sum += memory::mem_available()?;
        // Spacing of the readings, not a readiness wait.
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(sum / 5)
}

/// Raises every site's minimum to 1 in batches, refusing to go on when the host runs short.
fn ramp(sites: &Sites<'_>, stop: &AtomicBool) -> anyhow::Result<()> {
    let t = Instant::now();
    let n = sites.names.len();
    for first in (0..n).step_by(RAMP_BATCH) {
        check(stop)?;
        let available = memory::mem_available()?;
        if available < MIN_AVAILABLE {
            bail!(
                "only {} MiB left after {first} always-on instances: lower --sites or --php-share",
                available >> 20
            );
        }
        let last = (first + RAMP_BATCH).min(n);
        sites.raise_min(first..last, t + RAMP_LIMIT)?;
    }
    eprintln!(
        "experiment: {n} always-on instances ready in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Replays the trace once under the current policy, measuring the window after `warmup`.
fn run_mode(
    setup: &Setup,
    serve: &HakoServe,
    sites: &Sites<'_>,
    requests: &[Vec<u8>],
    name: &'static str,
    policy: &Policy,
    stop: &AtomicBool,
) -> anyhow::Result<ModeRun> {
    let w = &setup.workload;
    let schedule = w.schedule();
    let plan: Vec<MinChange> = match policy.lead {
        Some(lead) => prewarm_plan(
            &w.arrivals,
            policy.idle_timeout.as_secs_f64(),
            lead.as_secs_f64(),
        ),
        None => Vec::new(),
    };
    let config = loadgen::Config {
        proxy: serve.proxy,
        concurrency: setup.concurrency,
        queue: setup.concurrency * 4,
        max_requests: setup.max_requests,
        timeout: Duration::from_secs(40),
    };
    let t0 = Instant::now();
    let sampler = Sampler::start(
        &serve.prefix,
        setup.sample_interval,
        t0,
        Some(split_by_kind(serve, sites, &w.kinds)),
    )?;
    let (load, prewarm_late, before) = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run(&config, &schedule, requests, t0, stop));
        let prewarm = scope.spawn(|| drive_prewarm(sites, &plan, t0, stop));
        let before = scope.spawn(|| -> anyhow::Result<(Vec<Counts>, (f64, f64))> {
            sleep_until(t0 + Duration::from_secs_f64(setup.warmup), stop);
            let from = t0.elapsed().as_secs_f64();
            let counts = sites.counts()?;
            Ok((counts, (from, t0.elapsed().as_secs_f64())))
        });
        (
            load.join().expect("load thread panicked"),
            prewarm.join().expect("pre-warm thread panicked"),
            before.join().expect("metrics thread panicked"),
        )
    });
    let samples_end = Instant::now();
    let after = sites.counts()?;
    let samples = sampler.finish()?;
    let load = load?;
    let (before, snapshot) = before?;
    let prewarm_late = prewarm_late?;
    let racing = load
        .outcomes
        .iter()
        .filter(|o| races(o, setup.warmup, snapshot))
        .count();
    check(stop)?;
    let mut counts = Counts::default();
    let mut counts_by_kind = [Counts::default(); Kind::COUNT];
    for ((a, b), kind) in after.iter().zip(&before).zip(&w.kinds) {
        let d = a.since(b);
        counts.add(&d);
        counts_by_kind[kind.index()].add(&d);
    }
    let end = w.span.min(samples_end.duration_since(t0).as_secs_f64());
    let start_time = match (counts.cold > 0).then(|| counts.wait_ms / counts.cold as f64 / 1e3) {
        Some(s) if s > 0.0 => hako_policy::slo::StartTime::constant(Duration::from_secs_f64(s)),
        _ => hako_policy::slo::StartTime::constant(Duration::from_millis(50)),
    };
    let twin = twin(w, policy, &start_time, setup.warmup)?;
    Ok(ModeRun {
        name,
        policy: policy.clone(),
        samples,
        window: (setup.warmup, end),
        outcomes: load
            .outcomes
            .into_iter()
            .filter(|o| o.due >= setup.warmup)
            .collect(),
        racing,
        dropped: load.dropped,
        first_errors: load.errors,
        counts,
        counts_by_kind,
        prewarm_changes: plan.len(),
        prewarm_late,
        twin,
    })
}

/// The memory and instances of each kind of site, from the daemon's per-app metrics.
fn split_by_kind(serve: &HakoServe, sites: &Sites<'_>, kinds: &[Kind]) -> SplitByKind {
    let client = serve.client.clone();
    let by_app: HashMap<String, Kind> = sites
        .names
        .iter()
        .cloned()
        .zip(kinds.iter().copied())
        .collect();
    Box::new(move || {
        let text = client.prometheus()?;
        Ok(memory::split_scrape(&text, |app| by_app.get(app).copied()))
    })
}

/// Whether a request raced with the window's first reading of the sites' metrics, which took
/// from `snapshot.0` to `snapshot.1` (seconds from the run's start): then it is in the window
/// by its due time (`warmup` or later) but may have been counted before the reading, or the
/// other way round. A request sent after the reading, or before it and due before the
/// window, is counted on the same side as it is placed (a 5 ms margin covers the way from the
/// load generator to the proxy).
fn races(o: &Outcome, warmup: f64, snapshot: (f64, f64)) -> bool {
    const MARGIN: f64 = 0.005;
    let sent = o.due + f64::from(o.late);
    let after = sent > snapshot.1 + MARGIN && o.due >= warmup;
    let before = sent < snapshot.0 - MARGIN && o.due < warmup;
    !(after || before)
}

/// Threads of the pre-warm driver; each owns the sites with its number modulo this, so one
/// site's changes keep their order while a slow API call delays only a share of the sites.
const PREWARM_THREADS: usize = 4;

/// Sends the pre-warm plan's minimum changes at their times; returns how late each went out.
fn drive_prewarm(
    sites: &Sites<'_>,
    plan: &[MinChange],
    t0: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<f64>> {
    let shares: Vec<Vec<MinChange>> = (0..PREWARM_THREADS)
        .map(|k| {
            plan.iter()
                .filter(|c| c.site as usize % PREWARM_THREADS == k)
                .copied()
                .collect()
        })
        .collect();
    let results: Vec<anyhow::Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut late = Vec::with_capacity(share.len());
                    for c in share {
                        let at = t0 + Duration::from_secs_f64(c.at);
                        if !sleep_until(at, stop) {
                            break;
                        }
                        late.push(Instant::now().saturating_duration_since(at).as_secs_f64());
                        sites.update(c.site as usize, &patch(Some(c.min), None))?;
                    }
                    Ok(late)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("pre-warm thread panicked"))
            .collect()
    });
    let mut late = Vec::with_capacity(plan.len());
    for r in results {
        late.extend(r?);
    }
    Ok(late)
}

/// Sleeps until `at` in steps of at most 100 ms; false if `stop` was set meanwhile.
pub fn sleep_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        // Waiting for a moment of the schedule, not for a condition.
        std::thread::sleep((at - now).min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_21s_apart_from_the_others() {
        let a = subnet(0);
        assert_eq!(a, "10.160.0.0/21");
        assert_eq!(subnet(255), "10.167.248.0/21");
        assert_ne!(subnet(1), subnet(2));
        assert_eq!(subnet(256), subnet(0));
    }

    #[test]
    fn requests_sent_during_the_first_reading_race_with_it() {
        let o = |due: f64, late: f32| Outcome {
            site: 0,
            due,
            late,
            latency: 0.01,
            status: 200,
        };
        let snapshot = (10.0, 10.02);
        // Due and sent well before the window, or well after the reading: no race.
        assert!(!races(&o(9.0, 0.0), 10.0, snapshot));
        assert!(!races(&o(10.5, 0.0), 10.0, snapshot));
        // Sent while the metrics were read, on either side of the window's start.
        assert!(races(&o(10.01, 0.0), 10.0, snapshot));
        assert!(races(&o(9.99, 0.02), 10.0, snapshot));
        // Due before the window but sent (late) after the reading: counted in it.
        assert!(races(&o(9.9, 0.5), 10.0, snapshot));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn sleep_until_returns_at_once_when_stopped_or_due() {
        let stop = AtomicBool::new(false);
        assert!(sleep_until(Instant::now(), &stop));
        stop.store(true, Ordering::Relaxed);
        let t = Instant::now();
        assert!(!sleep_until(t + Duration::from_secs(60), &stop));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
