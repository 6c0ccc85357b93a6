//! `hako agent`: a node of a cluster. Runs the instances the cluster's leader assigns to this
//! host, through the same runtime as `hako serve`, until SIGINT or SIGTERM; then stops them and
//! leaves (the leader places their sites elsewhere).

use std::path::{Path, PathBuf};

use anyhow::Context;
use hako_agent::member::{Member, MemberConfig};
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
    let mut agent_cfg = AgentConfig::new(data_dir, runtime.clone());
    agent_cfg.shared_dir = args.cluster.shared_dir.clone();
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
    let store = hako_store::open(&spec)
        .await
        .context("cannot reach the cluster's etcd")
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
    let member = Member::join(agent.clone(), store, config)
        .await
        .context("cannot join the cluster")
        .or_exit(Exit::Failure)?;
    eprintln!("hako: node {node} joined the cluster");
    member.run(exits, super::serve::shutdown_signal()).await;
    agent.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(0)
}
