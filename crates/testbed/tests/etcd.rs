//! A real 3-member etcd on loopback: one member lost, the cluster goes on; two lost, no
//! quorum and writes fail; a member back, the quorum returns with nothing lost.

use std::time::Duration;

use hako_testbed::etcd::EtcdCluster;

#[test]
fn three_members_survive_one_loss_and_recover_from_quorum_loss() {
    let mut etcd = EtcdCluster::start(3).unwrap();
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("etcd://127.0.0.1:"), "{endpoint}");
    assert_eq!(endpoint.matches(',').count(), 2, "{endpoint}");
    etcd.put("/t/a", "1").unwrap();

    etcd.stop_member(0).unwrap();
    assert!(!etcd.running(0));
    etcd.wait_quorum(Duration::from_secs(20)).unwrap();
    etcd.put("/t/b", "2").unwrap();

    etcd.kill_member(1);
    hako_testbed::process::wait_until("quorum lost", Duration::from_secs(20), || {
        !etcd.has_quorum()
    })
    .unwrap();
    // A write without a quorum fails for the client (whether it is applied once the quorum
    // is back is etcd's to decide: the last member may have logged it).
    let err = etcd.put("/t/c", "3").unwrap_err();
    assert!(err.to_string().contains("etcd at"), "{err}");

    etcd.start_member(0).unwrap();
    etcd.wait_quorum(Duration::from_secs(30)).unwrap();
    etcd.put("/t/d", "4").unwrap();
    let kept: Vec<(String, String)> = etcd
        .range("/t/")
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k != "/t/c")
        .collect();
    assert_eq!(
        kept,
        [("/t/a", "1"), ("/t/b", "2"), ("/t/d", "4")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
}
