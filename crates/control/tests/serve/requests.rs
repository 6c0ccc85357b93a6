//! Requests through the proxy: cold starts, 404s, failed starts, malformed input.

use std::time::{Duration, Instant};

use hako_model::EventKind;

use crate::{Serve, http, static_site};
use hako_testkit::http::raw;

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
    // One cold start for all fifty. (Fifty requests waiting is five times the default
    // target concurrency: the autoscaler may add instances for them, each start saying so.)
    let events = s.events("busy").await;
    let starts: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Start)
        .collect();
    let cold = starts
        .iter()
        .filter(|e| e.reason.starts_with("cold start"))
        .count();
    assert_eq!(cold, 1, "{starts:?}");
    assert!(
        starts
            .iter()
            .all(|e| e.reason.starts_with("cold start") || e.reason.starts_with("scale 1→")),
        "{starts:?}"
    );
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
