//! `--warm-pool N` through a real `hako serve`: the daemon keeps N containers parked for an
//! app, a cold request takes one (its start event says so), the pool refills, follows updates
//! of the app, and goes with the app; the daemon's stop leaves nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Serve, get};

/// Containers the daemon's runtime holds: its per-container state dirs and pids cgroups
/// (parked or running alike).
fn containers(d: &Serve) -> (usize, usize) {
    let count = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|e| e.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    let cgroup = ["pids", ""]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(&d.prefix))
        .find(|p| p.is_dir());
    (
        count(&Path::new("/run/hako").join(&d.prefix)),
        cgroup.map_or(0, |p| count(&p)),
    )
}

fn instances(d: &Serve) -> usize {
    let out = d.ok(&["instance", "list", "--app", "warm", "--json"]);
    serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .len()
}

/// Containers the daemon says are parked in the app's warm pool (from its metrics).
fn parked(d: &Serve) -> u64 {
    let m: serde_json::Value = serde_json::from_str(&d.ok(&["app", "metrics", "warm"])).unwrap();
    m["warm_pool_parked"].as_u64().unwrap()
}

/// Starts of the app whose event says they came from the warm pool.
fn pooled_starts(d: &Serve) -> usize {
    d.ok(&["app", "events", "warm", "--limit", "1000"])
        .lines()
        .filter(|l| l.contains("from the warm pool"))
        .count()
}

/// Waits up to 15 s for `f` to hold.
fn wait(what: &str, f: impl FnMut() -> bool) {
    common::wait_until(what, Duration::from_secs(15), f);
}

#[test]
fn a_warm_pool_serves_cold_requests_through_hako_serve() {
    let env = common::Env::new();
    let site = env.host_image_and_site("warm\n");
    let d = common::serve(&env.data_dir());
    d.ok(&[
        "app",
        "create",
        "warm",
        "--host",
        "warm.example",
        "--image",
        "base",
        "--code",
        site.to_str().unwrap(),
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--idle-timeout",
        "200ms",
    ]);
    // Only now, after the deploy of release 1: the first parked container is made from the
    // app's final version (the store's changes reach the daemon in order).
    d.ok(&["app", "update", "warm", "--warm-pool", "1"]);
    let show: serde_json::Value =
        serde_json::from_str(&d.ok(&["app", "show", "warm", "--json"])).unwrap();
    assert_eq!(show["app"]["warm_pool"], 1, "{show}");

    // One container is parked, no instance runs.
    wait("the pool fills", || parked(&d) == 1);
    assert_eq!(containers(&d), (1, 1));
    assert_eq!(instances(&d), 0);

    // Two cold requests, each after the instance idled out: both start from the pool, which
    // is refilled after each.
    for n in 1..=2 {
        assert_eq!(get(d.proxy, "warm.example", "/"), (200, "warm\n".into()));
        // The start is recorded just after its instance is routed: the request does not
        // wait for the record.
        wait("the start's event", || pooled_starts(&d) >= n);
        assert_eq!(pooled_starts(&d), n, "{}", d.ok(&["app", "events", "warm"]));
        wait("the instance idles out and the pool refills", || {
            instances(&d) == 0 && parked(&d) == 1 && containers(&d) == (1, 1)
        });
    }
    let events = d.ok(&["app", "events", "warm"]);
    assert!(
        events.contains("cold start: a request found no ready instance; ready in")
            && events.contains("ms from the warm pool"),
        "{events}"
    );

    // Bounds are checked: too many, or with the host network.
    let out = d.hako(&["app", "update", "warm", "--warm-pool", "9"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("at most 8"), "{out:?}");
    let out = d.hako(&["app", "update", "warm", "--net", "host"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("isolated network"), "{out:?}");

    // An update that changes the containers replaces the parked one; a bigger pool grows.
    let parked_before = std::fs::read_dir(Path::new("/run/hako").join(&d.prefix))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect::<Vec<_>>();
    d.ok(&[
        "app",
        "update",
        "warm",
        "--env",
        "GREETING=hi",
        "--warm-pool",
        "2",
    ]);
    wait("the pool follows the update", || {
        let now: Vec<_> = std::fs::read_dir(Path::new("/run/hako").join(&d.prefix))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        now.len() == 2 && !now.iter().any(|n| parked_before.contains(n)) && parked(&d) == 2
    });
    assert_eq!(containers(&d), (2, 2));
    assert_eq!(get(d.proxy, "warm.example", "/"), (200, "warm\n".into()));
    assert_eq!(pooled_starts(&d), 3);

    // Pool size 0 empties it; deleting the app (with a pool again) removes it all.
    d.ok(&["app", "update", "warm", "--warm-pool", "0"]);
    wait("the instance idles out and the pool empties", || {
        instances(&d) == 0 && parked(&d) == 0 && containers(&d) == (0, 0)
    });
    d.ok(&["app", "update", "warm", "--warm-pool", "2"]);
    wait("the pool fills again", || parked(&d) == 2);
    d.ok(&["app", "delete", "warm", "--yes"]);
    wait("the app's pool goes with it", || containers(&d) == (0, 0));

    // A pool is still parked when the daemon stops: nothing may be left (checked by stop).
    d.ok(&[
        "app",
        "create",
        "warm",
        "--host",
        "warm.example",
        "--image",
        "base",
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--warm-pool",
        "1",
    ]);
    wait("the new app's pool fills", || containers(&d) == (1, 1));
    d.stop();
}
