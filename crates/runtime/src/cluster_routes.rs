//! Routes between the nodes of a cluster: every host that runs a proxy or an agent routes each
//! *other* node's instance subnet via that node's address (`ip route replace 10.77.2.0/24 via
//! 10.99.0.12 proto 77`), so a proxy anywhere reaches an instance anywhere.
//!
//! [`sync`] takes the whole current node set and makes the kernel match it: routes of new
//! nodes added, of moved nodes replaced, of nodes that are gone removed; calling it again with
//! the same set changes nothing. It touches only its own routes — tagged with the routing
//! protocol number [`ROUTE_PROTOCOL`] in the main table — and never replaces a route someone
//! else made (a connected network, an operator's static route): such a node is refused, with
//! the reason. An entry whose gateway is one of this host's own addresses is this node
//! itself and is skipped, so callers may pass every node.
//!
//! With the routes comes a guard, the nftables table [`GUARD_TABLE`]: no new connection from
//! any hako bridge to the routed subnets or the nodes' addresses, and none into a hako bridge
//! from another node's instance subnet (replies pass). It backs up the runtime's own rule
//! ([`crate::RuntimeConfig::cluster_cidrs`]), which also covers addresses that are not nodes
//! (fronts without instances, etcd). And IPv4 forwarding is switched on (host-wide), which a
//! node needs to pass the proxies' connections to its instances.
//!
//! Everything here acts on the network namespace of the calling thread, and blocks (netlink
//! and one `nft` run): from async code, call it in `spawn_blocking`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::network::firewall;
use crate::network::netlink::Netlink;
use crate::network::netlink::route::{RT_SCOPE_LINK, RT_TABLE_MAIN, Route};

/// The routing protocol number of hako's cluster routes (`ip route show proto 77`); unused by
/// the protocols iproute2 names (`/etc/iproute2/rt_protos`).
pub const ROUTE_PROTOCOL: u8 = 77;

/// The nftables table (family `inet`) of the guard. No runtime prefix can be this long, so no
/// runtime ever touches it.
pub const GUARD_TABLE: &str = "hakoroutes";

/// The local routing table (addresses of this host).
const RT_TABLE_LOCAL: u32 = 255;
/// A route to one of this host's own addresses.
const RTN_LOCAL: u8 = 2;

/// A node's instance subnet and the node's address, the gateway to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerRoute {
    pub subnet: Ipv4Net,
    pub via: Ipv4Addr,
}

impl PeerRoute {
    pub fn new(subnet: Ipv4Net, via: Ipv4Addr) -> PeerRoute {
        PeerRoute {
            subnet: subnet.trunc(),
            via,
        }
    }
}

impl std::fmt::Display for PeerRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} via {}", self.subnet, self.via)
    }
}

/// A node [`sync`] did not route, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub route: PeerRoute,
    pub reason: String,
}

/// What [`sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Routes added or changed (a node that is new or has a new address).
    pub installed: Vec<PeerRoute>,
    /// Routes that were already right.
    pub kept: Vec<PeerRoute>,
    /// Routes of nodes no longer in the set.
    pub removed: Vec<PeerRoute>,
    /// Entries whose gateway is this host: this node itself, nothing to route.
    pub local: Vec<PeerRoute>,
    /// Nodes that were not routed, each with the reason (also logged).
    pub refused: Vec<Refused>,
}

impl Synced {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.installed.is_empty() || !self.removed.is_empty()
    }
}

/// Why the routes could not be synchronised at all (a single node's problem is a
/// [`Refused`] entry instead).
#[derive(Debug, thiserror::Error)]
pub enum ClusterRouteError {
    #[error("cannot read the kernel's routes over netlink: {0}; hako needs root")]
    Read(std::io::Error),
    #[error("cannot remove route {route}: {source}")]
    Remove {
        route: PeerRoute,
        source: std::io::Error,
    },
    #[error(
        "cannot switch on IPv4 forwarding, which nodes need to reach each other's instances: {0}"
    )]
    Forwarding(std::io::Error),
    #[error("cannot install the cluster guard rules with nft (install the nftables package): {0}")]
    Guard(String),
}

/// The route changes that make `current` (the kernel's routes) match `peers`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    replace: Vec<PeerRoute>,
    keep: Vec<PeerRoute>,
    delete: Vec<PeerRoute>,
    local: Vec<PeerRoute>,
    refuse: Vec<Refused>,
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn net_of(r: &Route) -> Ipv4Net {
    Ipv4Net::new(r.dst, r.dst_len)
        .unwrap_or_else(|_| Ipv4Net::from(r.dst))
        .trunc()
}

fn plan(current: &[Route], peers: &[PeerRoute]) -> Plan {
    let mut p = Plan::default();
    let ours: Vec<&Route> = current
        .iter()
        .filter(|r| r.table == RT_TABLE_MAIN && r.protocol == ROUTE_PROTOCOL)
        .collect();
    let is_local = |a: Ipv4Addr| {
        current
            .iter()
            .any(|r| r.table == RT_TABLE_LOCAL && r.kind == RTN_LOCAL && r.dst == a)
    };
    let mut wanted: Vec<PeerRoute> = peers
        .iter()
        .map(|r| PeerRoute::new(r.subnet, r.via))
        .collect();
    wanted.sort();
    wanted.dedup();
    let refuse = |p: &mut Plan, route: PeerRoute, reason: String| {
        tracing::warn!(%route, %reason, "cluster route refused");
        p.refuse.push(Refused { route, reason });
    };
    for (i, &w) in wanted.iter().enumerate() {
        if is_local(w.via) {
            p.local.push(w);
            continue;
        }
        if let Some(other) = wanted
            .iter()
            .enumerate()
            .find(|&(j, o)| j != i && !is_local(o.via) && overlaps(o.subnet, w.subnet))
            .map(|(_, o)| o)
        {
            let reason =
                format!("its subnet overlaps {other}'s: give every node a subnet of its own");
            refuse(&mut p, w, reason);
            continue;
        }
        if w.subnet.contains(&w.via) {
            let reason = "the gateway lies inside the subnet it should lead to".to_string();
            refuse(&mut p, w, reason);
            continue;
        }
        let foreign = current.iter().find(|r| {
            r.table == RT_TABLE_MAIN
                && r.protocol != ROUTE_PROTOCOL
                && ((net_of(r) == w.subnet && r.priority == 0)
                    || (r.scope == RT_SCOPE_LINK && overlaps(net_of(r), w.subnet)))
        });
        if let Some(r) = foreign {
            let reason = format!(
                "this host already has a route to {} (protocol {}) that hako leaves alone: \
                 give the node another subnet or remove that route",
                net_of(r),
                r.protocol
            );
            refuse(&mut p, w, reason);
            continue;
        }
        let right = ours
            .iter()
            .any(|r| net_of(r) == w.subnet && r.gateway == Some(w.via) && r.priority == 0);
        if right {
            p.keep.push(w);
        } else {
            p.replace.push(w);
        }
    }
    for r in ours {
        let net = net_of(r);
        // A metric-0 route of a routed subnet is kept or replaced in place.
        let stays = r.priority == 0 && p.keep.iter().chain(&p.replace).any(|w| w.subnet == net);
        if !stays {
            p.delete.push(PeerRoute {
                subnet: net,
                via: r.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
            });
        }
    }
    p
}

/// The guard's rules for the routed nodes (an empty set of routes: no table).
fn guard_rules(routed: &[PeerRoute]) -> String {
    let mut rules = format!("table inet {GUARD_TABLE} {{}}\ndelete table inet {GUARD_TABLE}\n");
    if routed.is_empty() {
        return rules;
    }
    let subnets: Vec<Ipv4Net> = routed.iter().map(|r| r.subnet).collect();
    let nodes: Vec<Ipv4Net> = routed.iter().map(|r| Ipv4Net::from(r.via)).collect();
    rules += &format!(
        "table inet {GUARD_TABLE} {{
  set subnets {{ type ipv4_addr; flags interval; elements = {{ {} }} }}
  set nodes {{ type ipv4_addr; flags interval; elements = {{ {} }} }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    iifname \"hako*\" ip daddr @subnets drop
    iifname \"hako*\" ip daddr @nodes drop
    oifname \"hako*\" ip saddr @subnets drop
  }}
}}
",
        firewall::elements(&subnets),
        firewall::elements(&nodes),
    );
    rules
}

/// Makes this host's cluster routes match `peers` (every node's instance subnet and address;
/// this node's own entry is recognised and skipped). See the module's doc.
pub fn sync(peers: &[PeerRoute]) -> Result<Synced, ClusterRouteError> {
    let nl = Netlink::open().map_err(ClusterRouteError::Read)?;
    let current = nl.routes().map_err(ClusterRouteError::Read)?;
    let plan = plan(&current, peers);
    let mut done = Synced {
        kept: plan.keep,
        local: plan.local,
        refused: plan.refuse,
        ..Synced::default()
    };
    for r in plan.delete {
        nl.delete_route(r.subnet.network(), r.subnet.prefix_len(), ROUTE_PROTOCOL)
            .map_err(|source| ClusterRouteError::Remove { route: r, source })?;
        tracing::info!(route = %r, "cluster route removed");
        done.removed.push(r);
    }
    for r in plan.replace {
        match nl.replace_route(
            r.subnet.network(),
            r.subnet.prefix_len(),
            r.via,
            ROUTE_PROTOCOL,
        ) {
            Ok(()) => {
                tracing::info!(route = %r, "cluster route installed");
                done.installed.push(r);
            }
            Err(e) => {
                let reason = format!("the kernel refused the route: {e}");
                tracing::warn!(route = %r, %reason, "cluster route refused");
                done.refused.push(Refused { route: r, reason });
            }
        }
    }
    let routed: Vec<PeerRoute> = done.installed.iter().chain(&done.kept).copied().collect();
    if !routed.is_empty() {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(ClusterRouteError::Forwarding)?;
    }
    firewall::apply(&guard_rules(&routed)).map_err(ClusterRouteError::Guard)?;
    Ok(done)
}

/// hako's cluster routes now in the kernel.
pub fn installed() -> Result<Vec<PeerRoute>, ClusterRouteError> {
    let nl = Netlink::open().map_err(ClusterRouteError::Read)?;
    let mut out: Vec<PeerRoute> = nl
        .routes()
        .map_err(ClusterRouteError::Read)?
        .iter()
        .filter(|r| r.table == RT_TABLE_MAIN && r.protocol == ROUTE_PROTOCOL)
        .map(|r| PeerRoute {
            subnet: net_of(r),
            via: r.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Removes every cluster route and the guard (a node leaving the cluster); returns what was
/// removed. Forwarding stays on.
pub fn clear() -> Result<Vec<PeerRoute>, ClusterRouteError> {
    sync(&[]).map(|s| s.removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, via: Option<&str>, protocol: u8, scope: u8) -> Route {
        let net: Ipv4Net = dst.parse().unwrap();
        Route {
            dst: net.network(),
            dst_len: net.prefix_len(),
            gateway: via.map(|v| v.parse().unwrap()),
            protocol,
            table: RT_TABLE_MAIN,
            scope,
            kind: 1,
            oif: Some(2),
            priority: 0,
        }
    }

    fn local(addr: &str) -> Route {
        Route {
            table: RT_TABLE_LOCAL,
            kind: RTN_LOCAL,
            ..route(&format!("{addr}/32"), None, 2, 254)
        }
    }

    fn peer(subnet: &str, via: &str) -> PeerRoute {
        PeerRoute::new(subnet.parse().unwrap(), via.parse().unwrap())
    }

    /// A host 10.99.0.11 with its own instance bridge 10.77.1.0/24.
    fn host() -> Vec<Route> {
        vec![
            route("10.99.0.0/24", None, 2, RT_SCOPE_LINK),
            route("10.77.1.0/24", None, 2, RT_SCOPE_LINK),
            route("0.0.0.0/0", Some("10.99.0.1"), 4, 0),
            local("10.99.0.11"),
            local("10.77.1.1"),
        ]
    }

    #[test]
    fn new_nodes_are_routed_and_the_own_node_is_skipped() {
        let nodes = [
            peer("10.77.1.0/24", "10.99.0.11"),
            peer("10.77.2.0/24", "10.99.0.12"),
            peer("10.77.3.0/24", "10.99.0.13"),
        ];
        let p = plan(&host(), &nodes);
        assert_eq!(p.replace, nodes[1..].to_vec());
        assert_eq!(p.local, vec![nodes[0]]);
        assert!(
            p.keep.is_empty() && p.delete.is_empty() && p.refuse.is_empty(),
            "{p:?}"
        );
    }

    #[test]
    fn right_routes_are_kept_moved_ones_replaced_gone_ones_deleted() {
        let mut current = host();
        current.push(route("10.77.2.0/24", Some("10.99.0.12"), ROUTE_PROTOCOL, 0));
        current.push(route("10.77.3.0/24", Some("10.99.0.13"), ROUTE_PROTOCOL, 0));
        current.push(route("10.77.4.0/24", Some("10.99.0.14"), ROUTE_PROTOCOL, 0));
        let p = plan(
            &current,
            &[
                peer("10.77.2.0/24", "10.99.0.12"),
                peer("10.77.3.0/24", "10.99.0.23"),
            ],
        );
        assert_eq!(p.keep, vec![peer("10.77.2.0/24", "10.99.0.12")]);
        assert_eq!(p.replace, vec![peer("10.77.3.0/24", "10.99.0.23")]);
        assert_eq!(p.delete, vec![peer("10.77.4.0/24", "10.99.0.14")]);
    }

    #[test]
    fn routes_made_by_others_are_never_replaced() {
        let mut current = host();
        current.push(route("10.77.5.0/24", Some("10.99.0.1"), 4, 0)); // an operator's static route
        let p = plan(
            &current,
            &[
                peer("10.77.5.0/24", "10.99.0.15"),
                peer("10.77.1.0/25", "10.99.0.16"), // inside this host's own bridge subnet
            ],
        );
        assert!(p.replace.is_empty() && p.delete.is_empty(), "{p:?}");
        assert_eq!(p.refuse.len(), 2, "{p:?}");
        assert!(
            p.refuse.iter().all(|r| r.reason.contains("leaves alone")),
            "{p:?}"
        );
    }

    #[test]
    fn nodes_claiming_overlapping_subnets_are_both_refused() {
        let p = plan(
            &host(),
            &[
                peer("10.77.2.0/24", "10.99.0.12"),
                peer("10.77.2.0/24", "10.99.0.13"),
                peer("10.77.3.0/24", "10.99.0.14"),
                peer("10.77.3.0/24", "10.99.0.14"), // the same twice is one
            ],
        );
        assert_eq!(p.replace, vec![peer("10.77.3.0/24", "10.99.0.14")]);
        let refused: Vec<_> = p.refuse.iter().map(|r| r.route).collect();
        assert_eq!(
            refused,
            vec![
                peer("10.77.2.0/24", "10.99.0.12"),
                peer("10.77.2.0/24", "10.99.0.13")
            ]
        );
    }

    #[test]
    fn the_guard_blocks_new_connections_both_ways_and_goes_with_the_last_route() {
        let rules = guard_rules(&[
            peer("10.77.2.0/24", "10.99.0.12"),
            peer("10.77.3.0/24", "10.99.0.13"),
        ]);
        assert!(rules.contains("elements = { 10.77.2.0/23 }"), "{rules}");
        assert!(rules.contains("elements = { 10.99.0.12/31 }"), "{rules}");
        let first_drop = rules.find(" drop").unwrap();
        assert!(rules.find("ct state established,related accept").unwrap() < first_drop);
        assert!(
            rules.contains("oifname \"hako*\" ip saddr @subnets drop"),
            "{rules}"
        );
        assert_eq!(
            guard_rules(&[]),
            format!("table inet {GUARD_TABLE} {{}}\ndelete table inet {GUARD_TABLE}\n")
        );
    }
}
