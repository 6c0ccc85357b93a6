//! The keep-alive loop's timing on tokio's paused clock: a node that runs nothing (its
//! instances are records), the real lifecycle, router and (in-memory) store. Time moves only
//! when the test says so, so each decision is checked at its exact moment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hako_agent::LaunchError;
use hako_model::{App, AppSpec, InstanceInfo, InstanceState};
use hako_proxy::{LogEvents, NoLauncher, Router};
use hako_store::{EmbeddedStore, Store};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::KeepAliveLoop;
use crate::apps::Apps;
use crate::event_log::EventLog;
use crate::lifecycle::Lifecycle;
use crate::node::{Created, Node};

/// What the fake node was asked, in order.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Launch(String),
    Stop(String),
}

#[derive(Default)]
struct FakeNode {
    calls: Mutex<Vec<Call>>,
}

impl FakeNode {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Node for FakeNode {
    async fn launch(&self, app: &App, created: Created) -> Result<InstanceInfo, LaunchError> {
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
            limits: None,
        };
        created(&info);
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
}

struct Bed {
    node: Arc<FakeNode>,
    apps: Arc<Apps>,
    lifecycle: Arc<Lifecycle>,
    keep_alive: KeepAliveLoop,
}

async fn bed(app: serde_json::Value) -> Bed {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
    let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
    let apps = Arc::new(Apps::default());
    let node = Arc::new(FakeNode::default());
    let wake = Arc::new(Notify::new());
    let lifecycle = Arc::new(Lifecycle::new(
        node.clone(),
        router.clone(),
        store.clone(),
        Arc::new(EventLog::new(store)),
        apps.clone(),
        Duration::from_secs(1),
        wake.clone(),
    ));
    let bed = Bed {
        node,
        apps: apps.clone(),
        lifecycle: lifecycle.clone(),
        keep_alive: KeepAliveLoop {
            apps,
            lifecycle,
            router: router.clone(),
            wake,
            epoch: Instant::now(),
        },
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
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
        };
        self.keep_alive
            .router
            .set_app(crate::reconcile::route(&app))
            .unwrap();
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
