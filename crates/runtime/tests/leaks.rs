//! The leak test: 1,000 start/stop cycles, including containers that crash, ignore SIGTERM,
//! and fork children that outlive their parent, leave nothing behind.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestRuntime;
use hako_runtime::NetworkMode;

const CYCLES: usize = 1000;
const PARALLEL: usize = 4;

/// Processes anywhere on the host that sit in a cgroup of this runtime's prefix.
fn processes_in_prefix(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        if let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup"))
            && cg.contains(&format!("/{prefix}/"))
        {
            found.push(name);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_cycles_leave_nothing_behind() {
    let t = Arc::new(TestRuntime::new());
    let kinds = [
        // exits cleanly
        "exit 0",
        // crashes
        "kill -SEGV $$",
        // ignores SIGTERM: needs the cgroup kill after the grace period
        "trap '' TERM; sleep 1000",
        // forks children that outlive it, then exits
        "sleep 1000 & sleep 1000 & exit 3",
        // a daemon-style double fork, then keeps running
        "(sh -c 'sleep 1000 &' &); sleep 1000",
    ];
    let mut handles = Vec::new();
    for worker in 0..PARALLEL {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            for i in (worker..CYCLES).step_by(PARALLEL) {
                let mut spec = t.sh(kinds[i % kinds.len()]);
                spec.network = if i % 3 == 0 {
                    NetworkMode::None
                } else {
                    NetworkMode::Isolated
                };
                spec.limits.pids_max = Some(32);
                if i % 10 == 9 {
                    // Prepared but never started.
                    let rt = t.rt.clone();
                    let c = tokio::task::spawn_blocking(move || rt.create(&spec))
                        .await
                        .unwrap()
                        .unwrap();
                    c.remove().unwrap();
                    continue;
                }
                let rt = t.rt.clone();
                let c = tokio::task::spawn_blocking(move || rt.run(&spec))
                    .await
                    .unwrap()
                    .unwrap();
                c.stop(Duration::from_millis(20)).await.unwrap();
                c.remove().unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let prefix = t.rt.config().prefix.clone();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
    assert!(
        processes_in_prefix(&prefix).is_empty(),
        "{:?}",
        processes_in_prefix(&prefix)
    );
    let logs = std::fs::read_dir(t.tmp.path()).unwrap().count();
    assert!(logs > CYCLES / 2, "containers really ran and logged");
}
