//! The seam between the bed and the `hako` binary: which of the cluster's commands this hako
//! has (read from its `--help`), and the command lines of a node's agent and of the front.
//!
//! The bed follows the cluster's contract (docs/cluster.md): `hako agent --store etcd://…
//! --node NAME --advertise IP --subnet CIDR --prefix P [--lease D] [--shared-dir DIR]` on every
//! host and a `hako serve --store etcd://… --no-node --node front [--shared-dir DIR]` front on
//! the first. A hako without
//! `agent` gets what it can run today: the front on the first host runs its own node there
//! (`hako serve` with that host's subnet and prefix), and the other hosts run only etcd.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::cmd;
use crate::{Result, TestbedError};

/// The front's proxy port on its host.
pub const PROXY_PORT: u16 = 8080;
/// The front's API port on its host.
pub const API_PORT: u16 = 7070;

/// The options of hako's cluster commands this binary understands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HakoCommands {
    /// `hako agent` exists.
    pub agent: bool,
    /// `hako serve --no-node` (a front without instances).
    pub no_node: bool,
    /// `hako agent --shared-dir DIR` (shared storage for `/data`).
    pub shared_dir: bool,
    /// `hako agent|serve --lease D`.
    pub lease: bool,
    /// `--cluster-cidr CIDR[,CIDR…]` (the networks instances may not open connections to);
    /// a hako that has it also routes between the nodes' subnets by itself.
    pub cluster_cidr: bool,
    /// `hako image host --store etcd://…` (image versions recorded in the cluster store,
    /// which nodes with shared storage need before they run them).
    #[serde(default)]
    pub image_store: bool,
}

impl HakoCommands {
    /// Asks `hako agent --help` and `hako serve --help`.
    pub fn detect(hako: &Path) -> Result<HakoCommands> {
        let help = |sub: &str| {
            Command::new(hako)
                .args([sub, "--help"])
                .output()
                .map_err(|source| TestbedError::Io {
                    what: format!("cannot run {} (build it first)", hako.display()),
                    source,
                })
                .map(|o| {
                    o.status
                        .success()
                        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
                })
        };
        let agent = help("agent")?;
        let serve = help("serve")?.ok_or_else(|| TestbedError::Command {
            command: format!("{} serve --help", hako.display()),
            output: "failed: is this a hako binary?".into(),
        })?;
        let agent_has = |opt: &str| agent.as_deref().is_some_and(|h| h.contains(opt));
        let image_host = Command::new(hako)
            .args(["image", "host", "--help"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("--store"))
            .unwrap_or(false);
        Ok(HakoCommands {
            agent: agent.is_some(),
            no_node: serve.contains("--no-node"),
            shared_dir: agent_has("--shared-dir"),
            lease: agent_has("--lease"),
            cluster_cidr: agent_has("--cluster-cidr") || serve.contains("--cluster-cidr"),
            image_store: image_host,
        })
    }

    /// Whether the bed runs an agent per host and a front without instances.
    pub fn cluster(&self) -> bool {
        self.agent && self.no_node
    }
}

/// What a node's `hako` process is given.
#[derive(Debug, Clone)]
pub struct NodeArgs<'a> {
    pub hako: &'a Path,
    pub data_dir: &'a Path,
    pub store: &'a str,
    pub node: &'a str,
    pub advertise: std::net::Ipv4Addr,
    pub subnet: ipnet::Ipv4Net,
    pub prefix: &'a str,
    pub cluster_cidrs: &'a [ipnet::Ipv4Net],
    pub lease: Option<&'a str>,
    pub shared_dir: &'a Path,
}

fn cidrs(c: &[ipnet::Ipv4Net]) -> String {
    c.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `hako agent …` for one node (program first).
pub fn agent_command(a: &NodeArgs<'_>, has: &HakoCommands) -> Vec<String> {
    let mut v = vec![
        a.hako.display().to_string(),
        "--data-dir".into(),
        a.data_dir.display().to_string(),
        "agent".into(),
        "--store".into(),
        a.store.into(),
        "--node".into(),
        a.node.into(),
        "--advertise".into(),
        a.advertise.to_string(),
        "--subnet".into(),
        a.subnet.to_string(),
        "--prefix".into(),
        a.prefix.into(),
    ];
    if let (Some(l), true) = (a.lease, has.lease) {
        v.extend(["--lease".into(), l.into()]);
    }
    if has.shared_dir {
        v.extend(["--shared-dir".into(), a.shared_dir.display().to_string()]);
    }
    if has.cluster_cidr {
        v.extend(["--cluster-cidr".into(), cidrs(a.cluster_cidrs)]);
    }
    v
}

/// `hako serve …` for the front on the first host: without instances when the cluster
/// commands exist, else with the first host's own node (`a` describes it).
pub fn front_command(a: &NodeArgs<'_>, has: &HakoCommands) -> Vec<String> {
    let mut v = vec![
        a.hako.display().to_string(),
        "--data-dir".into(),
        a.data_dir.display().to_string(),
        "serve".into(),
        "--store".into(),
        a.store.into(),
        "--listen".into(),
        format!("0.0.0.0:{PROXY_PORT}"),
        "--api".into(),
        format!("0.0.0.0:{API_PORT}"),
        "--prefix".into(),
        a.prefix.into(),
        "--subnet".into(),
        a.subnet.to_string(),
    ];
    if has.cluster() {
        v.extend([
            "--no-node".into(),
            "--node".into(),
            "front".into(),
            "--advertise".into(),
            a.advertise.to_string(),
        ]);
        if has.shared_dir {
            v.extend(["--shared-dir".into(), a.shared_dir.display().to_string()]);
        }
        if let (Some(l), true) = (a.lease, has.lease) {
            v.extend(["--lease".into(), l.into()]);
        }
    }
    if has.cluster_cidr {
        v.extend(["--cluster-cidr".into(), cidrs(a.cluster_cidrs)]);
    }
    v
}

/// Makes the host image `name` in `data_dir` (`hako image host NAME`, recorded in the
/// cluster store `store` if given), unless it is there.
pub fn host_image(hako: &Path, data_dir: &Path, name: &str, store: Option<&str>) -> Result<()> {
    if data_dir.join("images").join(name).exists() {
        return Ok(());
    }
    let mut c = Command::new(hako);
    c.arg("--data-dir")
        .arg(data_dir)
        .args(["image", "host", name])
        .env_remove("RUST_LOG");
    if let Some(s) = store {
        c.args(["--store", s]);
    }
    cmd::run(&mut c).map(drop)
}

/// The hako binary next to this program's target dir, for tests (`target/debug/hako`).
pub fn built_hako() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|d| d.join("hako"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<'a>(hako: &'a Path, dir: &'a Path, cidr: &'a [ipnet::Ipv4Net]) -> NodeArgs<'a> {
        NodeArgs {
            hako,
            data_dir: dir,
            store: "etcd://10.99.0.11:2379,10.99.0.12:2379",
            node: "host2",
            advertise: "10.99.0.12".parse().unwrap(),
            subnet: "10.77.2.0/24".parse().unwrap(),
            prefix: "hakonab2",
            cluster_cidrs: cidr,
            lease: Some("5s"),
            shared_dir: Path::new("/bed/shared"),
        }
    }

    #[test]
    fn the_agent_gets_the_contracts_options_and_only_known_extras() {
        let cidr = [
            "10.99.0.0/24".parse().unwrap(),
            "10.77.0.0/16".parse().unwrap(),
        ];
        let a = args(Path::new("/b/hako"), Path::new("/bed/host2/data"), &cidr);
        let bare = agent_command(&a, &HakoCommands::default()).join(" ");
        assert_eq!(
            bare,
            "/b/hako --data-dir /bed/host2/data agent --store etcd://10.99.0.11:2379,10.99.0.12:2379 \
             --node host2 --advertise 10.99.0.12 --subnet 10.77.2.0/24 --prefix hakonab2"
        );
        let all = HakoCommands {
            agent: true,
            no_node: true,
            shared_dir: true,
            lease: true,
            cluster_cidr: true,
            image_store: true,
        };
        let full = agent_command(&a, &all).join(" ");
        assert!(
            full.ends_with(
                "--lease 5s --shared-dir /bed/shared --cluster-cidr 10.99.0.0/24,10.77.0.0/16"
            ),
            "{full}"
        );
    }

    #[test]
    fn the_front_runs_no_node_only_when_agents_exist() {
        let a = args(Path::new("/b/hako"), Path::new("/bed/front"), &[]);
        let today = front_command(&a, &HakoCommands::default()).join(" ");
        assert!(
            today.contains(" serve ") && !today.contains("--no-node"),
            "{today}"
        );
        assert!(
            today.contains("--listen 0.0.0.0:8080 --api 0.0.0.0:7070"),
            "{today}"
        );
        let cluster = HakoCommands {
            agent: true,
            no_node: true,
            ..HakoCommands::default()
        };
        let front = front_command(&a, &cluster).join(" ");
        assert!(
            front.contains("--no-node --node front --advertise 10.99.0.12"),
            "{front}"
        );
    }
}
