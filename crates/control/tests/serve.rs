//! `hako serve` end to end, in-process: real proxy, real API, real containers.
//!
//! The daemon runs in this test's process (`hako_control::serve`); the rest — the root check,
//! the host image, the requests, the static site's spec — is hako-testkit's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hako_api::Client;
use hako_control::{Bound, ServeConfig};
use hako_model::{AppSpec, EventKind, InstanceState};
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
        Serve::start_with(|_| {}).await
    }

    /// A daemon whose config `tweak` changes first (e.g. to another store).
    async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Serve {
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
        tweak(&mut config);
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

    /// Instances of `app` that took requests (ready or draining), not those still starting.
    async fn instances(&self, app: &str) -> usize {
        self.instance_list(app)
            .await
            .iter()
            .filter(|i| i.state != InstanceState::Starting)
            .count()
    }

    /// Every instance of `app` (also of an app just deleted), starting ones included.
    async fn instance_list(&self, app: &str) -> Vec<hako_model::InstanceInfo> {
        let c = self.client.clone();
        let all = tokio::task::spawn_blocking(move || c.instances(None))
            .await
            .unwrap()
            .unwrap();
        all.into_iter().filter(|i| i.app == app).collect()
    }

    async fn delete(&self, app: &str) {
        let (c, app) = (self.client.clone(), app.to_string());
        tokio::task::spawn_blocking(move || c.delete_app(&app))
            .await
            .unwrap()
            .unwrap();
    }

    /// Where the named app keeps its files on the node.
    async fn app_dir(&self, app: &str) -> std::path::PathBuf {
        let (c, name) = (self.client.clone(), app.to_string());
        let app = tokio::task::spawn_blocking(move || c.app(&name))
            .await
            .unwrap()
            .unwrap();
        self.tmp.path().join("apps").join(app.storage_key())
    }

    /// Waits (polling) until `app` has an event of `kind` that `matches`.
    async fn wait_event(
        &self,
        app: &str,
        kind: EventKind,
        matches: impl Fn(&hako_model::Event) -> bool,
    ) -> hako_model::Event {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self
                .events(app)
                .await
                .into_iter()
                .find(|e| e.kind == kind && matches(e))
            {
                return e;
            }
            assert!(Instant::now() < deadline, "no {kind:?} event for {app}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Deploys a CGI script at /cgi-bin/NAME of `app` (busybox httpd runs it).
async fn deploy_cgi(s: &Serve, app: &str, dir_name: &str, scripts: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    let dir = s.tmp.path().join(dir_name);
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(dir.join("index.html"), format!("{dir_name}\n")).unwrap();
    for (name, body) in scripts {
        let p = dir.join("cgi-bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (c, app) = (s.client.clone(), app.to_string());
    tokio::task::spawn_blocking(move || c.deploy_dir(&app, &dir))
        .await
        .unwrap()
        .unwrap();
}

/// A CGI script that marks /data/started, then answers after `secs` seconds.
fn slow_cgi(secs: u32) -> String {
    format!(
        "#!/bin/sh\ntouch /data/started\nsleep {secs}\necho 'Content-Type: text/plain'\necho\necho done slowly\n"
    )
}

/// Waits until the file exists (an app wrote it).
async fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every start is health-checked, whatever asked for it: a request's cold start and the
/// minimum kept by the keep-alive loop alike. (Instances started for a minimum used to be
/// routed as soon as their port accepted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_health_path_gates_every_start() {
    let s = Serve::start().await;
    // A health path that answers 404: never ready.
    let mut sick = static_site("sick");
    sick["health_path"] = "/missing".into();
    sick["start_timeout"] = "1s".into();
    s.create(sick).await;
    s.deploy("sick", &[("index.html", "sick\n")]).await;
    let (status, body) = http(s.bound.proxy, "sick.example", "/index.html").await;
    assert_eq!(status, 503, "{body}");
    let failed = s
        .wait_event("sick", EventKind::StartFailed, |e| {
            e.reason.contains("health check")
        })
        .await;
    assert!(failed.reason.contains("answered 404"), "{}", failed.reason);
    assert_eq!(s.instances("sick").await, 0);

    // The same app kept at a minimum of one: the keep-alive's start is checked too.
    let (c, patch) = (
        s.client.clone(),
        hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        },
    );
    tokio::task::spawn_blocking(move || c.update_app("sick", &patch))
        .await
        .unwrap()
        .unwrap();
    s.wait_event("sick", EventKind::StartFailed, |e| {
        e.reason.contains("below minimum") && e.reason.contains("health check")
    })
    .await;
    assert_eq!(
        s.instances("sick").await,
        0,
        "an instance that never passed its health check was routed"
    );
    let metrics = {
        let c = s.client.clone();
        tokio::task::spawn_blocking(move || c.metrics("sick"))
            .await
            .unwrap()
            .unwrap()
    };
    assert!(
        metrics["start_failures"]["unhealthy"].as_u64().unwrap() >= 2,
        "{metrics}"
    );

    // A health path that answers: the minimum's instance is routed once it does.
    let mut fine = static_site("fine");
    fine["health_path"] = "/index.html".into();
    s.create(fine).await;
    s.deploy("fine", &[("index.html", "fine\n")]).await;
    let (c, patch) = (
        s.client.clone(),
        hako_api::AppPatch {
            min: Some(1),
            ..Default::default()
        },
    );
    tokio::task::spawn_blocking(move || c.update_app("fine", &patch))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.instances("fine").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the healthy minimum never started: {:#?}",
            s.events("fine").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        http(s.bound.proxy, "fine.example", "/index.html").await,
        (200, "fine\n".into())
    );
    s.stop().await;
}

/// An app's delete drains its open requests in the background: other apps' changes, and a
/// new app, are applied meanwhile. (The store watch used to apply changes one at a time and
/// wait for the deleted app's requests, so a new app answered 404 for seconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_app_holds_up_no_other_app() {
    let s = Serve::start().await;
    s.create(static_site("old")).await;
    deploy_cgi(&s, "old", "code-old", &[("slow", &slow_cgi(6))]).await;
    let started = s.app_dir("old").await.join("data/started");
    let proxy = s.bound.proxy;
    let slow = tokio::spawn(async move { http(proxy, "old.example", "/cgi-bin/slow").await });
    wait_file(&started).await;
    s.delete("old").await;
    // The draining instance shows as such while its request runs.
    let list = s.instance_list("old").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].state, InstanceState::Draining, "{list:?}");
    s.create(static_site("new")).await;
    s.deploy("new", &[("index.html", "new\n")]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(s.bound.proxy, "new.example", "/index.html").await;
        if status == 200 {
            assert_eq!(body, "new\n");
            break;
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "the new app was never routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !slow.is_finished(),
        "the new app was served only after the deleted app's request ended"
    );
    assert_eq!(
        slow.await.unwrap(),
        (200, "done slowly\n".into()),
        "an open request of a deleted app finishes"
    );
    assert_eq!(http(s.bound.proxy, "old.example", "/").await.0, 404);
    s.stop().await;
}

/// Delete and create again under the same name, while the old app still drains a request:
/// the new app is served, and the old app's clean-up removes nothing of the new one. (It used
/// to remove the new app's release: 503 "release 1 of APP is missing on this node".)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_then_create_of_one_name_serves_the_new_app() {
    let s = Serve::start().await;
    for round in 0..3 {
        s.create(static_site("same")).await;
        let old_version = format!("code-same-{round}");
        deploy_cgi(&s, "same", &old_version, &[("slow", &slow_cgi(2))]).await;
        let old_dir = s.app_dir("same").await;
        let proxy = s.bound.proxy;
        let slow = tokio::spawn(async move { http(proxy, "same.example", "/cgi-bin/slow").await });
        wait_file(&old_dir.join("data/started")).await;
        s.delete("same").await;
        s.create(static_site("same")).await;
        let new_version = format!("code-same-{round}-new");
        deploy_cgi(&s, "same", &new_version, &[]).await;
        let new_dir = s.app_dir("same").await;
        assert_ne!(old_dir, new_dir, "two apps of one name share their files");
        // The old app's clean-up runs once its request is done.
        assert_eq!(slow.await.unwrap().0, 200);
        let deadline = Instant::now() + Duration::from_secs(20);
        while old_dir.exists() {
            assert!(Instant::now() < deadline, "the deleted app's files stay");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            http(s.bound.proxy, "same.example", "/index.html").await,
            (200, format!("{new_version}\n")),
            "round {round}"
        );
        assert!(new_dir.join("data").exists());
        s.delete("same").await;
    }
    s.stop().await;
}

/// An instance shows as starting while its app gets ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_starting_instance_shows_as_starting() {
    let s = Serve::start().await;
    let mut app = static_site("lazy");
    // Listens only once the test lets it (a file on its /data).
    app["cmd"] = "sh -c 'while [ ! -e /data/go ]; do sleep 0.05; done; exec busybox httpd -f -p $PORT -h /app'".into();
    s.create(app).await;
    s.deploy("lazy", &[("index.html", "lazy\n")]).await;
    let proxy = s.bound.proxy;
    let request = tokio::spawn(async move { http(proxy, "lazy.example", "/index.html").await });
    let deadline = Instant::now() + Duration::from_secs(20);
    let starting = loop {
        let list = s.instance_list("lazy").await;
        if let Some(i) = list.first() {
            break i.clone();
        }
        assert!(Instant::now() < deadline, "no instance was listed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(starting.state, InstanceState::Starting);
    std::fs::write(s.app_dir("lazy").await.join("data/go"), "").unwrap();
    assert_eq!(request.await.unwrap(), (200, "lazy\n".into()));
    let list = s.instance_list("lazy").await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].state),
        (starting.id.as_str(), InstanceState::Ready)
    );
    s.stop().await;
}

/// A real etcd (one member, on loopback, in a temp dir), killed when dropped.
struct Etcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Etcd {
    fn start() -> Etcd {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client, peer) = (port(), port());
        let dir = tempfile::Builder::new()
            .prefix("hako-etcd")
            .tempdir()
            .unwrap();
        let name = format!("hako-serve-{}", std::process::id());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = std::process::Command::new("etcd")
            .args(["--name", &name, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{name}={peer_url}")])
            .args(["--log-outputs", "stderr", "--logger", "zap"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd is not installed: apt-get install -y etcd-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Etcd {
            child,
            _dir: dir,
            endpoint: format!("etcd://127.0.0.1:{client}"),
        }
    }
}

/// `hako serve` on a real etcd serves a site end to end, and its apps are in etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_etcd_serves_a_site() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint.clone();
    let s = Serve::start_with(|c| c.store = endpoint.parse().unwrap()).await;
    s.create(static_site("onetcd")).await;
    s.deploy("onetcd", &[("index.html", "from etcd\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "onetcd.example", "/index.html").await,
        (200, "from etcd\n".into())
    );
    assert!(
        !s.tmp.path().join("hako.db").exists(),
        "the embedded store was used"
    );
    let store = hako_store::open(&etcd.endpoint.parse().unwrap())
        .await
        .unwrap();
    let app: Option<hako_model::App> =
        hako_store::StoreExt::get_json(store.as_ref(), &hako_store::keys::app("onetcd"))
            .await
            .unwrap();
    assert_eq!(app.unwrap().release, Some(1));
    s.stop().await;
}
