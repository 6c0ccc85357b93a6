//! The etcd backend on a 3-member cluster (Debian's `etcd-server` on loopback, through
//! `hako_testbed::etcd`) losing members: with the first member — the one the store starts on —
//! stopped, every read, write and lease renewal still succeeds and a watch opened before goes
//! on delivering every change; with two stopped, calls fail as unavailable within the request timeout;
//! with both back, the store works again and nothing written is lost.
#![cfg(feature = "etcd")]

use std::time::{Duration, Instant};

use hako_store::{EtcdStore, Store, StoreError, WatchEvent};
use hako_testbed::etcd::EtcdCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_fails_over_to_live_members_and_waits_out_a_lost_quorum() {
    let mut etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .expect("etcd did not start (apt-get install -y etcd-server)");
    let urls: Vec<String> = etcd.members().iter().map(|m| m.spec.client_url()).collect();
    let store = EtcdStore::connect(&urls).await.unwrap();
    store.put("/k/before", b"1".to_vec()).await.unwrap();
    let lease = store.grant_lease(Duration::from_secs(2)).await.unwrap();
    store
        .put_with_lease("/l/leased", b"1".to_vec(), lease)
        .await
        .unwrap();
    let mut watch = store.watch("/k/", None).await.unwrap();

    let mut etcd = tokio::task::spawn_blocking(move || {
        etcd.stop_member(0).unwrap();
        etcd
    })
    .await
    .unwrap();
    // Every call succeeds, none waits long (a refused connection moves the store at once).
    for i in 0..20 {
        let t = Instant::now();
        let key = format!("/k/{i}");
        store.put(&key, i.to_string().into_bytes()).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_some());
        store.keep_alive(lease).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "call {i} took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(store.range("/k/").await.unwrap().len(), 21);
    assert!(
        store.get("/l/leased").await.unwrap().is_some(),
        "the lease lapsed"
    );
    // The watch (opened on the stopped member) saw all twenty writes, in order.
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.recv())
            .await
            .expect("the watch stalled after its member stopped")
            .expect("the watch ended")
            .unwrap();
        for ev in batch.events {
            if let WatchEvent::Put(kv) = ev {
                seen.push(kv.key);
            }
        }
    }
    let wanted: Vec<String> = (0..20).map(|i| format!("/k/{i}")).collect();
    assert_eq!(seen, wanted);

    // No quorum: unavailable, within the 5 s request timeout (and its one retry).
    let mut etcd = tokio::task::spawn_blocking(move || {
        etcd.stop_member(1).unwrap();
        etcd
    })
    .await
    .unwrap();
    let t = Instant::now();
    let err = store.put("/k/lost", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());

    // Both back: everything is there and writes work again.
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.start_member(0).unwrap();
        etcd.start_member(1).unwrap();
        etcd.wait_quorum(Duration::from_secs(30)).unwrap();
        etcd
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.put("/k/after", b"2".to_vec()).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "the store did not recover: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (The write refused without a quorum may yet be applied: etcd does not say.)
    let keys: Vec<String> = store
        .range("/k/")
        .await
        .unwrap()
        .into_iter()
        .map(|kv| kv.key)
        .filter(|k| k != "/k/lost")
        .collect();
    let mut wanted: Vec<String> = ["/k/after", "/k/before"].map(String::from).to_vec();
    wanted.extend((0..20).map(|i| format!("/k/{i}")));
    wanted.sort();
    assert_eq!(keys, wanted);
    drop(etcd);
}
