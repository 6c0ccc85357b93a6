//! Nodes: the hosts that run instances, with the operator's state for each (cordon, drain).
//! Their records are the agents' (`/nodes/<name>`, on each node's lease); the state is the
//! operator's (`/node-state/<name>`), which the leader's scheduler and drains follow.

use std::collections::BTreeMap;

use hako_model::{InstanceInfo, NodeInfo, NodeRecord, NodeState};
use hako_store::StoreExt;
use hako_store::keys::{self, Key};

use super::Engine;
use crate::caller::Caller;
use crate::error::ApiError;

/// What the node routes are, for the admin-only refusal.
const NODES: &str = "the cluster's nodes (hako node …)";

impl Engine {
    /// Every node: alive ones (with a record) and lost ones the operator still has a state for.
    /// The nodes are the host's: every tenant's instances run on them (admin only).
    pub(super) async fn nodes(&self, caller: &Caller) -> Result<Vec<NodeInfo>, ApiError> {
        caller.require_admin(NODES)?;
        self.all_nodes().await
    }

    async fn all_nodes(&self) -> Result<Vec<NodeInfo>, ApiError> {
        let records = self.store.range_json::<NodeRecord>(keys::NODES).await?;
        let states = self
            .store
            .range_json::<NodeState>(keys::NODE_STATES)
            .await?;
        let instances = self
            .store
            .range_json::<InstanceInfo>(keys::INSTANCES)
            .await?;
        let mut out: BTreeMap<String, NodeInfo> = BTreeMap::new();
        for (_, r) in records {
            out.insert(
                r.name.clone(),
                NodeInfo {
                    name: r.name.clone(),
                    alive: true,
                    state: NodeState::Active,
                    record: Some(r),
                    instances: BTreeMap::new(),
                },
            );
        }
        for (key, state) in states {
            if let Some(Key::NodeState { name }) = keys::parse(&key) {
                out.entry(name.to_string())
                    .or_insert_with(|| NodeInfo {
                        name: name.to_string(),
                        alive: false,
                        state,
                        record: None,
                        instances: BTreeMap::new(),
                    })
                    .state = state;
            }
        }
        for (_, i) in instances {
            if let Some(n) = out.get_mut(&i.node) {
                let state = serde_json::to_value(i.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                *n.instances.entry(state).or_default() += 1;
            }
        }
        Ok(out.into_values().collect())
    }

    /// Sets a node's state; a draining node hands its instances to the others (the leader
    /// does it, successor first). Only in a cluster, and only for a node that exists.
    pub(super) async fn set_node_state(
        &self,
        caller: &Caller,
        name: &str,
        state: NodeState,
    ) -> Result<NodeInfo, ApiError> {
        caller.require_admin(NODES)?;
        if !self.backend.cluster() {
            return Err(ApiError::Conflict(
                "this hako runs on one host: cordon and drain need a cluster (hako serve --store etcd://…, hako agent on each host)".into(),
            ));
        }
        let known = self.all_nodes().await?;
        if !known.iter().any(|n| n.name == name) {
            return Err(ApiError::NotFound(format!(
                "no node named {name:?}: see hako node list"
            )));
        }
        match state {
            NodeState::Active => {
                self.store.delete(&keys::node_state(name)).await?;
            }
            s => {
                self.store.put_json(&keys::node_state(name), &s).await?;
            }
        }
        tracing::info!(node = name, %state, "node state set through the API");
        self.all_nodes()
            .await?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ApiError::NotFound(format!("node {name:?} is gone")))
    }
}
