//! The embedded store keeps every acknowledged write across `kill -9`, and
//! only one process can own a database file at a time.
//!
//! The kill test re-runs this test binary as a child (the ignored test
//! `child_writer`), which writes continuously and prints `ACK <i> <rev>` after
//! each write returns; the parent kills it with SIGKILL mid-stream, reopens
//! the file and checks every acknowledged write is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use hako_store::{EmbeddedConfig, EmbeddedStore, Store, StoreError, StoreExt, keys};

const DIR_ENV: &str = "HAKO_STORE_CHILD_DIR";
const ACKS_BEFORE_KILL: usize = 300;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct App {
    image: String,
}

/// Run by `survives_kill_9` in a child process; does nothing on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper run as a child process by survives_kill_9"]
async fn child_writer() {
    let dir = std::env::var(DIR_ENV).expect("run only by survives_kill_9");
    let store = Arc::new(EmbeddedStore::open_in_data_dir(&dir).await.unwrap());
    store
        .create_json(
            &keys::app("blog"),
            &App {
                image: "php".into(),
            },
        )
        .await
        .unwrap();
    let lease = store
        .grant_lease(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    store
        .put_with_lease(&keys::node("n1"), b"up".to_vec(), lease)
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for i in 0u64.. {
            let rev = store
                .put(&format!("/dur/{i:08}"), i.to_string().into_bytes())
                .await
                .unwrap();
            println!("ACK {i} {rev}");
        }
    });
    // Block until the parent kills us (it never closes our stdin).
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
        .await
        .unwrap();
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_kill_9() {
    let dir = tempfile::Builder::new()
        .prefix("hako-store-kill")
        .tempdir()
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--ignored", "--nocapture"])
        .env(DIR_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked: Vec<(u64, i64)> = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (i, rev) = rest.split_once(' ').unwrap();
            acked.push((i.parse().unwrap(), rev.parse().unwrap()));
            if acked.len() == ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "child stopped early");
    child.kill().unwrap(); // SIGKILL, while it keeps writing
    let status = child.wait().unwrap();
    assert!(!status.success());

    let store = EmbeddedStore::open_in_data_dir(dir.path()).await.unwrap();
    let app: Option<App> = store.get_json(&keys::app("blog")).await.unwrap();
    assert_eq!(
        app,
        Some(App {
            image: "php".into()
        })
    );
    assert_eq!(
        store.get(&keys::node("n1")).await.unwrap().unwrap().value,
        b"up",
        "leased key survives a restart"
    );
    for (i, rev) in &acked {
        let kv = store
            .get(&format!("/dur/{i:08}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acked write {i} lost"));
        assert_eq!(
            (kv.value, kv.mod_revision),
            (i.to_string().into_bytes(), *rev)
        );
    }
    let last_acked = acked.last().unwrap().1;
    let rev = store.revision().await.unwrap();
    assert!(
        rev >= last_acked,
        "revision went back: {rev} < {last_acked}"
    );
    let next = store.put("/dur/after", b"x".to_vec()).await.unwrap();
    assert_eq!(next, rev + 1, "revisions continue after the restart");
    let mut watch = store.watch("/dur/", Some(acked[0].1)).await.unwrap();
    for (_, want) in acked.iter().take(20) {
        assert_eq!(
            watch.recv().await.unwrap().unwrap().revision,
            *want,
            "history survives too"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn one_process_owns_the_file() {
    let dir = tempfile::Builder::new()
        .prefix("hako-store-lock")
        .tempdir()
        .unwrap();
    let first = EmbeddedStore::open(EmbeddedConfig::in_data_dir(dir.path()))
        .await
        .unwrap();
    first.put("/k", b"v".to_vec()).await.unwrap();
    let err = EmbeddedStore::open_in_data_dir(dir.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InUse { path } if path.ends_with("hako.db")),
        "{err}"
    );
    first.close().await;
    assert_eq!(first.get("/k").await, Err(StoreError::Closed));
    let second = EmbeddedStore::open_in_data_dir(dir.path()).await.unwrap();
    assert_eq!(second.get("/k").await.unwrap().unwrap().value, b"v");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(second.path().unwrap())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the store file is private");
    second.close().await;
}
