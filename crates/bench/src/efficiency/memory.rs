//! Memory over time: every `interval`, the sum of the memory charged to each instance's cgroup
//! (`memory.usage_in_bytes` on cgroup v1, `memory.current` on v2, read through hako's cgroup
//! crate), the number of instance cgroups, and the host's `MemAvailable` from /proc/meminfo.
//! [`integrate`] turns samples into MiB·seconds over a window (trapezoids). Given a way to
//! split them by kind of site ([`SplitByKind`]: the daemon's own per-app figures, see
//! [`split_scrape`]), a sample also holds the memory and instances of each kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::workload::Kind;

/// The memory and instances of each kind of site now.
pub type SplitByKind = Box<dyn FnMut() -> anyhow::Result<ByKind> + Send>;

/// Memory (bytes) and instances by kind of site ([`Kind::index`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ByKind {
    pub memory: [u64; Kind::COUNT],
    pub instances: [u32; Kind::COUNT],
}

/// Splits the daemon's Prometheus scrape by kind of site: `hako_app_memory_bytes` (the memory
/// of an app's instance cgroups) and `hako_instances` (its instances, by state) of every app
/// `kind_of` knows.
pub fn split_scrape(text: &str, kind_of: impl Fn(&str) -> Option<Kind>) -> ByKind {
    let mut out = ByKind::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((metric, labels)) = series.split_once('{') else {
            continue;
        };
        let Some(kind) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("app=\""))
            .and_then(|v| v.split('"').next())
            .and_then(&kind_of)
        else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        match metric {
            "hako_app_memory_bytes" => out.memory[kind.index()] += value as u64,
            "hako_instances" => out.instances[kind.index()] += value as u32,
            _ => {}
        }
    }
    out
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the sampler's `t0`.
    pub t: f64,
    /// Instance cgroups under the daemon's prefix (running or starting instances).
    pub instances: u32,
    /// Sum of their memory usage, bytes.
    pub memory: u64,
    /// The host's MemAvailable, bytes.
    pub available: u64,
    /// Memory and instances by kind of site, as the daemon counted them at about the same
    /// moment (zero when not split, or when the daemon did not answer).
    pub by_kind: ByKind,
}

/// A sampling thread; [`finish`](Sampler::finish) stops it and returns its samples.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl Sampler {
    /// Samples the instance cgroups of the runtime prefix `prefix` from now, every `interval`,
    /// with times relative to `t0`, split by kind by `split` if given.
    pub fn start(
        prefix: &str,
        interval: Duration,
        t0: Instant,
        mut split: Option<SplitByKind>,
    ) -> anyhow::Result<Sampler> {
        let cgroups = hako_cgroup::detect(prefix).context("find the cgroup hierarchy")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = Instant::now();
            loop {
                let mut s = sample(cgroups.as_ref(), t0)?;
                if let Some(split) = split.as_mut() {
                    // A failed answer leaves this sample unsplit; its totals stand.
                    s.by_kind = split().unwrap_or_default();
                }
                samples.push(s);
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                next += interval;
                let now = Instant::now();
                if next > now {
                    // The sampling period, not a readiness wait.
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            Ok(samples)
        });
        Ok(Sampler { stop, handle })
    }

    /// Stops sampling and returns every sample (at least one).
    pub fn finish(self) -> anyhow::Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the memory sampler panicked"))?
    }
}

/// One sample now. Instances that stop between the listing and the read are skipped.
fn sample(cgroups: &dyn hako_cgroup::CgroupManager, t0: Instant) -> anyhow::Result<Sample> {
    let names = cgroups.list().unwrap_or_default();
    let (mut instances, mut memory) = (0u32, 0u64);
    for name in &names {
        let Ok(cg) = cgroups.open(name) else { continue };
        if let Ok(stats) = cg.stats() {
            instances += 1;
            memory += stats.memory_current;
        }
    }
    Ok(Sample {
        t: t0.elapsed().as_secs_f64(),
        instances,
        memory,
        available: mem_available()?,
        by_kind: ByKind::default(),
    })
}

/// The host's MemAvailable, bytes.
pub fn mem_available() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("read /proc/meminfo")?;
    parse_mem_available(&text).context("no MemAvailable line in /proc/meminfo")
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// ∫ value dt over [from, to] through the samples (linear between samples, the first and last
/// values held flat beyond them). Units: value × seconds.
pub fn integrate(samples: &[Sample], from: f64, to: f64, value: impl Fn(&Sample) -> f64) -> f64 {
    if samples.is_empty() || to <= from {
        return 0.0;
    }
    let at = |t: f64| -> f64 {
        let i = samples.partition_point(|s| s.t < t);
        if i == 0 {
            return value(&samples[0]);
        }
        if i == samples.len() {
            return value(&samples[i - 1]);
        }
        let (a, b) = (&samples[i - 1], &samples[i]);
        let w = if b.t > a.t {
            (t - a.t) / (b.t - a.t)
        } else {
            1.0
        };
        value(a) + w * (value(b) - value(a))
    };
    // Break points: the window's ends and every sample inside it.
    let mut points = vec![from];
    points.extend(samples.iter().map(|s| s.t).filter(|t| *t > from && *t < to));
    points.push(to);
    points
        .windows(2)
        .map(|p| (p[1] - p[0]) * (at(p[0]) + at(p[1])) / 2.0)
        .sum()
}

/// Bytes to MiB.
pub fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, memory: u64) -> Sample {
        Sample {
            t,
            instances: 1,
            memory,
            available: 0,
            by_kind: ByKind::default(),
        }
    }

    #[test]
    fn integrates_with_trapezoids_and_clips_to_the_window() {
        let samples = [s(0.0, 0), s(10.0, 100), s(20.0, 100)];
        let m = |x: &Sample| x.memory as f64;
        assert_eq!(integrate(&samples, 0.0, 20.0, m), 500.0 + 1000.0);
        // [5, 15]: 5 s rising from 50 to 100, then 5 s at 100.
        assert_eq!(integrate(&samples, 5.0, 15.0, m), 375.0 + 500.0);
        // Beyond the last sample the last value holds.
        assert_eq!(integrate(&samples, 20.0, 30.0, m), 1000.0);
        assert_eq!(integrate(&samples, 3.0, 3.0, m), 0.0);
        assert_eq!(integrate(&[], 0.0, 1.0, m), 0.0);
    }

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       24684312 kB\nMemFree:        21773540 kB\nMemAvailable:   23779536 kB\n";
        assert_eq!(parse_mem_available(text), Some(23_779_536 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert!(mem_available().unwrap() > 0);
    }

    #[test]
    fn splits_a_scrape_by_kind() {
        let text = "# HELP hako_app_memory_bytes Memory the app's instances' cgroups hold now.\n\
            # TYPE hako_app_memory_bytes gauge\n\
            hako_app_memory_bytes{app=\"e00001\"} 1000\n\
            hako_app_memory_bytes{app=\"e00002\"} 3000\n\
            hako_app_memory_bytes{app=\"e00003\"} 500\n\
            hako_app_memory_bytes{app=\"other\"} 99999\n\
            hako_instances{app=\"e00002\",state=\"ready\"} 2\n\
            hako_instances{app=\"e00002\",state=\"starting\"} 1\n\
            hako_instances{app=\"e00001\",state=\"ready\"} 1\n\
            hako_requests{app=\"e00001\"} 12\n\
            hako_app_memory_bytes{app=\"e00001\"} not-a-number\n";
        let kind_of = |app: &str| match app {
            "e00001" | "e00003" => Some(Kind::Static),
            "e00002" => Some(Kind::WordPress),
            _ => None,
        };
        let b = split_scrape(text, kind_of);
        assert_eq!(b.memory, [1500, 0, 3000]);
        assert_eq!(b.instances, [1, 0, 3]);
        assert_eq!(split_scrape("", kind_of), ByKind::default());
    }

    #[test]
    fn samples_an_empty_scope_as_zero() {
        let t0 = Instant::now();
        let sampler = Sampler::start("hakoenone", Duration::from_millis(5), t0, None).unwrap();
        let samples = sampler.finish().unwrap();
        assert!(!samples.is_empty());
        assert!(samples.iter().all(|x| x.instances == 0 && x.memory == 0));
        assert!(samples.windows(2).all(|w| w[0].t <= w[1].t));
        assert!(samples.iter().all(|x| x.available > 0));
    }
}
