//! Routes to the other nodes' instances, kept in step with the cluster's node records: every
//! process that runs a proxy or an agent on a host ([`follow`]) watches `/nodes/` and, whenever
//! the set of (instance subnet, address) pairs changes, makes this host's kernel routes match it
//! with [`hako_runtime::cluster_routes::sync`] (which skips this host's own node, tags its
//! routes `proto 77` and keeps the guard table `inet hakoroutes`).
//!
//! A node's record goes with its lease, so a lost node's route goes too. Every listing also
//! syncs, so a route someone removed by hand comes back at the next (re)connection. Nothing is
//! removed when the process stops: another hako process on the host (a front beside an agent)
//! may still need the routes, and the next one to start puts them right.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hako_model::NodeRecord;
use hako_runtime::Ipv4Net;
use hako_runtime::cluster_routes::{self, PeerRoute};
use hako_store::{Store, StoreError, StoreExt, WatchEvent, keys};

/// How long a failed watch or sync waits before it tries again.
const RETRY: Duration = Duration::from_secs(1);

/// A node's route, from its record: `None` without a subnet (its instances use the host's
/// network) or with an address or subnet that does not parse (logged).
pub fn peer_route(record: &NodeRecord) -> Option<PeerRoute> {
    let subnet = record.subnet.as_deref()?;
    let parsed = (
        subnet.parse::<Ipv4Net>(),
        record.addr.parse::<std::net::Ipv4Addr>(),
    );
    match parsed {
        (Ok(subnet), Ok(via)) => Some(PeerRoute::new(subnet, via)),
        _ => {
            tracing::warn!(
                node = %record.name,
                addr = %record.addr,
                subnet,
                "node record with an address or subnet that is not IPv4: not routed"
            );
            None
        }
    }
}

/// Follows `/nodes/` for ever, syncing this host's cluster routes on every change of the node
/// set (see the module's doc). Run it as a task; abort it to stop.
pub async fn follow(store: Arc<dyn Store>) {
    let mut last: Option<Vec<PeerRoute>> = None;
    loop {
        if let Err(e) = follow_once(&store, &mut last).await {
            tracing::warn!(error = %e, "lost the watch of the nodes; the routes stay; following again");
        }
        // A listing after a lost watch syncs again, whatever it finds.
        last = None;
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow_once(
    store: &Arc<dyn Store>,
    last: &mut Option<Vec<PeerRoute>>,
) -> Result<(), StoreError> {
    let listing = store.list(keys::NODES).await?;
    let mut nodes: BTreeMap<String, PeerRoute> = BTreeMap::new();
    for kv in &listing.kvs {
        if let Some(r) = record(&kv.value).as_ref().and_then(peer_route) {
            nodes.insert(kv.key.clone(), r);
        }
    }
    sync_if_changed(&nodes, last).await;
    let mut watch = store.watch(keys::NODES, Some(listing.revision + 1)).await?;
    while let Some(batch) = watch.recv().await {
        for ev in batch?.events {
            match ev {
                WatchEvent::Put(kv) => match record(&kv.value).as_ref().and_then(peer_route) {
                    Some(r) => nodes.insert(kv.key, r),
                    None => nodes.remove(&kv.key),
                },
                WatchEvent::Delete { key, .. } => nodes.remove(&key),
            };
        }
        sync_if_changed(&nodes, last).await;
    }
    Ok(())
}

fn record(value: &[u8]) -> Option<NodeRecord> {
    serde_json::from_slice(value).ok()
}

/// Syncs when the set differs from the last one synced; a failed sync is retried at the next
/// change or listing (and logged: the host's routes are then as they were).
async fn sync_if_changed(nodes: &BTreeMap<String, PeerRoute>, last: &mut Option<Vec<PeerRoute>>) {
    let mut set: Vec<PeerRoute> = nodes.values().copied().collect();
    set.sort();
    set.dedup();
    if last.as_ref() == Some(&set) {
        return;
    }
    let peers = set.clone();
    match tokio::task::spawn_blocking(move || cluster_routes::sync(&peers)).await {
        Ok(Ok(done)) => {
            if done.changed() {
                tracing::info!(
                    installed = ?done.installed,
                    removed = ?done.removed,
                    kept = done.kept.len(),
                    "cluster routes follow the node set"
                );
            }
            *last = Some(set);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot route to the other nodes' instances");
            *last = None;
        }
        Err(e) => {
            tracing::error!(error = %e, "the cluster routes' sync failed");
            *last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str, subnet: Option<&str>) -> NodeRecord {
        NodeRecord {
            name: "n1".into(),
            addr: addr.into(),
            subnet: subnet.map(Into::into),
            capacity: hako_model::NodeCapacity {
                cpus: 2,
                memory_bytes: 1 << 30,
                max_pids: 4096,
            },
            usage: hako_model::NodeUsage::default(),
            epoch: 1,
            heartbeat_unix_ms: 0,
            cached: Vec::new(),
        }
    }

    #[test]
    fn a_node_is_routed_by_its_subnet_via_its_address_when_both_are_ipv4() {
        let r = peer_route(&node("10.99.0.12", Some("10.77.2.9/24"))).unwrap();
        assert_eq!(r.to_string(), "10.77.2.0/24 via 10.99.0.12");
        assert_eq!(peer_route(&node("10.99.0.12", None)), None);
        assert_eq!(
            peer_route(&node("web2.example", Some("10.77.2.0/24"))),
            None
        );
        assert_eq!(peer_route(&node("10.99.0.12", Some("fd00::/64"))), None);
    }
}
