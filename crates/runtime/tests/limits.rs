//! Memory, pids and CPU limits enforced by real cgroups; stats, live changes, freeze/thaw.

mod common;

use std::time::Duration;

use common::TestRuntime;
use hako_runtime::{ExitStatus, Limits};

#[tokio::test]
async fn exceeding_the_memory_limit_kills_only_the_container() {
    let t = TestRuntime::new();
    // dd allocates its 256 MiB block at once: far past the 32 MiB limit.
    let mut spec = t.sh("exec dd if=/dev/zero of=/dev/null bs=256M count=1");
    spec.limits.memory_max = Some(32 << 20);
    let c = t.rt.run(&spec).unwrap();
    let status = c.wait().await.unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    let stats = c.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    c.remove().unwrap();
    // The runtime (this process) is alive and keeps making containers.
    let (status, out) = t.run(&t.sh("echo still-fine")).await;
    assert!(status.success());
    assert_eq!(out, "still-fine\n");
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_pids_limit() {
    let t = TestRuntime::new();
    // Without a limit this would fork forever; with one, fork fails and the shell gives up.
    let mut spec = t.sh("while true; do sleep 100 & done");
    spec.limits.pids_max = Some(16);
    let c = t.rt.run(&spec).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), c.wait())
        .await
        .expect("the fork bomb was not stopped")
        .unwrap();
    c.logs_flushed().await;
    let out = std::fs::read_to_string(c.log_path().unwrap()).unwrap();
    assert!(!status.success());
    assert!(out.contains("can't fork"), "{out}");
    c.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn stats_live_limits_and_freeze() {
    let t = TestRuntime::new();
    let mut spec = t.sh("while true; do :; done");
    spec.limits = Limits {
        memory_max: Some(64 << 20),
        cpu_cores: Some(0.2),
        pids_max: Some(32),
    };
    let c = t.rt.run(&spec).unwrap();
    // Let it burn some CPU, measured by the cgroup.
    let before = c.stats().unwrap().cpu_usage_ns;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.stats().unwrap().cpu_usage_ns < before + 20_000_000 {
        assert!(std::time::Instant::now() < deadline, "no CPU use seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = c.stats().unwrap();
    assert!(s.memory_current > 0 && s.pids_current == 1, "{s:?}");

    c.update_limits(&Limits {
        memory_max: Some(128 << 20),
        cpu_cores: Some(1.0),
        pids_max: Some(64),
    })
    .unwrap();
    let prefix = &t.rt.config().prefix;
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(prefix)
        .join(c.id());
    if v1.exists() {
        let mem = std::fs::read_to_string(v1.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(mem.trim(), (128u64 << 20).to_string());
        let quota = std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup/cpu")
                .join(prefix)
                .join(c.id())
                .join("cpu.cfs_quota_us"),
        )
        .unwrap();
        assert_eq!(quota.trim(), "100000");
    }
    assert!(
        c.update_limits(&Limits {
            memory_max: Some(0),
            ..Limits::default()
        })
        .is_err()
    );

    c.freeze().unwrap();
    let frozen = c.stats().unwrap().cpu_usage_ns;
    // A frozen container uses no CPU: check the counter does not move across a real pause.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.stats().unwrap().cpu_usage_ns, frozen);
    c.thaw().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.stats().unwrap().cpu_usage_ns == frozen {
        assert!(
            std::time::Instant::now() < deadline,
            "thawed container does not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = c.stop(Duration::from_millis(200)).await.unwrap();
    // The busy loop ignores nothing: SIGTERM ends the shell.
    assert!(matches!(status, ExitStatus::Signaled(_)), "{status:?}");
    c.remove().unwrap();
}

#[tokio::test]
async fn stop_kills_a_container_that_ignores_sigterm_after_the_grace_period() {
    let t = TestRuntime::new();
    let c =
        t.rt.run(&t.sh("trap '' TERM; sleep 1000 & sleep 1000 & wait"))
            .unwrap();
    // Bounded wait until the shell has run its trap (it forks the sleeps right after).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.pids().unwrap().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell never started its children"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let start = std::time::Instant::now();
    let status = c.stop(Duration::from_millis(300)).await.unwrap();
    let took = start.elapsed();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(
        took >= Duration::from_millis(300),
        "killed before the grace period: {took:?}"
    );
    c.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn stop_does_not_wait_for_an_init_that_would_have_died_of_sigterm() {
    let t = TestRuntime::new();
    // `sleep` neither handles nor ignores SIGTERM: outside a container SIGTERM ends it, but as
    // pid 1 the kernel withholds it. hako applies the default action at once.
    let c = t.rt.run(&t.sh("exec sleep 1000")).unwrap();
    let start = std::time::Instant::now();
    let status = c.stop(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    c.remove().unwrap();
}
