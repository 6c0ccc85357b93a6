//! `hako serve` end to end, in-process: real proxy, real API, real containers.
//!
//! The daemon runs in this test's process (`hako_control::serve`); the rest — the root check,
//! the host image, the requests, the static site's spec — is hako-testkit's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hako_api::Client;
use hako_control::{Bound, ServeConfig};
use hako_model::{AppSpec, EventKind};
use hako_runtime::RuntimeConfig;
use hako_testkit::http::raw;
use hako_testkit::site::static_app as static_site;

struct Serve {
    bound: Bound,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    tmp: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Serve {
        hako_testkit::require_root();
        let tmp = tempfile::Builder::new()
            .prefix("hako-serve-test")
            .tempdir()
            .unwrap();
        hako_testkit::site::host_image(tmp.path(), "base").unwrap();
        let mut config = ServeConfig::new(tmp.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.api = "127.0.0.1:0".parse().unwrap();
        config.runtime = RuntimeConfig::unique('s', "/run/hako-test");
        config.stop_grace = Duration::from_secs(2);
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            hako_control::serve(config, bound_tx, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
        let bound = bound_rx.await.unwrap();
        let client = hako_testkit::api_client(bound.api, tmp.path());
        Serve {
            bound,
            client,
            stop: Some(stop_tx),
            task,
            tmp,
        }
    }

    async fn create(&self, json: serde_json::Value) {
        let spec: AppSpec = serde_json::from_value(json).unwrap();
        let c = self.client.clone();
        tokio::task::spawn_blocking(move || c.create_app(&spec))
            .await
            .unwrap()
            .unwrap();
    }

    async fn deploy(&self, app: &str, files: &[(&str, &str)]) {
        let dir = self.tmp.path().join(format!("code-{app}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.deploy_dir(&app, &dir))
            .await
            .unwrap()
            .unwrap();
    }

    async fn events(&self, app: &str) -> Vec<hako_model::Event> {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.events(&app, Some(1000)))
            .await
            .unwrap()
            .unwrap()
    }

    async fn instances(&self, app: &str) -> usize {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.instances(Some(&app)))
            .await
            .unwrap()
            .unwrap()
            .len()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

/// One HTTP/1.0 request (no keep-alive, no chunked answer); returns (status, body).
async fn http(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let host = host.to_string();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || hako_testkit::http::get(addr, &host, &path))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_request_cold_starts_and_unknown_hosts_get_404() {
    let s = Serve::start().await;
    s.create(static_site("blog")).await;
    s.deploy("blog", &[("index.html", "hello from blog\n")])
        .await;
    assert_eq!(s.instances("blog").await, 0);
    let (status, body) = http(s.bound.proxy, "blog.example", "/index.html").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "hello from blog\n");
    assert_eq!(s.instances("blog").await, 1);
    // Warm: same instance.
    let (status, _) = http(s.bound.proxy, "BLOG.example:8080", "/index.html").await;
    assert_eq!(status, 200);
    assert_eq!(s.instances("blog").await, 1);
    let (status, body) = http(s.bound.proxy, "nobody.example", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("nobody.example"), "{body}");
    let kinds: Vec<EventKind> = s.events("blog").await.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::AppCreated) && kinds.contains(&EventKind::Deployed));
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::Start).count(),
        1,
        "{kinds:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_requests_cause_one_start() {
    let s = Serve::start().await;
    s.create(static_site("busy")).await;
    s.deploy("busy", &[("index.html", "ok\n")]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks.push(tokio::spawn(http(
            s.bound.proxy,
            "busy.example",
            "/index.html",
        )));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    let starts = s
        .events("busy")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Start)
        .count();
    assert_eq!(starts, 1);
    assert_eq!(s.instances("busy").await, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_instances_stop_and_the_next_request_starts_a_new_one() {
    let s = Serve::start().await;
    let mut app = static_site("idle");
    app["idle_timeout"] = "1s".into();
    s.create(app).await;
    s.deploy("idle", &[("index.html", "hi\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "idle.example", "/index.html").await.0,
        200
    );
    assert_eq!(s.instances("idle").await, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let stop = loop {
        if let Some(e) = s
            .events("idle")
            .await
            .into_iter()
            .find(|e| e.kind == EventKind::Stop)
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the idle instance was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s.instances("idle").await, 0);
    assert!(stop.reason.contains("idle"), "{}", stop.reason);
    assert_eq!(
        http(s.bound.proxy, "idle.example", "/index.html").await.0,
        200
    );
    let starts = s
        .events("idle")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Start)
        .count();
    assert_eq!(starts, 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_request_is_not_cut_by_the_idle_stop() {
    let s = Serve::start().await;
    // A CGI script that answers after 3 s, with a 1 s idle timeout.
    let mut app = static_site("slow");
    app["idle_timeout"] = "1s".into();
    s.create(app).await;
    let dir = s.tmp.path().join("code-slow");
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(
        dir.join("cgi-bin/slow"),
        "#!/bin/sh\nsleep 3\necho 'Content-Type: text/plain'\necho\necho done slowly\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("cgi-bin/slow"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.deploy_dir("slow", &dir))
        .await
        .unwrap()
        .unwrap();
    let (status, body) = http(s.bound.proxy, "slow.example", "/cgi-bin/slow").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "done slowly\n");
    let stops_before = s
        .events("slow")
        .await
        .iter()
        .filter(|e| e.kind == EventKind::Stop)
        .count();
    assert_eq!(stops_before, 0, "stopped while a request was open");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_starts_answer_503_with_an_event() {
    let s = Serve::start().await;
    let mut crash = static_site("crash");
    crash["cmd"] = "sh -c 'echo fatal: cannot open config.php >&2; exit 1'".into();
    s.create(crash).await;
    let (status, body) = http(s.bound.proxy, "crash.example", "/").await;
    assert_eq!(status, 503, "{body}");
    // The event is recorded beside the answer, not before it: poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        if let Some(e) = s
            .events("crash")
            .await
            .into_iter()
            .find(|e| e.kind == EventKind::StartFailed)
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no event for the failed start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        failed.reason.contains("exited with code 1"),
        "{}",
        failed.reason
    );
    assert!(
        failed
            .log_tail
            .unwrap_or_default()
            .contains("fatal: cannot open config.php")
    );

    let mut mute = static_site("mute");
    mute["cmd"] = "sleep 1000".into();
    mute["start_timeout"] = "500ms".into();
    s.create(mute).await;
    let t = Instant::now();
    let (status, _) = http(s.bound.proxy, "mute.example", "/").await;
    assert_eq!(status, 503);
    assert!(t.elapsed() >= Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if s.events("mute")
            .await
            .iter()
            .any(|e| e.kind == EventKind::StartFailed)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no event for the start timeout");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_400_and_others_are_unharmed() {
    let s = Serve::start().await;
    s.create(static_site("web")).await;
    s.deploy("web", &[("index.html", "fine\n")]).await;
    let addr = s.bound.proxy;
    let bad = tokio::task::spawn_blocking(move || {
        let a = raw(addr, "GARBAGE\r\n\r\n");
        let b = raw(
            addr,
            &format!(
                "GET / HTTP/1.1\r\nHost: web.example\r\nX-Big: {}\r\n\r\n",
                "x".repeat(200_000)
            ),
        );
        let c = raw(
            addr,
            "GET / HTTP/1.1\r\nHost: bad host!\r\nConnection: close\r\n\r\n",
        );
        (a.0, b.0, c.0)
    })
    .await
    .unwrap();
    assert_eq!(bad.0, 400);
    assert!(bad.1 == 431 || bad.1 == 400, "{}", bad.1);
    assert!(bad.2 == 400 || bad.2 == 404, "{}", bad.2);
    assert_eq!(
        http(addr, "web.example", "/index.html").await,
        (200, "fine\n".to_string())
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_reaches_new_instances_and_old_ones_drain() {
    let s = Serve::start().await;
    s.create(static_site("site")).await;
    s.deploy("site", &[("index.html", "release one\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "site.example", "/index.html").await.1,
        "release one\n"
    );
    // A new release: the running instance (release 1) is drained and stopped; the next
    // request starts an instance with release 2.
    let dir = s.tmp.path().join("code-site-2");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "release two\n").unwrap();
    let c = s.client.clone();
    let rel = tokio::task::spawn_blocking(move || c.deploy_dir("site", &dir))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rel.number, 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stopped = s
            .events("site")
            .await
            .iter()
            .any(|e| e.kind == EventKind::Stop && e.reason.contains("replaced"));
        if stopped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old instance was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "site.example", "/index.html").await.1,
        "release two\n"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn min_instances_are_kept_and_deleting_an_app_stops_everything() {
    let s = Serve::start().await;
    let mut app = static_site("warm");
    app["min"] = 1.into();
    app["idle_timeout"] = "200ms".into();
    s.create(app).await;
    s.deploy("warm", &[("index.html", "always on\n")]).await;
    // Started without any request (and replaced by one with the release once it is
    // deployed), kept although idle.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s.client.clone();
        let list = tokio::task::spawn_blocking(move || c.instances(Some("warm")))
            .await
            .unwrap()
            .unwrap();
        if list.len() == 1 && list[0].release == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the minimum instance was never started: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "warm.example", "/index.html").await,
        (200, "always on\n".into())
    );
    let metrics = {
        let c = s.client.clone();
        tokio::task::spawn_blocking(move || c.metrics("warm"))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(metrics["cold"], 0, "{metrics}");
    assert_eq!(metrics["warm"], 1, "{metrics}");
    let c = s.client.clone();
    tokio::task::spawn_blocking(move || c.delete_app("warm"))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s.client.clone();
        let all = tokio::task::spawn_blocking(move || c.instances(None))
            .await
            .unwrap()
            .unwrap();
        if !all.iter().any(|i| i.app == "warm") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted app's instance still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "warm.example", "/index.html").await.0,
        404
    );
    s.stop().await;
}

/// Raising `min` starts exactly one instance per app, also while the keep-alive loop is busy
/// with other apps: a start finishing must count as live before it stops counting as
/// starting, or the loop sees the app below its minimum and starts a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raising_min_starts_one_instance_per_app() {
    let s = Serve::start().await;
    let names: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    for n in &names {
        s.create(static_site(n)).await;
        s.deploy(n, &[("index.html", "min\n")]).await;
    }
    for n in &names {
        let (c, n) = (s.client.clone(), n.clone());
        let patch = hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        };
        tokio::task::spawn_blocking(move || c.update_app(&n, &patch))
            .await
            .unwrap()
            .unwrap();
    }
    // Each app answers warm (its instance is routed) without any request having started one.
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &names {
        while s.instances(n).await == 0 {
            assert!(Instant::now() < deadline, "{n} never got its instance");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            http(s.bound.proxy, &format!("{n}.example"), "/index.html").await,
            (200, "min\n".into())
        );
    }
    // A second start would show within moments (the loop runs on every change): watch for
    // one second that none comes, then count the starts each app recorded.
    let watch = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch {
        for n in &names {
            assert_eq!(s.instances(n).await, 1, "{n} has a second instance");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in &names {
        let starts = s
            .events(n)
            .await
            .iter()
            .filter(|e| e.kind == EventKind::Start)
            .count();
        assert_eq!(starts, 1, "{n} was started {starts} times");
        assert_eq!(s.instances(n).await, 1, "{n}");
    }
    s.stop().await;
}
