//! A site created through the bed's front runs on another host and is served through the
//! front's proxy; after a `kill -9` of the agent that ran it, `down` still leaves no process,
//! namespace, link, cgroup or mount.

use crate::cluster::{Cluster, cgroups_of, processes_of};

#[test]
fn a_site_is_served_through_the_front_from_another_node_and_down_leaves_nothing() {
    let mut c = Cluster::up(2, None);
    assert_eq!(c.api.ip(), std::net::IpAddr::V4(c.bed.node(1).addr));
    // The front on host1 runs no instance; host1's node takes none either: host2 runs it.
    c.only_on(2);
    c.create("site", &c.code("site", "from the bed\n"), &[]);
    assert_eq!(c.get("site", "/index.html"), (200, "from the bed\n".into()));
    let i = c.ready("site");
    assert_eq!(c.node_of(&i), 2, "{i:?}");
    let addr: std::net::SocketAddrV4 = i.addr.parse().unwrap();
    assert!(c.bed.node(2).subnet.contains(addr.ip()), "{i:?}");
    // hako routes host2's subnet on host1 by itself (the bed makes no route).
    let routes = c
        .bed
        .node(1)
        .netns
        .ip(&["route", "show", "proto", "77"])
        .unwrap();
    assert!(
        routes.contains(&format!(
            "{} via {}",
            c.bed.node(2).subnet,
            c.bed.node(2).addr
        )),
        "host1's cluster routes: {routes}"
    );

    // A crash of the agent that ran the instance leaves the instance's cgroups and the
    // runtime's state behind: down removes them.
    let prefix = c.bed.node(2).prefix.clone();
    assert!(processes_of(&prefix) > 0, "host2 runs no instance");
    c.bed.kill_agent(2).unwrap();
    // (An instance's cgroup is PREFIX/<its container's number>.)
    let left = cgroups_of(&prefix);
    assert!(
        left.iter().any(|p| !p.ends_with(&prefix)),
        "the crash left no instance cgroup: {left:?}"
    );
    c.down();
    let left = cgroups_of(&prefix);
    assert!(left.is_empty(), "down left cgroups: {left:?}");
}
