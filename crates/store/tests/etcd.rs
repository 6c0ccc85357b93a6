//! The conformance suite against the etcd backend. Each case starts its own
//! etcd (Debian's `etcd-server`) on loopback with free ports and a temp data
//! dir, and stops it when the case ends.
#![cfg(feature = "etcd")]

#[path = "support/suite.rs"]
mod suite;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hako_store::{EtcdStore, Store};

/// A running etcd, killed and its data dir removed on drop.
struct EtcdServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static STARTED: AtomicU32 = AtomicU32::new(0);

fn spawn_etcd() -> (EtcdServer, String) {
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let name = format!("hako-test-{}-{n}", std::process::id());
    let dir = tempfile::Builder::new()
        .prefix("hako-etcd")
        .tempdir()
        .unwrap();
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args(["--name", &name, "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("{name}={peer_url}")])
        .args([
            "--initial-cluster-state",
            "new",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd is not installed: apt-get install -y etcd-server");
    (EtcdServer { child, _dir: dir }, client_url)
}

/// A fresh etcd and a store connected to it.
async fn make() -> (Arc<dyn Store>, suite::Guard) {
    for _attempt in 0..3 {
        let (mut server, url) = spawn_etcd();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.child.try_wait().unwrap().is_some() {
                break; // lost a port race: start another
            }
            if let Ok(Ok(store)) = tokio::time::timeout(
                Duration::from_secs(2),
                EtcdStore::connect(std::slice::from_ref(&url)),
            )
            .await
            {
                return (Arc::new(store), Box::new(server));
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, not a readiness guess
        }
    }
    panic!("etcd did not start");
}

conformance_suite!(make);

/// A listing bigger than gRPC's default 4 MiB limit (about 10,000 apps' records) is read
/// whole, atomically with its revision.
#[tokio::test]
async fn a_listing_over_four_mebibytes_is_read_whole() {
    use hako_store::StoreExt;
    let (store, _guard) = make().await;
    // 6 values of 900 KiB (etcd takes requests up to 1.5 MiB): 5.3 MiB in all.
    let value = vec![b'x'; 900 << 10];
    for i in 0..6 {
        store
            .put(&format!("/big/{i}"), value.clone())
            .await
            .unwrap();
    }
    let listing = store.list("/big/").await.unwrap();
    assert_eq!(listing.kvs.len(), 6);
    assert!(listing.kvs.iter().all(|kv| kv.value.len() == 900 << 10));
    assert_eq!(store.range("/big/").await.unwrap().len(), 6);
}
