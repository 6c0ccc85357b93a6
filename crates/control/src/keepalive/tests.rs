//! The keep-alive loop's timing on tokio's paused clock ([`crate::testbed`]): each decision
//! is checked at its exact moment.

use std::time::Duration;

use hako_model::InstanceState;
use tokio::time::Instant;

use crate::testbed::{Call, bed, site};

#[tokio::test(start_paused = true)]
async fn a_minimum_is_started_kept_while_idle_and_stopped_at_the_idle_timeout() {
    let b = bed(site(serde_json::json!({"min": 1, "idle_timeout": "60s"}))).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(b.states(), [("site-0".into(), InstanceState::Ready)]);
    // Idle far past its timeout: kept, it is the minimum.
    tokio::time::advance(Duration::from_secs(600)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(b.node.calls(), [Call::Launch("site-0".into())]);
    // The minimum goes to zero: it stops at once (its idle timeout is long past).
    b.set(site(serde_json::json!({"min": 0, "idle_timeout": "60s"})));
    let next = b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(
        b.node.calls(),
        [Call::Launch("site-0".into()), Call::Stop("site-0".into())]
    );
    assert!(b.states().is_empty());
    assert!(next.is_some(), "it was there when the loop looked");
    assert_eq!(
        b.keep_alive.tick(Instant::now()),
        None,
        "nothing left to wait for"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_instance_stops_exactly_at_its_timeout() {
    let b = bed(site(serde_json::json!({"idle_timeout": "60s"}))).await;
    // A request's start (as the proxy's launcher asks).
    b.lifecycle
        .start(&b.app(), crate::lifecycle::Cause::Request)
        .await
        .unwrap();
    let ready = Instant::now();
    let next = b
        .keep_alive
        .tick(ready)
        .expect("an idle timeout to wait for");
    assert_eq!(next, b.keep_alive.time(ready + Duration::from_secs(60)));
    tokio::time::advance(Duration::from_secs(59)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(b.states().len(), 1, "stopped before its idle timeout");
    tokio::time::advance(Duration::from_secs(1)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert!(b.states().is_empty());
    assert_eq!(b.node.calls().last(), Some(&Call::Stop("site-0".into())));
}

#[tokio::test(start_paused = true)]
async fn a_recycle_and_a_new_release_start_the_successor_before_the_old_one_stops() {
    let b = bed(site(
        serde_json::json!({"min": 1, "idle_timeout": "5m", "max_lifetime": "10m"}),
    ))
    .await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    // Its lifetime ends: the successor first, then the old one drains and stops.
    tokio::time::advance(Duration::from_secs(600)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(
        b.node.calls(),
        [
            Call::Launch("site-0".into()),
            Call::Launch("site-1".into()),
            Call::Stop("site-0".into()),
        ]
    );
    assert_eq!(b.states(), [("site-1".into(), InstanceState::Ready)]);
    // A new release: the outdated instance is replaced the same way, once.
    let mut app = b.app();
    app.release = Some(2);
    b.apps.insert(app);
    b.keep_alive.tick(Instant::now());
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(
        b.node.calls()[3..],
        [Call::Launch("site-3".into()), Call::Stop("site-1".into())]
    );
    assert_eq!(b.states(), [("site-3".into(), InstanceState::Ready)]);
}

#[tokio::test(start_paused = true)]
async fn a_request_joins_a_start_under_way_instead_of_making_a_second_instance() {
    let b = bed(site(serde_json::json!({"min": 1, "idle_timeout": "60s"}))).await;
    *b.node.delay.lock().unwrap() = Duration::from_secs(2);
    // The minimum's start is under way (its container exists, it is not ready yet)...
    b.keep_alive.tick(Instant::now());
    tokio::task::yield_now().await;
    // ...when a request finds no ready instance.
    let lifecycle = b.lifecycle.clone();
    let app = b.app();
    let request = tokio::spawn(async move {
        lifecycle
            .start(&app, crate::lifecycle::Cause::Request)
            .await
    });
    let got = request.await.unwrap().unwrap();
    assert_eq!(got.id, "site-0", "the request got the minimum's instance");
    b.settle().await;
    assert_eq!(b.node.calls(), [Call::Launch("site-0".into())]);
    assert_eq!(b.states(), [("site-0".into(), InstanceState::Ready)]);
}

/// Quiet work does not keep a site awake: an instance a request of an ignored client (an
/// uptime checker) woke stops 5 s after that request, not at the idle timeout; one a visitor
/// woke keeps its idle timeout, whatever probes come later.
#[tokio::test(start_paused = true)]
async fn an_instance_woken_by_an_uptime_check_stops_after_it_not_at_the_idle_timeout() {
    use crate::testbed::Busy;
    use hako_policy::wake::RequestClass;
    let b = bed(site(serde_json::json!({"idle_timeout": "5m"}))).await;
    let woken = b
        .lifecycle
        .start(&b.app(), crate::lifecycle::Cause::Request)
        .await
        .unwrap();
    b.load.set(
        &woken.id,
        Busy {
            quiet: Some(Instant::now()),
            first: Some(RequestClass::Ignored),
            ..Busy::default()
        },
    );
    let next = b.keep_alive.tick(Instant::now()).unwrap();
    assert_eq!(
        next,
        b.keep_alive
            .time(Instant::now() + crate::views::QUIET_LINGER)
    );
    tokio::time::advance(crate::views::QUIET_LINGER).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert!(b.states().is_empty(), "kept awake by an uptime check");

    // Woken by a visitor: a probe a minute later neither shortens nor extends its timeout.
    let visited = b
        .lifecycle
        .start(&b.app(), crate::lifecycle::Cause::Request)
        .await
        .unwrap();
    let woke_at = Instant::now();
    tokio::time::advance(Duration::from_secs(60)).await;
    b.load.set(
        &visited.id,
        Busy {
            visitor: Some(woke_at),
            quiet: Some(Instant::now()),
            first: Some(RequestClass::Visitor),
            ..Busy::default()
        },
    );
    let next = b.keep_alive.tick(Instant::now()).unwrap();
    assert_eq!(next, b.keep_alive.time(woke_at + Duration::from_secs(300)));
    tokio::time::advance(Duration::from_secs(239)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(b.states().len(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert!(b.states().is_empty());
}
