//! The test bed of the daemon's loops on tokio's paused clock: a node that runs nothing (its
//! instances are records), the real lifecycle, router and (in-memory) store, and the local
//! [`Traffic`] with load a test sets laid over what the router counts. Time moves only when the
//! test says so, so each decision is checked at its exact moment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use hako_agent::{
    CheckpointError, CheckpointInfo, CommandRun, LaunchError, ResizeError, Resized, StartMode,
};
use hako_model::{App, AppSpec, InstanceInfo, InstanceLimits, InstanceState};
use hako_policy::wake::RequestClass;
use hako_proxy::{LogEvents, NoLauncher, Router};
use hako_store::{EmbeddedStore, Store};
use std::net::SocketAddr;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::apps::Apps;
use crate::checkpoint::Checkpointer;
use crate::event_log::EventLog;
use crate::keepalive::KeepAliveLoop;
use crate::lifecycle::Lifecycle;
use crate::node::{Created, Node};
use crate::predict::Predictors;
use crate::traffic::{Activity, LocalTraffic, Traffic};

/// What the fake node was asked, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    Launch(String),
    Stop(String),
    Resize(String),
    Command(String),
}

#[derive(Default)]
pub(crate) struct FakeNode {
    calls: Mutex<Vec<Call>>,
    /// The start mode of each launch, in order.
    pub(crate) modes: Mutex<Vec<StartMode>>,
    /// What a checkpoint answers: measurements (cold, restore ms), or CRIU missing.
    pub(crate) checkpoint: Mutex<Option<(f64, f64)>>,
    pub(crate) checkpoints_made: Mutex<u32>,
    /// How long a launch takes after its container exists (tokio's clock).
    pub(crate) delay: Mutex<Duration>,
    /// Memory in use per instance (a resize below it keeps the old memory limit).
    pub(crate) using: Mutex<HashMap<String, u64>>,
}

impl FakeNode {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub(crate) fn launches(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Launch(_)))
            .count()
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
            listen_ms: None,
            release: app.release,
            image: "base:1".into(),
            generation: app.generation,
            from_pool: false,
            start_path: hako_model::StartPath::Cold,
            restore_error: None,
            slot: None,
            limits: Some(app.limits()),
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

    async fn resize(&self, id: &str, limits: InstanceLimits) -> Result<Resized, ResizeError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Resize(id.to_string()));
        match self.using.lock().unwrap().get(id) {
            Some(&using) if using > limits.memory.0 => Ok(Resized::MemoryKept {
                limits: InstanceLimits {
                    memory: hako_model::ByteSize(256 << 20),
                    ..limits
                },
                using: Some(using),
            }),
            _ => Ok(Resized::Applied(limits)),
        }
    }

    async fn run_command(
        &self,
        app: &App,
        command: &str,
        _timeout: Duration,
    ) -> Result<CommandRun, LaunchError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Command(format!("{}: {command}", app.spec.name)));
        Ok(CommandRun {
            id: format!("{}-cmd", app.spec.name),
            status: hako_runtime::ExitStatus::Exited(0),
            took: Duration::from_millis(10),
            timed_out: false,
            log_tail: String::new(),
        })
    }
}

/// Load a test sets on one instance.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Busy {
    pub(crate) in_flight: usize,
    pub(crate) upgraded: usize,
    /// A visitor's request last started or ended.
    pub(crate) visitor: Option<Instant>,
    /// Quiet work (a scheduled run, an ignored client) last started or ended.
    pub(crate) quiet: Option<Instant>,
    /// Who sent its first request.
    pub(crate) first: Option<RequestClass>,
}

/// The daemon's own traffic (its router), with the load a test set laid over what the router
/// counts.
pub(crate) struct FakeLoad {
    local: LocalTraffic,
    busy: Mutex<HashMap<String, Busy>>,
    waiting: Mutex<usize>,
}

impl FakeLoad {
    pub(crate) fn set(&self, id: &str, busy: Busy) {
        self.busy.lock().unwrap().insert(id.to_string(), busy);
    }

    /// `n` requests in flight on each of `ids`, all visitors, active now.
    pub(crate) fn spread(&self, ids: &[String], n: usize) {
        for id in ids {
            self.set(
                id,
                Busy {
                    in_flight: n,
                    visitor: Some(Instant::now()),
                    first: Some(RequestClass::Visitor),
                    ..Busy::default()
                },
            );
        }
    }

    /// Nothing in flight on `id` any more (its last activity stays when it was).
    pub(crate) fn set_idle(&self, id: &str) {
        if let Some(b) = self.busy.lock().unwrap().get_mut(id) {
            b.in_flight = 0;
            b.upgraded = 0;
        }
    }

    pub(crate) fn set_waiting(&self, n: usize) {
        *self.waiting.lock().unwrap() = n;
    }
}

#[async_trait]
impl Traffic for FakeLoad {
    async fn route(&self, info: &InstanceInfo, addr: SocketAddr) {
        self.local.route(info, addr).await;
    }

    async fn drain(&self, info: &InstanceInfo, timeout: Duration) {
        self.local.drain(info, timeout).await;
    }

    async fn unroute(&self, app: &str, id: &str) {
        self.local.unroute(app, id).await;
    }

    fn remove_app(&self, app: &str, ids: &[String], timeout: Duration) -> BoxFuture<'static, ()> {
        self.local.remove_app(app, ids, timeout)
    }

    fn activity(&self, app: &str) -> HashMap<String, Activity> {
        let busy = self.busy.lock().unwrap();
        let mut seen = self.local.activity(app);
        for (id, a) in seen.iter_mut() {
            if let Some(b) = busy.get(id) {
                a.in_flight = b.in_flight as u32;
                a.upgraded = b.upgraded as u32;
                a.first_request = b.first;
                a.last_visitor = b.visitor;
                a.last_quiet = b.quiet;
                if let Some(at) = b.visitor.max(b.quiet) {
                    a.last_active = at;
                }
            }
        }
        seen
    }

    fn waiting(&self, _app: &str) -> usize {
        *self.waiting.lock().unwrap()
    }

    fn idle_periods(&self, app: &str) -> hako_proxy::metrics::IdleSince {
        self.local.idle_periods(app)
    }
}

pub(crate) struct Bed {
    pub(crate) node: Arc<FakeNode>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) router: Router,
    pub(crate) load: Arc<FakeLoad>,
    pub(crate) events: Arc<EventLog>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keep_alive: KeepAliveLoop,
    pub(crate) checkpoints: Arc<Checkpointer>,
    /// The checkpoint worker's queue, until a test runs the worker
    /// ([`Bed::run_checkpoints`]): its timer would move the paused clock of the others.
    queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<App>>>,
}

pub(crate) async fn bed(app: serde_json::Value) -> Bed {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
    let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
    let apps = Arc::new(Apps::default());
    let node = Arc::new(FakeNode::default());
    let wake = Arc::new(Notify::new());
    let events = Arc::new(EventLog::new(store.clone()));
    let (checkpoints, queue) = Checkpointer::new(node.clone(), events.clone(), apps.clone());
    let load = Arc::new(FakeLoad {
        local: LocalTraffic {
            router: router.clone(),
            store: store.clone(),
        },
        busy: Mutex::default(),
        waiting: Mutex::default(),
    });
    let lifecycle = Arc::new(Lifecycle::new(
        node.clone(),
        load.clone(),
        router.clone(),
        store.clone(),
        events.clone(),
        apps.clone(),
        Duration::from_secs(1),
        wake.clone(),
        checkpoints.clone(),
    ));
    let bed = Bed {
        node,
        apps: apps.clone(),
        lifecycle: lifecycle.clone(),
        router: router.clone(),
        load: load.clone(),
        events,
        store,
        keep_alive: KeepAliveLoop {
            apps,
            lifecycle,
            traffic: load,
            wake,
            epoch: Instant::now(),
            predictors: Arc::new(Predictors::default()),
        },
        checkpoints,
        queue: Mutex::new(Some(queue)),
    };
    bed.set(app);
    bed
}

impl Bed {
    /// Starts the checkpoint worker, as the daemon does.
    pub(crate) fn run_checkpoints(&self) {
        let queue = self.queue.lock().unwrap().take().expect("once");
        tokio::spawn(self.checkpoints.clone().run(queue));
    }

    /// Makes `app` current (routed), as the store watch would.
    pub(crate) fn set(&self, app: serde_json::Value) {
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

    pub(crate) fn app(&self) -> App {
        self.apps.get("site").unwrap()
    }

    /// Lets the spawned starts and stops run until no instance is starting or draining and
    /// no start is under way. The clock stays put: this yields, and between yields waits a
    /// moment of real time for the store's thread.
    pub(crate) async fn settle(&self) {
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
    pub(crate) fn states(&self) -> Vec<(String, InstanceState)> {
        self.lifecycle
            .tracked(&self.app())
            .into_iter()
            .map(|(id, t)| (id, t.info.state))
            .collect()
    }

    /// Ids of the app's ready instances.
    pub(crate) fn ready_ids(&self) -> Vec<String> {
        self.states()
            .into_iter()
            .filter(|(_, s)| *s == InstanceState::Ready)
            .map(|(id, _)| id)
            .collect()
    }

    /// The app's events so far.
    pub(crate) async fn events(&self) -> Vec<hako_model::Event> {
        use hako_store::StoreExt;
        self.store
            .range_json::<hako_model::Event>(&hako_store::keys::events("site"))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}

/// The app `site` with these settings over its required ones.
pub(crate) fn site(extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": "site", "hosts": ["site.example"], "image": "base", "cmd": "serve",
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}
