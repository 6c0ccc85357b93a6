//! The node's registration: its record in `/nodes/<name>` on a lease, the lease kept alive, its
//! usage published, and fencing when the lease was lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hako_model::now_unix_ms;
use hako_store::{Store, StoreError, StoreExt, keys};

use super::MemberConfig;
use super::assignments::Runner;
use crate::Agent;

/// This node's place in the cluster: its lease and epoch.
pub struct Registration {
    agent: Arc<Agent>,
    store: Arc<dyn Store>,
    node: String,
    addr: String,
    subnet: Option<String>,
    ttl: Duration,
    lease: AtomicI64,
    epoch: AtomicU64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("node", &self.node)
            .finish()
    }
}

impl Registration {
    /// Registers the node: drops what an earlier run of it left (its lease, its stale
    /// assignments), grants a lease and writes the node record on it.
    pub(super) async fn register(
        agent: Arc<Agent>,
        store: Arc<dyn Store>,
        config: &MemberConfig,
    ) -> Result<Registration, StoreError> {
        let r = Registration {
            agent,
            store,
            node: config.node.clone(),
            addr: config.addr.clone(),
            subnet: config.subnet.clone(),
            ttl: config.lease_ttl,
            lease: AtomicI64::new(0),
            epoch: AtomicU64::new(0),
        };
        if let Some(old) = r.saved_lease() {
            // A run killed without leaving: its records would route to containers that died
            // with it until the lease expired.
            let _ = r.store.revoke(old).await;
        }
        r.join().await?;
        Ok(r)
    }

    /// The lease every record of this node is bound to.
    pub fn lease(&self) -> i64 {
        self.lease.load(Ordering::SeqCst)
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A new lease and epoch, the record on it, and no assignment from before.
    async fn join(&self) -> Result<(), StoreError> {
        let lease = self.store.grant_lease(self.ttl).await?;
        self.lease.store(lease, Ordering::SeqCst);
        self.epoch.store(now_unix_ms(), Ordering::SeqCst);
        self.save_lease(lease);
        // Assignments from before this epoch name instances that no longer exist (the
        // runtime removed what an earlier run left; a fenced node killed its own): the leader
        // sees them go and places their apps again.
        self.store
            .delete_prefix(&keys::assignments(&self.node))
            .await?;
        self.publish().await?;
        tracing::info!(node = %self.node, lease, "joined the cluster");
        Ok(())
    }

    /// Writes the node record (capacity, usage, heartbeat) on the lease.
    async fn publish(&self) -> Result<(), StoreError> {
        let record = super::node_record(
            &self.agent,
            &self.node,
            &self.addr,
            self.subnet.clone(),
            self.epoch.load(Ordering::SeqCst),
        );
        self.store
            .put_json_with_lease(&keys::node(&self.node), &record, self.lease())
            .await?;
        Ok(())
    }

    /// Renews the lease every third of its life. A lease the store no longer knows (it
    /// expired while the node was cut off) fences the node: every instance it runs is killed
    /// — the cluster has replaced them — and it joins anew. Store errors that may pass (no
    /// quorum, no connection) are retried: a lease cannot expire while etcd has no quorum.
    pub(super) async fn keep_alive(self: Arc<Self>, runner: Arc<Runner>) {
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            match self.store.keep_alive(self.lease()).await {
                Ok(()) => {}
                Err(StoreError::LeaseNotFound(_)) => {
                    tracing::warn!(node = %self.node, "this node's lease expired: fencing — killing every instance it still runs, then joining again");
                    runner.stop_everything().await;
                    while let Err(e) = self.join().await {
                        tracing::warn!(node = %self.node, error = %e, "cannot join the cluster again; retrying");
                        tokio::time::sleep(self.ttl / 3).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "cannot renew the node's lease; retrying")
                }
            }
        }
    }

    /// Publishes the node's usage every `every`.
    pub(super) async fn publish_usage(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.publish().await {
                tracing::debug!(node = %self.node, error = %e, "cannot publish the node's usage");
            }
        }
    }

    /// Leaves the cluster: the record and everything on the lease go.
    pub(super) async fn leave(&self) {
        let _ = self.store.delete(&keys::node(&self.node)).await;
        let _ = self.store.revoke(self.lease()).await;
        let _ = std::fs::remove_file(self.lease_file());
    }

    fn lease_file(&self) -> std::path::PathBuf {
        self.agent.config().data_dir.join("cluster.lease")
    }

    fn saved_lease(&self) -> Option<i64> {
        std::fs::read_to_string(self.lease_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn save_lease(&self, lease: i64) {
        if let Err(e) = std::fs::write(self.lease_file(), lease.to_string()) {
            tracing::warn!(error = %e, "cannot remember the node's lease");
        }
    }
}
