//! The activator through the real proxy: cold requests start one instance,
//! failures and timeouts give 503 with Retry-After and an event, the wait
//! queue is bounded. The test launcher starts real backends.

mod support;

use hako_proxy::{AppRoute, ProxyConfig, ProxyEvent};
use http::StatusCode;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn fifty_concurrent_first_requests_cause_one_launch() {
    let launcher = TestLauncher::new(Mode::Start, Duration::from_millis(200));
    let mut proxy = TestProxy::start(launcher.clone(), ProxyConfig::default()).await;
    proxy.app("blog", &["blog.example"]);
    let addr = proxy.addr;
    let requests: Vec<_> = (0..50)
        .map(|_| tokio::spawn(async move { get(addr, "blog.example", "/whoami").await }))
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), (StatusCode::OK, "blog-0".into()));
    }
    assert_eq!(launcher.launches.load(SeqCst), 1);
    match proxy.events.recv().await.unwrap() {
        ProxyEvent::InstanceStarted {
            app,
            instance_id,
            took,
            late,
            ..
        } => {
            assert_eq!(
                (app.as_str(), instance_id.as_str(), late),
                ("blog", "blog-0", false)
            );
            assert!(took >= Duration::from_millis(200));
        }
        other => panic!("unexpected {other:?}"),
    }
    let metrics = proxy.router.metrics("blog").unwrap();
    assert_eq!(
        (metrics.cold, metrics.warm, metrics.status_2xx),
        (50, 0, 50)
    );
    assert!(metrics.wait.p50_ms >= 150.0, "{metrics:?}");
    // Now warm: no further launch.
    assert_eq!(get(addr, "blog.example", "/whoami").await.0, StatusCode::OK);
    assert_eq!(launcher.launches.load(SeqCst), 1);
    assert_eq!(proxy.router.metrics("blog").unwrap().warm, 1);
}

#[tokio::test]
async fn failed_launch_answers_503_with_retry_after_and_reports_the_reason() {
    let launcher = TestLauncher::new(Mode::Fail, Duration::from_millis(20));
    let config = ProxyConfig {
        retry_after_secs: 3,
        ..ProxyConfig::default()
    };
    let mut proxy = TestProxy::start(launcher, config).await;
    proxy.app("blog", &["blog.example"]);
    let resp = Client::connect(proxy.addr)
        .await
        .send(get_request("blog.example", "/"))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body = body_string(resp).await;
    assert!(
        body.contains("failed to start") && body.contains("exited with status 3"),
        "{body}"
    );
    match proxy.events.recv().await.unwrap() {
        ProxyEvent::StartFailed {
            app,
            kind,
            reason,
            log_tail,
        } => {
            assert_eq!(app, "blog");
            assert_eq!(kind, hako_model::StartFailure::Crashed);
            assert!(reason.contains("status 3"));
            assert_eq!(log_tail, "php: cannot open /app/index.php");
        }
        other => panic!("unexpected {other:?}"),
    }
    let metrics = proxy.router.metrics("blog").unwrap();
    assert_eq!(
        (metrics.status_5xx, metrics.cold, metrics.wait.count),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn launch_timeout_answers_503() {
    let launcher = TestLauncher::new(Mode::Hang, Duration::ZERO);
    let mut proxy = TestProxy::start(launcher, ProxyConfig::default()).await;
    let mut route = AppRoute::new("slow", ["slow.example"]);
    route.start_timeout = Duration::from_millis(300);
    proxy.router.set_app(route).unwrap();
    let started = std::time::Instant::now();
    let resp = Client::connect(proxy.addr)
        .await
        .send(get_request("slow.example", "/"))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body_string(resp).await.contains("did not start within"));
    assert!(matches!(
        proxy.events.recv().await.unwrap(),
        ProxyEvent::StartTimedOut { after, .. } if after == Duration::from_millis(300)
    ));
}

#[tokio::test]
async fn wait_queue_is_bounded() {
    let launcher = TestLauncher::new(Mode::Start, Duration::from_millis(300));
    let proxy = TestProxy::start(launcher.clone(), ProxyConfig::default()).await;
    let mut route = AppRoute::new("blog", ["blog.example"]);
    route.max_waiting = 2;
    proxy.router.set_app(route).unwrap();
    let addr = proxy.addr;
    let waiting: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { get(addr, "blog.example", "/whoami").await }))
        .collect();
    wait_until("two waiting requests", || {
        proxy.router.status("blog").unwrap().waiting == 2
    })
    .await;
    assert!(proxy.router.status("blog").unwrap().starting);
    let (status, body) = get(addr, "blog.example", "/whoami").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("too many requests"), "{body}");
    for request in waiting {
        assert_eq!(request.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(launcher.launches.load(SeqCst), 1);
    let metrics = proxy.router.metrics("blog").unwrap();
    assert_eq!(
        (metrics.rejected, metrics.cold, metrics.status_5xx),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn failed_start_is_retried_by_the_next_request() {
    let launcher = TestLauncher::new(Mode::Fail, Duration::ZERO);
    let proxy = TestProxy::start(launcher.clone(), ProxyConfig::default()).await;
    proxy.app("blog", &["blog.example"]);
    for _ in 0..2 {
        assert_eq!(
            get(proxy.addr, "blog.example", "/").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(launcher.launches.load(SeqCst), 2);
    assert!(!proxy.router.status("blog").unwrap().starting);
}
