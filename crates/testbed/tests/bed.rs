//! The bed without hako: three hosts, an etcd member on each; a host whose cable is cut
//! drops out of etcd while the other two keep the quorum; a second bed of the same name is
//! refused; a detached bed (as `cargo xtask testbed up` leaves it) is taken down from its
//! state dir alone, leaving nothing.

use std::time::Duration;

use hako_testbed::process::wait_until;
use hako_testbed::state::BedState;
use hako_testbed::{Testbed, TestbedConfig, TestbedError, teardown};

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test makes network namespaces, links and processes: run it as root"
    );
}

#[test]
fn a_three_host_bed_with_etcd_comes_up_survives_a_cut_and_goes_without_a_trace() {
    require_root();
    let mut config = TestbedConfig::unique(3);
    let tmp = tempfile::tempdir().unwrap();
    config.state_root = tmp.path().to_path_buf();
    let bed = Testbed::up(config.clone()).unwrap();
    let etcd = bed.etcd();
    assert_eq!(etcd.len(), 3);
    for (i, m) in etcd.members().iter().enumerate() {
        assert_eq!(
            m.spec.ip,
            bed.node(i + 1).addr,
            "member {i} runs on its host"
        );
        assert!(etcd.healthy(i), "member {i} is healthy");
    }
    assert_eq!(bed.node(2).subnet.to_string(), "10.77.2.0/24");
    etcd.put("/bed/k", "v").unwrap();

    // Host 3 loses its network: its member can no longer be asked, the others go on.
    bed.cut_network(3).unwrap();
    assert!(!bed.etcd().healthy(2));
    // If host3's member led, the other two elect a leader first (an election timeout).
    wait_until("a quorum without host3", Duration::from_secs(20), || {
        bed.etcd().has_quorum()
    })
    .unwrap();
    bed.etcd().put("/bed/k2", "v2").unwrap();
    bed.restore_network(3).unwrap();
    wait_until("host3's member back", Duration::from_secs(30), || {
        bed.etcd().healthy(2)
    })
    .unwrap();

    // The same name again is refused while this one runs.
    let again = Testbed::up(config.clone()).unwrap_err();
    assert!(matches!(again, TestbedError::Running { .. }), "{again}");

    // Detached, as xtask leaves it, and taken down from the state dir alone.
    let state = bed.detach().unwrap();
    assert_eq!(state.processes.len(), 3);
    assert!(state.processes.iter().all(|p| p.alive()));
    let saved = BedState::load(&config.state_dir()).unwrap().unwrap();
    assert_eq!(saved, state);
    assert!(teardown::is_up(&config.state_dir(), &config.name));
    let left = teardown::down(&config.state_dir(), &config.name).unwrap();
    assert_eq!(left, Vec::<String>::new());
    assert!(state.processes.iter().all(|p| !p.alive()));
    assert!(!config.state_dir().exists());
    assert!(!teardown::exists(&config.state_dir(), &config.name));
    // Down again: nothing to do, nothing left.
    assert_eq!(
        teardown::down(&config.state_dir(), &config.name).unwrap(),
        Vec::<String>::new()
    );
}
