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
        assert!(
            hako_runtime::is_root(),
            "the agent tests make real containers: run them as root"
        );
        let tmp = tempfile::Builder::new()
            .prefix("hako-agent-test")
            .tempdir()
            .unwrap();
        let cfg = AgentConfig::new(tmp.path(), RuntimeConfig::unique('a', "/run/hako-test"));
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
            release: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
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
