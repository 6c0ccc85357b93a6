//! The bed's network: hosts as namespaces on a bridge reach each other and are reached from
//! the machine; a cut cable isolates one host; programs run "on" a host see its network,
//! keep the cgroup hierarchies and get a `/run/hako` of their own; nothing is left after.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hako_testbed::{Lan, TestbedConfig, teardown};

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test makes network namespaces and links: run it as root"
    );
}

/// A listener on `addr` inside host `ns`, answering every connection with `reply`.
fn serve(host: &hako_testbed::LanHost, port: u16, reply: &'static str) {
    let addr: SocketAddr = (host.addr, port).into();
    let l = host.netns.run(|| TcpListener::bind(addr)).unwrap().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(reply.as_bytes());
        }
    });
}

fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn hosts_reach_each_other_until_a_cable_is_cut_and_leave_nothing() {
    require_root();
    let c = TestbedConfig::unique(2);
    let lan = Lan::up(&c.name, 2, c.lan).unwrap();
    let (h1, h2) = (lan.host(1).clone(), lan.host(2).clone());
    let base = u32::from(c.lan.network());
    assert_eq!(
        (u32::from(h1.addr), u32::from(h2.addr)),
        (base + 11, base + 12)
    );
    serve(&h2, 7000, "from host2");
    let to_h2: SocketAddr = (h2.addr, 7000).into();
    // From the machine (through the bridge) and from host1 (through its eth0).
    assert_eq!(fetch(to_h2).unwrap(), "from host2");
    assert_eq!(
        h1.netns.run(|| fetch(to_h2)).unwrap().unwrap(),
        "from host2"
    );
    lan.cut(2).unwrap();
    assert!(
        h1.netns.run(|| fetch(to_h2)).unwrap().is_err(),
        "the cable is cut"
    );
    assert!(fetch(to_h2).is_err());
    lan.plug(2).unwrap();
    hako_testbed::process::wait_until("host2 back", Duration::from_secs(10), || {
        h1.netns.run(|| fetch(to_h2).is_ok()).unwrap()
    })
    .unwrap();
    let name = c.name.clone();
    lan.down().unwrap();
    assert_eq!(
        teardown::leftovers(&c.state_dir(), &name, None),
        Vec::<String>::new()
    );
}

#[test]
fn a_program_on_a_host_sees_that_host_and_keeps_the_cgroups() {
    require_root();
    let c = TestbedConfig::unique(1);
    let lan = Lan::up(&c.name, 1, c.lan).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (scratch, run) = (dir.path().join("scratch"), dir.path().join("run"));
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let out = lan
        .host(1)
        .netns
        .host_command("sh", &scratch, &run)
        .args([
            "-c",
            "ls /sys/class/net; grep -c ' /sys/fs/cgroup' /proc/self/mountinfo; \
             echo mine > /run/hako/probe; ip -4 -o addr show dev eth0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["eth0", "lo"], "{text}");
    let cgroup_mounts: usize = lines[2].parse().unwrap();
    let ours = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .count();
    assert_eq!(cgroup_mounts, ours, "{text}");
    assert!(lines[3].contains(&lan.host(1).addr.to_string()), "{text}");
    assert_eq!(
        std::fs::read_to_string(run.join("probe")).unwrap(),
        "mine\n"
    );
    assert!(!std::path::Path::new("/run/hako/probe").exists());
    lan.down().unwrap();
}
