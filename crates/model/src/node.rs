//! A node: a host that runs instances (its agent). In a cluster each agent keeps its node's
//! record in the store, bound to the node's lease, and the operator sets whether the node takes
//! new instances (cordon, drain) apart from it.

use std::collections::BTreeMap;

use crate::NodeCapacity;

/// What a node's agent says about itself (`/nodes/<name>`, bound to the node's lease: it goes
/// when the node stops renewing).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeRecord {
    /// The node's name (unique in the cluster).
    pub name: String,
    /// The address other hosts reach it at (its instance subnet is routed via it).
    pub addr: String,
    /// Its instances' subnet, e.g. `10.77.2.0/24`; `None` if its instances use the host network
    /// only.
    #[serde(default)]
    pub subnet: Option<String>,
    /// What one instance may get there.
    pub capacity: NodeCapacity,
    /// What its instances use now.
    #[serde(default)]
    pub usage: NodeUsage,
    /// Grows each time the agent registers anew (after a restart or a lost lease): records of an
    /// older epoch are from before the node was fenced.
    pub epoch: u64,
    /// When the agent last wrote this record.
    pub heartbeat_unix_ms: u64,
    /// Storage keys of the apps whose code releases it holds (where a start needs no fetch).
    #[serde(default)]
    pub cached: Vec<String>,
}

/// What a node's instances use.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeUsage {
    /// Instances running.
    pub instances: u32,
    /// The sum of their memory limits.
    pub memory_limits_bytes: u64,
    /// What they use now (their cgroups).
    pub memory_used_bytes: u64,
}

/// Whether a node takes new instances (`/node-state/<name>`, set by the operator; no lease, so
/// it outlives restarts of the agent).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Takes new instances.
    #[default]
    Active,
    /// Takes no new instances; its running ones stay.
    Cordoned,
    /// Takes no new instances and hands its running ones to other nodes (successor first).
    Draining,
}

impl NodeState {
    /// True when the scheduler may place instances there.
    pub fn schedulable(self) -> bool {
        self == NodeState::Active
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Active => "active",
            NodeState::Cordoned => "cordoned",
            NodeState::Draining => "draining",
        })
    }
}

impl std::str::FromStr for NodeState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(NodeState::Active),
            "cordoned" => Ok(NodeState::Cordoned),
            "draining" => Ok(NodeState::Draining),
            other => Err(format!(
                "node state {other:?} is not one of active, cordoned, draining"
            )),
        }
    }
}

/// A node as the API shows it: its record (if it is alive), its state and its instances.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub name: String,
    /// False when its lease expired (the node is lost) but the operator still has a state for it.
    pub alive: bool,
    pub state: NodeState,
    #[serde(default)]
    pub record: Option<NodeRecord>,
    /// Instances per state ("ready", "starting", "draining").
    #[serde(default)]
    pub instances: BTreeMap<String, u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_and_write_their_names() {
        for s in [NodeState::Active, NodeState::Cordoned, NodeState::Draining] {
            assert_eq!(s.to_string().parse::<NodeState>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.to_string());
        }
        assert!("paused".parse::<NodeState>().is_err());
        assert!(NodeState::Active.schedulable());
        assert!(!NodeState::Cordoned.schedulable() && !NodeState::Draining.schedulable());
    }
}
