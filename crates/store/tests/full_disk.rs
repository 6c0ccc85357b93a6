//! The embedded store on a full disk (root: the test mounts a 1 MiB tmpfs named
//! `hako-store-full-…` and always unmounts it): a write that finds no room fails with the
//! typed [`StoreError::Full`] naming the file, nothing of it is stored, everything written
//! before stays readable, and writes work again once there is room — also after a reopen.

use std::path::{Path, PathBuf};
use std::process::Command;

use hako_store::{Durability, EmbeddedConfig, EmbeddedStore, Store, StoreError};

/// Size of the test's filesystem.
const TMPFS_SIZE: &str = "1m";
/// A file taking half the filesystem, removed to make room again: room for the store to
/// checkpoint what its log holds into the database file when it is reopened.
const BALLAST_BYTES: usize = 512 * 1024;
/// Value size of the writes that fill the disk.
const FILL_VALUE: usize = 16 * 1024;
/// The fill ends with an error long before this many writes (1 MiB / 16 KiB = 64).
const MAX_FILL_WRITES: usize = 1_000;

/// A tmpfs mounted for one test, unmounted (and its mount point removed) when dropped,
/// also when the test fails midway.
struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("hako-store-full-")
            .tempdir()
            .unwrap();
        // The mount's source names the run, so a leftover says whose it is.
        let source = format!("hako-store-full-{}", std::process::id());
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg(&source)
            .arg(dir.path())
            .status()
            .expect("cannot run mount");
        assert!(status.success(), "mount of a tmpfs failed: {status}");
        Tmpfs { dir, mounted: true }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Something still holds it (a failed test's open file): detach it anyway.
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
            self.mounted = false;
        }
    }
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "this test mounts a tmpfs: run it as root (cargo xtask test does)"
    );
}

fn ballast(dir: &Path) -> PathBuf {
    dir.join("ballast")
}

#[tokio::test]
async fn a_full_disk_fails_writes_with_full_and_keeps_what_was_stored() {
    require_root();
    let fs = Tmpfs::mount(TMPFS_SIZE);
    std::fs::write(ballast(fs.path()), vec![7u8; BALLAST_BYTES]).unwrap();
    let config = EmbeddedConfig {
        durability: Durability::Full,
        ..EmbeddedConfig::in_data_dir(fs.path())
    };
    let db = config.path.clone().unwrap();
    let store = EmbeddedStore::open(config.clone()).await.unwrap();

    // Data stored before the disk fills.
    for i in 0..20 {
        store
            .put(&format!("/keep/{i:03}"), format!("value {i}").into_bytes())
            .await
            .unwrap();
    }
    // Fill the disk through the store until a write finds no room.
    let mut acked = Vec::new();
    let err = loop {
        assert!(
            acked.len() < MAX_FILL_WRITES,
            "{} writes of {FILL_VALUE} bytes fit on a {TMPFS_SIZE} filesystem",
            acked.len()
        );
        let key = format!("/fill/{:04}", acked.len());
        match store.put(&key, vec![b'x'; FILL_VALUE]).await {
            Ok(_) => acked.push(key),
            Err(e) => break e,
        }
    };
    let StoreError::Full { location } = &err else {
        panic!("a write on a full disk failed with {err:?}, not StoreError::Full");
    };
    assert_eq!(location, &db.display().to_string());
    assert!(err.to_string().contains("free space"), "{err}");
    let refused = format!("/fill/{:04}", acked.len());
    assert!(!acked.is_empty(), "the disk was full before any fill write");

    // Still full: another write fails the same way; reads go on, and every acknowledged
    // write is there, the refused one is not.
    let again = store
        .put("/other", vec![b'y'; FILL_VALUE])
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Full { .. }), "{again:?}");
    check_readable(&store, &acked).await;
    assert_eq!(store.get(&refused).await.unwrap(), None);
    assert_eq!(store.get("/other").await.unwrap(), None);

    // Room again: writes work, nothing was lost, also after the store is reopened.
    std::fs::remove_file(ballast(fs.path())).unwrap();
    store.put("/after", b"room again".to_vec()).await.unwrap();
    check_readable(&store, &acked).await;
    store.close().await;
    drop(store);
    let store = EmbeddedStore::open(config).await.unwrap();
    check_readable(&store, &acked).await;
    assert_eq!(
        store.get("/after").await.unwrap().unwrap().value,
        b"room again"
    );
    store.close().await;
    drop(store);
    drop(fs);
}

async fn check_readable(store: &EmbeddedStore, acked: &[String]) {
    for i in 0..20 {
        let kv = store.get(&format!("/keep/{i:03}")).await.unwrap();
        assert_eq!(
            kv.map(|kv| kv.value),
            Some(format!("value {i}").into_bytes()),
            "/keep/{i:03} was stored before the disk filled"
        );
    }
    for key in acked {
        let kv = store.get(key).await.unwrap();
        assert_eq!(
            kv.map(|kv| kv.value.len()),
            Some(FILL_VALUE),
            "{key} was acknowledged"
        );
    }
}
