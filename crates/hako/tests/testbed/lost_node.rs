//! A lost node, both ways it gets lost: host2's agent is killed (`kill -9`; its instance dies
//! with it) and host3's cable is pulled (its agent and its instance run on, cut off). Once
//! their leases expire their sites leave routing; the next request for each cold-starts it on
//! host1 and an event says why. When host3 comes back it first kills what it still ran
//! (fencing): never two copies of a site for longer than the cut.

use std::time::Duration;

use crate::cluster::{Cluster, processes_of, until};

/// Nodes' leases in this test (etcd's shortest is about 2 s).
const LEASE: &str = "2s";

#[test]
fn a_lost_nodes_sites_answer_from_another_node_and_it_is_fenced_when_it_returns() {
    let mut c = Cluster::up(3, Some(LEASE));
    c.only_on(2);
    c.create("a", &c.code("a", "site a\n"), &[]);
    assert_eq!(c.get("a", "/"), (200, "site a\n".into()));
    c.only_on(3);
    c.create("b", &c.code("b", "site b\n"), &[]);
    assert_eq!(c.get("b", "/"), (200, "site b\n".into()));
    let (a, b) = (c.ready("a"), c.ready("b"));
    assert_eq!((c.node_of(&a), c.node_of(&b)), (2, 3));
    c.uncordon_all();
    let (p2, p3) = (c.bed.node(2).prefix.clone(), c.bed.node(3).prefix.clone());

    assert!(processes_of(&p2) > 0 && processes_of(&p3) > 0);
    c.bed.kill_agent(2).unwrap();
    c.bed.cut_network(3).unwrap();
    eprintln!("{:.1}s: host2's agent killed, host3 cut off", c.at());

    // Their leases expire: their instances leave the cluster's records (and the routes).
    let limit = Duration::from_secs(20);
    // (Cutting host3 off costs etcd its member there, maybe its leader: an election, during
    // which the API may answer 503.)
    let on = |app: &str, node: &str| match c.try_instances(app) {
        Ok(list) => Some(list.iter().any(|i| i.node == node)),
        Err(e) => {
            eprintln!("{:.1}s: {e}", c.at());
            None
        }
    };
    let gone = until("a's and b's instances to be dropped", limit, || {
        on("a", "host2") == Some(false) && on("b", "host3") == Some(false)
    });
    eprintln!("{:.1}s: lost nodes noticed after {gone:.1?}", c.at());
    // The next request cold-starts each elsewhere: on host1, the one node left.
    for (app, body) in [("a", "site a\n"), ("b", "site b\n")] {
        let t = std::time::Instant::now();
        assert_eq!(c.get(app, "/"), (200, body.to_string()), "{app}");
        let i = c.ready(app);
        assert_eq!(c.node_of(&i), 1, "{app}: {i:?}");
        eprintln!("{app} answers again from host1 after {:.1?}", t.elapsed());
    }
    assert!(
        processes_of(&p3) > 0,
        "host3 stopped b's instance while cut off"
    );
    let events = c.ok(&["app", "events", "a"]);
    assert!(
        events.contains("host2 was lost"),
        "no event says why a's instance went: {events}"
    );

    // They come back: each first kills what it still runs from before.
    c.bed.restore_network(3).unwrap();
    c.bed.start_agent(2).unwrap();
    c.bed.wait_registered(2, Duration::from_secs(30)).unwrap();
    c.bed.wait_registered(3, Duration::from_secs(30)).unwrap();
    let fenced = until("host3 to kill its old instance", limit, || {
        processes_of(&p3) == 0
    });
    eprintln!(
        "{:.1}s: both fenced ({fenced:.1?} after they were back)",
        c.at()
    );
    for (app, body) in [("a", "site a\n"), ("b", "site b\n")] {
        assert_eq!(c.get(app, "/"), (200, body.to_string()), "{app}");
        assert_eq!(c.node_of(&c.ready(app)), 1);
    }
    c.down();
}
