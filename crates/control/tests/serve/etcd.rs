//! `hako serve` on a real 3-member etcd (testkit's [`EtcdCluster`] on loopback).

use std::time::Duration;

use hako_testkit::etcd::EtcdCluster;

use crate::{Serve, http, static_site};

/// `hako serve` on etcd serves a site end to end, its apps are in etcd, and it leaves
/// nothing behind when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_etcd_serves_a_site() {
    let etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .unwrap();
    let endpoint = etcd.endpoint();
    let s = Serve::start_with(|c| c.store = endpoint.parse().unwrap()).await;
    s.create(static_site("onetcd")).await;
    s.deploy("onetcd", &[("index.html", "from etcd\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "onetcd.example", "/index.html").await,
        (200, "from etcd\n".into())
    );
    assert!(
        !s.tmp.path().join("hako.db").exists(),
        "the embedded store was used"
    );
    let store = hako_store::open(&etcd.endpoint().parse().unwrap())
        .await
        .unwrap();
    let app: Option<hako_model::App> =
        hako_store::StoreExt::get_json(store.as_ref(), &hako_store::keys::app("onetcd"))
            .await
            .unwrap();
    assert_eq!(app.unwrap().release, Some(1));
    // Stopped, it leaves nothing of its runtime behind (its instance, cgroup scope, bridge
    // and state went with it).
    let prefix = s.prefix.clone();
    s.stop().await;
    assert_eq!(hako_testkit::leftovers(&prefix), Vec::<String>::new());
}

/// With one of three etcd members stopped — the first, the one the store starts on —
/// `hako serve` keeps serving and changing: a new app is stored and served (the store fails
/// over to a live member).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_goes_on_with_one_etcd_member_stopped() {
    let mut etcd = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .unwrap();
    let endpoint = etcd.endpoint();
    let s = Serve::start_with(|c| c.store = endpoint.parse().unwrap()).await;
    s.create(static_site("before")).await;
    s.deploy("before", &[("index.html", "before\n")]).await;
    // The first member is the one a client tries first: the hardest one to lose.
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.stop_member(0).unwrap();
        etcd.wait_quorum(Duration::from_secs(20)).unwrap();
        etcd
    })
    .await
    .unwrap();
    assert_eq!(
        http(s.bound.proxy, "before.example", "/index.html").await,
        (200, "before\n".into())
    );
    s.create(static_site("after")).await;
    s.deploy("after", &[("index.html", "after\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "after.example", "/index.html").await,
        (200, "after\n".into())
    );
    s.stop().await;
    drop(etcd);
}
