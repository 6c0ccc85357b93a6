//! Forwarding to instances: least outstanding requests, retries of requests
//! that never reached an app, draining, response timeout, connection reuse.

mod support;

use hako_proxy::{InstanceState, NoLauncher, ProxyConfig, ProxyEvent};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn least_outstanding_picks_the_idle_instance() {
    let proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "a", a.addr).unwrap();
    proxy.router.add_ready("app", "b", b.addr).unwrap();
    let addr = proxy.addr;
    let held = tokio::spawn(async move { get(addr, "app.example", "/hold").await });
    wait_until("one held request", || {
        a.requests.load(SeqCst) + b.requests.load(SeqCst) == 1
    })
    .await;
    let (busy, idle) = if a.requests.load(SeqCst) == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    busy.wait_held(1).await;
    let mut client = Client::connect(addr).await;
    for _ in 0..6 {
        assert_eq!(
            client.get("app.example", "/whoami").await,
            (StatusCode::OK, idle.name.clone())
        );
    }
    let snapshot = proxy.router.instances("app").unwrap();
    let busy_snapshot = snapshot
        .iter()
        .find(|s| s.instance_id == busy.name)
        .unwrap();
    assert_eq!(busy_snapshot.in_flight, 1);
    busy.release(1);
    assert_eq!(held.await.unwrap(), (StatusCode::OK, busy.name.clone()));
    // With both idle again, requests spread over both.
    for _ in 0..4 {
        client.get("app.example", "/whoami").await;
    }
    assert!(busy.requests.load(SeqCst) > 1, "ties rotate");
}

#[tokio::test]
async fn request_to_a_dead_instance_is_retried_on_a_live_one() {
    let mut proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    let live = Backend::start("live").await;
    let dead = dead_addr();
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "dead", dead).unwrap();
    proxy.router.add_ready("app", "live", live.addr).unwrap();
    for _ in 0..4 {
        assert_eq!(
            get(proxy.addr, "app.example", "/whoami").await,
            (StatusCode::OK, "live".into())
        );
    }
    match proxy.events.try_recv().unwrap() {
        ProxyEvent::InstanceUnreachable {
            instance_id,
            addr,
            error,
            ..
        } => {
            assert_eq!((instance_id.as_str(), addr), ("dead", dead));
            assert!(error.contains("cannot connect"), "{error}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(proxy.events.try_recv().is_err(), "reported once");
    let ids: Vec<_> = proxy
        .router
        .instances("app")
        .unwrap()
        .into_iter()
        .map(|s| s.instance_id)
        .collect();
    assert_eq!(ids, ["live"]);
}

#[tokio::test]
async fn dead_only_instance_is_replaced_by_a_new_launch() {
    let launcher = TestLauncher::new(Mode::Start, Duration::ZERO);
    let proxy = TestProxy::start(launcher.clone(), ProxyConfig::default()).await;
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "dead", dead_addr()).unwrap();
    assert_eq!(
        get(proxy.addr, "app.example", "/whoami").await,
        (StatusCode::OK, "app-0".into())
    );
    assert_eq!(launcher.launches.load(SeqCst), 1);
    assert_eq!(proxy.router.metrics("app").unwrap().retries, 1);
}

#[tokio::test]
async fn all_instances_dead_gives_503_after_bounded_retries() {
    let config = ProxyConfig {
        max_retries: 1,
        ..ProxyConfig::default()
    };
    let proxy = TestProxy::start(Arc::new(NoLauncher), config).await;
    proxy.app("app", &["app.example"]);
    for i in 0..3 {
        proxy
            .router
            .add_ready("app", &format!("dead{i}"), dead_addr())
            .unwrap();
    }
    let (status, body) = get(proxy.addr, "app.example", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no reachable instance"), "{body}");
    assert_eq!(
        proxy.router.instances("app").unwrap().len(),
        1,
        "two tried and removed, one left"
    );
}

#[tokio::test]
async fn request_that_reached_the_app_is_not_retried() {
    let config = ProxyConfig {
        upstream_response_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    };
    let proxy = TestProxy::start(Arc::new(NoLauncher), config).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "a", a.addr).unwrap();
    proxy.router.add_ready("app", "b", b.addr).unwrap();
    let (status, body) = get(proxy.addr, "app.example", "/hold").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.contains("did not answer"), "{body}");
    assert_eq!(
        a.requests.load(SeqCst) + b.requests.load(SeqCst),
        1,
        "sent once, never retried"
    );
    assert_eq!(
        proxy.router.instances("app").unwrap().len(),
        2,
        "a slow instance is not removed"
    );
}

#[tokio::test]
async fn drain_stops_routing_and_waits_for_in_flight() {
    let proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    let backend = Backend::start("a").await;
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "a", backend.addr).unwrap();
    let addr = proxy.addr;
    let held = tokio::spawn(async move { get(addr, "app.example", "/hold").await });
    backend.wait_held(1).await;
    let drain = proxy.router.drain("app", "a").unwrap();
    assert_eq!(drain.snapshot().state, InstanceState::Draining);
    assert_eq!(drain.snapshot().in_flight, 1);
    // No new requests reach it (NoLauncher cannot start another: 503).
    assert_eq!(
        get(addr, "app.example", "/whoami").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(backend.requests.load(SeqCst), 1);
    let mut wait = Box::pin(drain.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut wait)
            .await
            .is_err(),
        "a request is in flight"
    );
    backend.release(1);
    assert_eq!(held.await.unwrap(), (StatusCode::OK, "a".into()));
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("drained");
    proxy.router.remove("app", "a").unwrap();
    assert!(proxy.router.instances("app").unwrap().is_empty());
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    let backend = Backend::start("a").await;
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "a", backend.addr).unwrap();
    for _ in 0..10 {
        // A new client connection each time: reuse is on the upstream side.
        assert_eq!(
            get(proxy.addr, "app.example", "/whoami").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(backend.requests.load(SeqCst), 10);
    assert_eq!(backend.connections.load(SeqCst), 1);
    let metrics = proxy.router.metrics("app").unwrap();
    assert_eq!((metrics.warm, metrics.upstream.count), (10, 10));
    assert!(metrics.upstream.p99_ms > 0.0);
    let snapshot = &proxy.router.instances("app").unwrap()[0];
    assert_eq!(snapshot.in_flight, 0);
    assert!(snapshot.idle_for < Duration::from_secs(5));
}

#[tokio::test]
async fn connections_the_app_closed_are_not_mistaken_for_a_dead_instance() {
    let mut proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    let backend = Backend::start("a").await;
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "a", backend.addr).unwrap();
    let mut client = Client::connect(proxy.addr).await;
    for _ in 0..10 {
        assert_eq!(
            client.get("app.example", "/close").await,
            (StatusCode::OK, "a".into())
        );
    }
    assert_eq!(
        backend.connections.load(SeqCst),
        10,
        "one connection per response"
    );
    assert!(
        proxy.events.try_recv().is_err(),
        "no instance reported unreachable"
    );
    assert_eq!(proxy.router.instances("app").unwrap().len(), 1);
}

#[tokio::test]
async fn app_that_drops_the_connection_mid_request_gets_502_without_retry() {
    use tokio::io::AsyncReadExt;
    // A raw app that reads the request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    let live = Backend::start("live").await;
    let mut proxy = TestProxy::start(Arc::new(NoLauncher), ProxyConfig::default()).await;
    proxy.app("app", &["app.example"]);
    proxy.router.add_ready("app", "rude", addr).unwrap();
    let mut client = Client::connect(proxy.addr).await;
    let (status, body) = client.get("app.example", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("failed while answering"), "{body}");
    assert_eq!(accepted.load(SeqCst), 1);
    // Adding a live instance now: the failed request was not replayed there.
    proxy.router.add_ready("app", "live", live.addr).unwrap();
    assert_eq!(live.requests.load(SeqCst), 0);
    assert!(
        proxy.events.try_recv().is_err(),
        "a rude app is not an unreachable one"
    );
    assert_eq!(proxy.router.metrics("app").unwrap().status_5xx, 1);
}
