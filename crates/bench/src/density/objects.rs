//! The run's kernel objects and memory, sampled while it runs (peaks kept), and what it left
//! after the daemon stopped. Everything is found by the run's own prefix (`hakod…`), so other
//! runs on the host never count.
//!
//! - instances: the prefix's instance cgroups (`cgroups`) and those with a process (`running`);
//! - network namespaces: distinct `/proc/PID/ns/net` of the instances' processes;
//! - veths: links `<prefix>v…` in /sys/class/net;
//! - nftables rules: rules in the prefix's three tables (`nft -a list table`), every 5 s;
//! - the daemon's RSS (/proc/PID/status) and open fds (/proc/PID/fd);
//! - the host's memory in use above what was in use when sampling started (MemAvailable).

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::efficiency::memory::{mem_available, mib};

/// How often the cheap counts are read.
const EVERY: Duration = Duration::from_millis(500);
/// How often the nftables rules are counted (an `nft` process per table).
const NFT_EVERY: Duration = Duration::from_secs(5);

/// The highest value of each count over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peak {
    pub running: usize,
    pub cgroups: usize,
    pub netns: usize,
    pub veths: usize,
    pub nft_rules: usize,
    pub fds: usize,
    pub daemon_rss_mib: f64,
    pub host_mib: f64,
}

impl Peak {
    fn raise(&mut self, s: &Peak) {
        self.running = self.running.max(s.running);
        self.cgroups = self.cgroups.max(s.cgroups);
        self.netns = self.netns.max(s.netns);
        self.veths = self.veths.max(s.veths);
        self.nft_rules = self.nft_rules.max(s.nft_rules);
        self.fds = self.fds.max(s.fds);
        self.daemon_rss_mib = self.daemon_rss_mib.max(s.daemon_rss_mib);
        self.host_mib = self.host_mib.max(s.host_mib);
    }
}

/// A sampling thread; [`finish`](Sampler::finish) stops it and returns the peaks.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<Peak>>,
}

impl Sampler {
    /// Samples runtime `prefix`'s objects and the daemon `pid` from now.
    pub fn start(prefix: &str, pid: u32) -> anyhow::Result<Sampler> {
        let cgroups = hako_cgroup::detect(prefix).context("find the cgroup hierarchy")?;
        let baseline = mem_available()?;
        let prefix = prefix.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || -> anyhow::Result<Peak> {
            let mut peak = Peak::default();
            let mut next_nft = Instant::now();
            let mut rules = 0;
            loop {
                let now = Instant::now();
                if now >= next_nft {
                    rules = nft_rules(&prefix);
                    next_nft = now + NFT_EVERY;
                }
                let mut s = instances(cgroups.as_ref());
                s.veths = veths(&prefix);
                s.nft_rules = rules;
                s.fds = fds(pid);
                s.daemon_rss_mib = rss_kib(pid) as f64 / 1024.0;
                s.host_mib = mib(baseline.saturating_sub(mem_available()?) as f64);
                peak.raise(&s);
                if flag.load(Ordering::Relaxed) {
                    return Ok(peak);
                }
                // The sampling period, not a readiness wait.
                std::thread::sleep(EVERY);
            }
        });
        Ok(Sampler { stop, handle })
    }

    /// Stops sampling (after one last sample) and returns the peaks.
    pub fn finish(self) -> anyhow::Result<Peak> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the sampler panicked"))?
    }
}

/// Instance cgroups, those with a process, and their distinct network namespaces.
fn instances(cgroups: &dyn hako_cgroup::CgroupManager) -> Peak {
    let names = cgroups.list().unwrap_or_default();
    let mut running = 0;
    let mut netns = HashSet::new();
    for name in &names {
        let Ok(pids) = cgroups.open(name).and_then(|c| c.pids()) else {
            continue;
        };
        if pids.is_empty() {
            continue;
        }
        running += 1;
        for pid in pids {
            if let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) {
                netns.insert(ns);
                break;
            }
        }
    }
    Peak {
        running,
        cgroups: names.len(),
        netns: netns.len(),
        ..Peak::default()
    }
}

/// The prefix's veths.
fn veths(prefix: &str) -> usize {
    let v = format!("{prefix}v");
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&v))
                .count()
        })
        .unwrap_or(0)
}

/// Rules in the prefix's nftables tables.
fn nft_rules(prefix: &str) -> usize {
    [
        ("inet", prefix.to_string()),
        ("bridge", prefix.to_string()),
        ("ip", format!("{prefix}_nat")),
    ]
    .iter()
    .map(|(family, table)| {
        Command::new("nft")
            .args(["-a", "list", "table", family, table])
            .output()
            .map(|o| count_rules(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or(0)
    })
    .sum()
}

/// Rules in `nft -a list table` output: the lines with a handle that declare no table, chain
/// or set.
fn count_rules(listing: &str) -> usize {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("# handle"))
        .filter(|l| {
            !["table ", "chain ", "set ", "map "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .count()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// VmRSS of `pid`, KiB (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| parse_rss_kib(&s))
        .unwrap_or(0)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Polls (every 100 ms, up to `limit`) until the prefix has no instance cgroup.
pub fn wait_no_instances(prefix: &str, limit: Duration) -> anyhow::Result<()> {
    let cgroups = hako_cgroup::detect(prefix).context("find the cgroup hierarchy")?;
    let deadline = Instant::now() + limit;
    loop {
        let left = cgroups.list().unwrap_or_default().len();
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{left} instances still run {limit:?} after the last request: is cycling on?");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What runtime `prefix` (daemon `pid`, data dir `data`) left on the host after the daemon
/// stopped: cgroups, state dirs and links ([`hako_testkit::leftovers`]), named network
/// namespaces, mounts, and processes in its cgroups, running from its data dir, or the daemon.
pub fn leaks(prefix: &str, pid: u32, data: &Path) -> Vec<String> {
    let mut found = hako_testkit::leftovers(prefix);
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name().to_string_lossy().contains(prefix) {
            found.push(format!("netns {}", e.path().display()));
        }
    }
    let data = data.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mounts.lines() {
        if m.contains(prefix) || m.contains(&data) {
            found.push(format!("mount {m}"));
        }
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        found.push(format!("process {pid} (hako serve)"));
    }
    let tag = format!("/{prefix}");
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cgroup.contains(&tag) || String::from_utf8_lossy(&cmdline).contains(&data) {
            found.push(format!("process {name}"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rules_not_tables_or_chains() {
        let listing = "table inet hakodx { # handle 7
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		iifname \"hakodx\" ct state established,related accept # handle 2
		iifname \"hakodx\" drop # handle 3
	}
	set cluster { # handle 4
	}
}";
        assert_eq!(count_rules(listing), 2);
        assert_eq!(count_rules(""), 0);
    }

    #[test]
    fn reads_rss() {
        assert_eq!(
            parse_rss_kib("Name:\thako\nVmRSS:\t  102400 kB\n"),
            Some(102_400)
        );
        assert_eq!(parse_rss_kib("Name:\thako\n"), None);
        assert!(rss_kib(std::process::id()) > 0);
        assert!(fds(std::process::id()) > 0);
    }

    #[test]
    fn a_fresh_prefix_has_no_objects_and_left_nothing() {
        let n = hako_testkit::Names::unique('d');
        assert_eq!(veths(&n.prefix), 0);
        let dir = tempfile::tempdir().unwrap();
        // No process of that prefix; the pid of a process that is gone (ours is alive, so
        // take one past the maximum).
        assert_eq!(leaks(&n.prefix, u32::MAX, dir.path()), Vec::<String>::new());
    }
}
