//! `hako image …` through the real binary: import, host, list, remove, hostile tarballs.

mod common;

use std::process::Command;

use common::Env;

fn list_json(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["image", "list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn import_host_list_and_remove() {
    let env = Env::new();
    let dir = env.busybox_image("bb");
    // A second import is the next version.
    let out = env.run(&["image", "import", "bb", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("imported bb:2 ("), "{out:?}");

    let out = env.run(&["image", "host", "h"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("h:1"), "{out:?}");

    let images = list_json(&env);
    let refs: Vec<(String, u64, String)> = images
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["version"].as_u64().unwrap(),
                i["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("bb".into(), 1, "rootfs".into()),
            ("bb".into(), 2, "rootfs".into()),
            ("h".into(), 1, "host".into())
        ]
    );
    let busybox_size = std::fs::metadata(dir.join("bin/busybox")).unwrap().len();
    assert!(images[0]["size_bytes"].as_u64().unwrap() >= busybox_size);
    assert_eq!(images[0]["source"].as_str().unwrap(), dir.to_str().unwrap());

    let out = env.run(&["image", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with("NAME"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("bb ") && lines[1].contains("MiB"),
        "{}",
        out.stdout
    );
    assert!(
        lines[3].starts_with("h ") && lines[3].contains("host"),
        "{}",
        out.stdout
    );

    let out = env.run(&["image", "remove", "bb:1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let names: Vec<String> = list_json(&env)
        .iter()
        .map(|i| format!("{}:{}", i["name"].as_str().unwrap(), i["version"]))
        .collect();
    assert_eq!(names, ["bb:2", "h:1"]);

    let out = env.run(&["image", "remove", "h"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(list_json(&env).len(), 1);
}

#[test]
fn user_mistakes_exit_2_with_clear_messages() {
    let env = Env::new();
    let out = env.run(&["image", "remove", "nothere"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("image nothere not found"), "{out:?}");

    let out = env.run(&["image", "import", "Bad/Name", "/tmp"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("image name"), "{out:?}");

    let missing = env.path("no-such-dir");
    let out = env.run(&["image", "import", "x", missing.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no-such-dir"), "{out:?}");

    let not_tar = env.path("notes.txt");
    std::fs::write(&not_tar, "just text, not an archive").unwrap();
    let out = env.run(&["image", "import", "x", not_tar.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("neither a directory"), "{out:?}");

    let out = env.run(&[
        "image",
        "build",
        "x",
        "--debian-packages",
        "php-cli,Bad;Pkg",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("invalid Debian package name"),
        "{out:?}"
    );

    let out = env.run(&["image", "remove", "bb:zero"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("NAME:VERSION"), "{out:?}");
    assert!(list_json(&env).is_empty());
}

/// `tar -C DIR -cf OUT .` (extra flags before `-cf`).
fn tar(flags: &[&str], out: &std::path::Path, dir: &std::path::Path, what: &str) {
    let status = Command::new("tar")
        .args(flags)
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(what)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn hostile_tarballs_are_refused_and_leave_nothing() {
    let env = Env::new();
    // A symlink pointing out of the image.
    let escape = env.path("escape");
    std::fs::create_dir_all(escape.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../../../../etc/shadow", escape.join("etc/evil")).unwrap();
    let escape_tar = env.path("escape.tar");
    tar(&[], &escape_tar, &escape, ".");

    // An absolute path (GNU tar keeps the leading / with -P).
    let abs_src = env.path("abs");
    std::fs::create_dir_all(&abs_src).unwrap();
    std::fs::write(abs_src.join("file"), "x").unwrap();
    let abs_tar = env.path("abs.tar");
    tar(
        &["-P"],
        &abs_tar,
        &abs_src,
        abs_src.join("file").to_str().unwrap(),
    );

    for (tarball, says) in [(&escape_tar, "points outside"), (&abs_tar, "absolute path")] {
        let out = env.run(&["image", "import", "evil", tarball.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains(says), "{out:?}");
        assert!(
            out.stderr.starts_with("hako: error: cannot import"),
            "{out:?}"
        );
    }
    assert!(list_json(&env).is_empty());
    let left: Vec<String> = std::fs::read_dir(env.data_dir().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    assert!(left.is_empty(), "left in the store: {left:?}");
}

#[test]
fn data_dir_comes_from_hako_data_dir() {
    let env = Env::new();
    let dir = env.path("bb");
    common::busybox_rootfs(&dir);
    let from_env = env.path("from-env");
    let out = common::Outcome::from(
        Command::new(env!("CARGO_BIN_EXE_hako"))
            .args(["image", "import", "bb", dir.to_str().unwrap()])
            .env("HAKO_DATA_DIR", &from_env)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(from_env.join("images/bb/1/image.json").is_file());
    assert!(
        list_json(&env).is_empty(),
        "--data-dir wins over the variable"
    );
}

/// A real etcd (one member on loopback, in a temp dir), killed when dropped.
struct Etcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
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
        let name = format!("hako-image-{}", std::process::id());
        let (client_url, peer_url) = (
            format!("http://127.0.0.1:{client}"),
            format!("http://127.0.0.1:{peer}"),
        );
        let child = Command::new("etcd")
            .args(["--name", &name, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{name}={peer_url}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd is not installed: apt-get install -y etcd-server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(std::time::Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Etcd {
            child,
            _dir: dir,
            port: client,
        }
    }

    fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.port)
    }

    /// The records of image versions it holds.
    fn records(&self) -> Vec<hako_model::ImageRecord> {
        let spec = self.url().parse().unwrap();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use hako_store::StoreExt;
            let store = hako_store::open(&spec).await.unwrap();
            store
                .range_json::<hako_model::ImageRecord>(hako_store::keys::IMAGES)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, r)| r)
                .collect()
        })
    }
}

/// The digests `image list --json` shows for `name:version`.
fn listed_digests(env: &Env, name: &str, version: u64) -> Vec<String> {
    list_json(env)
        .into_iter()
        .find(|i| i["name"] == name && i["version"] == version)
        .unwrap_or_else(|| panic!("{name}:{version} is listed"))["digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn versions_are_recorded_in_a_cluster_store_with_their_digests() {
    let env = Env::new();
    let etcd = Etcd::start();
    let store = etcd.url();
    let out = env.run(&["image", "host", "h", "--store", &store]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("recorded h:1 in the cluster store: sha256:"),
        "{out:?}"
    );
    // A version made without --store, recorded afterwards by its owner.
    env.busybox_image("bb");
    let out = env.run(&["image", "record", "bb", "--store", &store]);
    assert_eq!(out.code, 0, "{out:?}");
    let records = etcd.records();
    let layers = |name: &str| -> Vec<String> {
        records
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} recorded: {records:?}"))
            .layers
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(layers("h"), listed_digests(&env, "h", 1));
    assert_eq!(layers("bb"), listed_digests(&env, "bb", 1));
    assert!(records.iter().any(|r| r.name == "h" && r.host));
    // Removing a version drops its record.
    let out = env.run(&["image", "remove", "h", "--store", &store]);
    assert_eq!(out.code, 0, "{out:?}");
    let names: Vec<String> = etcd.records().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["bb"]);
    // Recording needs a cluster store.
    let out = env.run(&["image", "record", "bb"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--store etcd://"), "{out:?}");
    let out = env.run(&["image", "record", "bb", "--store", "/var/lib/hako"]);
    assert_eq!(out.code, 2, "{out:?}");
}
