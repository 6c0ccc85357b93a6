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

/// A listing bigger than gRPC's default 4 MiB limit (about 10,000 apps' records) is read
/// whole, atomically with its revision.
#[tokio::test]
async fn a_listing_over_four_mebibytes_is_read_whole() {
    use hako_store::StoreExt;
    let (store, _guard) = make().await;
    // 6 values of 900 KiB (etcd takes requests up to 1.5 MiB): 5.3 MiB in all.
    let value = vec![b'x'; 900 << 10];
    for i in 0..6 {
        store
            .put(&format!("/big/{i}"), value.clone())
            .await
            .unwrap();
    }
    let listing = store.list("/big/").await.unwrap();
    assert_eq!(listing.kvs.len(), 6);
    assert!(listing.kvs.iter().all(|kv| kv.value.len() == 900 << 10));
    assert_eq!(store.range("/big/").await.unwrap().len(), 6);
}
