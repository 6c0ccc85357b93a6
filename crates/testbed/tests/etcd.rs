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
    let err = etcd.put("/t/c", "3").unwrap_err();
    assert!(err.to_string().contains("etcd at"), "{err}");

    etcd.start_member(0).unwrap();
    etcd.wait_quorum(Duration::from_secs(30)).unwrap();
    assert_eq!(
        etcd.range("/t/").unwrap(),
        vec![("/t/a".into(), "1".into()), ("/t/b".into(), "2".into())]
    );
    assert_eq!(etcd.get("/t/c").unwrap(), None);
}
