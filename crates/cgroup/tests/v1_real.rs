//! cgroup v1 for real, as root, on a host where the memory controller is on a v1 hierarchy.
//! Every test uses its own scope `hako-cgtest-<pid>-<n>` and removes it.

#[path = "support/child.rs"]
mod child;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use child::{
    gated, killed_by, python, read_line, release, require_root, unique_scope, wait_asleep_in,
};
use hako_cgroup::{
    CgroupError, CgroupManager, Layout, Limits, V1Manager, V1Mounts, Version, layout,
};

/// A v1 manager on a fresh scope; its drop destroys whatever the test left and the scope.
struct Scope {
    manager: V1Manager,
    mounts: V1Mounts,
}

impl Scope {
    fn new() -> Scope {
        require_root();
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let Layout::V1(mounts) = layout(&text).unwrap() else {
            panic!("these tests need the cgroup v1 memory controller mounted (this host uses v2)");
        };
        let manager = V1Manager::with_mounts(mounts.clone(), &unique_scope())
            .unwrap()
            .with_timeout(Duration::from_secs(5));
        assert_eq!(manager.version(), Version::V1);
        Scope { manager, mounts }
    }

    fn file(&self, hierarchy: &Path, name: &str, file: &str) -> PathBuf {
        hierarchy.join(self.manager.scope()).join(name).join(file)
    }

    fn read(&self, hierarchy: &Path, name: &str, file: &str) -> String {
        fs::read_to_string(self.file(hierarchy, name, file))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        for name in self.manager.list().unwrap_or_default() {
            if let Ok(cg) = self.manager.open(&name) {
                let _ = cg.destroy();
            }
        }
        let _ = self.manager.remove_scope();
        if !std::thread::panicking() {
            for dir in self.manager.scope_dirs() {
                assert!(!dir.exists(), "scope {} left behind", dir.display());
            }
        }
    }
}

#[test]
fn lifecycle_limits_stats_freeze_kill_destroy() {
    let s = Scope::new();
    let (m, mounts) = (&s.manager, &s.mounts);
    let limits = Limits {
        memory_max: Some(64 << 20),
        cpu_cores: Some(0.5),
        pids_max: Some(32),
    };
    let cg = m.create("web-1", &limits).unwrap();
    assert_eq!(cg.name(), "web-1");
    assert!(cg.clone_into_fd().is_none(), "v1 has no CLONE_INTO_CGROUP");
    for dir in m.scope_dirs() {
        assert!(dir.join("web-1").is_dir(), "{} missing", dir.display());
    }

    // Limits as the kernel reports them.
    assert_eq!(
        s.read(&mounts.memory, "web-1", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    if s.file(&mounts.memory, "web-1", "memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            s.read(&mounts.memory, "web-1", "memory.memsw.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
    }
    assert_eq!(s.read(&mounts.cpu, "web-1", "cpu.cfs_period_us"), "100000");
    assert_eq!(s.read(&mounts.cpu, "web-1", "cpu.cfs_quota_us"), "50000");
    assert_eq!(s.read(&mounts.pids, "web-1", "pids.max"), "32");

    // A real process inside, released only once it is in the cgroup.
    let mut child = gated("echo ready; exec sleep 1000");
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    release(&mut child);
    assert_eq!(read_line(&mut child), "ready");
    wait_asleep_in(pid, "sleep");
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    for dir in m.scope_dirs() {
        let procs = fs::read_to_string(dir.join("web-1/cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "{}", dir.display());
    }
    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids_current, 1);
    assert!(
        stats.memory_current > 0,
        "exec inside the cgroup is charged: {stats:?}"
    );
    assert!(
        stats.memory_peak.unwrap() >= stats.memory_current,
        "{stats:?}"
    );
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
    assert_eq!(stats.oom_kills, 0);

    // Live change, including removing a limit.
    cg.set_limits(&Limits {
        memory_max: Some(128 << 20),
        cpu_cores: Some(1.5),
        pids_max: None,
    })
    .unwrap();
    assert_eq!(
        s.read(&mounts.memory, "web-1", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(s.read(&mounts.cpu, "web-1", "cpu.cfs_quota_us"), "150000");
    assert_eq!(s.read(&mounts.pids, "web-1", "pids.max"), "max");
    cg.set_limits(&Limits::default()).unwrap();
    assert_eq!(s.read(&mounts.cpu, "web-1", "cpu.cfs_quota_us"), "-1");
    let unlimited: u64 = s
        .read(&mounts.memory, "web-1", "memory.limit_in_bytes")
        .parse()
        .unwrap();
    assert!(unlimited > 1 << 60, "memory limit removed: {unlimited}");
    cg.set_limits(&Limits {
        memory_max: Some(32 << 20),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(
        s.read(&mounts.memory, "web-1", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );

    // Freeze and thaw.
    cg.freeze().unwrap();
    assert_eq!(s.read(&mounts.freezer, "web-1", "freezer.state"), "FROZEN");
    cg.thaw().unwrap();
    assert_eq!(s.read(&mounts.freezer, "web-1", "freezer.state"), "THAWED");

    // Kill everything, then destroy (twice: idempotent).
    cg.kill_all().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    for dir in m.scope_dirs() {
        assert!(!dir.join("web-1").exists(), "{} left behind", dir.display());
    }
    cg.destroy().unwrap();
    assert!(m.list().unwrap().is_empty());
}

#[test]
fn leftovers_are_listed_opened_and_destroyed() {
    let s = Scope::new();
    let m = &s.manager;
    let mut children = Vec::new();
    for name in ["left-a", "left-b"] {
        let cg = m.create(name, &Limits::default()).unwrap();
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        cg.add_pid(child.id() as i32).unwrap();
        children.push(child);
        // The handle is dropped here, as if hako had crashed.
    }
    assert!(matches!(
        m.create("left-a", &Limits::default()),
        Err(CgroupError::AlreadyExists(_))
    ));

    // A new manager on the same scope, as the next hako start would make.
    let again = V1Manager::with_mounts(s.mounts.clone(), m.scope()).unwrap();
    assert_eq!(again.list().unwrap(), vec!["left-a", "left-b"]);
    assert!(matches!(again.open("nope"), Err(CgroupError::NotFound(_))));
    let e = again.remove_scope().unwrap_err();
    assert!(matches!(e, CgroupError::ScopeNotEmpty { .. }), "{e}");
    for name in again.list().unwrap() {
        again.open(&name).unwrap().destroy().unwrap();
    }
    for child in &mut children {
        assert_eq!(killed_by(child), Some(libc::SIGKILL));
    }
    assert!(again.list().unwrap().is_empty());
    again.remove_scope().unwrap();
    again.remove_scope().unwrap();
}

#[test]
fn memory_limit_oom_kills_inside_the_container() {
    let s = Scope::new();
    let cg = s
        .manager
        .create(
            "hog",
            &Limits {
                memory_max: Some(32 << 20),
                ..Limits::default()
            },
        )
        .unwrap();
    // 256 MiB of touched memory, far beyond the 32 MiB limit (and this host has no swap
    // that could hold it: memsw is limited to the same value).
    let mut child = gated(&format!(
        "exec {} -c 'x = b\"a\" * (256 << 20); print(len(x))'",
        python()
    ));
    cg.add_pid(child.id() as i32).unwrap();
    release(&mut child);
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    let stats = cg.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    assert!(stats.memory_peak.unwrap() <= 32 << 20, "{stats:?}");
    cg.destroy().unwrap();
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let s = Scope::new();
    let cg = s
        .manager
        .create(
            "forky",
            &Limits {
                pids_max: Some(8),
                ..Limits::default()
            },
        )
        .unwrap();
    let mut child = gated("i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done; exit 0");
    cg.add_pid(child.id() as i32).unwrap();
    release(&mut child);
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the loop must hit the pids limit, got {status:?}"
    );
    let stats = cg.stats().unwrap();
    assert!(stats.pids_current <= 8, "{stats:?}");
    assert!(
        stats.pids_current >= 1,
        "the sleeps started before the limit remain: {stats:?}"
    );
    let events = s.read(&s.mounts.pids, "forky", "pids.events");
    let refused: u64 = events.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(refused >= 1, "pids.events: {events}");
    // destroy kills the orphaned sleeps too.
    cg.destroy().unwrap();
    assert!(s.manager.list().unwrap().is_empty());
}

#[test]
fn destroy_wins_against_a_fork_bomb() {
    let s = Scope::new();
    let cg = s
        .manager
        .create(
            "bomb",
            &Limits {
                pids_max: Some(64),
                ..Limits::default()
            },
        )
        .unwrap();
    let mut child = gated("echo ready; while true; do (sleep 1000 &) ; done");
    cg.add_pid(child.id() as i32).unwrap();
    release(&mut child);
    assert_eq!(read_line(&mut child), "ready");
    cg.destroy().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    for dir in s.manager.scope_dirs() {
        assert!(!dir.join("bomb").exists());
    }
}

#[test]
fn memory_decrease_below_usage_is_refused() {
    let s = Scope::new();
    let cg = s.manager.create("busy", &Limits::default()).unwrap();
    let mut child = gated(&format!(
        "exec {} -c 'import sys; x = b\"a\" * (48 << 20); print(\"ready\", flush=True); sys.stdin.read()'",
        python()
    ));
    cg.add_pid(child.id() as i32).unwrap();
    release(&mut child);
    assert_eq!(read_line(&mut child), "ready");
    let before = s.read(&s.mounts.memory, "busy", "memory.limit_in_bytes");
    let e = cg
        .set_limits(&Limits {
            memory_max: Some(8 << 20),
            ..Limits::default()
        })
        .unwrap_err();
    match &e {
        CgroupError::MemoryBelowUsage {
            requested, current, ..
        } => {
            assert_eq!(*requested, 8 << 20);
            assert!(current.unwrap() > 8 << 20, "{e}");
        }
        other => panic!("expected MemoryBelowUsage, got {other}"),
    }
    assert_eq!(
        s.read(&s.mounts.memory, "busy", "memory.limit_in_bytes"),
        before
    );
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the container keeps running"
    );
    cg.destroy().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
}

#[test]
fn nonsense_limits_touch_nothing() {
    let s = Scope::new();
    for limits in [
        Limits {
            memory_max: Some(0),
            ..Limits::default()
        },
        Limits {
            cpu_cores: Some(0.0),
            ..Limits::default()
        },
        Limits {
            cpu_cores: Some(10_000.0),
            ..Limits::default()
        },
        Limits {
            pids_max: Some(0),
            ..Limits::default()
        },
    ] {
        let e = s.manager.create("bad", &limits).unwrap_err();
        assert!(
            matches!(e, CgroupError::InvalidLimits(_)),
            "{limits:?}: {e}"
        );
    }
    assert!(s.manager.list().unwrap().is_empty());
    let cg = s.manager.create("good", &Limits::default()).unwrap();
    let e = cg
        .set_limits(&Limits {
            pids_max: Some(0),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidLimits(_)), "{e}");
    assert_eq!(s.read(&s.mounts.pids, "good", "pids.max"), "max");
    cg.destroy().unwrap();
}

#[test]
fn concurrent_creates_and_a_scope_removed_behind_our_back() {
    let s = Scope::new();
    let m = &s.manager;
    std::thread::scope(|t| {
        for i in 0..8 {
            t.spawn(move || {
                let cg = m
                    .create(
                        &format!("par-{i}"),
                        &Limits {
                            pids_max: Some(16),
                            ..Limits::default()
                        },
                    )
                    .unwrap();
                cg.destroy().unwrap();
            });
        }
    });
    assert!(m.list().unwrap().is_empty());
    // Another manager removes the scope this one made: create makes it again.
    let other = V1Manager::with_mounts(s.mounts.clone(), m.scope()).unwrap();
    other.remove_scope().unwrap();
    assert!(m.scope_dirs().iter().all(|d| !d.exists()));
    let cg = m.create("again", &Limits::default()).unwrap();
    assert_eq!(m.list().unwrap(), vec!["again"]);
    cg.destroy().unwrap();
}
