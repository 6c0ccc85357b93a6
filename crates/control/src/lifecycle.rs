//! The one owner of an instance's life: start (launch, readiness, health check, routing),
//! replace (successor first), retire (drain, stop), and the end of an instance that exited on
//! its own. Every start path — a request's cold start, a minimum, a replacement — goes through
//! [`Lifecycle::start`], so each gets the same checks, records and events. Others (the proxy's
//! launcher, the keep-alive loop, the store watch, the API) ask; only this module changes an
//! instance's state, in its [`table`], in routing ([`crate::traffic`]) and in the store.

mod job;
mod resize;
mod table;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hako_agent::LaunchError;
use hako_model::{App, Event, EventKind, InstanceInfo, StartFailure, StopReason};
use hako_proxy::Router;
use hako_store::{Store, StoreExt, keys};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::apps::Apps;
use crate::checkpoint::Checkpointer;
use crate::event_log::EventLog;
use crate::node::{Ended, Node};
use crate::traffic::Traffic;

use table::Table;
pub(crate) use table::Tracked;

/// Longest a draining instance may keep its open requests before it is stopped anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest the requests of a deleted app may run on before its instances stop.
pub const DELETE_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an instance is started; its event says so.
#[derive(Debug, Clone)]
pub(crate) enum Cause {
    /// A request found no ready instance (the proxy's activator asked).
    Request,
    /// The keep-alive policy asked (a minimum), with its reason.
    Policy(String),
}

/// The instance lifecycle of this daemon.
pub(crate) struct Lifecycle {
    node: Arc<dyn Node>,
    traffic: Arc<dyn Traffic>,
    /// The daemon's own proxy's router: where start times and failures are measured.
    router: Router,
    store: Arc<dyn Store>,
    events: Arc<EventLog>,
    apps: Arc<Apps>,
    table: Mutex<Table>,
    stop_grace: Duration,
    /// Wakes the keep-alive loop: an instance started, became ready or ended.
    wake: Arc<Notify>,
    /// Which start path each start takes; told of every successful start.
    checkpoints: Arc<Checkpointer>,
    /// Bumped whenever an instance is created, becomes ready or goes: what a request waiting
    /// for a start already under way watches.
    changes: tokio::sync::watch::Sender<u64>,
    /// One live resize at a time (the API's and the store watch's ask for the same one).
    resizing: tokio::sync::Mutex<()>,
}

impl Lifecycle {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        node: Arc<dyn Node>,
        traffic: Arc<dyn Traffic>,
        router: Router,
        store: Arc<dyn Store>,
        events: Arc<EventLog>,
        apps: Arc<Apps>,
        stop_grace: Duration,
        wake: Arc<Notify>,
        checkpoints: Arc<Checkpointer>,
    ) -> Lifecycle {
        Lifecycle {
            node,
            traffic,
            router,
            store,
            events,
            apps,
            table: Mutex::new(Table::default()),
            stop_grace,
            wake,
            checkpoints,
            changes: tokio::sync::watch::Sender::new(0),
            resizing: tokio::sync::Mutex::new(()),
        }
    }

    /// Something changed in the table that a waiting request may care about.
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.wake.notify_one();
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().expect("instance table lock")
    }

    /// The instances of `app` (this very app, by its storage key), oldest first.
    pub(crate) fn tracked(&self, app: &App) -> Vec<(String, Tracked)> {
        self.table().of(&app.storage_key())
    }

    /// Instance records the table's per-app questions have read (see `lifecycle/table.rs`).
    #[cfg(test)]
    pub(crate) fn table_reads(&self) -> u64 {
        self.table().reads()
    }

    /// Storage keys of the apps with an instance or a start under way.
    pub(crate) fn busy(&self) -> std::collections::HashSet<String> {
        self.table().busy()
    }

    /// Starts asked for `app` whose containers do not exist yet.
    pub(crate) fn launching(&self, app: &App) -> u32 {
        self.table().launching(&app.storage_key())
    }

    /// `app` is current: its node prepares its starts (the warm pool).
    pub(crate) fn prepare(&self, app: &App) {
        self.node.prepare(app);
        // Checkpoints of other versions go; `restore: always` gets one of this version.
        self.checkpoints.app_changed(app);
    }

    /// Takes over instances that run already (a new leader of a cluster): each with the app it
    /// was started for. Draining ones finish draining; ones whose app is gone are retired.
    pub(crate) fn adopt(self: &Arc<Self>, running: Vec<(InstanceInfo, App)>) {
        let now = Instant::now();
        let now_ms = hako_model::now_unix_ms();
        let mut retire = Vec::new();
        {
            let mut table = self.table();
            for (info, app) in running {
                let age = Duration::from_millis(now_ms.saturating_sub(info.started_unix_ms));
                let draining = info.state == hako_model::InstanceState::Draining;
                if draining || !self.apps.is_current(&app) {
                    retire.push(info.id.clone());
                }
                table.created(Tracked {
                    key: app.storage_key(),
                    fingerprint: app.fingerprint(),
                    started: now.checked_sub(age).unwrap_or(now),
                    for_request: false,
                    ready: Some(now),
                    draining_since: None,
                    replacing: false,
                    resize_refused: None,
                    info,
                });
            }
        }
        for id in retire {
            self.retire_in_background(
                &id,
                StopReason::Policy,
                "taken over by a new leader: it was draining or its app is gone".into(),
                DRAIN_TIMEOUT,
            );
        }
        self.changed();
    }

    /// Instances for the API: every one, or one app's, with their state.
    pub(crate) fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        self.table().infos(app)
    }

    /// Starts an instance of `app` and returns once it is ready and routed: launched, its
    /// port accepting, its health path (if any) answering 2xx/3xx. Refused when the app
    /// already runs its maximum. Records the start or the failure as an event.
    ///
    /// A request's start joins a start already under way for the app (a minimum, a
    /// successor, another request's) instead of making a second instance, and takes a ready
    /// instance if one appeared meanwhile.
    pub(crate) async fn start(
        self: &Arc<Self>,
        app: &App,
        cause: Cause,
    ) -> Result<InstanceInfo, LaunchError> {
        let key = app.storage_key();
        /// What the table says to do now.
        enum Next {
            Take(Box<InstanceInfo>),
            Wait,
            Full,
            Launch,
        }
        loop {
            let mut changes = self.changes.subscribe();
            let next = {
                let mut table = self.table();
                let ready = matches!(cause, Cause::Request)
                    .then(|| table.ready_one(&key))
                    .flatten();
                if let Some(ready) = ready {
                    Next::Take(Box::new(ready))
                } else if matches!(cause, Cause::Request) && table.starting(&key) > 0 {
                    Next::Wait
                } else if table.live(&key) >= app.spec.max {
                    Next::Full
                } else {
                    table.begin_launch(&key);
                    Next::Launch
                }
            };
            match next {
                Next::Take(ready) => return Ok(*ready),
                // Wait for that start to end one way or the other, then look again.
                Next::Wait => {
                    let _ = changes.changed().await;
                }
                Next::Full => {
                    return Err(LaunchError::new(
                        StartFailure::Capacity,
                        format!(
                            "app {} already runs its maximum of {} instances",
                            app.spec.name, app.spec.max
                        ),
                    ));
                }
                Next::Launch => return self.run_start(app, cause).await,
            }
        }
    }

    /// Like [`Lifecycle::start`], in the background; counts as starting from now on (so the
    /// keep-alive loop does not ask twice). False if the app runs its maximum.
    pub(crate) fn start_in_background(self: &Arc<Self>, app: &App, cause: Cause) -> bool {
        let key = app.storage_key();
        {
            let mut table = self.table();
            if table.live(&key) >= app.spec.max {
                return false;
            }
            table.begin_launch(&key);
        }
        let (this, app) = (self.clone(), app.clone());
        tokio::spawn(async move {
            if this.run_start(&app, cause).await.is_err() {
                // Not again in a tight loop: the keep-alive loop looks again after a pause.
                tokio::time::sleep(Duration::from_secs(1)).await;
                this.wake.notify_one();
            }
        });
        true
    }

    /// Starts a successor of instance `old` of `app` and, once it is ready, drains `old`.
    /// `old` keeps serving until then; if the successor fails, it serves on. False if `old`
    /// is already draining or being replaced. `kind` is why `old` goes (for metrics).
    pub(crate) fn replace_in_background(
        self: &Arc<Self>,
        app: &App,
        old: &str,
        kind: StopReason,
        reason: String,
    ) -> bool {
        {
            let mut table = self.table();
            if !table.begin_replace(old, Instant::now()) {
                return false;
            }
            table.begin_launch(&app.storage_key());
        }
        let (this, app, old) = (self.clone(), app.clone(), old.to_string());
        tokio::spawn(async move {
            match this.run_start(&app, Cause::Policy(reason.clone())).await {
                Ok(new) => {
                    // Only a successor still taking requests relieves the old one (the
                    // autoscaler may have drained it meanwhile).
                    let handed_over = {
                        let mut table = this.table();
                        if table.is_live(&new.id) {
                            table.replaced(&old, Instant::now())
                        } else {
                            table.cancel_replace(&old);
                            false
                        }
                    };
                    if handed_over {
                        let why = format!("replaced by {}: {reason}", new.id);
                        this.finish_retire(&old, kind, why, false, DRAIN_TIMEOUT)
                            .await;
                    }
                }
                Err(_) => {
                    this.table().cancel_replace(&old);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    this.wake.notify_one();
                }
            }
        });
        true
    }

    /// The start itself; the caller counted it as launching.
    async fn run_start(
        self: &Arc<Self>,
        app: &App,
        cause: Cause,
    ) -> Result<InstanceInfo, LaunchError> {
        let key = app.storage_key();
        let asked = Instant::now();
        let created_id: Arc<Mutex<Option<String>>> = Arc::default();
        let created = {
            let (this, key, seen) = (self.clone(), key.clone(), created_id.clone());
            let fingerprint = app.fingerprint();
            let for_request = matches!(cause, Cause::Request);
            Box::new(move |info: &InstanceInfo| {
                *seen.lock().expect("created lock") = Some(info.id.clone());
                this.table().created(Tracked {
                    info: info.clone(),
                    key,
                    fingerprint,
                    started: asked,
                    for_request,
                    ready: None,
                    draining_since: None,
                    replacing: false,
                    resize_refused: None,
                });
                this.changed();
            })
        };
        let mode = self.checkpoints.mode_for(app);
        let launched = self.node.launch(app, mode, created).await;
        let id = created_id.lock().expect("created lock").take();
        let result = match launched {
            Ok(info) => self.make_ready(app, info).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(info) => {
                let took = asked.elapsed();
                let _ = self
                    .router
                    .record_start_path(&app.spec.name, info.start_path);
                if !matches!(cause, Cause::Request) {
                    // The activator measures the starts it asks for.
                    let _ = self.router.record_start(&app.spec.name, took);
                }
                let path = match info.start_path {
                    hako_model::StartPath::Pool => " from the warm pool",
                    hako_model::StartPath::Restore => " restored from a checkpoint",
                    hako_model::StartPath::Shared => " from the shared warm pool",
                    hako_model::StartPath::Cold => "",
                };
                let mut reason = match &cause {
                    Cause::Request => format!(
                        "cold start: a request found no ready instance; ready in {:.1} ms{path}{}",
                        took.as_secs_f64() * 1e3,
                        breakdown(&info, took)
                    ),
                    Cause::Policy(why) if path.is_empty() => why.clone(),
                    Cause::Policy(why) => format!("{why} ({})", path.trim_start()),
                };
                if let Some(e) = &info.restore_error {
                    reason += &format!("; its checkpoint did not restore ({e})");
                }
                self.checkpoints.after_start(app, &info);
                self.changed();
                self.events
                    .record(Event::new(&app.spec.name, EventKind::Start, reason).instance(&info.id))
                    .await;
                Ok(info)
            }
            Err(e) => {
                {
                    let mut table = self.table();
                    match &id {
                        Some(id) => {
                            table.remove(id);
                        }
                        None => table.end_launch(&key),
                    }
                }
                self.changed();
                if !matches!(cause, Cause::Request) {
                    let _ = self.router.record_start_failure(&app.spec.name, e.kind);
                }
                let reason = match &cause {
                    Cause::Request => format!("cold start failed ({}): {}", e.kind, e.reason),
                    Cause::Policy(why) => format!("{why}: start failed ({}): {}", e.kind, e.reason),
                };
                let mut event = Event::new(&app.spec.name, EventKind::StartFailed, reason)
                    .log_tail(e.log_tail.clone());
                if let Some(id) = &id {
                    event = event.instance(id);
                }
                self.events.record(event).await;
                self.wake.notify_one();
                Err(e)
            }
        }
    }

    /// A launched instance (ready: listening and healthy): routed and recorded. An app deleted
    /// or replaced meanwhile, or an instance that ended meanwhile, stop it here.
    async fn make_ready(
        self: &Arc<Self>,
        app: &App,
        info: InstanceInfo,
    ) -> Result<InstanceInfo, LaunchError> {
        let fail = |kind, reason: String| LaunchError::new(kind, reason);
        let addr: std::net::SocketAddr = match info.addr.parse() {
            Ok(a) => a,
            Err(_) => {
                self.discard(&info.id).await;
                return Err(fail(
                    StartFailure::Node,
                    format!("instance address {} is not valid", info.addr),
                ));
            }
        };
        if !self.apps.is_current(app) {
            self.discard(&info.id).await;
            return Err(fail(
                StartFailure::Gone,
                format!("app {} was deleted while it started", app.spec.name),
            ));
        }
        if !self.table().ready(&info.id, &info, Instant::now()) {
            // It exited meanwhile (its exit was recorded) or was retired.
            return Err(fail(
                StartFailure::Crashed,
                "the instance ended right after it listened".into(),
            ));
        }
        self.resize_if_behind(app, &info);
        let mut ready = info.clone();
        ready.state = hako_model::InstanceState::Ready;
        self.traffic.route(&ready, addr).await;
        Ok(ready)
    }

    /// Stops a launched instance that never became ready, and forgets it.
    async fn discard(&self, id: &str) {
        let _ = self.node.stop(id, Duration::ZERO).await;
        self.table().remove(id);
    }

    /// Retires an instance in the background: no new requests from now on, in-flight ones
    /// finish (at most `drain_timeout`), then it stops. False if it is unknown, already
    /// retiring, or being replaced. `kind` is why (for metrics), `reason` says it in words.
    pub(crate) fn retire_in_background(
        self: &Arc<Self>,
        id: &str,
        kind: StopReason,
        reason: String,
        drain_timeout: Duration,
    ) -> bool {
        if !self.table().begin_drain(id, Instant::now()) {
            return false;
        }
        let (this, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            this.finish_retire(&id, kind, reason, false, drain_timeout)
                .await
        });
        true
    }

    /// Drains (unless it `drained` already), stops, unroutes and forgets an instance marked
    /// draining, and records why.
    async fn finish_retire(
        &self,
        id: &str,
        kind: StopReason,
        reason: String,
        drained: bool,
        drain_timeout: Duration,
    ) {
        let Some(t) = self.table().get(id).cloned() else {
            return;
        };
        let app = t.info.app.clone();
        if !drained {
            self.traffic.drain(&t.info, drain_timeout).await;
        }
        let status = self.node.stop(id, self.stop_grace).await;
        let _ = self.router.record_stop(&app, kind);
        self.traffic.unroute(&app, id).await;
        self.table().remove(id);
        self.changed();
        let reason = match status {
            Some(s) => format!("{reason} ({s})"),
            None => reason,
        };
        self.events
            .record(Event::new(&app, EventKind::Stop, reason).instance(id))
            .await;
    }

    /// `app` was deleted: its hosts answer 404 from now on, its instances drain (at most
    /// [`DELETE_DRAIN_TIMEOUT`]) and stop in the background, then the node forgets its files.
    /// Never waits: another app, or a new app of the same name, is not held up.
    pub(crate) fn retire_app(self: &Arc<Self>, app: &App) {
        self.checkpoints.forget(&app.storage_key());
        let now = Instant::now();
        let ids: Vec<String> = {
            let mut table = self.table();
            let ids: Vec<String> = table
                .of(&app.storage_key())
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            for id in &ids {
                table.begin_drain(id, now);
            }
            ids
        };
        let drained = self
            .traffic
            .remove_app(&app.spec.name, &ids, DELETE_DRAIN_TIMEOUT);
        let (this, key) = (self.clone(), app.storage_key());
        tokio::spawn(async move {
            drained.await;
            let stops = ids.iter().map(|id| {
                this.finish_retire(
                    id,
                    StopReason::Deleted,
                    "the app was deleted".into(),
                    true,
                    Duration::ZERO,
                )
            });
            futures::future::join_all(stops).await;
            this.node.forget(&key).await;
        });
    }

    /// An instance ended without being asked to (its process exited, its node was lost).
    pub(crate) async fn exited(&self, exit: Ended) {
        let known = self.table().remove(&exit.instance).is_some();
        if known {
            let _ = self.router.record_stop(&exit.app, StopReason::Exited);
        }
        self.changed();
        self.traffic.unroute(&exit.app, &exit.instance).await;
        if known {
            self.events
                .record(
                    Event::new(&exit.app, EventKind::Exited, exit.why)
                        .instance(&exit.instance)
                        .log_tail(exit.log_tail),
                )
                .await;
        }
        self.wake.notify_one();
    }

    /// A request could not reach the instance: it leaves routing and stops.
    pub(crate) fn unreachable(self: &Arc<Self>, id: &str) {
        self.retire_in_background(
            id,
            StopReason::Unreachable,
            "unreachable".into(),
            Duration::ZERO,
        );
    }

    /// Instance records of a previous run (killed with -9) are stale: their containers died
    /// with it and the runtime removed what they left. Record that and drop the records.
    pub(crate) async fn forget_previous(&self) {
        let Ok(old) = self.store.range_json::<InstanceInfo>(keys::INSTANCES).await else {
            return;
        };
        for (_, i) in old {
            self.events
                .record(
                    Event::new(
                        &i.app,
                        EventKind::Stop,
                        "the previous hako process ended; its instance is gone",
                    )
                    .instance(&i.id),
                )
                .await;
        }
        let _ = self.store.delete_prefix(keys::INSTANCES).await;
    }

    /// Stops every instance (their grace period applies) and drops their records.
    pub(crate) async fn shutdown(&self) {
        let ids = self.table().ids();
        self.node.shutdown(self.stop_grace).await;
        for id in ids {
            let gone = self.table().remove(&id);
            if let Some(t) = gone {
                let _ = self.store.delete(&keys::instance(&t.info.app, &id)).await;
            }
        }
        if let Err(e) = self.store.delete_prefix(keys::INSTANCES).await {
            tracing::warn!(error = %e, "cannot clear instance records");
        }
    }
}

/// Where a start's time went, for its event: ` (container 0.4 ms, app listening 1.2 ms,
/// routing 0.1 ms)`; empty when the node did not say.
fn breakdown(info: &InstanceInfo, took: Duration) -> String {
    let (Some(ready), Some(listen)) = (info.ready_ms, info.listen_ms) else {
        return String::new();
    };
    let total = took.as_secs_f64() * 1e3;
    format!(
        " (container {:.1} ms, app listening {listen:.1} ms, routing {:.1} ms)",
        (ready - listen).max(0.0),
        (total - ready).max(0.0)
    )
}
