//! What this node can give one instance, read from the host: its CPUs, its memory and the
//! most processes its kernel allows — each lowered by a limit on the cgroup hierarchy's root
//! as hako sees it (set when hako itself runs in a limited container), since every cgroup
//! hako makes sits below that root. The API refuses apps whose limits exceed it
//! (`hako_api::Backend::capacity`), and `hako run` checks its own limits the same way.

use std::path::Path;

use hako_model::NodeCapacity;
use hako_runtime::{CPU_PERIOD_US, MEMORY_CEILING, PIDS_CEILING, host_cores};

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// This host's capacity for one instance. Never fails: a value the host does not show is
/// left at the most the runtime accepts (so it refuses nothing the runtime would take).
pub fn node_capacity() -> NodeCapacity {
    capacity_from(Path::new("/proc"), Path::new(CGROUP_ROOT), host_cores())
}

/// The capacity from a `/proc`, a cgroup mount point and the online CPU count (split out so
/// that tests can give it a made-up host).
fn capacity_from(proc: &Path, cgroup: &Path, online_cpus: usize) -> NodeCapacity {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut memory = read(&proc.join("meminfo"))
        .and_then(|t| mem_total(&t))
        .unwrap_or(MEMORY_CEILING);
    let mut pids = read(&proc.join("sys/kernel/pid_max"))
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(PIDS_CEILING)
        .min(PIDS_CEILING);
    let mut cpus = u32::try_from(online_cpus).unwrap_or(u32::MAX).max(1);
    // cgroup v2 (unified at the mount point) and v1 (one directory per controller).
    for file in ["memory.max", "memory/memory.limit_in_bytes"] {
        if let Some(limit) = read(&cgroup.join(file)).and_then(|t| number(&t)) {
            memory = memory.min(limit);
        }
    }
    for file in ["pids.max", "pids/pids.max"] {
        if let Some(limit) = read(&cgroup.join(file)).and_then(|t| number(&t)) {
            pids = pids.min(limit);
        }
    }
    let quota = read(&cgroup.join("cpu.max"))
        .and_then(|t| cpu_max(&t))
        .or_else(|| {
            let q = read(&cgroup.join("cpu/cpu.cfs_quota_us"))?;
            let p = read(&cgroup.join("cpu/cpu.cfs_period_us"))?;
            cpu_quota(q.trim().parse().ok()?, p.trim().parse().ok()?)
        });
    if let Some(q) = quota {
        cpus = cpus.min(q.max(1));
    }
    NodeCapacity {
        cpus,
        memory_bytes: memory,
        max_pids: pids,
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A cgroup limit file's number; `max` (no limit) and junk are `None`.
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Whole CPUs of a v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD").
fn cpu_max(text: &str) -> Option<u32> {
    let mut parts = text.split_whitespace();
    let quota: i64 = parts.next()?.parse().ok()?;
    let period: i64 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(CPU_PERIOD_US as i64);
    cpu_quota(quota, period)
}

/// Whole CPUs of a CFS quota and period; a negative quota (v1's -1) is no limit.
fn cpu_quota(quota: i64, period: i64) -> Option<u32> {
    if quota < 0 || period <= 0 {
        return None;
    }
    u32::try_from(quota / period).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_of_a_host() {
        assert_eq!(
            mem_total("MemTotal:        4012344 kB\nMemFree: 1 kB\n"),
            Some(4012344 * 1024)
        );
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(number("max\n"), None);
        assert_eq!(number("9223372036854771712\n"), Some(9223372036854771712));
        assert_eq!(cpu_max("max 100000\n"), None);
        assert_eq!(cpu_max("200000 100000\n"), Some(2));
        assert_eq!(cpu_max("150000 100000\n"), Some(1));
        assert_eq!(cpu_quota(-1, 100000), None);
    }

    #[test]
    fn a_made_up_host_with_a_limited_cgroup_root() {
        let dir = tempfile::tempdir().unwrap();
        let (proc, cg) = (dir.path().join("proc"), dir.path().join("cg"));
        std::fs::create_dir_all(proc.join("sys/kernel")).unwrap();
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(proc.join("meminfo"), "MemTotal: 8388608 kB\n").unwrap();
        std::fs::write(proc.join("sys/kernel/pid_max"), "32768\n").unwrap();
        let open = capacity_from(&proc, &cg, 4);
        assert_eq!(
            open,
            NodeCapacity {
                cpus: 4,
                memory_bytes: 8 << 30,
                max_pids: 32768
            }
        );
        std::fs::write(cg.join("memory.max"), "2147483648\n").unwrap();
        std::fs::write(cg.join("cpu.max"), "200000 100000\n").unwrap();
        std::fs::write(cg.join("pids.max"), "max\n").unwrap();
        let limited = capacity_from(&proc, &cg, 4);
        assert_eq!(
            limited,
            NodeCapacity {
                cpus: 2,
                memory_bytes: 2 << 30,
                max_pids: 32768
            }
        );
        // Nothing readable: the runtime's own bounds.
        let none = capacity_from(&dir.path().join("x"), &dir.path().join("y"), 0);
        assert_eq!(
            none,
            NodeCapacity {
                cpus: 1,
                memory_bytes: MEMORY_CEILING,
                max_pids: PIDS_CEILING
            }
        );
    }

    #[test]
    fn this_host_has_some_of_everything() {
        let c = node_capacity();
        assert!(
            c.cpus >= 1 && c.memory_bytes >= 64 << 20 && c.max_pids >= 300,
            "{c:?}"
        );
        assert!(c.max_pids <= PIDS_CEILING);
    }
}
