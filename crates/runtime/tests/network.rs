//! Network modes: isolated containers reach neither the host's loopback services nor each
//! other; the host reaches them; host-mode containers share the host's network.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::TestRuntime;
use hako_runtime::NetworkMode;

/// A host server on 127.0.0.1 answering every connection with "host-secret".
fn host_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(b"host-secret\n");
        }
    });
    port
}

#[tokio::test]
async fn isolated_cannot_reach_host_loopback_but_host_mode_can() {
    let t = TestRuntime::new();
    let port = host_server();
    let probe = format!("echo | timeout 3 nc 127.0.0.1 {port} || echo unreachable");
    let (_, out) = t.run(&t.sh(&probe)).await;
    assert!(
        out.contains("unreachable") && !out.contains("host-secret"),
        "{out}"
    );

    let mut spec = t.sh(&probe);
    spec.network = NetworkMode::Host;
    let (_, out) = t.run(&spec).await;
    assert!(
        out.contains("host-secret"),
        "host mode should share the host's loopback: {out}"
    );
}

#[tokio::test]
async fn isolated_instances_cannot_reach_each_other_but_the_host_reaches_them() {
    let t = TestRuntime::new();
    let web = t.sh("mkdir -p /tmp/www && echo from-a > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www");
    let a = t.rt.run(&web).unwrap();
    let addr = a.address().unwrap();
    // The host reaches A (bounded wait for httpd to listen).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        match std::net::TcpStream::connect((addr, 8080)) {
            Ok(mut s) => {
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
                let mut r = String::new();
                s.read_to_string(&mut r).unwrap();
                break r;
            }
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => panic!("host cannot reach the container at {addr}: {e}"),
        }
    };
    assert!(body.contains("from-a"), "{body}");
    // B cannot.
    let (_, out) = t
        .run(&t.sh(&format!(
            "timeout 3 wget -q -O - http://{addr}:8080/index.html || echo unreachable"
        )))
        .await;
    assert!(
        out.contains("unreachable") && !out.contains("from-a"),
        "{out}"
    );
    // Nor can B reach the bridge's own address (the host) on any port.
    let gw = t.rt.config().subnet.gateway();
    let port = host_server();
    let _ = port;
    let (_, out) = t
        .run(&t.sh(&format!("echo | timeout 3 nc {gw} 22 || echo unreachable")))
        .await;
    assert!(out.contains("unreachable"), "{out}");
    a.stop(Duration::from_millis(200)).await.unwrap();
    a.remove().unwrap();
    assert!(t.leftovers().is_empty(), "{:?}", t.leftovers());
}

#[tokio::test]
async fn isolated_container_has_loopback_and_its_own_address() {
    let t = TestRuntime::new();
    let (status, out) = t
        .run(&t.sh("ip -4 -o addr | awk '{print $2, $4}'; ip route | head -1"))
        .await;
    assert!(status.success(), "{out}");
    assert!(out.contains("lo 127.0.0.1/8"), "{out}");
    let subnet = t.rt.config().subnet;
    let net = subnet.base.octets();
    let prefix = format!("eth0 {}.{}.{}.", net[0], net[1], net[2]);
    assert!(out.contains(&prefix), "{out}");
    assert!(
        out.contains(&format!("default via {}", subnet.gateway())),
        "{out}"
    );

    let mut spec = t.sh("ip -o link | grep -c -v ' lo:'");
    spec.network = NetworkMode::None;
    let (_, out) = t.run(&spec).await;
    assert_eq!(out.trim(), "0", "network none has only loopback");
}

#[tokio::test]
async fn a_removed_containers_address_leaves_no_stale_arp_entry() {
    // Addresses are reused; a stale neighbour entry (old MAC) would cost the next container
    // with that address a second of ARP retries on its first packets.
    let t = TestRuntime::new();
    let web = t.sh("mkdir -p /tmp/w && echo x > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w");
    let a = t.rt.run(&web).unwrap();
    let addr = a.address().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((addr, 8080)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "container never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let bridge = t.rt.config().prefix.clone();
    let neigh = |ip: std::net::Ipv4Addr| {
        let o = std::process::Command::new("ip")
            .args(["neigh", "show", "dev", &bridge, "to", &ip.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert!(
        !neigh(addr).is_empty(),
        "the host talked to the container: it has an ARP entry"
    );
    a.stop(Duration::from_millis(100)).await.unwrap();
    a.remove().unwrap();
    assert_eq!(neigh(addr), "", "stale ARP entry left for {addr}");
}

#[tokio::test]
async fn the_bridge_keeps_its_address_as_containers_come_and_go() {
    // A bridge without a set address takes its lowest port's; when that container goes the
    // address changes, and containers that learned the old one (ARP) lose the host until
    // their cache expires: a request answered into the void during a recycle.
    let t = TestRuntime::new();
    let bridge = t.rt.config().prefix.clone();
    let web = t.sh("sleep 30");
    let mut running = vec![t.rt.run(&web).unwrap()];
    let sys = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/{f}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let first = sys("address");
    assert_eq!(
        sys("addr_assign_type"),
        "3",
        "the address is set, not inherited"
    );
    for _ in 0..6 {
        running.push(t.rt.run(&web).unwrap());
        let old = running.remove(0);
        old.kill().unwrap();
        old.wait().await.unwrap();
        old.remove().unwrap();
        assert_eq!(sys("address"), first, "the bridge's address changed");
    }
    for c in running {
        c.remove().unwrap();
    }
    // A lost ARP request to a new instance is asked again within 50 ms, not the kernel's 1 s.
    let retry =
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/neigh/{bridge}/retrans_time_ms"))
            .unwrap();
    // (The kernel keeps it in ticks: 50 ms reads back as 52 at 250 Hz.)
    let retry: u64 = retry.trim().parse().unwrap();
    assert!((50..=60).contains(&retry), "retrans_time_ms {retry}");
}

/// Waits (bounded) until the host can connect to `addr:port`.
async fn wait_listening(addr: std::net::Ipv4Addr, port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((addr, port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{addr}:{port} never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn containers_of_different_runtimes_cannot_reach_each_other_as_root_or_not() {
    // `hako run` and `hako serve` are two runtimes with their own prefix, bridge and subnet,
    // both with NAT on (so the host forwards between bridges). Each one's rules must keep
    // its containers from every other hako container, whichever prefix made it.
    let nat = |tag| hako_runtime::RuntimeConfig {
        nat: true,
        ..hako_runtime::RuntimeConfig::unique(tag, "/run/hako-test")
    };
    let (a, b) = (TestRuntime::with(nat('x')), TestRuntime::with(nat('y')));
    let web = |t: &TestRuntime, user: hako_runtime::User| {
        let mut spec =
            t.sh("mkdir -p /tmp/w && echo secret > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w");
        spec.user = user;
        t.rt.run(&spec).unwrap()
    };
    let root = || hako_runtime::User::Id { uid: 0, gid: 0 };
    let servers = [
        web(&a, root()),
        web(&b, root()),
        web(&b, hako_runtime::User::default()),
    ];
    for s in &servers {
        // The host reaches each: the servers are up, so "unreachable" below means blocked.
        wait_listening(s.address().unwrap(), 8080).await;
    }
    let probe = |t: &TestRuntime, target: std::net::Ipv4Addr, user: hako_runtime::User| {
        let mut spec = t.sh(&format!(
            "timeout 2 wget -q -O - http://{target}:8080/i || echo unreachable"
        ));
        spec.user = user;
        spec
    };
    let cases = [
        (&a, servers[1].address().unwrap()),
        (&a, servers[2].address().unwrap()),
        (&b, servers[0].address().unwrap()),
    ];
    // All probes run at once: each blocked one waits out its 2 s timeout.
    let mut probes = Vec::new();
    for (from, target) in cases {
        for user in [root(), hako_runtime::User::default()] {
            let what = format!("{} as {user:?} → {target}", from.rt.config().prefix);
            probes.push((what, from.rt.run(&probe(from, target, user)).unwrap()));
        }
    }
    for (what, c) in probes {
        c.wait().await.unwrap();
        c.logs_flushed().await;
        let out = std::fs::read_to_string(c.log_path().unwrap()).unwrap_or_default();
        c.remove().unwrap();
        assert!(
            out.contains("unreachable") && !out.contains("secret"),
            "a container reached another runtime's ({what}): {out}"
        );
    }
    for s in servers {
        s.remove().unwrap();
    }
    assert!(a.leftovers().is_empty(), "{:?}", a.leftovers());
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
}
