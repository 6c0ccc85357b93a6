//! What bed to bring up ([`TestbedConfig`]) and the bed's fixed addresses: the LAN, the
//! nodes' instance subnets, where state is kept.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::lan;
use crate::{Result, TestbedError};

/// The LAN of `cargo xtask testbed up`: host n is 10.99.0.(10+n).
pub const DEFAULT_LAN: &str = "10.99.0.0/24";
/// Where beds keep their state (`<root>/<name>/`).
pub const DEFAULT_STATE_ROOT: &str = "/run/hako-testbed";
/// Every node's instance subnet lies in this network: node n has 10.77.n.0/24.
pub const INSTANCE_NETWORK: &str = "10.77.0.0/16";
/// How long a hako process gets to come up.
pub const START_LIMIT: Duration = Duration::from_secs(60);

/// Node `n`'s instance subnet: 10.77.n.0/24.
pub fn node_subnet(n: usize) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 77, n as u8, 0), 24).expect("a valid /24")
}

/// What bed to bring up.
#[derive(Debug, Clone)]
pub struct TestbedConfig {
    /// 1 to 3 lowercase letters or digits; names every kernel object of the bed.
    pub name: String,
    /// Hosts, 1 to 9 (`host1`…).
    pub nodes: usize,
    /// The hosts' network (a /27 or larger).
    pub lan: Ipv4Net,
    /// The bed's state dir is `<state_root>/<name>`.
    pub state_root: PathBuf,
    /// etcd members, on the first hosts (default: 3, or fewer hosts).
    pub etcd_members: usize,
    /// The hako binary; `None`: only the network and etcd (no agents, no front).
    pub hako: Option<PathBuf>,
    /// The agents' `--lease` (default: theirs).
    pub lease: Option<String>,
    /// A host image made in every node's data dir before start (default `base`).
    pub host_image: Option<String>,
}

impl TestbedConfig {
    /// A bed called `name` with `nodes` hosts on [`DEFAULT_LAN`] under
    /// [`DEFAULT_STATE_ROOT`], without hako (set [`TestbedConfig::hako`]).
    pub fn new(name: &str, nodes: usize) -> TestbedConfig {
        TestbedConfig {
            name: name.to_string(),
            nodes,
            lan: DEFAULT_LAN.parse().expect("a valid LAN"),
            state_root: DEFAULT_STATE_ROOT.into(),
            etcd_members: nodes.min(3),
            hako: None,
            lease: None,
            host_image: Some("base".into()),
        }
    }

    /// A bed for one test: a name and a LAN (a /27 in 10.98.0.0/16 that is free now) of its
    /// own, so that tests running at the same time never share either.
    pub fn unique(nodes: usize) -> TestbedConfig {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mix = (u64::from(std::process::id()) << 24)
            ^ (N.fetch_add(1, Ordering::Relaxed) << 16)
            ^ (nanos >> 6);
        let mut h = mix.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut name = String::new();
        for _ in 0..3 {
            name.push(b"abcdefghijklmnopqrstuvwxyz0123456789"[(h % 36) as usize] as char);
            h /= 36;
        }
        // 2048 /27s; from a random one on, the first free (Lan::up locks it for good).
        let slot = |i: u64| {
            let s = ((h + i) % 2048) as u32;
            Ipv4Net::new(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 98, 0, 0)) + s * 32),
                27,
            )
            .expect("a valid /27")
        };
        let lan = (0..2048)
            .map(slot)
            .find(|n| lan::is_free(*n))
            .unwrap_or_else(|| slot(0));
        TestbedConfig {
            lan,
            ..TestbedConfig::new(&name, nodes)
        }
    }

    /// The bed's state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join(&self.name)
    }

    /// The networks instances may open no connection to: the LAN and every node's subnet.
    pub fn cluster_cidrs(&self) -> Vec<Ipv4Net> {
        vec![self.lan, INSTANCE_NETWORK.parse().expect("a valid network")]
    }

    pub(crate) fn check(&self) -> Result<()> {
        lan::check_name(&self.name)?;
        if !(1..=9).contains(&self.nodes) {
            return Err(TestbedError::Config(format!(
                "{} nodes: a bed has 1 to 9",
                self.nodes
            )));
        }
        if !(1..=self.nodes).contains(&self.etcd_members) {
            return Err(TestbedError::Config(format!(
                "{} etcd members on {} hosts: give 1 to {}",
                self.etcd_members, self.nodes, self.nodes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_beds_have_valid_distinct_names_and_small_lans_of_their_own() {
        let (a, b) = (TestbedConfig::unique(3), TestbedConfig::unique(3));
        assert_ne!(a.name, b.name);
        for c in [&a, &b] {
            c.check().unwrap();
            assert_eq!(c.lan.prefix_len(), 27, "{c:?}");
            assert!("10.98.0.0/16".parse::<Ipv4Net>().unwrap().contains(&c.lan));
            assert_eq!(c.etcd_members, 3);
        }
        let mut bad = TestbedConfig::new("x", 2);
        bad.etcd_members = 3;
        assert!(
            bad.check()
                .unwrap_err()
                .to_string()
                .contains("3 etcd members on 2 hosts")
        );
        assert!(TestbedConfig::new("toolong", 2).check().is_err());
        assert!(TestbedConfig::new("ok", 10).check().is_err());
        assert_eq!(node_subnet(3).to_string(), "10.77.3.0/24");
    }
}
