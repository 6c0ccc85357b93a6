//! `hako agent`: a node of a cluster. Runs the instances the cluster's leader assigns to this
//! host, through the same runtime as `hako serve`, until SIGINT or SIGTERM; then stops them and
//! leaves (the leader places their sites elsewhere).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hako_agent::member::{Member, MemberConfig, MemberError};
use hako_agent::{Agent, AgentConfig};
use hako_model::HumanDuration;

use super::serve::ClusterArgs;
use super::{Exit, Failure, OrExit};

/// Options of `hako agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The cluster's etcd: `etcd://HOST:PORT[,HOST:PORT…]`.
    #[arg(long, value_name = "STORE")]
    pub store: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Name prefix of every kernel object hako makes ("hako" + up to 5 characters).
    #[arg(long)]
    pub prefix: Option<String>,
    /// This node's instance subnet, e.g. 10.77.2.0/24 (each node its own).
    #[arg(long)]
    pub subnet: Option<String>,
    /// How long a stopping instance gets between SIGTERM and SIGKILL, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    pub stop_grace: Option<HumanDuration>,
    /// The MariaDB socket apps with --database get their database through
    /// [default: /run/mysqld/mysqld.sock].
    #[arg(long, value_name = "PATH")]
    pub database_socket: Option<PathBuf>,
}

pub async fn execute(args: AgentArgs, data_dir: &Path) -> Result<u8, Failure> {
    let spec: hako_store::StoreSpec = args.store.parse().or_exit(Exit::Usage)?;
    if !matches!(spec, hako_store::StoreSpec::Etcd { .. }) {
        return Err(anyhow::anyhow!(
            "hako agent joins a cluster: give --store etcd://HOST:PORT[,…] (for one host, run hako serve)"
        ))
        .or_exit(Exit::Usage);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))
        .or_exit(Exit::Failure)?;
    let mut runtime = hako_runtime::RuntimeConfig::default();
    if let Some(p) = args.prefix {
        runtime.prefix = p;
    }
    if let Some(s) = &args.subnet {
        runtime.subnet = s
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))
            .or_exit(Exit::Usage)?;
    }
    runtime.cluster_cidrs = args.cluster.cidrs(None)?;
    let mut agent_cfg = AgentConfig::new(data_dir, runtime.clone());
    agent_cfg.shared_dir = args.cluster.shared_dir.clone();
    if let Some(s) = args.cluster.cache_max_size {
        agent_cfg.blob_cache_max_bytes = s.0;
    }
    if let Some(n) = &args.cluster.node {
        agent_cfg.node = n.clone();
    }
    agent_cfg.database_socket_dir = Some(
        args.database_socket
            .as_deref()
            .unwrap_or(Path::new(hako_database::DEFAULT_SOCKET))
            .parent()
            .unwrap_or(Path::new("/run/mysqld"))
            .to_path_buf(),
    );
    let node = agent_cfg.node.clone();
    let (agent, exits) = Agent::new(agent_cfg)
        .context("cannot start the node agent")
        .or_exit(Exit::Failure)?;
    let mut config = MemberConfig::new(
        &node,
        args.cluster
            .advertise
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
    );
    config.subnet = Some(runtime.subnet.to_string());
    if let Some(l) = args.cluster.lease {
        config.lease_ttl = l.0;
    }
    if let Some(g) = args.stop_grace {
        config.stop_grace = g.0;
    }
    let (store, member) = join(&spec, &agent, config).await?;
    eprintln!("hako: node {node} joined the cluster");
    let routes = tokio::spawn(hako_agent::routes::follow(store.clone()));
    member.run(exits, super::serve::shutdown_signal()).await;
    routes.abort();
    agent.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(0)
}

/// How long `hako agent` waits at start for its cluster's etcd to answer (a member starting,
/// an election going on) before it gives up.
const STORE_WAIT: Duration = Duration::from_secs(60);

/// Opens the cluster's store and joins it, waiting (and saying so) while etcd is unavailable.
async fn join(
    spec: &hako_store::StoreSpec,
    agent: &Arc<Agent>,
    config: MemberConfig,
) -> Result<(Arc<dyn hako_store::Store>, Member), Failure> {
    let started = Instant::now();
    loop {
        let attempt = async {
            let store = hako_store::open(spec)
                .await
                .context("cannot reach the cluster's etcd")?;
            let member = Member::join(agent.clone(), store.clone(), config.clone())
                .await
                .context("cannot join the cluster")?;
            anyhow::Ok((store, member))
        };
        match attempt.await {
            Ok(joined) => return Ok(joined),
            Err(e) if started.elapsed() < STORE_WAIT && unavailable(&e) => {
                eprintln!("hako: waiting for the cluster's etcd: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).or_exit(Exit::Failure),
        }
    }
}

/// Whether `e` says etcd is unavailable for now (rather than refusing this node).
fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<hako_store::StoreError>(),
            Some(hako_store::StoreError::Unavailable(_))
        ) || matches!(
            c.downcast_ref::<MemberError>(),
            Some(MemberError::Store(hako_store::StoreError::Unavailable(_)))
        )
    })
}
