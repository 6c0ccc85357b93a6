//! `hako serve` on a real etcd.

use std::time::{Duration, Instant};

use crate::{Serve, http, static_site};

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

impl Etcd {
    fn start() -> Etcd {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client, peer) = (port(), port());
        let dir = tempfile::Builder::new()
            .prefix("hako-etcd")
            .tempdir()
            .unwrap();
        let name = format!("hako-serve-{}", std::process::id());
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

/// `hako serve` on a real etcd serves a site end to end, and its apps are in etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_etcd_serves_a_site() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint.clone();
    let s = Serve::start_with(|c| c.store = endpoint.parse().unwrap()).await;
    s.create(static_site("onetcd")).await;
    s.deploy("onetcd", &[("index.html", "from etcd\n")]).await;
    assert_eq!(
        http(s.bound.proxy, "onetcd.example", "/index.html").await,
        (200, "from etcd\n".into())
    );
    assert!(
        !s.tmp.path().join("hako.db").exists(),
        "the embedded store was used"
    );
    let store = hako_store::open(&etcd.endpoint.parse().unwrap())
        .await
        .unwrap();
    let app: Option<hako_model::App> =
        hako_store::StoreExt::get_json(store.as_ref(), &hako_store::keys::app("onetcd"))
            .await
            .unwrap();
    assert_eq!(app.unwrap().release, Some(1));
    s.stop().await;
}
