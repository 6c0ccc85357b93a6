//! Cold-start mitigations through a real `hako serve` (root): each setting visible and
//! changeable through the CLI and the API; the daemon checkpoints an app version after its
//! first start and restores it, a restored instance answering with the memory it had at the
//! dump and naming itself in `/run/hako/instance`; the shared warm pool serves any app's
//! start.

mod common;

use std::time::Duration;

use common::{Serve, get, wait_until};

fn show(d: &Serve, name: &str) -> serde_json::Value {
    serde_json::from_str(&d.ok(&["app", "show", name, "--json"])).unwrap()
}

/// A `hako serve` on `data` with the machine's CRIU and `extra` config lines.
fn serve_with(env: &common::Env, extra: &str) -> Serve {
    let config = env.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "criu_dir = {:?}\n{extra}",
            hako_criu::default_dir().display().to_string()
        ),
    )
    .unwrap();
    Serve::builder(common::HAKO)
        .data_dir(env.data_dir())
        .args(&["--config", config.to_str().unwrap()])
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn each_mitigation_is_visible_and_changeable_through_the_cli_and_the_api() {
    let env = common::Env::new();
    let site = env.host_image_and_site("hi\n");
    let d = common::serve(&env.data_dir());
    d.ok(&[
        "app",
        "create",
        "blog",
        "--host",
        "blog.example",
        "--image",
        "base",
        "--code",
        site.to_str().unwrap(),
        "--cmd",
        "busybox httpd -f -p $PORT -h /app",
        "--restore",
        "never",
        "--keep-alive",
        "predictive",
        "--warm-pool",
        "1",
    ]);
    let v = show(&d, "blog");
    assert_eq!(v["app"]["restore"], "never");
    assert_eq!(v["app"]["keep_alive"], "predictive");
    assert_eq!(v["app"]["warm_pool"], 1);
    assert_eq!(v["checkpoint"]["restores"], false, "{v}");
    let text = d.ok(&["app", "show", "blog"]);
    assert!(
        text.contains("restore: never — restore is never for this app"),
        "{text}"
    );
    assert!(text.contains("node's checkpoints: 0B of 4GiB"), "{text}");

    // The CLI changes them…
    d.ok(&[
        "app",
        "update",
        "blog",
        "--restore",
        "auto",
        "--keep-alive",
        "fixed",
        "--warm-pool",
        "0",
    ]);
    let v = show(&d, "blog");
    assert_eq!(
        (
            &v["app"]["restore"],
            &v["app"]["keep_alive"],
            &v["app"]["warm_pool"]
        ),
        (
            &serde_json::json!("auto"),
            &serde_json::json!("fixed"),
            &serde_json::json!(0)
        )
    );
    assert!(
        v["checkpoint"]["reason"]
            .as_str()
            .unwrap()
            .contains("no checkpoint of this version yet"),
        "{v}"
    );
    // …and so does the API, which shows them too.
    let client = d.client();
    let patch: hako_model::AppPatch = serde_json::from_value(
        serde_json::json!({"restore": "always", "keep_alive": "predictive"}),
    )
    .unwrap();
    let app = client.update_app("blog", &patch).unwrap();
    assert_eq!(app.spec.restore, hako_model::RestoreMode::Always);
    assert_eq!(app.spec.keep_alive, hako_model::KeepAliveMode::Predictive);
    let c = client.checkpoint("blog").unwrap();
    assert_eq!(c["restore"], "always", "{c}");
    assert!(c["node_checkpoint_max_bytes"].as_u64().unwrap() > 0, "{c}");
    // Values that mean nothing are refused, saying what is allowed.
    let out = d.hako(&["app", "update", "blog", "--keep-alive", "smart"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("fixed, predictive"), "{out:?}");
    let slo = d.ok(&["slo", "blog"]);
    assert!(slo.contains("predictive keep-alive"), "{slo}");
}

/// Remembers a token drawn when it started (before the dump) and tells it with the instance
/// it is now.
const STATEFUL: &str = r#"
import http.server, os, secrets
token = secrets.token_hex(8)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        now = open('/run/hako/instance').read().strip()
        body = ("%s %s %s\n" % (token, now, os.environ["HAKO_INSTANCE"])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn the_daemon_checkpoints_after_the_first_start_and_restores_with_the_memory_of_the_dump() {
    let env = common::Env::new();
    env.host_image_and_site("unused\n");
    let code = env.path("py");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("app.py"), STATEFUL).unwrap();
    let d = serve_with(&env, "shared_pool = 2\n");
    d.ok(&[
        "app",
        "create",
        "py",
        "--host",
        "py.example",
        "--image",
        "base",
        "--code",
        code.to_str().unwrap(),
        "--cmd",
        "python3 /app/app.py",
        "--idle-timeout",
        "1s",
        "--restore",
        "always",
    ]);
    // `always`: the daemon makes the checkpoint at once, in the background.
    let client = d.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client.checkpoint("py").unwrap()["restores"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint: {}\n{}",
            client.checkpoint("py").unwrap(),
            d.ok(&["app", "events", "py"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = d.ok(&["app", "events", "py"]);
    assert!(events.contains("checkpoint of release 1"), "{events}");
    // Each start restores it: the token drawn before the dump, a new instance's name.
    let mut seen = Vec::new();
    for _ in 0..2 {
        wait_until("py to have no instance", Duration::from_secs(30), || {
            client.instances(Some("py")).unwrap().is_empty()
        });
        let (status, body) = get(d.proxy, "py.example", "/");
        assert_eq!(status, 200, "{body}");
        let i = client.instances(Some("py")).unwrap();
        assert_eq!(i[0].start_path, hako_model::StartPath::Restore, "{i:?}");
        let words: Vec<&str> = body.split_whitespace().collect();
        assert_eq!(
            words[1], i[0].id,
            "/run/hako/instance names the instance it is now"
        );
        assert_ne!(words[2], i[0].id, "its environment is the dumped one's");
        seen.push(words[0].to_string());
    }
    assert_eq!(seen[0], seen[1], "both answer with the memory of the dump");
    let text = d.ok(&["app", "show", "py"]);
    assert!(text.contains("restore: always"), "{text}");
    assert!(text.contains("checkpoint: "), "{text}");

    // A new release: the old version's checkpoint goes, its instances never restore it.
    d.ok(&["app", "deploy", "py", "--code", code.to_str().unwrap()]);
    wait_until("the old checkpoint to go", Duration::from_secs(30), || {
        d.ok(&["app", "events", "py"]).contains("older versions")
    });
    // The shared warm pool: with restore never and no per-app pool, starts take a slot.
    d.ok(&["app", "update", "py", "--restore", "never"]);
    wait_until("py to have no instance", Duration::from_secs(30), || {
        client.instances(Some("py")).unwrap().is_empty()
    });
    wait_until("a slot in the shared pool", Duration::from_secs(30), || {
        client.metrics("py").unwrap()["shared_pool_parked"].as_u64() > Some(0)
    });
    let (status, _) = get(d.proxy, "py.example", "/");
    assert_eq!(status, 200);
    let i = client.instances(Some("py")).unwrap();
    assert_eq!(i[0].start_path, hako_model::StartPath::Shared, "{i:?}");
}
