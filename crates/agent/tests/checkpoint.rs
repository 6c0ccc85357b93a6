//! Checkpoint/restore through the agent with real containers and the installed CRIU (root;
//! CRIU installed by `cargo xtask test` or `hako criu install`).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use hako_agent::{Agent, AgentConfig, CheckpointError, StartMode};
use hako_model::{App, AppSpec, RestoreMode, StartPath};
use hako_runtime::RuntimeConfig;

/// In-memory state only: a token drawn at start and a request counter.
const APP: &str = r#"
import http.server, os, random
VERSION = "@VERSION@"
TOKEN = random.getrandbits(48)
N = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global N
        N += 1
        try:
            now = open('/run/hako/instance').read().strip()
        except OSError:
            now = '-'
        body = f"v={VERSION} token={TOKEN} n={N} env={os.environ.get('HAKO_INSTANCE')} file={now}\n".encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()
"#;

struct Node {
    agent: Arc<Agent>,
    tmp: tempfile::TempDir,
}

fn node_at(tmp: tempfile::TempDir, criu_dir: std::path::PathBuf) -> Node {
    assert!(
        hako_runtime::is_root(),
        "the agent tests make real containers: run them as root"
    );
    let mut cfg = AgentConfig::new(tmp.path(), RuntimeConfig::unique('c', "/run/hako-test"));
    cfg.criu_dir = Some(criu_dir);
    let (agent, _exits) = Agent::new(cfg).unwrap();
    agent.images().host("base").unwrap();
    Node { agent, tmp }
}

fn node() -> Node {
    let tmp = tempfile::Builder::new()
        .prefix("hako-cr-test")
        .tempdir()
        .unwrap();
    assert!(
        hako_criu::Criu::open(&hako_criu::default_dir()).is_ok(),
        "CRIU must be installed for these tests: run `cargo xtask test` or `hako criu install`"
    );
    node_at(tmp, hako_criu::default_dir())
}

impl Node {
    /// The python app at release `n`.
    fn app(&self, n: u64) -> App {
        let code = self.tmp.path().join(format!("code{n}"));
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(
            code.join("app.py"),
            APP.replace("@VERSION@", &n.to_string()),
        )
        .unwrap();
        if self.agent.releases().path("py", n).is_none() {
            self.agent
                .releases()
                .create("py", n, &code, "test")
                .unwrap();
        }
        let mut spec: AppSpec = serde_json::from_value(serde_json::json!({
            "name": "py", "hosts": ["py.example"], "image": "base",
            "cmd": "python3 /app/app.py", "start_timeout": "20s", "memory": "128MiB",
        }))
        .unwrap();
        spec.validate().unwrap();
        App {
            spec,
            uid: String::new(),
            release: Some(n),
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        }
    }
}

fn get(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn field<'a>(body: &'a str, name: &str) -> &'a str {
    body.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_instances_answer_with_the_memory_of_the_checkpoint() {
    let n = node();
    let app = n.app(1);
    let made = n.agent.checkpoint(&app).await.unwrap();
    assert!(made.bytes > 1 << 20, "{made:?}");
    assert!(
        made.restore_ready_ms > 0.0 && made.cold_ready_ms > 0.0,
        "{made:?}"
    );
    let filed = n
        .agent
        .checkpoint_of(&app)
        .expect("filed under its version");
    assert_eq!(
        (filed.key.as_str(), filed.bytes),
        (made.key.as_str(), made.bytes)
    );
    let (used, bound) = n.agent.checkpoint_disk();
    assert!(used >= made.bytes && bound > used);

    // Two restores of the one checkpoint at once: each its own address, both with the
    // checkpointed memory (the token drawn once, the warm-up request counted).
    let (a1, a2) = (n.agent.clone(), n.agent.clone());
    let (app1, app2) = (app.clone(), app.clone());
    let (r1, r2) = tokio::join!(a1.launch(&app1), a2.launch(&app2));
    let (i1, i2) = (r1.unwrap(), r2.unwrap());
    assert_ne!(i1.addr, i2.addr);
    let (b1, b2) = (get(&i1.addr), get(&i2.addr));
    for (i, b) in [(&i1, &b1), (&i2, &b2)] {
        assert_eq!(i.start_path, StartPath::Restore, "{i:?}");
        assert_eq!(i.restore_error, None);
        assert_eq!(field(b, "n"), "2", "{b}");
        assert_eq!(
            field(b, "file"),
            i.id,
            "the instance file names the new instance"
        );
        assert_ne!(
            field(b, "env"),
            i.id,
            "the environment is the checkpointed one"
        );
    }
    assert_eq!(field(&b1, "token"), field(&b2, "token"));

    // A cold start runs the app from the beginning: another token, a fresh counter.
    let cold = n.agent.launch_with(&app, StartMode::Cold).await.unwrap();
    assert_eq!(cold.start_path, StartPath::Cold);
    let b3 = get(&cold.addr);
    assert_eq!(field(&b3, "n"), "1");
    assert_ne!(field(&b3, "token"), field(&b1, "token"));

    for i in [&i1, &i2, &cold] {
        n.agent.stop(&i.id, Duration::from_secs(2)).await.unwrap();
    }
    n.agent.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_another_version_is_never_restored() {
    let n = node();
    let v1 = n.app(1);
    n.agent.checkpoint(&v1).await.unwrap();
    let v2 = n.app(2);
    let i = n.agent.launch(&v2).await.unwrap();
    assert_eq!(i.start_path, StartPath::Cold, "{i:?}");
    assert_eq!(field(&get(&i.addr), "v"), "2");
    // Nor one of another rollout generation of the same release, nor of a changed setting.
    let mut rolled = v1.clone();
    rolled.generation = 1;
    let mut resized = v1.clone();
    resized.spec.memory.0 *= 2;
    for other in [&rolled, &resized] {
        let j = n.agent.launch(other).await.unwrap();
        assert_eq!(j.start_path, StartPath::Cold);
        n.agent.stop(&j.id, Duration::from_secs(2)).await.unwrap();
    }
    // Declaring v2 current removes v1's checkpoint.
    assert_eq!(n.agent.forget_old_checkpoints(&v2), 1);
    assert!(n.agent.checkpoint_of(&v1).is_none());
    assert!(n.agent.checkpoints(Some("py")).is_empty());
    n.agent.stop(&i.id, Duration::from_secs(2)).await.unwrap();
    n.agent.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_criu_a_start_is_cold_and_says_why() {
    let n = node();
    let mut app = n.app(1);
    app.spec.restore = RestoreMode::Always;
    n.agent.checkpoint(&app).await.unwrap();
    n.agent.shutdown(Duration::from_secs(2)).await;
    let Node { tmp, .. } = n;

    // The same node without CRIU (uninstalled, say): its checkpoint is still on disk.
    let empty = tmp.path().join("no-criu");
    std::fs::create_dir_all(&empty).unwrap();
    let n = node_at(tmp, empty);
    let i = n.agent.launch(&app).await.unwrap();
    assert_eq!(i.start_path, StartPath::Cold);
    let why = i
        .restore_error
        .clone()
        .expect("the start says why it did not restore");
    assert!(why.contains("hako criu install"), "{why}");
    assert_eq!(field(&get(&i.addr), "n"), "1");
    let e = n.agent.checkpoint(&app).await.unwrap_err();
    assert!(matches!(e, CheckpointError::Criu(_)), "{e}");
    assert!(n.agent.criu().is_err());
    n.agent.stop(&i.id, Duration::from_secs(2)).await.unwrap();
    n.agent.shutdown(Duration::from_secs(2)).await;
}
