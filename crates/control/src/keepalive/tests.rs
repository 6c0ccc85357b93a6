//! The keep-alive loop's timing on tokio's paused clock ([`crate::testbed`]): each decision
//! is checked at its exact moment.

use std::time::Duration;

use hako_agent::StartMode;
use hako_model::{EventKind, InstanceState};
use tokio::time::Instant;

use crate::lifecycle::Cause;
use crate::testbed::{Bed, Call, bed, site};

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

/// The same holds for a predictive site: its deadlines, learned or not, count visitors only.
#[tokio::test(start_paused = true)]
async fn a_predictive_site_woken_by_an_uptime_check_stops_after_it_too() {
    use crate::testbed::Busy;
    use hako_policy::wake::RequestClass;
    let b = bed(site(
        serde_json::json!({"keep_alive": "predictive", "idle_timeout": "5m"}),
    ))
    .await;
    let woken = b.lifecycle.start(&b.app(), Cause::Request).await.unwrap();
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
    assert!(b.keep_alive.predictors.state("site").is_some());
}

impl Bed {
    /// The instant of the policy's time `t`.
    fn instant(&self, t: hako_policy::Time) -> Instant {
        self.keep_alive.epoch + Duration::from_nanos(t.0)
    }

    /// Runs the keep-alive loop as the daemon does — a pass at each of its next checks —
    /// until `until`.
    async fn run_until(&self, until: Instant) {
        loop {
            let next = self.keep_alive.tick(Instant::now());
            self.settle().await;
            let now = Instant::now();
            if now >= until {
                return;
            }
            let to = next
                .map(|t| self.instant(t))
                .filter(|t| *t > now && *t < until)
                .unwrap_or(until);
            tokio::time::advance(to - now).await;
        }
    }

    /// A request arrives now, as the proxy sees it: recorded, and if no instance is ready it
    /// starts one (a cold start). True if it found one ready.
    async fn request(&self) -> bool {
        self.router
            .record_idle_arrival("site", Instant::now())
            .unwrap();
        let warm = self
            .states()
            .iter()
            .any(|(_, s)| *s == InstanceState::Ready);
        if !warm {
            self.lifecycle
                .start(&self.app(), Cause::Request)
                .await
                .unwrap();
        }
        warm
    }

    async fn events_of(&self, kind: EventKind) -> Vec<hako_model::Event> {
        let mut all = self.events().await;
        all.retain(|e| e.kind == kind);
        all
    }
}

#[tokio::test(start_paused = true)]
async fn the_predictor_pre_warms_before_a_periodic_arrival() {
    // A cron-like client every 60 s; the 30 s idle timeout alone makes each request cold.
    let b = bed(site(
        serde_json::json!({"keep_alive": "predictive", "idle_timeout": "30s"}),
    ))
    .await;
    let period = Duration::from_secs(60);
    let mut warm = Vec::new();
    for _ in 0..16 {
        let arrival = Instant::now();
        warm.push(b.request().await);
        b.run_until(arrival + period).await;
    }
    // While learning (10 idle periods), the fixed keep-alive decides: cold every time.
    assert!(warm[..11].iter().all(|w| !w), "{warm:?}");
    // Then an instance is ready before each request, started ahead of it.
    assert!(warm[12..].iter().all(|w| *w), "{warm:?}");
    let state = b.keep_alive.predictors.state("site").unwrap();
    assert!(state.window.contains("pre-warm"), "{}", state.window);
    assert!(state.pre_warm_starts >= 4, "{state:?}");
    // Between visits nothing runs: every instance was stopped after its visit.
    let launches = b
        .node
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Launch(_)))
        .count();
    let stops = b
        .node
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Stop(_)))
        .count();
    // One per visit, and the pre-warm ahead of the 17th (the last minute ran up to it).
    assert_eq!(launches, 17);
    assert!(stops >= 15, "{:?}", b.node.calls());
    let prewarms = b.events_of(EventKind::Start).await;
    assert!(
        prewarms
            .iter()
            .filter(|e| e.reason.contains("pre-warm"))
            .count()
            >= 4,
        "{prewarms:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_fixed_keep_alive_never_pre_warms() {
    let b = bed(site(serde_json::json!({"idle_timeout": "30s"}))).await;
    for _ in 0..14 {
        let arrival = Instant::now();
        assert!(!b.request().await, "cold every time");
        b.run_until(arrival + Duration::from_secs(60)).await;
    }
    assert!(b.keep_alive.predictors.state("site").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_is_made_after_the_first_start_and_decides_later_starts() {
    let b = bed(site(serde_json::json!({"idle_timeout": "30s"}))).await;
    b.run_checkpoints();
    // A slow-init app: restored 62 ms against 620 ms cold.
    *b.node.checkpoint.lock().unwrap() = Some((620.0, 62.0));
    b.request().await;
    assert_eq!(b.node.modes.lock().unwrap()[0], StartMode::Auto);
    tokio::time::advance(b.checkpoints.delay).await;
    b.settle().await;
    while b.events_of(EventKind::Checkpoint).await.is_empty() {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(*b.node.checkpoints_made.lock().unwrap(), 1);
    let made = b.events_of(EventKind::Checkpoint).await;
    assert!(made[0].reason.contains("restore is faster"), "{made:?}");
    let status = b.checkpoints.status(&b.app());
    assert_eq!(status["restores"], true, "{status}");
    // The next start may restore; no second checkpoint of the same version.
    b.run_until(Instant::now() + Duration::from_secs(60)).await;
    b.request().await;
    assert_eq!(b.node.modes.lock().unwrap().last(), Some(&StartMode::Auto));
    tokio::time::advance(b.checkpoints.delay * 2).await;
    b.settle().await;
    assert_eq!(*b.node.checkpoints_made.lock().unwrap(), 1);
    // restore: never — starts never restore.
    b.set(site(
        serde_json::json!({"idle_timeout": "30s", "restore": "never"}),
    ));
    b.run_until(Instant::now() + Duration::from_secs(60)).await;
    b.request().await;
    assert_eq!(
        b.node.modes.lock().unwrap().last(),
        Some(&StartMode::NoRestore)
    );
    let status = b.checkpoints.status(&b.app());
    assert_eq!(status["restores"], false, "{status}");
    assert!(
        status["reason"].as_str().unwrap().contains("never"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn where_a_cold_start_is_faster_auto_does_not_restore() {
    let b = bed(site(serde_json::json!({"idle_timeout": "30s"}))).await;
    b.run_checkpoints();
    // php -S: 13 ms cold against 16 ms restored.
    *b.node.checkpoint.lock().unwrap() = Some((13.0, 16.0));
    b.request().await;
    tokio::time::advance(b.checkpoints.delay).await;
    while b.events_of(EventKind::Checkpoint).await.is_empty() {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(1));
    }
    b.run_until(Instant::now() + Duration::from_secs(60)).await;
    b.request().await;
    assert_eq!(
        b.node.modes.lock().unwrap().last(),
        Some(&StartMode::NoRestore)
    );
    let status = b.checkpoints.status(&b.app());
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("a cold start is faster"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_criu_every_start_is_cold_and_one_event_says_so() {
    let b = bed(site(serde_json::json!({"idle_timeout": "30s"}))).await;
    b.run_checkpoints();
    // The fake node has no CRIU (no measurements set).
    for round in 0..3 {
        b.request().await;
        tokio::time::advance(b.checkpoints.delay).await;
        b.settle().await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        std::thread::sleep(Duration::from_millis(20));
        b.run_until(Instant::now() + Duration::from_secs(60)).await;
        if round == 0 {
            // A new version (a rollout) tries again, and fails again: still one event.
            let mut app = b.app();
            app.generation += 1;
            b.apps.insert(app);
        }
    }
    let failed = b.events_of(EventKind::CheckpointFailed).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].reason.contains("CRIU is not available"),
        "{failed:?}"
    );
    assert!(failed[0].reason.contains("hako criu install"), "{failed:?}");
    assert_eq!(
        *b.node.checkpoints_made.lock().unwrap(),
        2,
        "one try per version"
    );
    // Each version's first start could not know; after its failed checkpoint, starts do not
    // look for one.
    let modes = b.node.modes.lock().unwrap().clone();
    assert_eq!(
        modes,
        [StartMode::Auto, StartMode::Auto, StartMode::NoRestore]
    );
}

/// 1,000 stored apps that have nothing running beside `site`, each with its own uid.
fn crowd(b: &Bed, n: usize) {
    for i in 0..n {
        let mut app = b.app();
        app.spec.name = format!("other-{i}");
        app.spec.hosts = vec![format!("other-{i}.test")];
        app.uid = format!("{i:012x}");
        b.apps.insert(app);
    }
}

/// A tick copies and reads only the apps it may act on — those with instances or starts, a
/// minimum, or a predictor — not every stored app (with 10,000 apps, copying all of them on
/// every instance change was most of the daemon's time).
#[tokio::test(start_paused = true)]
async fn a_tick_looks_only_at_apps_with_something_to_decide() {
    let b = bed(site(serde_json::json!({"idle_timeout": "60s"}))).await;
    crowd(&b, 1000);
    let copies = |b: &Bed| b.apps.copies();
    let before = copies(&b);
    assert_eq!(b.keep_alive.tick(Instant::now()), None);
    assert_eq!(copies(&b) - before, 0, "nothing runs: no app to look at");

    b.lifecycle.start(&b.app(), Cause::Request).await.unwrap();
    let before = copies(&b);
    assert!(b.keep_alive.tick(Instant::now()).is_some());
    assert_eq!(copies(&b) - before, 1, "only the app with an instance");

    // An app with a minimum is looked at (and started) without any instance.
    let mut min = b.apps.get("other-7").unwrap();
    min.spec.min = 1;
    b.apps.insert(min);
    let before = copies(&b);
    b.keep_alive.tick(Instant::now());
    b.settle().await;
    assert_eq!(copies(&b) - before, 2);
    let other = b.apps.get("other-7").unwrap();
    assert_eq!(b.lifecycle.tracked(&other).len(), 1, "its minimum started");
}
