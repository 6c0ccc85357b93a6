//! Placement: which node gets an app's next instance. Pure: the caller gives what it knows of
//! the nodes and the app; nothing here reads the store or the clock.
//!
//! Nodes that are alive, schedulable (not cordoned or draining) and have room (free memory for
//! the app's limit, enough cores for its CPU limit) are ranked by rendezvous hashing of the
//! app's uid over the node names, so an app's starts go to the same node while it has room (its
//! warm pool, page cache and release are there) and apps spread evenly over the nodes. An app
//! that already runs somewhere prefers a node where it does not (spread), before the hash.

use hako_model::{App, NodeCapacity, NodeState};

/// What the scheduler knows of one node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub name: String,
    pub capacity: NodeCapacity,
    pub state: NodeState,
    /// The sum of the memory limits of the instances assigned to it.
    pub memory_assigned: u64,
    /// Instances of this very app assigned to it.
    pub of_app: u32,
}

/// Why no node can take the instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoPlace {
    #[error("no node is registered in the cluster: start `hako agent` on a host")]
    NoNodes,
    #[error("every node is cordoned or draining: uncordon one with `hako node uncordon`")]
    NoneSchedulable,
    #[error(
        "no node has room for {app}: it needs {need} of memory{cpu}; free memory is at most {best} on any node"
    )]
    NoRoom {
        app: String,
        need: String,
        cpu: String,
        best: String,
    },
}

/// The node for the next instance of `app`, or why there is none.
pub(crate) fn place(app: &App, nodes: &[Candidate]) -> Result<String, NoPlace> {
    if nodes.is_empty() {
        return Err(NoPlace::NoNodes);
    }
    let schedulable: Vec<&Candidate> = nodes.iter().filter(|n| n.state.schedulable()).collect();
    if schedulable.is_empty() {
        return Err(NoPlace::NoneSchedulable);
    }
    let need = app.spec.memory.0;
    let fits = |n: &&Candidate| {
        let free = n.capacity.memory_bytes.saturating_sub(n.memory_assigned);
        free >= need && app.spec.cpu.is_none_or(|c| c <= f64::from(n.capacity.cpus))
    };
    let room: Vec<&Candidate> = schedulable.iter().copied().filter(fits).collect();
    if room.is_empty() {
        let best = schedulable
            .iter()
            .map(|n| n.capacity.memory_bytes.saturating_sub(n.memory_assigned))
            .max()
            .unwrap_or(0);
        return Err(NoPlace::NoRoom {
            app: app.spec.name.clone(),
            need: hako_model::units::format_size(need),
            cpu: app
                .spec
                .cpu
                .map(|c| format!(" and {c} cores"))
                .unwrap_or_default(),
            best: hako_model::units::format_size(best),
        });
    }
    let seed = if app.uid.is_empty() {
        &app.spec.name
    } else {
        &app.uid
    };
    room.iter()
        .max_by_key(|n| (n.of_app == 0, score(seed, &n.name)))
        .map(|n| n.name.clone())
        .ok_or(NoPlace::NoNodes)
}

/// Rendezvous (highest random weight) score of a node for an app: FNV-1a of both, mixed.
fn score(app: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in app.bytes().chain([0xff]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix so that close names do not get close scores.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, memory: &str) -> App {
        let mut spec = hako_model::AppSpec::new(
            name,
            vec![format!("{name}.example")],
            "base".parse().unwrap(),
            "serve",
        );
        spec.memory = memory.parse().unwrap();
        App {
            spec,
            uid: format!("uid-{name}"),
            release: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        }
    }

    fn node(name: &str, gib: u64) -> Candidate {
        Candidate {
            name: name.into(),
            capacity: NodeCapacity {
                cpus: 2,
                memory_bytes: gib << 30,
                max_pids: 32768,
            },
            state: NodeState::Active,
            memory_assigned: 0,
            of_app: 0,
        }
    }

    #[test]
    fn an_app_sticks_to_its_node_and_apps_spread() {
        let nodes: Vec<Candidate> = (1..=3).map(|i| node(&format!("n{i}"), 8)).collect();
        let a = app("blog", "256MiB");
        let first = place(&a, &nodes).unwrap();
        for _ in 0..10 {
            assert_eq!(
                place(&a, &nodes).unwrap(),
                first,
                "the same node while it has room"
            );
        }
        let mut per_node = std::collections::HashMap::new();
        for i in 0..300 {
            *per_node
                .entry(place(&app(&format!("s{i}"), "64MiB"), &nodes).unwrap())
                .or_insert(0u32) += 1;
        }
        assert_eq!(per_node.len(), 3);
        assert!(
            per_node.values().all(|n| (60..=140).contains(n)),
            "{per_node:?}"
        );
    }

    #[test]
    fn a_second_instance_goes_elsewhere_and_full_or_cordoned_nodes_are_skipped() {
        let a = app("blog", "1GiB");
        let mut nodes: Vec<Candidate> = (1..=3).map(|i| node(&format!("n{i}"), 8)).collect();
        let first = place(&a, &nodes).unwrap();
        nodes.iter_mut().find(|n| n.name == first).unwrap().of_app = 1;
        let second = place(&a, &nodes).unwrap();
        assert_ne!(second, first, "spread");
        // Full: the first node has no memory left.
        for n in &mut nodes {
            n.of_app = 0;
        }
        nodes
            .iter_mut()
            .find(|n| n.name == first)
            .unwrap()
            .memory_assigned = 7 << 30 | 1;
        assert_ne!(place(&a, &nodes).unwrap(), first);
        // Cordoned and draining nodes take nothing.
        for n in &mut nodes {
            n.memory_assigned = 0;
            n.state = NodeState::Cordoned;
        }
        assert_eq!(place(&a, &nodes), Err(NoPlace::NoneSchedulable));
        nodes[2].state = NodeState::Active;
        assert_eq!(place(&a, &nodes).unwrap(), "n3");
        nodes[2].state = NodeState::Draining;
        assert!(place(&a, &nodes).is_err());
        assert_eq!(place(&a, &[]), Err(NoPlace::NoNodes));
    }

    #[test]
    fn no_room_says_what_was_needed() {
        let nodes = vec![node("n1", 1)];
        let err = place(&app("big", "2GiB"), &nodes).unwrap_err();
        assert!(err.to_string().contains("2GiB"), "{err}");
        let mut a = app("cpu", "64MiB");
        a.spec.cpu = Some(4.0);
        assert!(matches!(place(&a, &nodes), Err(NoPlace::NoRoom { .. })));
    }
}
