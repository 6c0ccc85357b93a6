//! Where requests go in a cluster, as the leader's lifecycle sees it: every front routes by the
//! instance records, so routing an instance is the agent's record; a drain is the assignment
//! marked `drain` (the agent marks the record, every front stops sending it requests) and is
//! done when every live front has acknowledged it; what the proxies see of an instance is
//! merged from every front's activity report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use hako_model::{AssignmentPhase, FrontActivity, InstanceInfo, now_unix_ms};
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use tokio::time::Instant;

use super::nodes::ClusterNodes;
use crate::traffic::{Activity, Traffic};

/// Every front's latest activity report.
#[derive(Default)]
pub(crate) struct ActivityView(Mutex<HashMap<String, FrontActivity>>);

impl ActivityView {
    /// Follows `/activity/` until the task is dropped.
    pub(crate) async fn follow(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            if let Err(e) = self.follow_once(&store).await {
                tracing::warn!(error = %e, "lost the watch of the fronts' activity; following again");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_once(&self, store: &Arc<dyn Store>) -> Result<(), StoreError> {
        let listing = store.list(keys::ACTIVITY).await?;
        {
            let mut reports = self.0.lock().expect("activity lock");
            reports.clear();
            for kv in &listing.kvs {
                if let Ok(r) = serde_json::from_slice::<FrontActivity>(&kv.value) {
                    reports.insert(r.front.clone(), r);
                }
            }
        }
        let mut watch = store
            .watch(keys::ACTIVITY, Some(listing.revision + 1))
            .await?;
        while let Some(batch) = watch.recv().await {
            for ev in batch?.events {
                let mut reports = self.0.lock().expect("activity lock");
                match ev {
                    WatchEvent::Put(kv) => {
                        if let Ok(r) = serde_json::from_slice::<FrontActivity>(&kv.value) {
                            reports.insert(r.front.clone(), r);
                        }
                    }
                    WatchEvent::Delete { key, .. } => {
                        if let Some(Key::Activity { front }) = keys::parse(&key) {
                            reports.remove(front);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The app's instances as all fronts see them: the latest activity anywhere, open
    /// requests summed.
    fn merged(&self, app: &str) -> HashMap<String, Activity> {
        let now_i = Instant::now();
        let now_ms = now_unix_ms();
        let mut out: HashMap<String, Activity> = HashMap::new();
        for report in self.0.lock().expect("activity lock").values() {
            for (id, a) in report.instances.iter().filter(|(_, a)| a.app == app) {
                let ago = Duration::from_millis(now_ms.saturating_sub(a.last_active_unix_ms));
                let last = now_i.checked_sub(ago).unwrap_or(now_i);
                // The fronts' reports do not tell visitors from quiet work yet: in a cluster
                // every request keeps an instance awake.
                let e = out.entry(id.clone()).or_insert(Activity {
                    last_active: last,
                    in_flight: 0,
                    upgraded: 0,
                    last_visitor: Some(last),
                    last_quiet: None,
                    first_request: None,
                });
                e.last_active = e.last_active.max(last);
                e.last_visitor = e.last_visitor.max(Some(last));
                e.in_flight += a.in_flight;
                e.upgraded += a.upgraded;
            }
        }
        out
    }
}

/// Requests in a cluster, for the leader's lifecycle.
pub(crate) struct ClusterTraffic {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) nodes: Arc<ClusterNodes>,
    pub(crate) activity: Arc<ActivityView>,
}

impl ClusterTraffic {
    /// Waits until every live front acknowledged the drain of `id`, at most `timeout`.
    async fn acknowledged(store: Arc<dyn Store>, id: String, timeout: Duration) {
        let wait = async {
            loop {
                let from = match store.revision().await {
                    Ok(r) => r + 1,
                    Err(_) => return,
                };
                let Ok(mut watch) = store.watch(&keys::drained_of(&id), Some(from)).await else {
                    return;
                };
                let fronts = store.range(keys::FRONTS).await.unwrap_or_default();
                let acks = store
                    .range(&keys::drained_of(&id))
                    .await
                    .unwrap_or_default();
                let acked: Vec<&str> = acks
                    .iter()
                    .filter_map(|kv| match keys::parse(&kv.key) {
                        Some(Key::Drained { front, .. }) => Some(front),
                        _ => None,
                    })
                    .collect();
                let all = fronts.iter().all(|kv| match keys::parse(&kv.key) {
                    Some(Key::Front { name }) => acked.contains(&name),
                    _ => true,
                });
                if all {
                    return;
                }
                // Something changes: an acknowledgement comes, or a front goes (its lease).
                tokio::select! {
                    _ = watch.recv() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
    }
}

#[async_trait]
impl Traffic for ClusterTraffic {
    async fn route(&self, _info: &InstanceInfo, _addr: SocketAddr) {
        // The agent's `ready` record is the route: every front follows it.
    }

    async fn drain(&self, info: &InstanceInfo, timeout: Duration) {
        if self.nodes.set_phase(&info.id, AssignmentPhase::Drain).await {
            Self::acknowledged(self.store.clone(), info.id.clone(), timeout).await;
        }
    }

    async fn unroute(&self, _app: &str, id: &str) {
        let _ = self.store.delete_prefix(&keys::drained_of(id)).await;
    }

    fn remove_app(&self, _app: &str, ids: &[String], timeout: Duration) -> BoxFuture<'static, ()> {
        let (store, nodes, ids) = (self.store.clone(), self.nodes.clone(), ids.to_vec());
        Box::pin(async move {
            let drains = ids.into_iter().map(|id| {
                let (store, nodes) = (store.clone(), nodes.clone());
                async move {
                    if nodes.set_phase(&id, AssignmentPhase::Drain).await {
                        Self::acknowledged(store, id, timeout).await;
                    }
                }
            });
            futures::future::join_all(drains).await;
        })
    }

    fn activity(&self, app: &str) -> HashMap<String, Activity> {
        self.activity.merged(app)
    }
}
