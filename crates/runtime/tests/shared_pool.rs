//! The shared warm pool's slots: a container made in a slot has the slot's address and
//! cgroup, its own root and mounts, `/run/hako/instance`, and answers the host; a slot
//! dropped unused, and a container made in one, leave nothing behind.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::TestRuntime;

fn get(addr: std::net::Ipv4Addr, port: u16) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect((addr, port)) {
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
            let mut r = String::new();
            s.read_to_string(&mut r).ok()?;
            return Some(r);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_container_in_a_slot_takes_its_network_and_cgroup_and_makes_its_own_root() {
    let t = TestRuntime::new();
    let slot = t.rt.make_slot().unwrap();
    let addr = slot.address().unwrap();
    let id = slot.id().to_string();
    let mut spec = t.sh(
        "mkdir -p /tmp/www && cat /run/hako/instance > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
    );
    spec.instance = Some("site-7f".into());
    spec.limits.memory_max = Some(64 << 20);
    let c = t.rt.create_in(&spec, slot).unwrap();
    assert_eq!(c.id(), id, "the slot's cgroup is the container's");
    assert_eq!(
        c.address(),
        Some(addr),
        "the slot's address is the container's"
    );
    c.start().unwrap();
    let body = get(addr, 8080).expect("the container in the slot answers");
    assert!(body.ends_with("site-7f"), "{body}");
    // The slot's cgroup got the spec's memory limit when it was taken.
    let prefix = &t.rt.config().prefix;
    let limit = [
        format!("/sys/fs/cgroup/memory/{prefix}/{id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/{prefix}/{id}/memory.max"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("the container's cgroup");
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    c.kill().unwrap();
    let _ = c.wait().await;
    c.remove().unwrap();
    // An unused slot goes with its cgroup and veth.
    let unused = t.rt.make_slot().unwrap();
    assert!(!t.leftovers().is_empty());
    drop(unused);
    assert_eq!(t.leftovers(), Vec::<String>::new());
}

#[tokio::test]
async fn every_container_names_its_instance_in_run_hako_instance() {
    let t = TestRuntime::new();
    let mut spec = t.sh("cat /run/hako/instance; ls -ld /run/hako/instance");
    spec.instance = Some("blog-1a2b".into());
    let (status, out) = t.run(&spec).await;
    assert!(status.success(), "{out}");
    assert!(out.starts_with("blog-1a2b"), "{out}");
    assert!(
        out.contains("-rw-r--r--"),
        "readable by the app's user: {out}"
    );
    // Not a name hako would write into a file.
    let mut bad = t.sh("true");
    bad.instance = Some("../x".into());
    assert!(t.rt.create(&bad).is_err());
}
