//! Isolation across nodes, end to end: probe sites on both hosts (as nobody and as root) are
//! served through the front on host1 — so the front reaches instances on every node — and each
//! asks, in a CGI script run by a request through the front, for a list of addresses at once.
//! Every cluster address is out of their reach: the other node's instance, an instance beside
//! them, both nodes' own addresses (the etcd members there), the front's API and proxy. Two
//! controls show the probe would notice a connection: it reaches its own instance, and a server
//! outside the cluster (instances keep the internet).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::Cluster;

/// The probe's CGI: for each `ADDR:PORT` of the query (joined by `+`), all at once, one line
/// `ADDR:PORT => <wget's output and the server's answer headers>`; a connection that is
/// dropped shows no `HTTP/` line (wget is stopped after 3 s).
const PROBE: &str = r#"#!/bin/sh
echo 'Content-Type: text/plain'
echo
for t in $(echo "$QUERY_STRING" | busybox tr '+' ' '); do
  (out=$(busybox timeout 3 busybox wget -S -O - "http://$t/" 2>&1 | busybox tr '\n' ' '); echo "$t => $out") &
done
wait
"#;

/// A probe site: `index.html` naming it, and `cgi-bin/probe`.
fn probe_code(c: &Cluster, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let code = c.code(name, &format!("probe {name}\n"));
    let bin = code.join("cgi-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("probe"), PROBE).unwrap();
    for p in [&bin, &bin.join("probe")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    code
}

/// A server outside the cluster (an extra address of the bed's bridge, in this machine's
/// namespace) answering `outside`; stops when dropped.
struct Outside {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Outside {
    fn start(c: &Cluster) -> Outside {
        let o = c.bed.config().lan.network().octets();
        let ip = Ipv4Addr::new(198, 18, o[2], o[3] + 1);
        c.bed.lan().add_address(ip).unwrap();
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\noutside\n");
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Outside { addr, stop }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Pairs: (target, what the probe printed for it) or (what a target is, its address).
type Lines = Vec<(String, String)>;

/// What probe `app` got for each target: (target, line).
fn probe(c: &Cluster, app: &str, targets: &[String]) -> Lines {
    let (status, body) = c.get(app, &format!("/cgi-bin/probe?{}", targets.join("+")));
    assert_eq!(status, 200, "{app}'s probe: {body}");
    targets
        .iter()
        .map(|t| {
            let line = body
                .lines()
                .find(|l| l.starts_with(&format!("{t} => ")))
                .unwrap_or_else(|| panic!("{app}'s probe did not try {t}: {body}"));
            (t.clone(), line.to_string())
        })
        .collect()
}

#[test]
fn an_instance_reaches_no_instance_and_no_service_on_any_node_but_the_front_reaches_it() {
    let c = Cluster::up(2, None);
    // p1 on host1; p2 (as nobody) and r2 (as root) on host2.
    c.only_on(1);
    c.create("p1", &probe_code(&c, "p1"), &[]);
    assert_eq!(c.get("p1", "/index.html"), (200, "probe p1\n".into()));
    c.only_on(2);
    c.create("p2", &probe_code(&c, "p2"), &[]);
    c.create("r2", &probe_code(&c, "r2"), &["--user", "0"]);
    for app in ["p2", "r2"] {
        // Served through the front on host1 from host2.
        assert_eq!(c.get(app, "/index.html"), (200, format!("probe {app}\n")));
    }
    let (i1, i2, r2) = (c.ready("p1"), c.ready("p2"), c.ready("r2"));
    assert_eq!(
        (c.node_of(&i1), c.node_of(&i2), c.node_of(&r2)),
        (1, 2, 2),
        "{i1:?} {i2:?} {r2:?}"
    );
    let outside = Outside::start(&c);
    let (h1, h2) = (c.bed.node(1).addr, c.bed.node(2).addr);

    let cluster_targets = |own: &str, neighbours: &[&str]| {
        let mut t: Vec<(String, String)> = neighbours
            .iter()
            .map(|n| (format!("instance {n}"), n.to_string()))
            .collect();
        t.extend([
            ("host1's etcd".into(), format!("{h1}:2379")),
            ("host2's etcd".into(), format!("{h2}:2379")),
            ("the front's API".into(), c.api.to_string()),
            ("the front's proxy".into(), c.proxy.to_string()),
        ]);
        (own.to_string(), t)
    };
    let probes = [
        ("p1", cluster_targets(&i1.addr, &[&i2.addr, &r2.addr])),
        ("p2", cluster_targets(&i2.addr, &[&i1.addr, &r2.addr])),
        ("r2", cluster_targets(&r2.addr, &[&i1.addr, &i2.addr])),
    ];
    // All three at once (a dropped connection takes the probe's 3 s).
    let results: Vec<(&str, Lines, Lines)> = std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|(app, (own, targets))| {
                let c = &c;
                let outside = outside.addr.to_string();
                s.spawn(move || {
                    let mut all = vec![own.clone(), outside];
                    all.extend(targets.iter().map(|(_, a)| a.clone()));
                    (*app, probe(c, app, &all), targets.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (app, got, targets) in &results {
        let reached = |line: &str| line.contains("HTTP/1.");
        assert!(
            got[0].1.contains(&format!("probe {app}")),
            "{app} does not reach its own instance, so the probe proves nothing: {got:?}"
        );
        assert!(
            got[1].1.contains("outside"),
            "{app} does not reach a server outside the cluster (NAT out is broken): {got:?}"
        );
        for ((what, addr), (_, line)) in targets.iter().zip(&got[2..]) {
            assert!(
                line.contains("Connecting to") && !reached(line) && !line.contains("probe "),
                "{app} (on host{}) reached {what} at {addr}: {line}",
                &app[1..]
            );
        }
        eprintln!("{app}: {} cluster addresses out of reach", targets.len());
    }
    drop(outside);
    c.down();
}
