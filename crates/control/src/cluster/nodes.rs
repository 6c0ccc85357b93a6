//! The cluster as the lifecycle's [`Node`]: a start is an assignment to the node the
//! scheduler picks, answered by that node's agent through the instance's record; a stop is the
//! assignment withdrawn. It also follows the nodes (their records, the operator's states) and
//! the assignments, and turns what ends on the nodes — an instance that exited, a node whose
//! lease expired — into the same [`Exit`]s a local agent reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hako_agent::LaunchError;
use hako_model::{
    App, Assignment, AssignmentOutcome, AssignmentPhase, InstanceInfo, InstanceState, NodeRecord,
    NodeState, StartFailure, now_unix_ms,
};
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use tokio::sync::{Notify, mpsc};

use super::scheduler::{self, Candidate};
use crate::node::{Created, Ended, Node};

/// What the leader knows of the nodes and their assignments.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    pub records: HashMap<String, NodeRecord>,
    pub states: HashMap<String, NodeState>,
    /// By slot.
    pub assignments: HashMap<String, Assignment>,
}

impl Fleet {
    /// What the scheduler needs, for `app`.
    fn candidates(&self, app: &App) -> Vec<Candidate> {
        let key = app.storage_key();
        self.records
            .values()
            .map(|r| {
                let on: Vec<&Assignment> = self
                    .assignments
                    .values()
                    .filter(|a| a.node == r.name)
                    .collect();
                Candidate {
                    name: r.name.clone(),
                    capacity: r.capacity,
                    state: self.states.get(&r.name).copied().unwrap_or_default(),
                    memory_assigned: on.iter().map(|a| a.app.spec.memory.0).sum(),
                    of_app: on.iter().filter(|a| a.app.storage_key() == key).count() as u32,
                }
            })
            .collect()
    }
}

/// The nodes of the cluster, seen from the leader.
pub(crate) struct ClusterNodes {
    store: Arc<dyn Store>,
    fleet: Mutex<Fleet>,
    /// Instance id → (node, slot), for stops.
    placed: Mutex<HashMap<String, (String, String)>>,
    /// What ends on the nodes, for the lifecycle.
    exits: mpsc::UnboundedSender<Ended>,
    /// Wakes whoever waits for the fleet to change (node drains).
    pub(crate) changed: Notify,
    /// The revision the fleet was read at: following resumes just after it.
    loaded_at: std::sync::atomic::AtomicI64,
}

impl ClusterNodes {
    /// The nodes seen from `store`, with the channel on which what ends on them is reported.
    pub(crate) fn new(
        store: Arc<dyn Store>,
    ) -> (Arc<ClusterNodes>, mpsc::UnboundedReceiver<Ended>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let nodes = Arc::new(ClusterNodes {
            store,
            fleet: Mutex::new(Fleet::default()),
            placed: Mutex::new(HashMap::new()),
            exits: tx,
            changed: Notify::new(),
            loaded_at: std::sync::atomic::AtomicI64::new(0),
        });
        (nodes, rx)
    }

    fn fleet(&self) -> std::sync::MutexGuard<'_, Fleet> {
        self.fleet.lock().expect("fleet lock")
    }

    /// Reads the fleet (nodes, their states, the assignments) and remembers the revision it
    /// was read at.
    async fn load(&self) -> Result<(), StoreError> {
        let at = self.store.revision().await?;
        let records = self.store.range_json::<NodeRecord>(keys::NODES).await?;
        let states = self
            .store
            .range_json::<NodeState>(keys::NODE_STATES)
            .await?;
        let assignments = self
            .store
            .range_json::<Assignment>(keys::ASSIGNMENTS)
            .await?;
        let mut fleet = self.fleet();
        fleet.records = records
            .into_iter()
            .map(|(_, r)| (r.name.clone(), r))
            .collect();
        fleet.states = states
            .into_iter()
            .filter_map(|(k, s)| match keys::parse(&k) {
                Some(Key::NodeState { name }) => Some((name.to_string(), s)),
                _ => None,
            })
            .collect();
        fleet.assignments = assignments
            .into_iter()
            .map(|(_, a)| (a.slot.clone(), a))
            .collect();
        self.loaded_at
            .store(at, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// What a new leader takes over: the fleet, and every instance that runs with the app it
    /// was assigned for. Assignments without a running instance were being started (or had
    /// ended) under an earlier leader that is gone: they are withdrawn.
    pub(crate) async fn take_over(&self) -> Result<Vec<(InstanceInfo, App)>, StoreError> {
        self.load().await?;
        let instances = self
            .store
            .range_json::<InstanceInfo>(keys::INSTANCES)
            .await?;
        let mut adopted = Vec::new();
        let mut stale = Vec::new();
        {
            let fleet = self.fleet();
            let mut placed = self.placed.lock().expect("placed lock");
            for a in fleet.assignments.values() {
                let inst = instances
                    .iter()
                    .map(|(_, i)| i)
                    .find(|i| i.slot.as_deref() == Some(&a.slot));
                match inst {
                    Some(i) if a.outcome.is_none() && i.state != InstanceState::Starting => {
                        placed.insert(i.id.clone(), (a.node.clone(), a.slot.clone()));
                        adopted.push((i.clone(), a.app.clone()));
                    }
                    _ => stale.push((a.node.clone(), a.slot.clone())),
                }
            }
        }
        for (node, slot) in stale {
            let _ = self.store.delete(&keys::assignment(&node, &slot)).await;
        }
        Ok(adopted)
    }

    /// Follows nodes, their states and the assignments until the task is dropped. A node whose
    /// record goes (its lease expired) is lost: each of its instances is reported gone, and its
    /// assignments are withdrawn.
    pub(crate) async fn follow(self: Arc<Self>) {
        loop {
            if let Err(e) = self.follow_once().await {
                tracing::warn!(error = %e, "lost the watch of the cluster's nodes; following again");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_once(self: &Arc<Self>) -> Result<(), StoreError> {
        // The first time, from just after the fleet was read; after a lost watch, read again.
        let at = self.loaded_at.swap(0, std::sync::atomic::Ordering::SeqCst);
        let from = if at > 0 {
            at + 1
        } else {
            self.load().await?;
            self.loaded_at.swap(0, std::sync::atomic::Ordering::SeqCst) + 1
        };
        let mut nodes = self.store.watch(keys::NODES, Some(from)).await?;
        let mut states = self.store.watch(keys::NODE_STATES, Some(from)).await?;
        let mut assignments = self.store.watch(keys::ASSIGNMENTS, Some(from)).await?;
        loop {
            tokio::select! {
                b = nodes.recv() => {
                    let Some(b) = b else { return Ok(()) };
                    for ev in b?.events {
                        self.on_node(ev).await;
                    }
                }
                b = states.recv() => {
                    let Some(b) = b else { return Ok(()) };
                    for ev in b?.events {
                        let (name, state) = match &ev {
                            WatchEvent::Put(kv) => match (keys::parse(&kv.key), serde_json::from_slice::<NodeState>(&kv.value)) {
                                (Some(Key::NodeState { name }), Ok(s)) => (name.to_string(), Some(s)),
                                _ => continue,
                            },
                            WatchEvent::Delete { key, .. } => match keys::parse(key) {
                                Some(Key::NodeState { name }) => (name.to_string(), None),
                                _ => continue,
                            },
                        };
                        let mut fleet = self.fleet();
                        match state {
                            Some(s) => fleet.states.insert(name, s),
                            None => fleet.states.remove(&name),
                        };
                    }
                    self.changed.notify_waiters();
                }
                b = assignments.recv() => {
                    let Some(b) = b else { return Ok(()) };
                    for ev in b?.events {
                        self.on_assignment(ev).await;
                    }
                    self.changed.notify_waiters();
                }
            }
        }
    }

    async fn on_node(&self, ev: WatchEvent) {
        match ev {
            WatchEvent::Put(kv) => {
                if let Ok(r) = serde_json::from_slice::<NodeRecord>(&kv.value) {
                    self.fleet().records.insert(r.name.clone(), r);
                }
            }
            WatchEvent::Delete { key, .. } => {
                let Some(Key::Node { name }) = keys::parse(&key) else {
                    return;
                };
                let lost: Vec<Assignment> = {
                    let mut fleet = self.fleet();
                    fleet.records.remove(name);
                    fleet
                        .assignments
                        .values()
                        .filter(|a| a.node == name)
                        .cloned()
                        .collect()
                };
                tracing::warn!(node = %name, instances = lost.len(), "a node was lost: its lease expired");
                for a in &lost {
                    if let Some(id) = self.id_of(&a.slot) {
                        let _ = self.exits.send(Ended {
                            app: a.app.spec.name.clone(),
                            instance: id,
                            why: format!("its node {name} was lost (its lease expired)"),
                            log_tail: String::new(),
                        });
                    }
                }
                let _ = self.store.delete_prefix(&keys::assignments(name)).await;
            }
        }
        self.changed.notify_waiters();
    }

    async fn on_assignment(&self, ev: WatchEvent) {
        match ev {
            WatchEvent::Put(kv) => {
                let Ok(a) = serde_json::from_slice::<Assignment>(&kv.value) else {
                    return;
                };
                if let Some(AssignmentOutcome::Exited { status, log_tail }) = &a.outcome
                    && let Some(id) = self.id_of(&a.slot)
                {
                    let _ = self.exits.send(Ended {
                        app: a.app.spec.name.clone(),
                        instance: id.clone(),
                        why: format!("the app {status} on its own (on node {})", a.node),
                        log_tail: log_tail.clone(),
                    });
                    self.placed.lock().expect("placed lock").remove(&id);
                    let _ = self.store.delete(&keys::assignment(&a.node, &a.slot)).await;
                }
                self.fleet().assignments.insert(a.slot.clone(), a);
            }
            WatchEvent::Delete { key, .. } => {
                if let Some(Key::Assignment { slot, .. }) = keys::parse(&key) {
                    self.fleet().assignments.remove(slot);
                }
            }
        }
    }

    fn id_of(&self, slot: &str) -> Option<String> {
        self.placed
            .lock()
            .expect("placed lock")
            .iter()
            .find(|(_, (_, s))| s == slot)
            .map(|(id, _)| id.clone())
    }

    /// The node and slot of an instance.
    pub(crate) fn placement(&self, id: &str) -> Option<(String, String)> {
        self.placed.lock().expect("placed lock").get(id).cloned()
    }

    /// Nodes and their states, for the API and the drains.
    pub(crate) fn snapshot(&self) -> (Vec<NodeRecord>, HashMap<String, NodeState>) {
        let fleet = self.fleet();
        (
            fleet.records.values().cloned().collect(),
            fleet.states.clone(),
        )
    }

    /// Marks the instance's assignment `phase` (every proxy follows the instance's record).
    pub(crate) async fn set_phase(&self, id: &str, phase: AssignmentPhase) -> bool {
        let Some((node, slot)) = self.placement(id) else {
            return false;
        };
        self.store
            .update_json(&keys::assignment(&node, &slot), |a: &mut Assignment| {
                a.phase = phase
            })
            .await
            .is_ok()
    }
}

fn failure(kind: StartFailure, reason: impl Into<String>) -> LaunchError {
    LaunchError::new(kind, reason)
}

#[async_trait]
impl Node for ClusterNodes {
    async fn resize(
        &self,
        id: &str,
        _limits: hako_model::InstanceLimits,
    ) -> Result<hako_agent::Resized, hako_agent::ResizeError> {
        // Not carried by assignments yet: a cluster's new limits reach new instances.
        Err(hako_agent::ResizeError::Failed {
            id: id.to_string(),
            reason: "live resize is not available in a cluster yet: the new limits apply to new instances (a rollout replaces the running ones)".into(),
        })
    }

    async fn run_command(
        &self,
        app: &App,
        _command: &str,
        _timeout: Duration,
    ) -> Result<hako_agent::CommandRun, LaunchError> {
        Err(failure(
            StartFailure::Node,
            format!(
                "schedule commands run on a single host only so far: {} runs in a cluster",
                app.spec.name
            ),
        ))
    }

    async fn launch(
        &self,
        app: &App,
        // A node's agent chooses the start path by the app's own setting (remote nodes make
        // no checkpoints yet, so there is nothing to restore).
        _mode: hako_agent::StartMode,
        created: Created,
    ) -> Result<InstanceInfo, LaunchError> {
        let node = {
            let fleet = self.fleet();
            scheduler::place(app, &fleet.candidates(app))
                .map_err(|e| failure(StartFailure::Capacity, e.to_string()))?
        };
        let slot = new_slot();
        let name = app.spec.name.clone();
        let store_err =
            |e: StoreError| failure(StartFailure::Node, format!("the cluster store failed: {e}"));
        let assignment_key = keys::assignment(&node, &slot);
        let instances_key = keys::instances(&name);
        // With the assignment, the record of the image version it runs and its layers'
        // digests: what the node verifies its copies against.
        let mut app = app.clone();
        app.image_record = super::images::record_for(self.store.as_ref(), &app)
            .await
            .map_err(store_err)?;
        let a = Assignment {
            slot: slot.clone(),
            node: node.clone(),
            app: app.clone(),
            phase: AssignmentPhase::Run,
            outcome: None,
            asked_unix_ms: now_unix_ms(),
        };
        self.fleet().assignments.insert(slot.clone(), a.clone());
        let written = self
            .store
            .create_json(&assignment_key, &a)
            .await
            .map_err(store_err)?;
        // Both watches from just after the assignment's revision: nothing the agent writes
        // in answer is missed, however soon it answers. (A watch made before the write, from
        // "now", could start after the write on the server and miss the first change.)
        let (instances, assignment) = tokio::join!(
            self.store.watch(&instances_key, Some(written + 1)),
            self.store.watch(&assignment_key, Some(written + 1)),
        );
        let (mut instances, mut assignment) = match (instances, assignment) {
            (Ok(i), Ok(a)) => (i, a),
            (Err(e), _) | (_, Err(e)) => {
                let _ = self.store.delete(&assignment_key).await;
                self.fleet().assignments.remove(&slot);
                return Err(store_err(e));
            }
        };
        let deadline =
            tokio::time::Instant::now() + app.spec.start_timeout.0 + Duration::from_secs(5);
        let mut created = Some(created);
        let withdraw = |why: LaunchError| {
            let (key, slot) = (assignment_key.clone(), slot.clone());
            async move {
                let _ = self.store.delete(&key).await;
                self.fleet().assignments.remove(&slot);
                Err(why)
            }
        };
        loop {
            tokio::select! {
                b = instances.recv() => {
                    let Some(Ok(b)) = b else {
                        return withdraw(failure(StartFailure::Node, "lost the watch of the instance's record")).await;
                    };
                    for ev in b.events {
                        let WatchEvent::Put(kv) = ev else { continue };
                        let Ok(info) = serde_json::from_slice::<InstanceInfo>(&kv.value) else { continue };
                        if info.slot.as_deref() != Some(slot.as_str()) {
                            continue;
                        }
                        self.placed.lock().expect("placed lock").insert(info.id.clone(), (node.clone(), slot.clone()));
                        if let Some(c) = created.take() {
                            c(&info);
                        }
                        if info.state == InstanceState::Ready {
                            return Ok(info);
                        }
                    }
                }
                b = assignment.recv() => {
                    let Some(Ok(b)) = b else {
                        return withdraw(failure(StartFailure::Node, "lost the watch of the assignment")).await;
                    };
                    for ev in b.events {
                        match ev {
                            WatchEvent::Put(kv) => {
                                let Ok(a) = serde_json::from_slice::<Assignment>(&kv.value) else { continue };
                                if let Some(AssignmentOutcome::Failed { failure: kind, reason, log_tail }) = a.outcome {
                                    let mut e = failure(kind, format!("on node {node}: {reason}"));
                                    e.log_tail = log_tail;
                                    return withdraw(e).await;
                                }
                            }
                            WatchEvent::Delete { .. } => {
                                return Err(failure(StartFailure::Node, format!("the start on node {node} was withdrawn (the node was lost or restarted)")));
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return withdraw(failure(StartFailure::NotListening, format!("node {node} did not report the instance ready within the start timeout"))).await;
                }
            }
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Option<String> {
        let (node, slot) = self.placed.lock().expect("placed lock").remove(id)?;
        let name = self
            .fleet()
            .assignments
            .get(&slot)
            .map(|a| a.app.spec.name.clone())?;
        let record = keys::instance(&name, id);
        let from = self.store.revision().await.ok()? + 1;
        let mut watch = self.store.watch(&record, Some(from)).await.ok()?;
        let present = self.store.get(&record).await.ok().flatten().is_some();
        let _ = self.store.delete(&keys::assignment(&node, &slot)).await;
        if present {
            // The agent stops the instance (its signal, the grace, then kill) and drops the
            // record; a node that is gone meanwhile drops it with its lease.
            let wait = async {
                while let Some(Ok(b)) = watch.recv().await {
                    if b.events
                        .iter()
                        .any(|e| matches!(e, WatchEvent::Delete { .. }))
                    {
                        return;
                    }
                }
            };
            if tokio::time::timeout(grace + Duration::from_secs(10), wait)
                .await
                .is_err()
            {
                return Some(format!("node {node} did not confirm the stop"));
            }
        }
        Some(format!("stopped on node {node}"))
    }

    fn prepare(&self, _app: &App) {
        // Warm pools are per node and filled by their agents; nothing to do from the leader.
    }

    async fn forget(&self, storage_key: &str) {
        // Every node removes the app's files when it sees this record (the ones away for
        // longer than its lease sweep what they keep of deleted apps when they join again).
        let record = async {
            let lease = self.store.grant_lease(keys::FORGOTTEN_TTL).await?;
            self.store
                .put_with_lease(&keys::forgotten(storage_key), Vec::new(), lease)
                .await
        };
        if let Err(e) = record.await {
            tracing::warn!(storage_key, error = %e, "cannot ask the nodes to remove a deleted app's files");
        }
    }

    async fn shutdown(&self, _grace: Duration) {
        // The cluster's instances outlive a leader.
    }
}

/// A fresh slot name: 12 random hex digits.
fn new_slot() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
