//! Limits are checked against what the node can give (the fake backend's
//! [`crate::harness::CAPACITY`]: 2 cores, 4 GiB, 32768 pids) at create and at update: a spec
//! that could never start is refused with a message naming the limit and what the node has.

use hako_api::AppPatch;

use crate::harness::{CAPACITY, Server, api_status, spec};

/// A change to a spec, named, with the message it must meet.
type Case = (&'static str, fn(&mut hako_model::AppSpec), &'static str);

#[test]
fn limits_beyond_the_node_are_refused_at_create() {
    let server = Server::start();
    let client = server.client();
    let cases: Vec<Case> = vec![
        (
            "cpu",
            |s| s.cpu = Some(64.0),
            "cpu limit of 64 cores is more than this node has (2 cores): give at most 2",
        ),
        (
            "cpu",
            |s| s.cpu = Some(2.5),
            "cpu limit of 2.5 cores is more than this node has (2 cores)",
        ),
        (
            "pids",
            |s| s.pids = 99_999_999_999,
            "pids limit of 99999999999 is more than this node allows (32768): give at most 32768",
        ),
        (
            "memory",
            |s| s.memory = hako_model::ByteSize(5 << 30),
            "memory limit of 5GiB is more than this node has (4GiB)",
        ),
    ];
    for (what, change, message) in cases {
        let mut s = spec("blog", "blog.example");
        change(&mut s);
        let (status, msg) = api_status(client.create_app(&s).unwrap_err());
        assert_eq!(status, 400, "{what}: {msg}");
        assert!(msg.contains(message), "{what}: {msg:?} lacks {message:?}");
    }
    assert!(client.list_apps().unwrap().is_empty(), "nothing stored");

    // Exactly what the node has is fine.
    let mut s = spec("blog", "blog.example");
    s.cpu = Some(f64::from(CAPACITY.cpus));
    s.pids = CAPACITY.max_pids;
    s.memory = hako_model::ByteSize(CAPACITY.memory_bytes);
    client.create_app(&s).unwrap();
}

#[test]
fn limits_beyond_the_node_are_refused_at_update() {
    let server = Server::start();
    let client = server.client();
    let created = client.create_app(&spec("blog", "blog.example")).unwrap();
    let too_much = AppPatch {
        cpu: Some(Some(64.0)),
        ..AppPatch::default()
    };
    let (status, msg) = api_status(client.update_app("blog", &too_much).unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("more than this node has (2 cores)"), "{msg}");
    let too_many = AppPatch {
        pids: Some(99_999_999_999),
        ..AppPatch::default()
    };
    let (status, msg) = api_status(client.update_app("blog", &too_many).unwrap_err());
    assert_eq!(status, 400);
    assert!(msg.contains("give at most 32768"), "{msg}");
    assert_eq!(client.app("blog").unwrap(), created, "nothing stored");

    let fits = AppPatch {
        cpu: Some(Some(1.5)),
        ..AppPatch::default()
    };
    assert_eq!(
        client.update_app("blog", &fits).unwrap().spec.cpu,
        Some(1.5)
    );
}
