//! cgroup v2 against the real kernel, as root, on whatever cgroup2 mount the host has (on
//! a hybrid host the empty "unified" one: no controllers, but the core files — procs,
//! freeze, events, kill — are real, so freeze, kill and destroy are checked for real).

#[path = "support/child.rs"]
mod child;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use child::{gated, killed_by, read_line, release, require_root, unique_scope};
use hako_cgroup::mountinfo::{self, CgroupMount};
use hako_cgroup::{CgroupError, CgroupManager, Limits, V2Manager};

fn cgroup2_root() -> PathBuf {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo::parse(&text)
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            CgroupMount::V2 { mount_point } => Some(mount_point),
            CgroupMount::V1 { .. } => None,
        })
        .expect(
            "this test needs a cgroup2 mount (e.g. mount -t cgroup2 none /sys/fs/cgroup/unified)",
        )
}

#[test]
fn freeze_kill_and_destroy_on_the_real_unified_hierarchy() {
    require_root();
    let root = cgroup2_root();
    let m = V2Manager::at(&root, &unique_scope())
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    assert!(m.is_kernel(), "{} is cgroup2", root.display());
    let cg = m.create("k", &Limits::default()).unwrap();
    assert!(cg.clone_into_fd().is_some());

    let offered = fs::read_to_string(root.join("cgroup.controllers")).unwrap();
    if !offered.split_whitespace().any(|c| c == "memory") {
        let e = cg
            .set_limits(&Limits {
                memory_max: Some(64 << 20),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(
            matches!(
                e,
                CgroupError::ControllerUnavailable {
                    controller: "memory",
                    ..
                }
            ),
            "{e}"
        );
    }

    let mut child = gated("echo ready; exec sleep 1000");
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    release(&mut child);
    assert_eq!(read_line(&mut child), "ready");
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    let events = m.scope_dir().join("k/cgroup.events");
    cg.freeze().unwrap();
    assert!(fs::read_to_string(&events).unwrap().contains("frozen 1"));
    cg.thaw().unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "thawed, the process is still alive"
    );

    cg.kill_all().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    assert!(!m.scope_dir().join("k").exists());
    cg.destroy().unwrap();

    // destroy alone also kills what is inside.
    let cg = m.create("k2", &Limits::default()).unwrap();
    let mut child = gated("exec sleep 1000");
    cg.add_pid(child.id() as i32).unwrap();
    cg.destroy().unwrap();
    assert_eq!(killed_by(&mut child), Some(libc::SIGKILL));
    m.remove_scope().unwrap();
    assert!(!m.scope_dir().exists());
}
