//! Thread-per-core serving end to end: cold start, then warm requests spread
//! over threads, each thread reusing its own upstream connections.

mod support;

use hako_proxy::{AppRoute, Proxy, ProxyConfig, Router};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use support::*;

#[test]
fn per_core_threads_start_once_and_reuse_connections() {
    // The launcher's backends live on this runtime; the proxy threads have their own.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let launcher = TestLauncher::new(Mode::Start, Duration::from_millis(50));
    let (events, mut event_rx) = tokio::sync::mpsc::unbounded_channel();
    let router = Router::new(launcher.clone(), Arc::new(events));
    router
        .set_app(AppRoute::new("blog", ["blog.example"]))
        .unwrap();
    let server = Proxy::new(router.clone(), ProxyConfig::default())
        .bind_per_core("127.0.0.1:0".parse().unwrap(), 2)
        .unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = std::thread::spawn(move || server.run(stopped));

    runtime.block_on(async {
        let first: Vec<_> = (0..20)
            .map(|_| tokio::spawn(async move { get(addr, "blog.example", "/whoami").await }))
            .collect();
        for request in first {
            assert_eq!(request.await.unwrap(), (StatusCode::OK, "blog-0".into()));
        }
        for _ in 0..40 {
            assert_eq!(get(addr, "blog.example", "/whoami").await.0, StatusCode::OK);
        }
    });
    assert_eq!(
        launcher.launches.load(SeqCst),
        1,
        "one start for all threads"
    );
    let backend = launcher.started.lock().unwrap()[0].clone();
    assert_eq!(backend.requests.load(SeqCst), 60);
    // Each thread opens at most as many connections as it had concurrent requests
    // (20 together at first), then reuses them for the 40 that follow.
    assert!(
        backend.connections.load(SeqCst) <= 40,
        "{}",
        backend.connections.load(SeqCst)
    );
    let metrics = router.metrics("blog").unwrap();
    assert_eq!((metrics.cold + metrics.warm, metrics.status_2xx), (60, 60));
    assert!(matches!(
        event_rx.try_recv(),
        Ok(hako_proxy::ProxyEvent::InstanceStarted { .. })
    ));

    stop.send_replace(true);
    serving.join().unwrap().unwrap();
    drop(runtime);
}
