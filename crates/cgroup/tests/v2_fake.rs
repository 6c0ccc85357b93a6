//! cgroup v2 against a fake cgroupfs: a temp directory tree holding the files the kernel
//! would have. Checks what hako writes there and how it parses what it reads.

#[path = "support/child.rs"]
mod child;

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use child::killed_by;
use hako_cgroup::{CgroupError, CgroupManager, Limits, Stats, V2Manager, Version};

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

struct Fake {
    root: tempfile::TempDir,
    manager: V2Manager,
}

impl Fake {
    fn new(controllers: &str, root_subtree: &str) -> Fake {
        let root = tempfile::Builder::new()
            .prefix("hako-cgfake")
            .tempdir()
            .unwrap();
        fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(root.path().join("cgroup.subtree_control"), root_subtree).unwrap();
        let manager = V2Manager::at(root.path(), "hako")
            .unwrap()
            .with_timeout(Duration::from_millis(100));
        assert!(!manager.is_kernel());
        assert_eq!(manager.version(), Version::V2);
        Fake { root, manager }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        fs::write(self.path(rel), text).unwrap();
    }
}

fn limits(memory: Option<u64>, cpu: Option<f64>, pids: Option<u64>) -> Limits {
    Limits {
        memory_max: memory,
        cpu_cores: cpu,
        pids_max: pids,
    }
}

fn sorted_words(s: &str) -> Vec<&str> {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    w.sort();
    w
}

#[test]
fn create_enables_controllers_and_writes_limits() {
    let f = Fake::new(ALL, "");
    let cg = f
        .manager
        .create("web-1", &limits(Some(64 << 20), Some(0.5), Some(100)))
        .unwrap();
    assert_eq!(f.read("cgroup.subtree_control"), "+memory +cpu +pids");
    assert_eq!(f.read("hako/cgroup.subtree_control"), "+memory +cpu +pids");
    assert_eq!(f.read("hako/web-1/memory.max"), "67108864");
    assert_eq!(f.read("hako/web-1/cpu.max"), "50000 100000");
    assert_eq!(f.read("hako/web-1/pids.max"), "100");
    assert!(
        !f.path("hako/web-1/memory.swap.max").exists(),
        "no swap accounting in this fake"
    );
    // Unset limits are not written at all on create (fewer writes on the hot path).
    let bare = f.manager.create("web-2", &Limits::default()).unwrap();
    assert!(!f.path("hako/web-2/memory.max").exists());
    assert!(!f.path("hako/web-2/cpu.max").exists());
    assert_eq!(f.manager.list().unwrap(), vec!["web-1", "web-2"]);
    cg.destroy().unwrap();
    bare.destroy().unwrap();
}

#[test]
fn already_enabled_controllers_are_kept_and_not_repeated() {
    let f = Fake::new(ALL, "cpu io\n");
    f.manager
        .create("a", &Limits::default())
        .unwrap()
        .destroy()
        .unwrap();
    assert_eq!(
        sorted_words(&f.read("cgroup.subtree_control")),
        vec!["+cpu", "+io", "+memory", "+pids"]
    );
    // The second create reuses what the first learned and writes nothing to the root again.
    f.write("cgroup.subtree_control", "cpu io memory pids");
    f.manager
        .create("b", &Limits::default())
        .unwrap()
        .destroy()
        .unwrap();
    assert_eq!(f.read("cgroup.subtree_control"), "cpu io memory pids");
}

#[test]
fn swap_is_kept_out_when_the_kernel_accounts_it() {
    let f = Fake::new(ALL, "");
    fs::create_dir(f.path("hako")).unwrap();
    f.write("hako/memory.swap.max", "max");
    let cg = f
        .manager
        .create("s", &limits(Some(32 << 20), None, None))
        .unwrap();
    assert_eq!(f.read("hako/s/memory.swap.max"), "0");
    f.write("hako/s/memory.current", "0\n");
    cg.set_limits(&Limits::default()).unwrap();
    assert_eq!(f.read("hako/s/memory.swap.max"), "max");
    assert_eq!(f.read("hako/s/memory.max"), "max");
    cg.destroy().unwrap();
}

#[test]
fn a_missing_controller_is_reported_for_the_limit_that_needs_it() {
    let f = Fake::new("cpu memory\n", "");
    let e = f
        .manager
        .create("p", &limits(None, None, Some(10)))
        .unwrap_err();
    match e {
        CgroupError::ControllerUnavailable { controller, .. } => assert_eq!(controller, "pids"),
        other => panic!("expected ControllerUnavailable, got {other}"),
    }
    assert!(
        f.manager.list().unwrap().is_empty(),
        "the half-made cgroup is removed"
    );
    let cg = f
        .manager
        .create("p", &limits(Some(2 << 20), Some(1.0), None))
        .unwrap();
    assert_eq!(f.read("cgroup.subtree_control"), "+memory +cpu");
    assert_eq!(f.read("hako/p/cpu.max"), "100000 100000");
    cg.destroy().unwrap();
}

#[test]
fn live_changes_and_a_decrease_below_usage() {
    let f = Fake::new(ALL, "");
    let cg = f
        .manager
        .create("live", &limits(Some(256 << 20), Some(1.0), Some(50)))
        .unwrap();
    f.write("hako/live/memory.current", "104857600\n");
    let e = cg
        .set_limits(&limits(Some(64 << 20), None, None))
        .unwrap_err();
    match &e {
        CgroupError::MemoryBelowUsage {
            requested, current, ..
        } => {
            assert_eq!((*requested, *current), (64 << 20, Some(100 << 20)));
        }
        other => panic!("expected MemoryBelowUsage, got {other}"),
    }
    assert_eq!(
        f.read("hako/live/memory.max"),
        (256u64 << 20).to_string(),
        "unchanged"
    );
    cg.set_limits(&limits(Some(128 << 20), Some(0.25), Some(20)))
        .unwrap();
    assert_eq!(f.read("hako/live/memory.max"), (128u64 << 20).to_string());
    assert_eq!(f.read("hako/live/cpu.max"), "25000 100000");
    assert_eq!(f.read("hako/live/pids.max"), "20");
    cg.set_limits(&Limits::default()).unwrap();
    assert_eq!(f.read("hako/live/memory.max"), "max");
    assert_eq!(f.read("hako/live/cpu.max"), "max 100000");
    assert_eq!(f.read("hako/live/pids.max"), "max");
    let e = cg.set_limits(&limits(None, Some(-1.0), None)).unwrap_err();
    assert!(matches!(e, CgroupError::InvalidLimits(_)), "{e}");
    assert_eq!(f.read("hako/live/cpu.max"), "max 100000");
    cg.destroy().unwrap();
}

#[test]
fn stats_are_parsed_from_the_kernel_files() {
    let f = Fake::new(ALL, "");
    let cg = f.manager.create("st", &Limits::default()).unwrap();
    f.write("hako/st/memory.current", "5242880\n");
    f.write(
        "hako/st/cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
    );
    f.write("hako/st/pids.current", "3\n");
    f.write(
        "hako/st/memory.events",
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    assert_eq!(
        cg.stats().unwrap(),
        Stats {
            memory_current: 5 << 20,
            memory_peak: None,
            cpu_usage_ns: 1_500_000,
            pids_current: 3,
            oom_kills: 2,
        }
    );
    f.write("hako/st/memory.peak", "7340032\n");
    assert_eq!(cg.stats().unwrap().memory_peak, Some(7 << 20));
    f.write("hako/st/cpu.stat", "user_usec 1000\n");
    let e = cg.stats().unwrap_err();
    assert!(matches!(e, CgroupError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("usage_usec"), "{e}");
    cg.destroy().unwrap();
}

#[test]
fn pids_freeze_thaw_and_cgroup_kill() {
    let f = Fake::new(ALL, "");
    let cg = f.manager.create("fz", &Limits::default()).unwrap();
    // Pids above the kernel's PID_MAX_LIMIT: no real process can be hit by the kills below.
    let (a, b) = (2_000_000_000, 2_000_000_001);
    cg.add_pid(a).unwrap();
    assert_eq!(f.read("hako/fz/cgroup.procs"), a.to_string());
    f.write("hako/fz/cgroup.procs", &format!("{a}\n{b}\n"));
    assert_eq!(cg.pids().unwrap(), vec![a, b]);

    // The kernel never reports frozen: a bounded wait and a clear error.
    f.write("hako/fz/cgroup.events", "populated 1\nfrozen 0\n");
    let e = cg.freeze().unwrap_err();
    assert!(matches!(e, CgroupError::FreezeTimeout { .. }), "{e}");
    assert_eq!(f.read("hako/fz/cgroup.freeze"), "1");
    f.write("hako/fz/cgroup.events", "populated 1\nfrozen 1\n");
    cg.freeze().unwrap();
    cg.thaw().unwrap();
    assert_eq!(f.read("hako/fz/cgroup.freeze"), "0");

    // With cgroup.kill present, kill_all is one write.
    f.write("hako/fz/cgroup.kill", "");
    cg.kill_all().unwrap();
    assert_eq!(f.read("hako/fz/cgroup.kill"), "1");

    // Processes that never leave: destroy gives up in time and names them.
    let e = cg.destroy().unwrap_err();
    match &e {
        CgroupError::NotEmpty { path, pids, .. } => {
            assert_eq!(path, &f.path("hako/fz"));
            assert_eq!(pids, &vec![a, b]);
        }
        other => panic!("expected NotEmpty, got {other}"),
    }
    f.write("hako/fz/cgroup.procs", "");
    cg.destroy().unwrap();
    assert!(!f.path("hako/fz").exists());
    cg.destroy().unwrap();
}

#[test]
fn without_cgroup_kill_processes_are_frozen_and_killed_one_by_one() {
    let f = Fake::new(ALL, "");
    let cg = f.manager.create("old", &Limits::default()).unwrap();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    f.write("hako/old/cgroup.events", "populated 1\nfrozen 1\n");
    cg.kill_all().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    assert_eq!(
        f.read("hako/old/cgroup.freeze"),
        "0",
        "thawed after the kill"
    );
    f.write("hako/old/cgroup.procs", "");
    cg.destroy().unwrap();
}

#[test]
fn clone_into_fd_is_the_cgroup_directory() {
    let f = Fake::new(ALL, "");
    let cg = f.manager.create("fd", &Limits::default()).unwrap();
    let fd = cg.clone_into_fd().expect("v2 gives a directory fd");
    let st = nix::sys::stat::fstat(fd.as_fd()).unwrap();
    let meta = fs::metadata(f.path("hako/fd")).unwrap();
    assert_eq!((st.st_dev, st.st_ino), (meta.dev(), meta.ino()));
    cg.destroy().unwrap();
}

#[test]
fn leftovers_names_and_scope_removal() {
    let f = Fake::new(ALL, "");
    drop(
        f.manager
            .create("left", &limits(Some(8 << 20), None, None))
            .unwrap(),
    );
    assert!(matches!(
        f.manager.create("left", &Limits::default()),
        Err(CgroupError::AlreadyExists(_))
    ));
    assert!(matches!(
        f.manager.create("../x", &Limits::default()),
        Err(CgroupError::InvalidName { .. })
    ));
    assert!(matches!(
        f.manager.open("gone"),
        Err(CgroupError::NotFound(_))
    ));

    let again = V2Manager::at(f.root.path(), "hako").unwrap();
    assert_eq!(again.list().unwrap(), vec!["left"]);
    let e = again.remove_scope().unwrap_err();
    assert!(matches!(e, CgroupError::ScopeNotEmpty { .. }), "{e}");
    again.open("left").unwrap().destroy().unwrap();
    again.remove_scope().unwrap();
    assert!(!f.path("hako").exists());
    again.remove_scope().unwrap();
    // A create after remove_scope sets the scope up again.
    f.manager
        .create("back", &Limits::default())
        .unwrap()
        .destroy()
        .unwrap();
    assert!(f.path("hako").is_dir());
}

#[test]
fn a_missing_root_is_an_error_naming_it() {
    let e = V2Manager::at(Path::new("/nonexistent-hako-root"), "hako").unwrap_err();
    assert!(e.to_string().contains("/nonexistent-hako-root"), "{e}");
}
