//! The conformance suite against the etcd backend. Each case starts its own
//! etcd (Debian's `etcd-server`, through `hako_testbed::etcd`) on loopback with
//! free ports and a temp data dir, and stops it when the case ends.
#![cfg(feature = "etcd")]

#[path = "support/suite.rs"]
mod suite;

use std::sync::Arc;

use hako_store::{EtcdStore, Store};
use hako_testbed::etcd::EtcdCluster;

/// A fresh etcd (one member, healthy) and a store connected to it.
async fn make() -> (Arc<dyn Store>, suite::Guard) {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap()
        .expect("etcd did not start (apt-get install -y etcd-server)");
    let url = etcd.members()[0].spec.client_url();
    let store = EtcdStore::connect(&[url]).await.unwrap();
    (Arc::new(store), Box::new(etcd))
}

conformance_suite!(make);
