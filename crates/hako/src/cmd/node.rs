//! `hako node`: the hosts of a cluster — list them, cordon one (no new instances), drain one
//! for maintenance (its instances move to other nodes, each successor ready before the old one
//! stops taking requests), and make it active again.

use std::time::{Duration, Instant};

use hako_model::{NodeInfo, NodeState};

use super::{Exit, Failure, OrExit, api, client, out};

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: NodeCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Every node: address, state, capacity, usage, instances, last heartbeat.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Take no new instances on this node; its running ones stay.
    Cordon { name: String },
    /// Take new instances again.
    Uncordon { name: String },
    /// Move every instance off this node (successor first), then report what moved.
    Drain {
        name: String,
        /// Give up waiting after this long (the drain goes on).
        #[arg(long, default_value = "10m", value_name = "DURATION")]
        timeout: hako_model::HumanDuration,
    },
}

pub async fn execute(args: NodeArgs, data_dir: &std::path::Path) -> Result<u8, Failure> {
    let client = client(data_dir)?;
    tokio::task::spawn_blocking(move || run(args, client))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
}

fn run(args: NodeArgs, client: hako_api::Client) -> Result<u8, Failure> {
    match args.command {
        NodeCommand::List { json } => {
            let nodes = api(client.nodes())?;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&nodes).expect("serializable")
                ));
            } else {
                out(&table(&nodes));
            }
            Ok(0)
        }
        NodeCommand::Cordon { name } => {
            let n = api(client.set_node_state(&name, NodeState::Cordoned))?;
            out(&format!(
                "node {} is {}: it takes no new instances\n",
                n.name, n.state
            ));
            Ok(0)
        }
        NodeCommand::Uncordon { name } => {
            let n = api(client.set_node_state(&name, NodeState::Active))?;
            out(&format!("node {} is {}\n", n.name, n.state));
            Ok(0)
        }
        NodeCommand::Drain { name, timeout } => {
            let started = Instant::now();
            let on_node = |c: &hako_api::Client| -> Result<Vec<String>, Failure> {
                Ok(api(c.instances(None))?
                    .into_iter()
                    .filter(|i| i.node == name)
                    .map(|i| i.app)
                    .collect())
            };
            let mut apps = on_node(&client)?;
            apps.sort();
            apps.dedup();
            let before = api(client.set_node_state(&name, NodeState::Draining))?;
            let moving = running(&before);
            out(&format!(
                "draining node {name}: {moving} instances to move\n"
            ));
            let deadline = started + timeout.0;
            let progress = super::progress::Progress::stderr();
            let mut shown_left = None;
            loop {
                let nodes = api(client.nodes())?;
                let left = nodes
                    .iter()
                    .find(|n| n.name == name)
                    .map(running)
                    .unwrap_or(0);
                if shown_left != Some(left) {
                    progress.line(&format!("{left} of {moving} instances left on {name}"));
                    shown_left = Some(left);
                }
                if left == 0 {
                    out(&moved(&client, &apps, &name)?);
                    out(&format!(
                        "node {name} is drained: {moving} instances moved in {:.1}s; it takes no new instances until `hako node uncordon {name}`\n",
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(0);
                }
                if Instant::now() > deadline {
                    return Err(anyhow::anyhow!(
                        "node {name} still runs {left} instances after {timeout}; the drain goes on (see hako node list)"
                    ))
                    .or_exit(Exit::Failure);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// One line per app that ran on the drained node: where its instances run now.
fn moved(client: &hako_api::Client, apps: &[String], from: &str) -> Result<String, Failure> {
    let mut s = String::new();
    for app in apps {
        let mut to: Vec<String> = api(client.instances(Some(app)))?
            .into_iter()
            .filter(|i| i.node != from)
            .map(|i| i.node)
            .collect();
        to.sort();
        to.dedup();
        let to = if to.is_empty() {
            "no instance now (it starts at its next request)".to_string()
        } else {
            to.join(", ")
        };
        s += &format!("  {app}: {from} → {to}\n");
    }
    Ok(s)
}

fn running(n: &NodeInfo) -> u32 {
    n.instances.values().sum()
}

fn table(nodes: &[NodeInfo]) -> String {
    let mut s = format!(
        "{:<16} {:<16} {:<9} {:>5} {:>10} {:>10} {:>9} {:>9}\n",
        "NAME", "ADDRESS", "STATE", "CPUS", "MEMORY", "ASSIGNED", "INSTANCES", "HEARTBEAT"
    );
    let now = hako_model::now_unix_ms();
    for n in nodes {
        let (addr, cpus, mem, assigned, beat) = match &n.record {
            Some(r) => (
                r.addr.clone(),
                r.capacity.cpus.to_string(),
                hako_model::units::format_size(r.capacity.memory_bytes),
                hako_model::units::format_size(r.usage.memory_limits_bytes),
                format!(
                    "{:.1}s ago",
                    now.saturating_sub(r.heartbeat_unix_ms) as f64 / 1e3
                ),
            ),
            None => (
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "lost".into(),
            ),
        };
        let state = if n.alive {
            n.state.to_string()
        } else {
            format!("{} (lost)", n.state)
        };
        s += &format!(
            "{:<16} {:<16} {:<9} {:>5} {:>10} {:>10} {:>9} {:>9}\n",
            n.name,
            addr,
            state,
            cpus,
            mem,
            assigned,
            running(n),
            beat
        );
    }
    s
}
