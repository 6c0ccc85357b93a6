//! Memory over time: every `interval`, the sum of the memory charged to each instance's cgroup
//! (`memory.usage_in_bytes` on cgroup v1, `memory.current` on v2, read through hako's cgroup
//! crate), the number of instance cgroups, and the host's `MemAvailable` from /proc/meminfo.
//! [`integrate`] turns samples into MiB·seconds over a window (trapezoids). Given a way to
//! learn which site kind each instance serves ([`KindOf`]), a sample also splits the memory
//! and instances by kind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::workload::Kind;

/// The instances' kinds, by instance id (= cgroup name), as the daemon tells them now.
pub type KindOf = Box<dyn FnMut() -> anyhow::Result<HashMap<String, Kind>> + Send>;

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
    /// Memory and instances by site kind ([`Kind::index`]); instances whose kind is not known
    /// (none asked, or gone before the daemon was asked) are in neither.
    pub memory_by_kind: [u64; Kind::COUNT],
    pub instances_by_kind: [u32; Kind::COUNT],
}

/// Instance id → kind, asking the daemon again (once per sample at most) when an id is new.
struct Kinds {
    lookup: Option<KindOf>,
    known: HashMap<String, Kind>,
}

impl Kinds {
    fn of(&mut self, id: &str, asked: &mut bool) -> Option<Kind> {
        if let Some(k) = self.known.get(id) {
            return Some(*k);
        }
        let lookup = self.lookup.as_mut()?;
        if *asked {
            return None;
        }
        *asked = true;
        // A failed answer leaves this sample's new instances unsplit; the totals stand.
        if let Ok(now) = lookup() {
            self.known = now;
        }
        self.known.get(id).copied()
    }
}

/// A sampling thread; [`finish`](Sampler::finish) stops it and returns its samples.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl Sampler {
    /// Samples the instance cgroups of the runtime prefix `prefix` from now, every `interval`,
    /// with times relative to `t0`, split by kind when `kinds` says which is which.
    pub fn start(
        prefix: &str,
        interval: Duration,
        t0: Instant,
        kinds: Option<KindOf>,
    ) -> anyhow::Result<Sampler> {
        let cgroups = hako_cgroup::detect(prefix).context("find the cgroup hierarchy")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut kinds = Kinds {
                lookup: kinds,
                known: HashMap::new(),
            };
            let mut next = Instant::now();
            loop {
                samples.push(sample(cgroups.as_ref(), t0, &mut kinds)?);
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
fn sample(
    cgroups: &dyn hako_cgroup::CgroupManager,
    t0: Instant,
    kinds: &mut Kinds,
) -> anyhow::Result<Sample> {
    let names = cgroups.list().unwrap_or_default();
    let mut out = Sample {
        t: 0.0,
        instances: 0,
        memory: 0,
        available: 0,
        memory_by_kind: [0; Kind::COUNT],
        instances_by_kind: [0; Kind::COUNT],
    };
    let mut asked = false;
    for name in &names {
        let Ok(cg) = cgroups.open(name) else { continue };
        if let Ok(stats) = cg.stats() {
            out.instances += 1;
            out.memory += stats.memory_current;
            if let Some(k) = kinds.of(name, &mut asked) {
                out.memory_by_kind[k.index()] += stats.memory_current;
                out.instances_by_kind[k.index()] += 1;
            }
        }
    }
    out.t = t0.elapsed().as_secs_f64();
    out.available = mem_available()?;
    Ok(out)
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
            memory_by_kind: [0; Kind::COUNT],
            instances_by_kind: [0; Kind::COUNT],
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
    fn kinds_are_asked_once_per_sample_and_remembered() {
        let asks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asks.clone();
        let mut kinds = Kinds {
            lookup: Some(Box::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(HashMap::from([("a".to_string(), Kind::WordPress)]))
            })),
            known: HashMap::new(),
        };
        let mut asked = false;
        assert_eq!(kinds.of("a", &mut asked), Some(Kind::WordPress));
        // Unknown after the one ask of this sample: not asked again.
        assert_eq!(kinds.of("b", &mut asked), None);
        assert_eq!(asks.load(Ordering::Relaxed), 1);
        // Known ids need no ask; a new sample may ask again.
        let mut asked = false;
        assert_eq!(kinds.of("a", &mut asked), Some(Kind::WordPress));
        assert!(!asked);
        assert_eq!(kinds.of("b", &mut asked), None);
        assert_eq!(asks.load(Ordering::Relaxed), 2);
        let mut none = Kinds {
            lookup: None,
            known: HashMap::new(),
        };
        assert_eq!(none.of("a", &mut false), None);
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
