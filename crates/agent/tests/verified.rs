//! A node of a cluster (an agent with shared storage) runs code releases and image layers only
//! from its own verified cache: copied from shared storage once, checked against the digests
//! the assignment carries, then used for every start. Other bytes on shared storage fail the
//! start before anything runs. Real containers (root).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hako_agent::{Agent, AgentConfig, LaunchError};
use hako_image::{Image, ImageStore};
use hako_model::{App, AppSpec, Release, StartFailure};
use hako_runtime::RuntimeConfig;

struct Node {
    agent: Arc<Agent>,
    tmp: tempfile::TempDir,
}

impl Node {
    /// An agent whose images and releases are on "shared storage" (`<tmp>/shared`).
    fn new(tag: char) -> Node {
        assert!(
            hako_runtime::is_root(),
            "the agent tests make real containers: run them as root"
        );
        let tmp = tempfile::Builder::new()
            .prefix("hako-verified-test")
            .tempdir()
            .unwrap();
        let mut cfg = AgentConfig::new(
            tmp.path().join("node"),
            RuntimeConfig::unique(tag, "/run/hako-test"),
        );
        cfg.shared_dir = Some(tmp.path().join("shared"));
        let (agent, _exits) = Agent::new(cfg).unwrap();
        Node { agent, tmp }
    }

    fn shared(&self) -> PathBuf {
        self.tmp.path().join("shared")
    }

    /// A tiny imported image: a static busybox, an /etc/passwd and an /etc/motd saying `motd`.
    fn tiny_image(&self, motd: &str) -> Image {
        let src = self.tmp.path().join("tiny");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::create_dir_all(src.join("etc")).unwrap();
        std::fs::copy("/usr/bin/busybox", src.join("bin/busybox")).unwrap();
        std::fs::write(
            src.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(src.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        std::fs::write(src.join("etc/motd"), motd).unwrap();
        self.agent.images().import("tiny", &src).unwrap()
    }

    /// Release 1 of `name` (one index.html), as a deploy makes it on shared storage.
    fn release(&self, name: &str, text: &str) -> Release {
        let code = self.tmp.path().join(format!("code-{name}"));
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("index.html"), text).unwrap();
        self.agent
            .releases()
            .create(name, 1, &code, "test")
            .unwrap()
    }

    /// An app of `image` at release 1, with the digests the cluster store would give it.
    fn app(&self, name: &str, image: &Image, release: &Release) -> App {
        let mut spec: AppSpec = serde_json::from_value(serde_json::json!({
            "name": name, "hosts": [format!("{name}.example")],
            "image": format!("{}:{}", image.name, image.version),
            "cmd": "busybox httpd -f -p $PORT -h /app", "start_timeout": "10s",
        }))
        .unwrap();
        spec.validate().unwrap();
        App {
            spec,
            uid: String::new(),
            release: Some(1),
            release_digest: release.digest.clone(),
            image_record: image.record(),
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        }
    }

    /// The release's tree on shared storage.
    fn shared_release(&self, name: &str) -> PathBuf {
        self.shared().join("releases").join(name).join("1/rootfs")
    }

    /// Cached entries, their bytes, trees fetched since start.
    fn cache(&self) -> (usize, u64, u64) {
        self.agent
            .cache_usage()
            .expect("a node with shared storage has a cache")
    }
}

fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

fn verification_failure(e: &LaunchError, starts: &str) {
    assert_eq!(e.kind, StartFailure::Verification, "{}", e.reason);
    assert!(e.reason.starts_with(starts), "{}", e.reason);
}

/// Changes one byte of the file at `p`.
fn flip_a_byte(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(p, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_verified_copies_fetched_once() {
    let n = Node::new('v');
    let image = n.tiny_image("one");
    let rel = n.release("site", "hello from the cache\n");
    let app = n.app("site", &image, &rel);
    let first = n.agent.launch(&app).await.unwrap();
    assert!(get(&first.addr, "/index.html").contains("hello from the cache"));
    let (entries, bytes, fetched) = n.cache();
    assert_eq!(
        (entries, fetched),
        (2, 2),
        "the image's layer and the release"
    );
    assert!(bytes > 1_000_000, "busybox is in the cache: {bytes}");
    // The copies are the node's: shared storage may change (or go) after they verified, and
    // a later start still runs the verified bytes, without fetching or hashing again.
    std::fs::write(n.shared_release("site").join("index.html"), "changed\n").unwrap();
    let second = n.agent.launch(&app).await.unwrap();
    assert!(get(&second.addr, "/index.html").contains("hello from the cache"));
    assert_eq!(n.cache().2, 2, "nothing fetched again");
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_bytes_on_shared_storage_fail_the_start_and_nothing_runs() {
    let n = Node::new('w');
    let image = n.tiny_image("one");
    // A release changed on shared storage after its digest was recorded.
    let rel = n.release("site", "hello\n");
    flip_a_byte(&n.shared_release("site").join("index.html"));
    let app = n.app("site", &image, &rel);
    let e = n.agent.launch(&app).await.unwrap_err();
    verification_failure(
        &e,
        "release 1 of site failed verification: expected sha256:",
    );
    let recorded = rel.digest.clone().unwrap().to_string();
    let now = hako_image::tree_digest(&n.shared_release("site"))
        .unwrap()
        .to_string();
    assert!(
        e.reason
            .contains(&format!("expected {recorded}, got {now}")),
        "{}",
        e.reason
    );
    assert!(n.agent.instances(None).is_empty(), "nothing runs");
    assert_eq!(n.cache().0, 1, "only the image's layer verified and stays");

    // An image layer changed the same way: one byte of busybox. (Another version with the
    // same files would have the same digest, verified already: its bytes come from the cache.)
    let image2 = {
        let i = n.tiny_image("two");
        flip_a_byte(&i.dir().join("rootfs/bin/busybox"));
        i
    };
    let rel2 = n.release("other", "hi\n");
    let e = n
        .agent
        .launch(&n.app("other", &image2, &rel2))
        .await
        .unwrap_err();
    verification_failure(
        &e,
        "image tiny:2 of other failed verification: expected sha256:",
    );
    assert!(n.agent.instances(None).is_empty());

    // No digest at all: refused too (a release made before hako recorded digests, or an
    // image version the cluster store has no record of).
    let mut bare = n.app("site", &image, &rel);
    bare.release_digest = None;
    let e = n.agent.launch(&bare).await.unwrap_err();
    verification_failure(&e, "release 1 of site has no digest recorded");
    let mut bare = n.app("other", &image, &rel2);
    bare.image_record = None;
    let e = n.agent.launch(&bare).await.unwrap_err();
    verification_failure(
        &e,
        "image tiny:1 of other has no digests in the cluster store",
    );
    assert!(n.agent.instances(None).is_empty());
    n.agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_image_runs_from_its_verified_skeleton_with_only_allowed_binds() {
    let n = Node::new('x');
    let image = ImageStore::open(n.shared().join("images"))
        .unwrap()
        .host("base")
        .unwrap();
    let rel = n.release("site", "host image\n");
    let app = n.app("site", &image, &rel);
    let info = n.agent.launch(&app).await.unwrap();
    assert!(get(&info.addr, "/index.html").contains("host image"));
    n.agent.stop(&info.id, Duration::ZERO).await;

    // A changed image.json that binds a host secret into the container: refused by rule,
    // although its skeleton still verifies.
    let meta = image.dir().join("image.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["storage"]["binds"].as_array_mut().unwrap().push(
        serde_json::json!({"source": "/etc/shadow", "target": "/etc/shadow", "is_dir": false}),
    );
    std::fs::write(&meta, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = n.agent.launch(&app).await.unwrap_err();
    verification_failure(
        &e,
        "image base:1 of site failed verification: its image.json on shared storage binds /etc/shadow",
    );
    std::fs::write(&meta, text).unwrap();

    // A version made again under the same number is not the recorded one.
    let mut other = app.clone();
    other.image_record.as_mut().unwrap().created_unix += 1;
    let e = n.agent.launch(&other).await.unwrap_err();
    verification_failure(
        &e,
        "image base:1 of site on shared storage is not the version the cluster store records",
    );
    assert!(n.agent.instances(None).is_empty());
    n.agent.shutdown(Duration::from_secs(1)).await;
}
