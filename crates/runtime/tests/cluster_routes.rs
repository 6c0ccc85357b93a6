//! `cluster_routes::sync` in a host of its own (a network namespace): routes follow the node
//! set — added, kept, replaced, removed — the own node is skipped, an operator's route is
//! never touched, forwarding goes on and the guard table comes and goes with the routes.

mod common;

use hako_runtime::cluster_routes::{self, GUARD_TABLE, PeerRoute};
use hako_testbed::{Lan, Netns, TestbedConfig};

fn peer(subnet: &str, via: std::net::Ipv4Addr) -> PeerRoute {
    PeerRoute::new(subnet.parse().unwrap(), via)
}

/// `ip route show proto 77` in `ns`, one route per line.
fn hako_routes(ns: &Netns) -> Vec<String> {
    ns.ip(&["route", "show", "proto", "77"])
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn guard(ns: &Netns) -> Option<String> {
    let out = ns
        .command("nft")
        .args(["list", "table", "inet", GUARD_TABLE])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn routes_follow_the_node_set_and_leave_other_routes_alone() {
    common::require_root();
    let c = TestbedConfig::unique(1);
    let lan = Lan::up(&c.name, 1, c.lan).unwrap();
    let host = lan.host(1);
    let ns = &host.netns;
    // The n-th address of the LAN (the host itself is the 11th).
    let at = |n: u32| std::net::Ipv4Addr::from(u32::from(lan.subnet().network()) + n);
    ns.sysctl("ipv4/ip_forward", "0").unwrap();
    let own = peer("10.77.1.0/24", host.addr);
    let (p2, p3) = (peer("10.77.2.0/24", at(12)), peer("10.77.3.0/24", at(13)));

    let s = ns
        .run(|| cluster_routes::sync(&[own, p2, p3]))
        .unwrap()
        .unwrap();
    assert_eq!((&s.installed, &s.local), (&vec![p2, p3], &vec![own]));
    assert!(s.refused.is_empty() && s.removed.is_empty(), "{s:?}");
    assert_eq!(
        hako_routes(ns),
        [
            format!("10.77.2.0/24 via {} dev eth0", at(12)),
            format!("10.77.3.0/24 via {} dev eth0", at(13))
        ]
    );
    let forward = ns.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"));
    assert_eq!(forward.unwrap().unwrap().trim(), "1");
    let rules = guard(ns).expect("the guard table exists");
    assert!(rules.contains("10.77.2.0/23"), "{rules}");

    // The same set again: nothing changes.
    let again = ns
        .run(|| cluster_routes::sync(&[p3, own, p2]))
        .unwrap()
        .unwrap();
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.kept, vec![p2, p3]);

    // An operator's route to a subnet a node claims is refused, and stays as it was.
    ns.ip(&[
        "route",
        "add",
        "10.77.9.0/24",
        "via",
        &at(1).to_string(),
        "proto",
        "static",
    ])
    .unwrap();
    let p9 = peer("10.77.9.0/24", at(19));
    let moved = peer("10.77.2.0/24", at(22));
    let s = ns
        .run(|| cluster_routes::sync(&[moved, p9]))
        .unwrap()
        .unwrap();
    assert_eq!((&s.installed, &s.removed), (&vec![moved], &vec![p3]));
    assert_eq!(s.refused.len(), 1, "{s:?}");
    assert_eq!(s.refused[0].route, p9);
    assert!(
        s.refused[0].reason.contains("leaves alone"),
        "{:?}",
        s.refused
    );
    assert_eq!(
        hako_routes(ns),
        [format!("10.77.2.0/24 via {} dev eth0", at(22))]
    );
    assert_eq!(
        ns.ip(&["route", "show", "10.77.9.0/24"]).unwrap().trim(),
        format!("10.77.9.0/24 via {} dev eth0 proto static", at(1))
    );
    assert_eq!(
        ns.run(cluster_routes::installed).unwrap().unwrap(),
        vec![moved]
    );

    // Leaving the cluster: hako's routes and the guard go, the operator's route stays.
    let removed = ns.run(cluster_routes::clear).unwrap().unwrap();
    assert_eq!(removed, vec![moved]);
    assert!(hako_routes(ns).is_empty());
    assert!(guard(ns).is_none());
    assert!(
        !ns.ip(&["route", "show", "10.77.9.0/24"])
            .unwrap()
            .is_empty()
    );
    lan.down().unwrap();
}
