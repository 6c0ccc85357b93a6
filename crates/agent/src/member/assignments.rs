//! The node runs what the leader assigns it: each `/assign/<node>/<slot>` becomes an instance
//! (started exactly as on one host), reported in `/instances/<app>/<id>` on the node's lease —
//! `starting` once its container exists, `ready` once it listens and is healthy, `draining`
//! when the leader says so — and stopped when its assignment goes. A start that fails, and an
//! instance that ends on its own, are written back into the assignment for the leader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hako_model::{Assignment, AssignmentOutcome, AssignmentPhase, InstanceInfo, InstanceState};
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use tokio::sync::{mpsc, oneshot};

use super::{MemberConfig, Registration};
use crate::{Agent, Exit, StartMode};

/// How long a start may take before its instance is reported `starting` (see
/// [`Runner::start`]).
const STARTING_REPORT_AFTER: Duration = Duration::from_millis(50);

/// One assignment this node runs.
#[derive(Debug)]
struct Running {
    /// The instance, once its container exists.
    instance: Option<InstanceInfo>,
    /// The assignment went while the instance was starting: stop it once it is made.
    gone: bool,
}

/// The assignments of this node and their instances.
pub(crate) struct Runner {
    agent: Arc<Agent>,
    store: Arc<dyn Store>,
    registration: Arc<Registration>,
    node: String,
    grace: Duration,
    running: Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("node", &self.node).finish()
    }
}

impl Runner {
    pub(super) fn new(
        agent: Arc<Agent>,
        store: Arc<dyn Store>,
        registration: Arc<Registration>,
        config: &MemberConfig,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            agent,
            store,
            registration,
            node: config.node.clone(),
            grace: config.stop_grace,
            running: Mutex::new(HashMap::new()),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().expect("running lock")
    }

    /// Follows this node's assignments until the task is dropped; a lost watch is taken up
    /// again from a fresh listing.
    pub(super) async fn follow_assignments(self: Arc<Self>) {
        loop {
            if let Err(e) = self.follow_once().await {
                tracing::warn!(node = %self.node, error = %e, "lost the watch of this node's assignments; following again");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_once(self: &Arc<Self>) -> Result<(), StoreError> {
        let prefix = keys::assignments(&self.node);
        let listing = self.store.list(&prefix).await?;
        let mut listed = Vec::new();
        for kv in &listing.kvs {
            if let Ok(a) = hako_store::decode::<Assignment>(&kv.key, &kv.value) {
                listed.push(a.slot.clone());
                self.assigned(a);
            }
        }
        // Slots we run that the listing no longer has went while we were not watching.
        let vanished: Vec<String> = self
            .running()
            .keys()
            .filter(|s| !listed.contains(s))
            .cloned()
            .collect();
        for slot in vanished {
            self.unassigned(&slot).await;
        }
        let mut watch = self
            .store
            .watch(&prefix, Some(listing.revision + 1))
            .await?;
        while let Some(batch) = watch.recv().await {
            for ev in batch?.events {
                match ev {
                    WatchEvent::Put(kv) => {
                        match hako_store::decode::<Assignment>(&kv.key, &kv.value) {
                            Ok(a) => self.assigned(a),
                            Err(e) => {
                                tracing::warn!(key = %kv.key, error = %e, "unreadable assignment")
                            }
                        }
                    }
                    WatchEvent::Delete { key, .. } => {
                        if let Some(Key::Assignment { slot, .. }) = keys::parse(&key) {
                            self.unassigned(slot).await;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A new or changed assignment.
    fn assigned(self: &Arc<Self>, a: Assignment) {
        if a.outcome.is_some() {
            return; // it ended; the leader removes it
        }
        let mut running = self.running();
        if let Some(r) = running.get(&a.slot) {
            if a.phase == AssignmentPhase::Drain
                && let Some(info) = r.instance.clone()
                && info.state == InstanceState::Ready
            {
                drop(running);
                let this = self.clone();
                tokio::spawn(async move { this.report(&info, InstanceState::Draining).await });
            }
            return;
        }
        running.insert(
            a.slot.clone(),
            Running {
                instance: None,
                gone: false,
            },
        );
        drop(running);
        let this = self.clone();
        tokio::spawn(async move { this.start(a).await });
    }

    /// Starts the assigned instance and reports it as it goes.
    async fn start(self: Arc<Self>, a: Assignment) {
        let (created_tx, created_rx) = oneshot::channel::<InstanceInfo>();
        let launch = {
            let agent = self.agent.clone();
            let app = a.app.clone();
            async move {
                agent
                    .launch_observed(&app, StartMode::of(&app), move |info| {
                        let _ = created_tx.send(info.clone());
                    })
                    .await
            }
        };
        tokio::pin!(launch);
        let mut created_rx = Some(created_rx);
        // A start that is ready within STARTING_REPORT_AFTER is reported once, ready (one
        // etcd write less on a cold start's path); a slower one is reported starting first.
        let mut starting: Option<InstanceInfo> = None;
        let report_starting = tokio::time::sleep(STARTING_REPORT_AFTER);
        tokio::pin!(report_starting);
        let result = loop {
            tokio::select! {
                created = async { created_rx.as_mut().expect("polled once").await }, if created_rx.is_some() => {
                    created_rx = None;
                    if let Ok(mut info) = created {
                        info.slot = Some(a.slot.clone());
                        if let Some(r) = self.running().get_mut(&a.slot) {
                            r.instance = Some(info.clone());
                        }
                        report_starting
                            .as_mut()
                            .reset(tokio::time::Instant::now() + STARTING_REPORT_AFTER);
                        starting = Some(info);
                    }
                }
                _ = &mut report_starting, if starting.is_some() => {
                    let info = starting.take().expect("checked");
                    self.report(&info, InstanceState::Starting).await;
                }
                result = &mut launch => break result,
            }
        };
        match result {
            Ok(mut info) => {
                info.slot = Some(a.slot.clone());
                let gone = {
                    let mut running = self.running();
                    match running.get_mut(&a.slot) {
                        Some(r) if !r.gone => {
                            r.instance = Some(info.clone());
                            false
                        }
                        _ => {
                            running.remove(&a.slot);
                            true
                        }
                    }
                };
                if gone {
                    let _ = self.agent.stop(&info.id, Duration::ZERO).await;
                    self.forget(&info).await;
                } else {
                    self.report(&info, InstanceState::Ready).await;
                }
            }
            Err(e) => {
                let started = self.running().remove(&a.slot).and_then(|r| r.instance);
                if let Some(info) = started {
                    self.forget(&info).await;
                }
                self.write_outcome(
                    &a.slot,
                    AssignmentOutcome::Failed {
                        failure: e.kind,
                        reason: e.reason,
                        log_tail: e.log_tail,
                    },
                )
                .await;
            }
        }
    }

    /// The assignment went: its instance stops (or will, once made).
    async fn unassigned(&self, slot: &str) {
        let instance = {
            let mut running = self.running();
            match running.get_mut(slot) {
                None => return,
                Some(r)
                    if r.instance
                        .as_ref()
                        .is_none_or(|i| i.state == InstanceState::Starting) =>
                {
                    r.gone = true; // still starting: its start stops it
                    return;
                }
                Some(_) => running.remove(slot).and_then(|r| r.instance),
            }
        };
        if let Some(info) = instance {
            let _ = self.agent.stop(&info.id, self.grace).await;
            self.forget(&info).await;
        }
    }

    /// Instances that ended on their own: their record goes, their assignment says why.
    pub(super) async fn follow_exits(self: Arc<Self>, mut exits: mpsc::UnboundedReceiver<Exit>) {
        while let Some(exit) = exits.recv().await {
            let found = {
                let mut running = self.running();
                let slot = running
                    .iter()
                    .find(|(_, r)| r.instance.as_ref().is_some_and(|i| i.id == exit.instance))
                    .map(|(s, _)| s.clone());
                slot.and_then(|s| running.remove(&s).map(|r| (s, r)))
            };
            let Some((slot, r)) = found else { continue };
            if let Some(info) = &r.instance {
                self.forget(info).await;
            }
            self.write_outcome(
                &slot,
                AssignmentOutcome::Exited {
                    status: exit.status.to_string(),
                    log_tail: exit.log_tail,
                },
            )
            .await;
        }
    }

    /// Stops every instance and drops every record (the node leaves, or was fenced).
    pub(crate) async fn stop_everything(&self) {
        let all: Vec<Running> = self.running().drain().map(|(_, r)| r).collect();
        self.agent.stop_all(self.grace).await;
        for r in all {
            if let Some(info) = r.instance {
                self.forget(&info).await;
            }
        }
    }

    /// Writes the instance's record in `state`, on the node's lease.
    async fn report(&self, info: &InstanceInfo, state: InstanceState) {
        let mut info = info.clone();
        info.state = state;
        if let Some(slot) = &info.slot
            && let Some(r) = self.running().get_mut(slot)
        {
            r.instance = Some(info.clone());
        }
        let key = keys::instance(&info.app, &info.id);
        if let Err(e) = self
            .store
            .put_json_with_lease(&key, &info, self.registration.lease())
            .await
        {
            tracing::warn!(instance = %info.id, error = %e, "cannot report the instance");
        }
    }

    async fn forget(&self, info: &InstanceInfo) {
        let _ = self
            .store
            .delete(&keys::instance(&info.app, &info.id))
            .await;
    }

    /// Tells the leader how an assignment ended (if it still exists).
    async fn write_outcome(&self, slot: &str, outcome: AssignmentOutcome) {
        let key = keys::assignment(&self.node, slot);
        match self
            .store
            .update_json(&key, |a: &mut Assignment| a.outcome = Some(outcome.clone()))
            .await
        {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(slot, error = %e, "cannot write how an assignment ended"),
        }
    }
}
