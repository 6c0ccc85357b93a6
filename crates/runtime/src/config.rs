//! How a [`crate::Runtime`] is set up: its name prefix, state directory and network.

use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::network::Subnet;

/// Settings of one runtime. One live runtime owns a prefix at a time.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Name of every kernel object this runtime makes: the cgroup scope, the bridge, the veths
    /// (`<prefix>v<n>`), the nftables tables, the state directory. Starts with `hako`, then at
    /// most 5 lowercase letters or digits (interface names are limited to 15 bytes).
    pub prefix: String,
    /// Where per-runtime state lives: `<state_root>/<prefix>/{lock,<container>/}`.
    pub state_root: PathBuf,
    /// The subnet of the bridge for `isolated` containers.
    pub subnet: Subnet,
    /// Masquerade containers' traffic out of the host.
    pub nat: bool,
    /// The cluster's own networks (the nodes' addresses, every node's instance subnet, the
    /// fronts, etcd): new connections from this runtime's containers to any of them are
    /// dropped, replies to connections made from there (the proxies') pass. Empty on a
    /// single host. Routes to other nodes' subnets are [`crate::cluster_routes`]'.
    pub cluster_cidrs: Vec<Ipv4Net>,
    /// Switch the kernel's cgroup threadgroup lock to favour dynamic changes: moving a process
    /// into a cgroup then takes ~0.3 ms instead of 5–12 ms after an idle moment. Kernel-wide
    /// (the cost is a slightly slower fork/exit everywhere), like the `favordynmods` cgroup2
    /// mount option it uses.
    pub favor_dynmods: bool,
    /// RLIMIT_NOFILE inside containers.
    pub nofile: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            prefix: "hako".into(),
            state_root: "/run/hako".into(),
            subnet: "10.88.0.0/16".parse().expect("valid default subnet"),
            nat: true,
            cluster_cidrs: Vec::new(),
            favor_dynmods: true,
            nofile: 65536,
        }
    }
}

impl RuntimeConfig {
    /// A config with a prefix unique to this process (for tests and `hako run`), under
    /// `state_root`, with a /24 subnet derived from the prefix.
    pub fn unique(tag: char, state_root: impl Into<PathBuf>) -> RuntimeConfig {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mix = (std::process::id() as u64) << 20 ^ (n as u64) << 8 ^ (nanos as u64 >> 4);
        let id = base36(mix % 36u64.pow(4));
        let prefix = format!("hako{tag}{id:0>4}");
        let h = mix % (150 * 250);
        RuntimeConfig {
            prefix,
            state_root: state_root.into(),
            subnet: format!("10.{}.{}.0/24", 100 + h / 250, h % 250)
                .parse()
                .expect("valid derived subnet"),
            nat: false,
            ..RuntimeConfig::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let rest = self
            .prefix
            .strip_prefix("hako")
            .ok_or_else(|| format!("prefix {:?} must start with \"hako\"", self.prefix))?;
        if rest.len() > 5
            || !rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "prefix {:?}: after \"hako\" use at most 5 lowercase letters or digits",
                self.prefix
            ));
        }
        if !self.state_root.is_absolute() {
            return Err(format!(
                "state root {} must be absolute",
                self.state_root.display()
            ));
        }
        Ok(())
    }

    /// This runtime's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join(&self.prefix)
    }
}

pub(crate) fn base36(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_configs_are_valid_and_distinct() {
        let a = RuntimeConfig::unique('t', "/tmp/x");
        let b = RuntimeConfig::unique('t', "/tmp/x");
        a.validate().unwrap();
        assert_ne!(a.prefix, b.prefix);
        assert!(a.prefix.len() <= 9);
    }

    #[test]
    fn rejects_bad_prefixes() {
        let mut c = RuntimeConfig::default();
        c.validate().unwrap();
        c.prefix = "docker".into();
        assert!(c.validate().is_err());
        c.prefix = "hakoTOOLONG".into();
        assert!(c.validate().is_err());
    }
}
