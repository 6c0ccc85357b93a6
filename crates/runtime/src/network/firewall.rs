//! The runtime's nftables rules, written as one `nft -f` transaction (the old tables deleted
//! and the new ones made atomically, so a changed subnet or a half-made earlier set never
//! lingers).
//!
//! Table `inet <prefix>`:
//! - input: from the bridge only replies (`established,related`) reach the host — an instance
//!   reaches none of its own node's services, on any of the node's addresses;
//! - forward: nothing between this bridge and any other `hako*` link (other runtimes'
//!   bridges), either way; and with cluster CIDRs, no new connection from the bridge to any
//!   cluster address (other nodes, their instance subnets, the fronts) — replies to the
//!   proxies' connections pass.
//!
//! Table `bridge <prefix>`: no frame between two container ports. Table `ip <prefix>_nat`:
//! masquerade what leaves the host.

use ipnet::Ipv4Net;

use super::{NetworkError, Subnet};

/// The tables of runtime `prefix`: (family, name).
pub(crate) fn tables(prefix: &str) -> [(&'static str, String); 3] {
    [
        ("inet", prefix.to_string()),
        ("bridge", prefix.to_string()),
        ("ip", format!("{prefix}_nat")),
    ]
}

/// The elements of an nftables interval set or anonymous set: `a/n, b/m`, overlapping and
/// adjacent networks merged (nft refuses overlapping intervals).
pub(crate) fn elements(nets: &[Ipv4Net]) -> String {
    Ipv4Net::aggregate(&nets.iter().map(Ipv4Net::trunc).collect::<Vec<_>>())
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rules of runtime `prefix` (see the module's doc).
pub(crate) fn rules(prefix: &str, subnet: Subnet, nat: bool, cluster: &[Ipv4Net]) -> String {
    let mut rules = String::new();
    for (family, name) in tables(prefix) {
        rules += &format!("table {family} {name} {{}}\ndelete table {family} {name}\n");
    }
    let cluster_rules = if cluster.is_empty() {
        String::new()
    } else {
        let set = elements(cluster);
        format!(
            "
    iifname \"{prefix}\" ip daddr {{ {set} }} ct state established,related accept
    iifname \"{prefix}\" ip daddr {{ {set} }} drop"
        )
    };
    rules += &format!(
        "table inet {prefix} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname \"{prefix}\" ct state established,related accept
    iifname \"{prefix}\" drop
  }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname \"{prefix}\" oifname \"hako*\" drop
    iifname \"hako*\" oifname \"{prefix}\" drop{cluster_rules}
  }}
}}
table bridge {prefix} {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname \"{prefix}v*\" oifname \"{prefix}v*\" drop
  }}
}}
"
    );
    if nat {
        rules += &format!(
            "table ip {prefix}_nat {{
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {subnet} oifname != \"{prefix}\" masquerade
  }}
}}
"
        );
    }
    rules
}

/// Installs the rules of runtime `prefix`.
pub(crate) fn install(
    prefix: &str,
    subnet: Subnet,
    nat: bool,
    cluster: &[Ipv4Net],
) -> Result<(), NetworkError> {
    apply(&rules(prefix, subnet, nat, cluster)).map_err(NetworkError::Firewall)
}

/// Runs `nft -f -` with `rules`; the error is nft's message (or why nft could not run).
pub(crate) fn apply(rules: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<Ipv4Net> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn set_elements_are_merged_and_truncated() {
        assert_eq!(
            elements(&nets(&[
                "10.77.1.0/24",
                "10.77.0.0/16",
                "10.99.0.12/32",
                "10.99.0.13/32"
            ])),
            "10.77.0.0/16, 10.99.0.12/31"
        );
        assert_eq!(elements(&nets(&["10.77.1.9/24"])), "10.77.1.0/24");
    }

    #[test]
    fn cluster_cidrs_add_a_drop_of_new_connections_after_the_reply_rule() {
        let subnet: Subnet = "10.77.1.0/24".parse().unwrap();
        let without = rules("hakox1", subnet, true, &[]);
        assert!(!without.contains("ip daddr"), "{without}");
        let with = rules(
            "hakox1",
            subnet,
            true,
            &nets(&["10.99.0.0/24", "10.77.0.0/16"]),
        );
        let accept = with
            .find("iifname \"hakox1\" ip daddr { 10.77.0.0/16, 10.99.0.0/24 } ct state established,related accept")
            .expect(&with);
        let drop = with
            .find("iifname \"hakox1\" ip daddr { 10.77.0.0/16, 10.99.0.0/24 } drop")
            .expect(&with);
        assert!(accept < drop, "{with}");
        // Everything else is as without.
        assert_eq!(
            with.lines().count(),
            without.lines().count() + 2,
            "{with}\n---\n{without}"
        );
    }
}
