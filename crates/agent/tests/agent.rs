//! The agent with real containers: launch until ready, serve, stop; failures with log tails.

use std::io::{Read, Write};
use std::time::Duration;

use hako_agent::{Agent, AgentConfig};
use hako_model::{App, AppSpec};
use hako_runtime::RuntimeConfig;

struct Node {
    agent: std::sync::Arc<Agent>,
    exits: tokio::sync::mpsc::UnboundedReceiver<hako_agent::Exit>,
    tmp: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        Node::with(hako_agent::StorageLimits::default())
    }

    fn with(storage: hako_agent::StorageLimits) -> Node {
        assert!(
            hako_runtime::is_root(),
            "the agent tests make real containers: run them as root"
        );
        let tmp = tempfile::Builder::new()
            .prefix("hako-agent-test")
            .tempdir()
            .unwrap();
        let mut cfg = AgentConfig::new(tmp.path(), RuntimeConfig::unique('a', "/run/hako-test"));
        cfg.storage = storage;
        let (agent, exits) = Agent::new(cfg).unwrap();
        agent.images().host("base").unwrap();
        Node { agent, exits, tmp }
    }

    fn app(&self, name: &str, cmd: &str) -> App {
        let mut spec: AppSpec = serde_json::from_value(serde_json::json!({
            "name": name, "hosts": [format!("{name}.example")], "image": "base", "cmd": cmd,
            "start_timeout": "10s",
        }))
        .unwrap();
        spec.validate().unwrap();
        App {
            spec,
            uid: String::new(),
            release: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        }
    }
}

fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_a_site_with_its_release_and_stops_it() {
    let n = Node::new();
    let code = n.tmp.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("index.html"), "hello from release 1\n").unwrap();
    let rel = n.agent.releases().create("site", 1, &code, "test").unwrap();
    assert_eq!(rel.number, 1);
    let mut app = n.app("site", "busybox httpd -f -p $PORT -h /app");
    app.release = Some(1);
    let info = n.agent.launch(&app).await.unwrap();
    assert!(info.ready_ms.unwrap() < 10_000.0);
    assert!(get(&info.addr, "/index.html").contains("hello from release 1"));
    assert_eq!(n.agent.instances(Some("site")).len(), 1);
    let st = n.agent.stats(&info.id).unwrap();
    assert!(st.memory_current > 0);
    let t = std::time::Instant::now();
    let status = n
        .agent
        .stop(&info.id, Duration::from_secs(5))
        .await
        .unwrap();
    // httpd has no SIGTERM handler: as pid 1 it would ignore the signal, so hako ends it at
    // once (what SIGTERM's default action would do) instead of waiting out the grace period.
    assert_eq!(status, hako_runtime::ExitStatus::Signaled(9));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(n.agent.instances(None).is_empty());
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_crashes_at_start_fails_with_its_log_tail() {
    let n = Node::new();
    let app = n.app("crash", "sh -c 'echo boom: missing config >&2; exit 3'");
    let err = n.agent.launch(&app).await.unwrap_err();
    assert!(err.reason.contains("exited with code 3"), "{}", err.reason);
    assert!(
        err.log_tail.contains("boom: missing config"),
        "{:?}",
        err.log_tail
    );
    assert!(n.agent.instances(None).is_empty());
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_never_listens_fails_after_its_start_timeout() {
    let n = Node::new();
    let mut app = n.app("mute", "sleep 100");
    app.spec.start_timeout = "300ms".parse().unwrap();
    let t = std::time::Instant::now();
    let err = n.agent.launch(&app).await.unwrap_err();
    assert!(
        err.reason.contains("within the start timeout (300ms)"),
        "{}",
        err.reason
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_exit_is_reported() {
    let mut n = Node::new();
    // Accepts one connection (the readiness probe), then exits with 5.
    let app = n.app(
        "oneshot",
        "sh -c 'busybox nc -l -p $PORT < /dev/null; echo bye; exit 5'",
    );
    let info = n.agent.launch(&app).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), n.exits.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.instance, info.id);
    assert_eq!(exit.status, hako_runtime::ExitStatus::Exited(5));
    assert!(exit.log_tail.contains("bye"), "{:?}", exit.log_tail);
    assert!(n.agent.instances(None).is_empty());
    assert!(n.agent.logs("oneshot", 10_000).contains("bye"));
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_stop_signal_is_used() {
    // php -S catches SIGTERM (when its output is not a terminal) but keeps serving; it stops on
    // SIGINT. With stop_signal INT the stop is prompt instead of waiting out the grace period.
    let n = Node::new();
    let mut app = n.app("php", "php -S 0.0.0.0:$PORT -t /app");
    app.spec.stop_signal = "INT".parse().unwrap();
    let info = n.agent.launch(&app).await.unwrap();
    // php -S listens before it installs its handlers: one answered request says it is done
    // (stopped earlier, the default action of SIGINT ends it, which is not what is tested).
    let addr: std::net::SocketAddr = info.addr.parse().unwrap();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1."), "{answer}");
    })
    .await
    .unwrap();
    let t = std::time::Instant::now();
    let status = n
        .agent
        .stop(&info.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{:?} {status:?}",
        t.elapsed()
    );
    assert_ne!(
        status,
        hako_runtime::ExitStatus::Signaled(9),
        "it had to be killed"
    );
    n.agent.shutdown(Duration::from_secs(1)).await;
}

/// What the node's runtime holds on the host: container state dirs, container cgroups and
/// veths of its prefix.
fn held(n: &Node) -> (usize, usize, usize) {
    let config = n.agent.runtime().config();
    let count_dirs = |dir: std::path::PathBuf| {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    };
    let state = count_dirs(config.state_dir());
    let cgroups = ["pids", ""]
        .iter()
        .map(|c| {
            std::path::Path::new("/sys/fs/cgroup")
                .join(c)
                .join(&config.prefix)
        })
        .find(|p| p.is_dir())
        .map_or(0, count_dirs);
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let veths = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter(|l| l.contains(&format!("{}v", config.prefix)))
        .count();
    (state, cgroups, veths)
}

/// Polls `f` every 10 ms until it holds; fails after `secs`.
async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_pool_serves_cold_starts_and_follows_the_app() {
    let n = Node::new();
    let code = n.tmp.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("index.html"), "hello from the pool\n").unwrap();
    n.agent.releases().create("warm", 1, &code, "test").unwrap();
    let mut app = n.app("warm", "busybox httpd -f -p $PORT -h /app");
    app.release = Some(1);
    app.spec.warm_pool = 1;

    // Declared: one container is made and parked, nothing runs.
    n.agent.fill_pool(&app);
    until("the pool fills", 10, || n.agent.pooled("warm").len() == 1).await;
    let parked = n.agent.pooled("warm")[0].clone();
    assert!(n.agent.instances(None).is_empty());
    assert_eq!(held(&n), (1, 1, 1), "one parked container");
    assert!(
        !n.agent.logs("warm", 10_000).contains(&parked),
        "a parked container's log is not an instance's"
    );

    // A start takes it (same id), serves the release, and the pool refills behind it.
    let info = n.agent.launch(&app).await.unwrap();
    assert!(info.from_pool, "{info:?}");
    assert_eq!(info.id, parked);
    assert!(get(&info.addr, "/index.html").contains("hello from the pool"));
    until("the pool refills", 10, || {
        n.agent.pooled("warm").len() == 1 && n.agent.pooled("warm")[0] != parked
    })
    .await;
    let refill = n.agent.pooled("warm")[0].clone();
    assert_eq!(held(&n), (2, 2, 2), "an instance and a parked container");

    // The app changes: the parked container of the old version goes, one of the new comes.
    let mut changed = app.clone();
    changed.spec.env.insert("GREETING".into(), "hi".into());
    n.agent.fill_pool(&changed);
    until("the pool follows the app", 10, || {
        let p = n.agent.pooled("warm");
        p.len() == 1 && p[0] != refill && held(&n) == (2, 2, 2)
    })
    .await;
    let current = n.agent.pooled("warm")[0].clone();
    let log = n.tmp.path().join(format!("apps/warm/logs/{refill}.log"));
    until("the removed container's log goes", 10, || !log.exists()).await;
    // A start from an outdated copy of the app does not take it; one of the new version does.
    let old = n.agent.launch(&app).await.unwrap();
    assert!(!old.from_pool);
    assert_eq!(n.agent.pooled("warm"), std::slice::from_ref(&current));
    let new = n.agent.launch(&changed).await.unwrap();
    assert!(new.from_pool);
    assert_eq!(new.id, current);
    for i in [&info, &old, &new] {
        n.agent.stop(&i.id, Duration::from_secs(1)).await;
    }
    until("refilled after the start", 10, || {
        let p = n.agent.pooled("warm");
        p.len() == 1 && p[0] != current
    })
    .await;

    // A new version of the image: the parked container of the old one is not used.
    n.agent.images().host("base").unwrap();
    let fresh = n.agent.launch(&changed).await.unwrap();
    assert!(!fresh.from_pool, "{fresh:?}");
    assert_eq!(fresh.image, "base:2");
    n.agent.stop(&fresh.id, Duration::from_secs(1)).await;
    until("the pool has the new image", 10, || {
        n.agent.pooled("warm").len() == 1 && held(&n) == (1, 1, 1)
    })
    .await;
    let on_new_image = n.agent.launch(&changed).await.unwrap();
    assert!(on_new_image.from_pool);
    assert_eq!(on_new_image.image, "base:2");
    n.agent.stop(&on_new_image.id, Duration::from_secs(1)).await;

    // warm_pool 0: the pool empties.
    changed.spec.warm_pool = 0;
    n.agent.fill_pool(&changed);
    until("the pool empties", 10, || {
        n.agent.pooled("warm").is_empty() && held(&n) == (0, 0, 0)
    })
    .await;

    // The app is deleted: its pool (and any fill under way) goes with it.
    changed.spec.warm_pool = 2;
    n.agent.fill_pool(&changed);
    n.agent.forget_app("warm").await;
    assert!(n.agent.pooled("warm").is_empty());
    assert_eq!(held(&n), (0, 0, 0));
    assert!(!n.tmp.path().join("apps/warm").exists());
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_removes_the_warm_pools() {
    let n = Node::new();
    let prefix = n.agent.runtime().config().prefix.clone();
    let mut app = n.app("parked", "busybox httpd -f -p $PORT -h /app");
    app.spec.warm_pool = 2;
    n.agent.fill_pool(&app);
    until("the pool fills", 10, || n.agent.pooled("parked").len() == 2).await;
    assert_eq!(held(&n), (2, 2, 2));
    // A second app whose pool is still being filled when the agent stops.
    let mut other = n.app("filling", "busybox httpd -f -p $PORT -h /app");
    other.spec.warm_pool = 3;
    n.agent.fill_pool(&other);
    n.agent.shutdown(Duration::from_secs(1)).await;
    assert!(n.agent.pooled("parked").is_empty() && n.agent.pooled("filling").is_empty());
    assert_eq!(held(&n), (0, 0, 0));
    let state = n.agent.runtime().config().state_dir();
    assert!(!state.exists(), "{} is left", state.display());
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = ctrl.path().join(&prefix);
        assert!(!dir.exists(), "{} is left", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_data_quota_an_app_gets_data_read_only_until_files_are_removed() {
    let n = Node::with(hako_agent::StorageLimits {
        data_quota: Some(64 << 10),
        data_measure_interval: Duration::ZERO,
        ..hako_agent::StorageLimits::default()
    });
    // Each instance says whether it may write /data, then writes 200 KB to it.
    let app = n.app(
        "quota",
        "sh -c 'mkdir -p /tmp/w; if touch /data/probe 2>/dev/null; then echo rw; else echo ro; fi > /tmp/w/mode; \
         dd if=/dev/zero of=/data/fill bs=1k count=200 2>/dev/null; exec busybox httpd -f -p $PORT -h /tmp/w'",
    );
    let mode = |info: &hako_model::InstanceInfo| get(&info.addr, "/mode");
    let first = n.agent.launch(&app).await.unwrap();
    assert!(mode(&first).ends_with("rw\n"), "{}", mode(&first));
    n.agent
        .stop(&first.id, Duration::from_secs(2))
        .await
        .unwrap();
    let data = n.tmp.path().join("apps/quota/data");
    assert!(std::fs::metadata(data.join("fill")).unwrap().len() >= 200 << 10);
    // Over the quota: the next instance runs, with /data read-only.
    let second = n.agent.launch(&app).await.unwrap();
    assert!(mode(&second).ends_with("ro\n"), "{}", mode(&second));
    n.agent
        .stop(&second.id, Duration::from_secs(2))
        .await
        .unwrap();
    // Files removed: writable again.
    std::fs::remove_file(data.join("fill")).unwrap();
    let third = n.agent.launch(&app).await.unwrap();
    assert!(mode(&third).ends_with("rw\n"), "{}", mode(&third));
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_instances_get_its_seccomp_profile() {
    let n = Node::new();
    let cmd = "sh -c 'mkdir -p /tmp/w; grep ^Seccomp: /proc/self/status > /tmp/w/s; exec busybox httpd -f -p $PORT -h /tmp/w'";
    let filtered = n.app("filtered", cmd);
    let info = n.agent.launch(&filtered).await.unwrap();
    assert!(
        get(&info.addr, "/s").ends_with("Seccomp:\t2\n"),
        "{}",
        get(&info.addr, "/s")
    );
    let mut open = n.app("open", cmd);
    open.spec.seccomp = hako_model::SeccompProfile::Unconfined;
    open.spec.seccomp_reason = Some("runs its own sandbox".into());
    open.spec.validate().unwrap();
    let info = n.agent.launch(&open).await.unwrap();
    assert!(
        get(&info.addr, "/s").ends_with("Seccomp:\t0\n"),
        "{}",
        get(&info.addr, "/s")
    );
    n.agent.shutdown(Duration::from_secs(1)).await;
}
