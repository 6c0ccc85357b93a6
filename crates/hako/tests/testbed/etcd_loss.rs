//! The cluster's etcd losing members: one of three stopped — sites are served, apps created
//! and started; two stopped (no quorum), for longer than the nodes' leases — the API answers
//! 503 saying why, the proxy serves the sites it routes all along and refuses cold starts with
//! a 503; both back — everything works again, nothing stored is lost and no node was taken
//! for lost (the instances that served before still do).

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, until};

#[test]
fn one_etcd_member_lost_changes_nothing_and_a_lost_quorum_costs_changes_but_no_traffic() {
    let mut c = Cluster::up(3, Some("2s"));
    c.create("before", &c.code("before", "before\n"), &[]);
    assert_eq!(c.get("before", "/"), (200, "before\n".into()));
    let before = c.ready("before").id;
    // Stored, never started: its first request comes while etcd has no quorum.
    c.create("cold", &c.code("cold", "cold\n"), &[]);

    // One member of three stopped (host3's): everything goes on, changes too.
    c.bed.etcd_mut().stop_member(2).unwrap();
    assert_eq!(c.get("before", "/"), (200, "before\n".into()));
    c.create("during", &c.code("during", "during\n"), &[]);
    assert_eq!(c.get("during", "/"), (200, "during\n".into()));
    let during = c.ready("during").id;
    c.ok(&["app", "list"]);
    eprintln!("{:.1}s: one etcd member down, all served", c.at());

    // Two stopped: no quorum.
    c.bed.etcd_mut().stop_member(1).unwrap();
    let client = c.client();
    let t = Instant::now();
    let err = client
        .list_apps()
        .expect_err("the API answered without a quorum");
    assert_eq!(err.status(), Some(503), "{err}");
    assert!(err.to_string().contains("quorum"), "{err}");
    eprintln!(
        "{:.1}s: no quorum: the API answers 503 in {:.1?}",
        c.at(),
        t.elapsed()
    );
    let code = c.code("refused", "refused\n");
    let out = c.hako(&[
        "app",
        "create",
        "refused",
        "--host",
        "refused.example",
        "--image",
        "base",
        "--code",
        code.to_str().unwrap(),
        "--cmd",
        hako_testkit::site::STATIC_CMD,
    ]);
    assert!(
        !out.success() && out.text().contains("no quorum"),
        "{}",
        out.text()
    );
    // Routed sites keep answering, for longer than a lease; a cold start cannot be scheduled.
    let (status, body) = c.get("cold", "/");
    assert_eq!(status, 503, "a cold start without a quorum: {body}");
    let outage = Instant::now();
    let mut served = 0;
    while outage.elapsed() < Duration::from_secs(3) {
        for app in ["before", "during"] {
            assert_eq!(c.get(app, "/"), (200, format!("{app}\n")), "{app}");
            served += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{:.1}s: {served} requests served without a quorum", c.at());

    // Both back: everything works, nothing stored is lost.
    c.bed.etcd_mut().start_member(1).unwrap();
    c.bed.etcd_mut().start_member(2).unwrap();
    c.bed
        .etcd_mut()
        .wait_quorum(Duration::from_secs(30))
        .unwrap();
    let back = until("the API to answer again", Duration::from_secs(20), || {
        client.list_apps().is_ok()
    });
    eprintln!(
        "{:.1}s: quorum back; the API answers after {back:.1?}",
        c.at()
    );
    let mut names: Vec<String> = client
        .list_apps()
        .unwrap()
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    names.sort();
    assert_eq!(names, ["before", "cold", "during"]);
    // No node was lost: the instances that served before the outage serve after it.
    assert_eq!(
        (c.ready("before").id, c.ready("during").id),
        (before, during)
    );
    assert_eq!(c.get("cold", "/"), (200, "cold\n".into()));
    c.create("after", &c.code("after", "after\n"), &[]);
    assert_eq!(c.get("after", "/"), (200, "after\n".into()));
    assert_eq!(c.get("before", "/"), (200, "before\n".into()));
    c.down();
}
