//! A node's membership of a cluster: the agent registers its node in the store with a lease
//! and keeps it alive, runs exactly the instances the leader assigns to it
//! (`/assign/<node>/…`), reports each in `/instances/<app>/<id>` bound to the same lease (so a
//! lost node's instances leave routing by themselves), and writes back how a start failed or
//! an instance ended. A node whose lease expired (it was cut off long enough for the cluster to
//! replace its instances) kills everything it still runs before it registers again: fencing.
//! See docs/cluster.md.

mod assignments;
mod forget;
mod registration;

use std::sync::Arc;
use std::time::Duration;

use hako_store::Store;
use tokio::sync::mpsc;

use crate::{Agent, Exit};

pub use registration::Registration;

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// The node's name (unique in the cluster).
    pub node: String,
    /// The address other hosts reach this one at (its instance subnet is routed via it).
    pub addr: String,
    /// The instances' subnet, published for the other hosts' routes.
    pub subnet: Option<String>,
    /// How long the node's lease lives without renewal (a lost node is noticed this long
    /// after it went quiet).
    pub lease_ttl: Duration,
    /// How often usage is published in the node record.
    pub usage_every: Duration,
    /// SIGTERM-to-kill grace of a stopping instance.
    pub stop_grace: Duration,
}

impl MemberConfig {
    /// Defaults: a 5 s lease, usage every 2 s, 10 s stop grace.
    pub fn new(node: impl Into<String>, addr: impl Into<String>) -> MemberConfig {
        MemberConfig {
            node: node.into(),
            addr: addr.into(),
            subnet: None,
            lease_ttl: Duration::from_secs(5),
            usage_every: Duration::from_secs(2),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// Why a node could not join or stay in its cluster.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("the cluster store failed: {0}")]
    Store(#[from] hako_store::StoreError),
    #[error("node name {0:?} is not valid: use letters, digits, '-', '_' and '.'")]
    Name(String),
}

/// This node's record as it is now: its capacity, what its instances use, its heartbeat.
pub fn node_record(
    agent: &Agent,
    node: &str,
    addr: &str,
    subnet: Option<String>,
    epoch: u64,
) -> hako_model::NodeRecord {
    let infos = agent.instances(None);
    let mut usage = hako_model::NodeUsage {
        instances: infos.len() as u32,
        memory_limits_bytes: agent.memory_limits(),
        ..hako_model::NodeUsage::default()
    };
    for i in &infos {
        if let Some(stats) = agent.stats(&i.id) {
            usage.memory_used_bytes += stats.memory_current;
        }
    }
    hako_model::NodeRecord {
        name: node.to_string(),
        addr: addr.to_string(),
        subnet,
        capacity: crate::node_capacity(),
        usage,
        epoch,
        heartbeat_unix_ms: hako_model::now_unix_ms(),
        cached: Vec::new(),
    }
}

/// A node that joined its cluster (registered on its lease), ready to [`Member::run`].
pub struct Member {
    agent: Arc<Agent>,
    store: Arc<dyn Store>,
    config: MemberConfig,
    registration: Arc<Registration>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("node", &self.config.node)
            .finish()
    }
}

impl Member {
    /// Joins the cluster: drops what an earlier run of this node left (and the files of apps
    /// deleted meanwhile) and registers the node
    /// on a new lease. Returns once the node can be given instances.
    pub async fn join(
        agent: Arc<Agent>,
        store: Arc<dyn Store>,
        config: MemberConfig,
    ) -> Result<Member, MemberError> {
        hako_store::keys::validate_name(&config.node)
            .map_err(|_| MemberError::Name(config.node.clone()))?;
        let swept = forget::sweep(&agent, &*store).await?;
        if swept > 0 {
            tracing::info!(node = %config.node, swept, "removed the files of apps deleted while this node was away");
        }
        let registration =
            Arc::new(Registration::register(agent.clone(), store.clone(), &config).await?);
        Ok(Member {
            agent,
            store,
            config,
            registration,
        })
    }

    /// Runs this node's part of the cluster until `shutdown` resolves; then stops its
    /// instances, drops its records and gives up its lease (the leader replaces what it ran
    /// elsewhere).
    pub async fn run(
        self,
        exits: mpsc::UnboundedReceiver<Exit>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Member {
            agent,
            store,
            config,
            registration,
        } = self;
        let runner =
            assignments::Runner::new(agent.clone(), store.clone(), registration.clone(), &config);
        // A JoinSet: if this future is dropped, the node's loops stop with it.
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(registration.clone().keep_alive(runner.clone()));
        tasks.spawn(registration.clone().publish_usage(config.usage_every));
        tasks.spawn(runner.clone().follow_exits(exits));
        tasks.spawn(runner.clone().follow_assignments());
        tasks.spawn(forget::follow(agent.clone(), store.clone()));
        shutdown.await;
        tracing::info!(node = %config.node, "leaving the cluster: stopping this node's instances");
        tasks.abort_all();
        runner.stop_everything().await;
        registration.leave().await;
    }
}
