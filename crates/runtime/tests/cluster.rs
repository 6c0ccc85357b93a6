//! Isolation across nodes, with real hako runtimes on two "hosts" (network namespaces on a
//! bridge, each routing the other's instance subnet through `cluster_routes::sync`):
//!
//! - a proxy on host A (a connection from A's own network) reaches an instance on host B;
//! - an instance on B reaches no instance on A, neither node's address, nor any other
//!   cluster address (the bridge's, standing for a front that runs no instances), as root
//!   and as `nobody` — while an address outside the cluster is reachable (NAT out works, the
//!   drop is the cluster's only);
//! - the route guard alone (a runtime without cluster CIDRs) still keeps an instance from
//!   the other node and its instances.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hako_runtime::cluster_routes::{self, PeerRoute};
use hako_runtime::{
    Container, ContainerSpec, Ipv4Net, LogSpec, RootfsSpec, Runtime, RuntimeConfig, User,
};
use hako_testbed::{Lan, LanHost, Netns, TestbedConfig};

/// One host: a tokio runtime whose threads live in the host's network namespace, and a hako
/// runtime made there (its bridge, veths and firewall are the host's).
struct Host {
    lan: LanHost,
    tokio: tokio::runtime::Runtime,
    rt: Arc<Runtime>,
}

/// Runs `f` on `tokio`'s threads and returns its output.
fn on<T: Send + 'static>(
    tokio: &tokio::runtime::Runtime,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    tokio.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the host's task ended")
}

impl Host {
    fn new(lan: &LanHost, subnet: &str, cluster: Vec<Ipv4Net>) -> Host {
        let tokio = lan
            .netns
            .run(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
            })
            .unwrap();
        let config = RuntimeConfig {
            subnet: subnet.parse().unwrap(),
            nat: true,
            cluster_cidrs: cluster,
            ..RuntimeConfig::unique('t', "/run/hako-test")
        };
        let ns = netns_id(&lan.netns);
        let rt = on(&tokio, async move {
            assert_eq!(own_netns(), ns, "the host's threads are in its namespace");
            Runtime::new(config).unwrap()
        });
        Host {
            lan: lan.clone(),
            tokio,
            rt,
        }
    }

    /// Runs `f` on the host's threads and returns its output.
    fn on<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        on(&self.tokio, f)
    }

    fn run(&self, spec: ContainerSpec) -> Container {
        let rt = self.rt.clone();
        self.on(async move { rt.run(&spec).unwrap() })
    }

    /// Removes `c` (and its veth) from the host.
    fn remove(&self, c: Container) {
        self.on(async move {
            c.kill().ok();
            c.wait().await.ok();
            c.remove().unwrap();
        })
    }

    /// Shuts the runtime down; what it left (in the host's namespace too).
    fn shutdown(self) -> Vec<String> {
        let rt = self.rt.clone();
        self.on(async move {
            rt.shutdown();
            common::leftovers(rt.config())
        })
    }
}

fn netns_id(ns: &Netns) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(ns.path()).unwrap().ino()
}

fn own_netns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

/// A busybox httpd container serving `secret` at `/i`, as `user`.
fn web(image: &RootfsSpec, secret: &str, user: User) -> ContainerSpec {
    let mut spec = ContainerSpec::new(image.clone(), "/bin/sh");
    spec.args = vec![
        "-c".into(),
        format!("mkdir -p /tmp/w && echo {secret} > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w"),
    ];
    spec.user = user;
    spec
}

/// A container that fetches `http://target/i` (2 s at most) into its log, as `user`.
fn probe(image: &RootfsSpec, log: PathBuf, target: SocketAddr, user: User) -> ContainerSpec {
    let mut spec = ContainerSpec::new(image.clone(), "/bin/sh");
    spec.args = vec![
        "-c".into(),
        format!("timeout 2 wget -q -O - http://{target}/i || echo unreachable"),
    ];
    spec.user = user;
    spec.log = LogSpec::File {
        path: log,
        max_bytes: 1 << 16,
    };
    spec
}

/// A plain server on `addr` (inside `ns` when given) answering every request with `secret`.
fn server(ns: Option<&Netns>, addr: SocketAddr, secret: &'static str) {
    let bind = || TcpListener::bind(addr).unwrap();
    let l = match ns {
        Some(ns) => ns.run(bind).unwrap(),
        None => bind(),
    };
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = write!(s, "HTTP/1.0 200 OK\r\n\r\n{secret}\n");
        }
    });
}

/// Fetches `/i` from `addr` (from the calling thread's network), waiting until it answers.
fn fetch(addr: SocketAddr) -> String {
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(mut s) => {
                s.write_all(b"GET /i HTTP/1.0\r\n\r\n").unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "{addr} never answered: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn root() -> User {
    User::Id { uid: 0, gid: 0 }
}

/// Runs every probe at once — each case as root and as `nobody`, from the host it names —
/// (blocked ones wait out their timeout together) and returns each one's output with its
/// description.
fn probes(
    image: &RootfsSpec,
    dir: &std::path::Path,
    cases: &[(&Host, &str, SocketAddr)],
) -> Vec<(String, String)> {
    let mut running = Vec::new();
    for (i, (host, what, target)) in cases.iter().enumerate() {
        for (u, user) in [root(), User::default()].into_iter().enumerate() {
            let log = dir.join(format!("probe-{i}-{u}"));
            let c = host.run(probe(image, log.clone(), *target, user.clone()));
            running.push((*host, format!("{what} ({target}) as {user:?}"), c, log));
        }
    }
    running
        .into_iter()
        .map(|(host, what, c, log)| {
            let c = host.on(async move {
                c.wait().await.unwrap();
                c.logs_flushed().await;
                c
            });
            host.remove(c);
            (what, std::fs::read_to_string(log).unwrap_or_default())
        })
        .collect()
}

#[test]
fn instances_reach_no_other_node_and_no_cluster_address_but_proxies_reach_them() {
    common::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let image = common::busybox_image(&tmp.path().join("image"));
    let c = TestbedConfig::unique(2);
    let lan = Lan::up(&c.name, 2, c.lan).unwrap();
    let cluster: Vec<Ipv4Net> = vec!["10.77.0.0/16".parse().unwrap(), c.lan];
    let a = Host::new(lan.host(1), "10.77.1.0/24", cluster.clone());
    let b = Host::new(lan.host(2), "10.77.2.0/24", cluster);
    let (a_addr, b_addr) = (a.lan.addr, b.lan.addr);
    a.lan
        .netns
        .run(|| cluster_routes::sync(&[PeerRoute::new("10.77.2.0/24".parse().unwrap(), b_addr)]))
        .unwrap()
        .unwrap();
    b.lan
        .netns
        .run(|| cluster_routes::sync(&[PeerRoute::new("10.77.1.0/24".parse().unwrap(), a_addr)]))
        .unwrap()
        .unwrap();

    // Servers: an instance on each host; each host's own service; the bridge's address (a
    // cluster address that is no node); an address outside the cluster.
    let on_a = a.run(web(&image, "instance-a", root()));
    let on_b = b.run(web(&image, "instance-b", User::default()));
    let (ia, ib) = (on_a.address().unwrap(), on_b.address().unwrap());
    server(Some(&a.lan.netns), (a_addr, 7001).into(), "service-a");
    server(Some(&b.lan.netns), (b_addr, 7002).into(), "service-b");
    let gw = lan.gateway();
    server(None, (gw, 7003).into(), "front-on-the-lan");
    let o = c.lan.network().octets();
    let outside = Ipv4Addr::new(198, 18, o[2], o[3] + 1);
    lan.add_address(outside).unwrap();
    server(None, (outside, 7004).into(), "outside");

    // The proxy side: host A reaches B's instance (and its own) through the routes.
    let from_a = a
        .lan
        .netns
        .run(|| (fetch((ib, 8080).into()), fetch((ia, 8080).into())));
    let (ab, aa) = from_a.unwrap();
    assert!(
        ab.contains("instance-b"),
        "host A cannot reach B's instance: {ab}"
    );
    assert!(aa.contains("instance-a"), "{aa}");

    // A runtime without cluster CIDRs on host B (a single-host configuration): the route
    // guard alone must keep its instances from the other node and its instances.
    let bare = Host::new(lan.host(2), "10.66.2.0/24", Vec::new());
    let out = probes(
        &image,
        tmp.path(),
        &[
            (&b, "B's instance → A's instance", (ia, 8080).into()),
            (&b, "B's instance → host A", (a_addr, 7001).into()),
            (&b, "B's instance → its own host", (b_addr, 7002).into()),
            (&b, "B's instance → the front's address", (gw, 7003).into()),
            (
                &b,
                "B's instance → outside the cluster",
                (outside, 7004).into(),
            ),
            (&a, "A's instance → B's instance", (ib, 8080).into()),
            (
                &bare,
                "guard: B's instance → A's instance",
                (ia, 8080).into(),
            ),
            (&bare, "guard: B's instance → host A", (a_addr, 7001).into()),
        ],
    );
    for (what, text) in &out {
        if what.contains("outside") {
            assert!(
                text.contains("outside"),
                "{what}: NAT out is broken: {text}"
            );
        } else {
            let leaked = ["instance-", "service-", "front-"]
                .iter()
                .any(|s| text.contains(s));
            assert!(
                text.contains("unreachable") && !leaked,
                "{what} got through: {text}"
            );
        }
    }

    a.remove(on_a);
    b.remove(on_b);
    for h in [a, b, bare] {
        let left = h.shutdown();
        assert!(left.is_empty(), "{left:?}");
    }
    lan.down().unwrap();
}
