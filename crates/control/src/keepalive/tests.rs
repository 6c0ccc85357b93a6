//! The keep-alive loop's timing on tokio's paused clock: a node that runs nothing (its
//! instances are records), the real lifecycle, router and (in-memory) store. Time moves only
//! when the test says so, so each decision is checked at its exact moment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hako_agent::{CheckpointError, CheckpointInfo, LaunchError, StartMode};
use hako_model::{App, AppSpec, EventKind, InstanceInfo, InstanceState};
use hako_proxy::{LogEvents, NoLauncher, Router};
use hako_store::{EmbeddedStore, Store};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::KeepAliveLoop;
use crate::apps::Apps;
use crate::checkpoint::Checkpointer;
use crate::event_log::EventLog;
use crate::lifecycle::{Cause, Lifecycle};
use crate::node::{Created, Node};
use crate::predict::Predictors;

/// What the fake node was asked, in order.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Launch(String),
    Stop(String),
}

#[derive(Default)]
struct FakeNode {
    calls: Mutex<Vec<Call>>,
    /// The start mode of each launch, in order.
    modes: Mutex<Vec<StartMode>>,
    /// What a checkpoint answers: measurements (cold, restore ms), or CRIU missing.
    checkpoint: Mutex<Option<(f64, f64)>>,
    checkpoints_made: Mutex<u32>,
    /// How long a launch takes after its container exists (tokio's clock).
    delay: Mutex<Duration>,
}

impl FakeNode {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Node for FakeNode {
    async fn launch(
        &self,
        app: &App,
        mode: StartMode,
        created: Created,
    ) -> Result<InstanceInfo, LaunchError> {
        self.modes.lock().unwrap().push(mode);
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.len();
            calls.push(Call::Launch(format!("{}-{n}", app.spec.name)));
            n
        };
        let mut info = InstanceInfo {
            id: format!("{}-{n}", app.spec.name),
            app: app.spec.name.clone(),
            node: "fake".into(),
            addr: format!("127.0.0.1:{}", 20000 + n),
            state: InstanceState::Starting,
            started_unix_ms: 0,
            ready_ms: None,
            release: app.release,
            image: "base:1".into(),
            generation: app.generation,
            from_pool: false,
            start_path: hako_model::StartPath::Cold,
            restore_error: None,
            slot: None,
        };
        created(&info);
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        info.state = InstanceState::Ready;
        info.ready_ms = Some(0.0);
        Ok(info)
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Option<String> {
        self.calls.lock().unwrap().push(Call::Stop(id.to_string()));
        Some("stopped".into())
    }

    fn prepare(&self, _app: &App) {}

    async fn forget(&self, _storage_key: &str) {}

    async fn shutdown(&self, _grace: Duration) {}

    async fn checkpoint(&self, app: &App) -> Result<CheckpointInfo, CheckpointError> {
        *self.checkpoints_made.lock().unwrap() += 1;
        let Some((cold, restore)) = *self.checkpoint.lock().unwrap() else {
            return Err(CheckpointError::Criu(
                "CRIU is not installed in /nowhere/criu".into(),
            ));
        };
        Ok(CheckpointInfo {
            app: app.spec.name.clone(),
            key: app.version_key(),
            release: app.release,
            image: "base:1".into(),
            created_unix: 0,
            bytes: 3 << 20,
            cold_ready_ms: cold,
            dump_ms: 20.0,
            restore_ready_ms: restore,
            cold_first_ms: None,
            restore_first_ms: None,
        })
    }
}

struct Bed {
    node: Arc<FakeNode>,
    router: Router,
    apps: Arc<Apps>,
    lifecycle: Arc<Lifecycle>,
    keep_alive: KeepAliveLoop,
    checkpoints: Arc<Checkpointer>,
    /// The checkpoint worker's queue, until a test runs the worker
    /// ([`Bed::run_checkpoints`]): its timer would move the paused clock of the others.
    queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<App>>>,
    store: Arc<dyn Store>,
}

async fn bed(app: serde_json::Value) -> Bed {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
    let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
    let apps = Arc::new(Apps::default());
    let node = Arc::new(FakeNode::default());
    let wake = Arc::new(Notify::new());
    let events = Arc::new(EventLog::new(store.clone()));
    let (checkpoints, queue) = Checkpointer::new(node.clone(), events.clone(), apps.clone());
    let traffic: Arc<dyn crate::traffic::Traffic> = Arc::new(crate::traffic::LocalTraffic {
        router: router.clone(),
        store: store.clone(),
    });
    let lifecycle = Arc::new(Lifecycle::new(
        node.clone(),
        traffic.clone(),
        router.clone(),
        store.clone(),
        events,
        apps.clone(),
        Duration::from_secs(1),
        wake.clone(),
        checkpoints.clone(),
    ));
    let bed = Bed {
        node,
        router: router.clone(),
        apps: apps.clone(),
        lifecycle: lifecycle.clone(),
        keep_alive: KeepAliveLoop {
            apps,
            lifecycle,
            traffic,
            wake,
            epoch: Instant::now(),
            predictors: Arc::new(Predictors::default()),
        },
        checkpoints,
        queue: Mutex::new(Some(queue)),
        store,
    };
    bed.set(app);
    bed
}

impl Bed {
    /// Makes `app` current (routed), as the store watch would.
    fn set(&self, app: serde_json::Value) {
        let mut spec: AppSpec = serde_json::from_value(app).unwrap();
        spec.validate().unwrap();
        let app = App {
            spec,
            uid: "0123456789ab".into(),
            release: Some(1),
            release_digest: None,
            image_record: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        };
        self.router.set_app(crate::reconcile::route(&app)).unwrap();
        self.apps.insert(app);
    }

    fn app(&self) -> App {
        self.apps.get("site").unwrap()
    }

    /// Lets the spawned starts and stops run until no instance is starting or draining and
    /// no start is under way. The clock stays put: this yields, and between yields waits a
    /// moment of real time for the store's thread.
    async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            let busy = self.lifecycle.launching(&self.app()) > 0
                || self
                    .lifecycle
                    .tracked(&self.app())
                    .iter()
                    .any(|(_, t)| t.info.state != InstanceState::Ready || t.replacing);
            if !busy {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never settled");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// (id, state) of the app's instances.
    fn states(&self) -> Vec<(String, InstanceState)> {
        self.lifecycle
            .tracked(&self.app())
            .into_iter()
            .map(|(id, t)| (id, t.info.state))
            .collect()
    }
}

fn site(extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": "site", "hosts": ["site.example"], "image": "base", "cmd": "serve",
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

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

impl Bed {
    /// Starts the checkpoint worker, as the daemon does.
    fn run_checkpoints(&self) {
        let queue = self.queue.lock().unwrap().take().expect("once");
        tokio::spawn(self.checkpoints.clone().run(queue));
    }

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

    async fn events(&self, kind: EventKind) -> Vec<hako_model::Event> {
        use hako_store::StoreExt;
        self.store
            .range_json::<hako_model::Event>(&hako_store::keys::events("site"))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.kind == kind)
            .collect()
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
    let prewarms = b.events(EventKind::Start).await;
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
    while b.events(EventKind::Checkpoint).await.is_empty() {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(*b.node.checkpoints_made.lock().unwrap(), 1);
    let made = b.events(EventKind::Checkpoint).await;
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
    while b.events(EventKind::Checkpoint).await.is_empty() {
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
    let failed = b.events(EventKind::CheckpointFailed).await;
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
