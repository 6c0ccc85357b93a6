//! A cluster on one machine, in-process: a real etcd on loopback, a front (`hako serve` on
//! etcd running no instances itself) and two nodes (agents with their own runtime prefixes and
//! subnets, joined through the store), sharing one storage directory. Real containers, real
//! HTTP. (The multi-host test bed with network namespaces is `cargo xtask testbed`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use hako_agent::member::{Member, MemberConfig};
use hako_agent::{Agent, AgentConfig};
use hako_api::Client;
use hako_control::{Bound, ServeConfig};
use hako_model::{AppSpec, EventKind, InstanceState, NodeState};
use hako_runtime::RuntimeConfig;
use hako_store::StoreExt;
use hako_testkit::http::get as http_get;
use hako_testkit::site::static_app;

/// A real etcd (one member, on loopback, in a temp dir), killed when dropped.
struct Etcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    fn start() -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let dir = tempfile::Builder::new()
            .prefix("hako-etcd")
            .tempdir()
            .unwrap();
        let name = format!("hako-cluster-{}", std::process::id());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = std::process::Command::new("etcd")
            .args(["--name", &name, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{name}={peer_url}")])
            .args(["--log-outputs", "stderr", "--logger", "zap"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd is not installed: apt-get install -y etcd-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Etcd {
            child,
            _dir: dir,
            endpoint: format!("etcd://127.0.0.1:{client}"),
        }
    }
}

/// One node: an agent (its own prefix and subnet) joined to the cluster.
struct Node {
    name: String,
    agent: Arc<Agent>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(name: &str, tag: char, etcd: &Etcd, tmp: &std::path::Path) -> Node {
        let mut cfg =
            AgentConfig::new(tmp.join(name), RuntimeConfig::unique(tag, "/run/hako-test"));
        cfg.node = name.into();
        cfg.shared_dir = Some(tmp.join("shared"));
        let (agent, exits) = Agent::new(cfg).unwrap();
        let store = hako_store::open(&etcd.endpoint.parse().unwrap())
            .await
            .unwrap();
        let mut mc = MemberConfig::new(name, "127.0.0.1");
        mc.lease_ttl = Duration::from_secs(2);
        mc.stop_grace = Duration::from_secs(2);
        let member = Member::join(agent.clone(), store, mc).await.unwrap();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(member.run(exits, async {
            let _ = stop_rx.await;
        }));
        Node {
            name: name.into(),
            agent,
            stop: Some(stop),
            task,
        }
    }

    /// Leaves the cluster cleanly (its instances stop, its lease goes).
    async fn leave(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        self.agent.shutdown(Duration::from_secs(1)).await;
    }

    /// Dies without a word, as with kill -9: its containers go with it, its records stay until
    /// its lease expires.
    async fn die(self) {
        self.task.abort();
        let _ = self.task.await;
        self.agent.shutdown(Duration::ZERO).await;
    }
}

/// The front: `hako serve` on the etcd, no node of its own.
struct Front {
    bound: Bound,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    async fn start(etcd: &Etcd, tmp: &std::path::Path) -> Front {
        Front::start_named("front", etcd, tmp).await
    }

    async fn start_named(name: &str, etcd: &Etcd, tmp: &std::path::Path) -> Front {
        let mut config = ServeConfig::new(tmp.join(name));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.api = "127.0.0.1:0".parse().unwrap();
        config.store = etcd.endpoint.parse().unwrap();
        config.run_node = false;
        config.node = Some(name.into());
        config.shared_dir = Some(tmp.join("shared"));
        config.lease_ttl = Duration::from_secs(2);
        config.stop_grace = Duration::from_secs(2);
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            hako_control::serve(config, bound_tx, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
        let bound = bound_rx.await.unwrap();
        let token = std::fs::read_to_string(tmp.join(name).join("admin.token")).unwrap();
        let client = Client::new(format!("http://{}", bound.api), token.trim());
        Front {
            bound,
            client,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(Client) -> Result<T, hako_api::ClientError> + Send + 'static,
    ) -> T {
        let c = self.client.clone();
        tokio::task::spawn_blocking(move || f(c))
            .await
            .unwrap()
            .unwrap()
    }

    async fn get(&self, host: &str) -> (u16, String) {
        let addr = self.bound.proxy;
        let host = host.to_string();
        tokio::task::spawn_blocking(move || http_get(addr, &host, "/index.html"))
            .await
            .unwrap()
    }

    /// Ready instances of `app` and the nodes they run on.
    async fn placed(&self, app: &str) -> Vec<(String, String)> {
        let app = app.to_string();
        self.call(move |c| c.instances(Some(&app)))
            .await
            .into_iter()
            .filter(|i| i.state == InstanceState::Ready)
            .map(|i| (i.id, i.node))
            .collect()
    }
}

struct Bed {
    tmp: tempfile::TempDir,
    etcd: Etcd,
}

impl Bed {
    /// The shared storage with the host image `base`, recorded in the cluster store (as
    /// `hako image host base --store etcd://…` does): nodes run only recorded versions.
    async fn new() -> Bed {
        hako_testkit::require_root();
        let tmp = tempfile::Builder::new()
            .prefix("hako-cluster-test")
            .tempdir()
            .unwrap();
        let image = hako_image::ImageStore::open(tmp.path().join("shared/images"))
            .unwrap()
            .host("base")
            .unwrap();
        let etcd = Etcd::start();
        let store = hako_store::open(&etcd.endpoint.parse().unwrap())
            .await
            .unwrap();
        let record = image.record().unwrap();
        store
            .put_json(&hako_store::keys::image("base", "1"), &record)
            .await
            .unwrap();
        Bed { tmp, etcd }
    }

    fn path(&self) -> &std::path::Path {
        self.tmp.path()
    }

    async fn site(&self, front: &Front, name: &str, extra: serde_json::Value) {
        let mut v = static_app(name);
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let spec: AppSpec = serde_json::from_value(v).unwrap();
        front.call(move |c| c.create_app(&spec)).await;
        let dir = self.path().join(format!("code-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), format!("{name}\n")).unwrap();
        let name = name.to_string();
        front.call(move |c| c.deploy_dir(&name, &dir)).await;
    }
}

async fn until<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_front_cold_starts_sites_on_the_nodes_once_for_a_burst() {
    let bed = Bed::new().await;
    let front = Front::start(&bed.etcd, bed.path()).await;
    let n1 = Node::start("node1", 'x', &bed.etcd, bed.path()).await;
    let n2 = Node::start("node2", 'y', &bed.etcd, bed.path()).await;
    let nodes = front.call(|c| c.nodes()).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");

    // A second front: one of the two leads (its cold starts go straight to its lifecycle),
    // the other asks through wants.
    let other = Front::start_named("front2", &bed.etcd, bed.path()).await;
    bed.site(&front, "alpha", serde_json::json!({})).await;
    // A burst of first requests reaching both fronts: one start, on one node, and everyone
    // served.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let addr = if i % 2 == 0 {
            front.bound.proxy
        } else {
            other.bound.proxy
        };
        tasks.push(tokio::task::spawn_blocking(move || {
            http_get(addr, "alpha.example", "/index.html")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, "alpha\n".into()));
    }
    let events = front.call(|c| c.events("alpha", Some(100))).await;
    let starts = events.iter().filter(|e| e.kind == EventKind::Start).count();
    assert_eq!(starts, 1, "{events:#?}");
    let placed = front.placed("alpha").await;
    assert_eq!(placed.len(), 1);
    assert!(["node1", "node2"].contains(&placed[0].1.as_str()));

    // Many apps spread over both nodes: placement is by affinity (a hash of the app over the
    // nodes with room), so a handful of names could all land on one node by chance; create apps
    // until both nodes hold one (bounded: the chance that 16 names all hash to one node is 2^-15).
    let mut on = std::collections::HashSet::new();
    let mut apps: u64 = 0;
    while on.len() < 2 && apps < 16 {
        let name = format!("s{apps}");
        bed.site(&front, &name, serde_json::json!({})).await;
        assert_eq!(front.get(&format!("{name}.example")).await.0, 200);
        for (_, node) in front.placed(&name).await {
            on.insert(node);
        }
        apps += 1;
    }
    assert_eq!(on.len(), 2, "{apps} apps all landed on one node: {on:?}");
    // The nodes ran verified copies of the releases and the image's skeleton, from their
    // own caches: alpha's release, one per app, and the skeleton.
    let fetched: u64 = [&n1, &n2]
        .iter()
        .map(|n| n.agent.cache_usage().unwrap().2)
        .sum();
    assert!(
        fetched >= apps + 2,
        "{} releases and the skeleton: {fetched}",
        apps + 1
    );

    // A release changed on shared storage after its deploy: no node runs it.
    bed.site(&front, "tampered", serde_json::json!({})).await;
    let uid = front.call(|c| c.app("tampered")).await.storage_key();
    let file = bed
        .path()
        .join(format!("shared/releases/{uid}/1/rootfs/index.html"));
    std::fs::write(&file, "not what was deployed\n").unwrap();
    let (status, _) = front.get("tampered.example").await;
    assert_eq!(status, 503);
    let events = front.call(|c| c.events("tampered", Some(100))).await;
    assert!(
        events.iter().any(|e| e.kind == EventKind::StartFailed
            && e.reason
                .contains("release 1 of tampered failed verification: expected sha256:")),
        "{events:#?}"
    );
    assert!(front.placed("tampered").await.is_empty());

    other.stop().await;
    front.stop().await;
    n1.leave().await;
    n2.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn draining_a_node_moves_its_sites_without_a_failed_request() {
    let bed = Bed::new().await;
    let front = Front::start(&bed.etcd, bed.path()).await;
    let n1 = Node::start("node1", 'x', &bed.etcd, bed.path()).await;
    let n2 = Node::start("node2", 'y', &bed.etcd, bed.path()).await;
    bed.site(&front, "kept", serde_json::json!({"min": 1}))
        .await;
    let (_, first) = until(
        "the minimum instance",
        Duration::from_secs(20),
        async || front.placed("kept").await.into_iter().next(),
    )
    .await;
    // Steady requests while the node holding the site drains.
    let addr = front.bound.proxy;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                answers.push(http_get(addr, "kept.example", "/index.html").0);
            }
            answers
        })
    };
    let drained = first.clone();
    front
        .call(move |c| c.set_node_state(&drained, NodeState::Draining))
        .await;
    let (_, now_on) = until("the site to move", Duration::from_secs(30), async || {
        let placed = front.placed("kept").await;
        (placed.len() == 1 && placed[0].1 != first).then(|| placed[0].clone())
    })
    .await;
    assert_ne!(now_on, first);
    // The old instance stops once no front sends it requests: the drained node runs nothing.
    until(
        "the drained node to run nothing",
        Duration::from_secs(30),
        async || {
            let nodes = front.call(|c| c.nodes()).await;
            let left: u32 = nodes
                .iter()
                .filter(|n| n.name == first)
                .map(|n| n.instances.values().sum::<u32>())
                .sum();
            (left == 0).then_some(())
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = load.await.unwrap();
    assert!(
        answers.len() > 10,
        "too few requests to say anything: {}",
        answers.len()
    );
    assert!(
        answers.iter().all(|s| *s == 200),
        "failed requests during the drain: {:?}",
        answers.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    // The drained node takes nothing new.
    bed.site(&front, "later", serde_json::json!({})).await;
    assert_eq!(front.get("later.example").await.0, 200);
    assert!(front.placed("later").await.iter().all(|(_, n)| *n != first));
    front.stop().await;
    n1.leave().await;
    n2.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_node_is_noticed_and_its_sites_start_elsewhere() {
    let bed = Bed::new().await;
    let front = Front::start(&bed.etcd, bed.path()).await;
    let n1 = Node::start("node1", 'x', &bed.etcd, bed.path()).await;
    let n2 = Node::start("node2", 'y', &bed.etcd, bed.path()).await;
    bed.site(&front, "lone", serde_json::json!({})).await;
    assert_eq!(front.get("lone.example").await.0, 200);
    let (_, on) = front.placed("lone").await[0].clone();
    let (dead, alive) = if on == n1.name { (n1, n2) } else { (n2, n1) };
    let died = Instant::now();
    dead.die().await;
    // Its lease (2 s) expires; the site's next request starts it on the other node.
    let (_, now_on) = until(
        "the site on the other node",
        Duration::from_secs(30),
        async || {
            let (status, _) = front.get("lone.example").await;
            let placed = front.placed("lone").await;
            (status == 200 && placed.len() == 1).then(|| placed[0].clone())
        },
    )
    .await;
    assert_eq!(now_on, alive.name);
    eprintln!(
        "served again {:.1}s after the node died",
        died.elapsed().as_secs_f64()
    );
    let events = front.call(|c| c.events("lone", Some(100))).await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Exited && e.reason.contains("was lost")),
        "{events:#?}"
    );
    front.stop().await;
    alive.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_apps_files_leave_every_node() {
    let bed = Bed::new().await;
    // What a node kept of an app deleted while it was away goes when it joins.
    let ghost = bed.path().join("node1/apps/ghost_0123456789ab/logs");
    std::fs::create_dir_all(&ghost).unwrap();
    let front = Front::start(&bed.etcd, bed.path()).await;
    let n1 = Node::start("node1", 'x', &bed.etcd, bed.path()).await;
    assert!(
        !ghost.parent().unwrap().exists(),
        "the sweep at join kept {ghost:?}"
    );
    let n2 = Node::start("node2", 'y', &bed.etcd, bed.path()).await;
    bed.site(&front, "brief", serde_json::json!({})).await;
    assert_eq!(front.get("brief.example").await.0, 200);
    let (_, on) = front.placed("brief").await[0].clone();
    let key = front.call(|c| c.app("brief")).await.storage_key();
    let local = bed.path().join(&on).join("apps").join(&key);
    let release = bed.path().join("shared/releases").join(&key);
    assert!(local.exists(), "{local:?}");
    assert!(release.exists(), "{release:?}");

    front.call(|c| c.delete_app("brief")).await;
    until(
        "the app's files to leave the nodes",
        Duration::from_secs(30),
        async || (!local.exists() && !release.exists()).then_some(()),
    )
    .await;
    // A new app of the same name starts from its own files.
    bed.site(&front, "brief", serde_json::json!({})).await;
    assert_eq!(front.get("brief.example").await, (200, "brief\n".into()));
    front.stop().await;
    n1.leave().await;
    n2.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_lease_expired_kills_what_it_ran_before_it_joins_again() {
    let bed = Bed::new().await;
    let front = Front::start(&bed.etcd, bed.path()).await;
    let n1 = Node::start("node1", 'x', &bed.etcd, bed.path()).await;
    let n2 = Node::start("node2", 'y', &bed.etcd, bed.path()).await;
    bed.site(&front, "fenced", serde_json::json!({})).await;
    assert_eq!(front.get("fenced.example").await.0, 200);
    let (old, on) = front.placed("fenced").await[0].clone();
    let node = if on == n1.name { &n1 } else { &n2 };
    assert!(node.agent.instances(None).iter().any(|i| i.id == old));

    // The cluster loses the node's lease as when it is cut off past its TTL, while the node
    // itself runs on.
    let store = hako_store::open(&bed.etcd.endpoint.parse().unwrap())
        .await
        .unwrap();
    let record = |kv: hako_store::KeyValue| {
        let r: hako_model::NodeRecord = serde_json::from_slice(&kv.value).unwrap();
        (kv.lease.unwrap(), r.epoch)
    };
    let node_key = hako_store::keys::node(&on);
    let (lease, epoch) = record(store.get(&node_key).await.unwrap().unwrap());
    store.revoke(lease).await.unwrap();

    // It notices, kills the instance it ran, and joins again with a new epoch.
    until(
        "the old instance to die",
        Duration::from_secs(20),
        async || (!node.agent.instances(None).iter().any(|i| i.id == old)).then_some(()),
    )
    .await;
    until(
        "the node to join again",
        Duration::from_secs(20),
        async || {
            let kv = store.get(&node_key).await.ok()??;
            let (new_lease, new_epoch) = record(kv);
            (new_lease != lease && new_epoch > epoch).then_some(())
        },
    )
    .await;
    let events = front.call(|c| c.events("fenced", Some(100))).await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Exited && e.reason.contains("was lost")),
        "{events:#?}"
    );
    // The site is served again, by a new instance.
    let (now, _) = until(
        "the site served again",
        Duration::from_secs(30),
        async || {
            let (status, _) = front.get("fenced.example").await;
            let placed = front.placed("fenced").await;
            (status == 200 && placed.len() == 1).then(|| placed[0].clone())
        },
    )
    .await;
    assert_ne!(now, old);
    front.stop().await;
    n1.leave().await;
    n2.leave().await;
}
