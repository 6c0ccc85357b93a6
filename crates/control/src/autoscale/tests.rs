//! The autoscaler in the daemon, with the keep-alive beside it, on tokio's paused clock
//! ([`crate::testbed`]): load is set on the proxy's counts, every sample is 200 ms of paused
//! time, and each decision is checked at its moment.

use hako_model::EventKind;
use hako_policy::wake::RequestClass;
use tokio::time::Instant;

use super::{AutoscaleLoop, SAMPLE_INTERVAL};
use crate::lifecycle::Cause;
use crate::metrics::ScaleDirection;
use crate::testbed::{Bed, Busy, Call, bed, site};

fn scaler(b: &Bed) -> AutoscaleLoop {
    AutoscaleLoop::new(
        b.apps.clone(),
        b.lifecycle.clone(),
        b.load.clone(),
        b.events.clone(),
        Instant::now(),
        Default::default(),
    )
}

/// Samples for `secs` seconds with `total` requests in flight, spread evenly over the ready
/// instances (visitors, active now while there is load); returns the decisions with the
/// seconds at which they were taken.
async fn run_for(b: &Bed, s: &mut AutoscaleLoop, secs: f64, total: usize) -> Vec<(f64, String)> {
    let start = Instant::now();
    let mut out = Vec::new();
    while (Instant::now() - start).as_secs_f64() < secs {
        tokio::time::advance(SAMPLE_INTERVAL).await;
        let ids = b.ready_ids();
        for (i, id) in ids.iter().enumerate() {
            let share = total / ids.len() + usize::from(i < total % ids.len());
            if total > 0 {
                b.load.spread(std::slice::from_ref(id), share);
            } else {
                b.load.set_idle(id);
            }
        }
        for (_, d) in s.tick(Instant::now()).await {
            out.push(((Instant::now() - start).as_secs_f64(), d.to_string()));
        }
        b.settle().await;
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_surge_scales_up_within_two_seconds_then_calm_drains_to_one_and_the_idle_timeout_stops_it()
 {
    let b = bed(site(serde_json::json!({
        "target_concurrency": 2, "max": 4, "idle_timeout": "60s",
    })))
    .await;
    let mut s = scaler(&b);
    b.lifecycle.start(&b.app(), Cause::Request).await.unwrap();
    // Steady at half the capacity for 20 s: nothing to do.
    assert!(run_for(&b, &mut s, 20.0, 1).await.is_empty());
    // A ×8 step (8 in flight on one instance whose target is 2): seen within 2 s, sized to 4.
    let up = run_for(&b, &mut s, 3.0, 8).await;
    assert_eq!(up.len(), 1, "{up:?}");
    let (when, words) = &up[0];
    assert!(*when <= 2.0, "seen after {when} s");
    assert!(words.starts_with("scale 1→4: concurrency"), "{words}");
    assert!(words.contains("target 2"), "{words}");
    assert_eq!(b.ready_ids().len(), 4);
    // The same load over the four: kept for as long as it lasts.
    assert!(run_for(&b, &mut s, 40.0, 8).await.is_empty());
    // The load ends. The autoscaler drains as the loaded 10-s blocks leave its 30-s look-back
    // (not before 20 s: one block is still full), down to one — not to zero.
    let down = run_for(&b, &mut s, 45.0, 0).await;
    assert!(!down.is_empty(), "{down:?}");
    assert!(down[0].0 >= 20.0, "{down:?}");
    assert!(
        down.iter()
            .all(|(_, d)| d.contains("concurrency at most") && d.contains("over 30s")),
        "{down:?}"
    );
    assert!(down.last().unwrap().1.contains("→1:"), "{down:?}");
    assert_eq!(b.ready_ids().len(), 1);
    let scale_events: Vec<_> = b
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Scale)
        .collect();
    assert_eq!(scale_events.len(), 1 + down.len(), "{scale_events:?}");
    // And counted for /metrics, by direction.
    let counted = |d| s.telemetry.scale_decisions("site", d);
    assert_eq!(counted(ScaleDirection::Up), 1);
    assert_eq!(counted(ScaleDirection::Down), down.len() as u64);
    assert!(
        scale_events[1].reason.contains("draining"),
        "{scale_events:?}"
    );
    // The keep-alive owns the last one: it stops at its idle timeout (60 s after the load
    // ended, i.e. 15 s from here), and the autoscaler does not start it again.
    let launches = b.node.launches();
    for _ in 0..150 {
        tokio::time::advance(SAMPLE_INTERVAL).await;
        b.keep_alive.tick(Instant::now());
        assert!(s.tick(Instant::now()).await.is_empty());
        b.settle().await;
    }
    assert!(b.states().is_empty(), "{:?}", b.states());
    assert_eq!(
        b.node.launches(),
        launches,
        "started again after the idle stop"
    );
    assert!(matches!(b.node.calls().last(), Some(Call::Stop(_))));
}

#[tokio::test(start_paused = true)]
async fn the_minimum_is_the_keep_alives_and_the_autoscaler_never_drains_below_it() {
    let b = bed(site(serde_json::json!({
        "target_concurrency": 2, "min": 2, "max": 4, "idle_timeout": "60s",
    })))
    .await;
    let mut s = scaler(&b);
    // The autoscaler leaves the minimum to the keep-alive: no decision below it.
    tokio::time::advance(SAMPLE_INTERVAL).await;
    assert!(s.tick(Instant::now()).await.is_empty());
    assert_eq!(b.node.launches(), 0);
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(b.ready_ids().len(), 2);
    assert!(run_for(&b, &mut s, 12.0, 2).await.is_empty());
    let up = run_for(&b, &mut s, 3.0, 12).await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(up[0].1.starts_with("scale 2→4"), "{up:?}");
    let down = run_for(&b, &mut s, 45.0, 0).await;
    assert!(!down.is_empty(), "{down:?}");
    assert!(down.last().unwrap().1.contains("→2:"), "{down:?}");
    assert_eq!(b.ready_ids().len(), 2);
    // Long idle: the keep-alive keeps the minimum, the autoscaler has nothing to say.
    for _ in 0..400 {
        tokio::time::advance(SAMPLE_INTERVAL).await;
        b.keep_alive.tick(Instant::now());
        assert!(s.tick(Instant::now()).await.is_empty());
        b.settle().await;
    }
    assert_eq!(b.ready_ids().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn scale_in_drains_the_least_busy_and_never_one_holding_a_websocket() {
    let b = bed(site(serde_json::json!({
        "target_concurrency": 10, "max": 4, "idle_timeout": "10m",
    })))
    .await;
    let mut s = scaler(&b);
    for _ in 0..3 {
        b.lifecycle
            .start(&b.app(), Cause::Policy("test".into()))
            .await
            .unwrap();
    }
    let ids = b.ready_ids();
    // The oldest holds a WebSocket and nothing else: the least busy, but it stays.
    let mark = |id: &str, in_flight, upgraded| {
        b.load.set(
            id,
            Busy {
                in_flight,
                upgraded,
                visitor: Some(Instant::now()),
                first: Some(RequestClass::Visitor),
                ..Busy::default()
            },
        )
    };
    let mut down = Vec::new();
    for _ in 0..200 {
        tokio::time::advance(SAMPLE_INTERVAL).await;
        mark(&ids[0], 0, 1);
        mark(&ids[1], 2, 0);
        mark(&ids[2], 1, 0);
        for (_, d) in s.tick(Instant::now()).await {
            down.push(d);
        }
        b.settle().await;
    }
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!((down[0].from, down[0].to), (3, 1));
    // The WebSocket's instance stays though it is the least busy; the others drain, the
    // least busy first.
    assert_eq!(b.ready_ids(), vec![ids[0].clone()], "{:?}", b.node.calls());
    let events = b.events().await;
    let scale = events.iter().find(|e| e.kind == EventKind::Scale).unwrap();
    assert!(
        scale
            .reason
            .contains(&format!("draining {}, {}", ids[2], ids[1])),
        "{}",
        scale.reason
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_cold_requests_count_as_load() {
    let b = bed(site(serde_json::json!({"target_concurrency": 1, "max": 3}))).await;
    let mut s = scaler(&b);
    b.lifecycle.start(&b.app(), Cause::Request).await.unwrap();
    assert!(run_for(&b, &mut s, 12.0, 0).await.is_empty());
    b.load.set_waiting(4);
    let up = run_for(&b, &mut s, 3.0, 1).await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(up[0].1.starts_with("scale 1→3"), "{up:?}");
}

/// Apps in [`a_tick_over_ten_thousand_apps_is_linear`], and how many of them run an instance.
const MANY_APPS: usize = 10_000;
const WITH_INSTANCE: usize = 500;

#[tokio::test(start_paused = true)]
async fn a_tick_over_ten_thousand_apps_is_linear() {
    let b = bed(site(serde_json::json!({}))).await;
    let name = |i: usize| format!("s{i:05}");
    let spec = |i: usize| {
        serde_json::json!({
            "name": name(i), "hosts": [format!("{}.example", name(i))], "image": "base", "cmd": "serve",
        })
    };
    // Routed (the lifecycle starts them), one instance each.
    for i in 1..=WITH_INSTANCE {
        b.set(spec(i));
        let app = b.apps.get(&name(i)).unwrap();
        b.lifecycle.start(&app, Cause::Request).await.unwrap();
    }
    // Known, with no instance: the autoscaler passes them by (it never scales from zero).
    // (Not routed: routing is not what is measured here.)
    let template = b.apps.get(&name(1)).unwrap();
    for i in WITH_INSTANCE + 1..MANY_APPS {
        let mut app = template.clone();
        app.spec = serde_json::from_value(spec(i)).unwrap();
        b.apps.insert(app);
    }
    assert_eq!(b.apps.all().len(), MANY_APPS);
    let mut s = scaler(&b);
    // The work of one tick, counted: the instance records it reads, and the scalers it keeps.
    // Also its real time, as a backstop for work not counted: matching every scaler against
    // every app (as the tick did) builds 5·10^7 keys on the second tick — about 30 s in a debug
    // build on the 2-core test machine — where
    // the linear tick takes a few tens of milliseconds; the bound sits far from both.
    let mut spent = std::time::Duration::ZERO;
    let mut tick = async |s: &mut AutoscaleLoop| {
        tokio::time::advance(SAMPLE_INTERVAL).await;
        let before = b.lifecycle.table_reads();
        let t = std::time::Instant::now();
        s.tick(Instant::now()).await;
        spent += t.elapsed();
        b.lifecycle.table_reads() - before
    };
    let reads = tick(&mut s).await;
    assert_eq!(s.scalers.len(), WITH_INSTANCE);
    // Each app's view reads its own instances only: 500 records. Scanning every instance for
    // each app (as the table did) reads 10,000 × 500 = 5,000,000.
    assert!(
        reads <= 2 * WITH_INSTANCE as u64,
        "one tick over {MANY_APPS} apps read {reads} instance records"
    );
    // Half the apps go: their scalers go in the same single pass, the others with an
    // instance keep theirs.
    for i in (1..MANY_APPS).step_by(2) {
        b.apps.remove(&name(i));
    }
    let reads = tick(&mut s).await;
    let left = b.apps.all().len();
    assert_eq!(left, MANY_APPS / 2);
    let running: Vec<String> = (2..=WITH_INSTANCE)
        .step_by(2)
        .map(|i| b.apps.get(&name(i)).unwrap().storage_key())
        .collect();
    assert_eq!(s.scalers.len(), running.len());
    assert!(
        running.iter().all(|key| s.scalers.contains_key(key)),
        "every app left with an instance keeps its scaler (its samples)"
    );
    assert!(
        reads <= 2 * WITH_INSTANCE as u64,
        "one tick over {left} apps read {reads} instance records"
    );
    assert!(
        spent < std::time::Duration::from_secs(5),
        "two ticks over {MANY_APPS} and {left} apps took {spent:?}"
    );
}

/// A sample copies only the apps with instances or starts (the autoscaler never scales from
/// zero), not every stored app, and its per-app state follows them.
#[tokio::test(start_paused = true)]
async fn a_sample_looks_only_at_apps_with_instances() {
    let b = bed(site(serde_json::json!({"idle_timeout": "60s"}))).await;
    for i in 0..1000 {
        let mut app = b.app();
        app.spec.name = format!("other-{i}");
        app.spec.hosts = vec![format!("other-{i}.test")];
        app.uid = format!("{i:012x}");
        b.apps.insert(app);
    }
    let mut s = scaler(&b);
    let before = b.apps.copies();
    assert!(s.tick(Instant::now()).await.is_empty());
    assert_eq!(b.apps.copies() - before, 0);
    assert!(s.scalers.is_empty());

    b.lifecycle.start(&b.app(), Cause::Request).await.unwrap();
    let before = b.apps.copies();
    s.tick(Instant::now()).await;
    assert_eq!(b.apps.copies() - before, 1);
    assert_eq!(s.scalers.len(), 1);
}
