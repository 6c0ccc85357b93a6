//! The verified cache on real files: fetch once, verify the copy, refuse other bytes, keep what
//! is in use, evict the least recently used, forget what the cluster no longer names.

use std::sync::Arc;

use super::*;

struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            dir: tempfile::Builder::new()
                .prefix("hako-blobs-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A tree on "shared storage" holding `bytes` bytes of `fill`; with its digest.
    fn tree(&self, name: &str, fill: u8, bytes: usize) -> (PathBuf, Digest) {
        let p = self.dir.path().join("shared").join(name);
        std::fs::create_dir_all(p.join("sub")).unwrap();
        std::fs::write(p.join("sub/file"), vec![fill; bytes]).unwrap();
        std::os::unix::fs::symlink("sub/file", p.join("link")).unwrap();
        let d = hako_image::tree_digest(&p).unwrap();
        (p, d)
    }

    fn cache(&self, max: u64) -> Blobs {
        Blobs::open(self.dir.path().join("cache"), max).unwrap()
    }

    /// Entries and staging dirs on disk.
    fn on_disk(&self) -> (usize, usize) {
        let root = self.dir.path().join("cache");
        let entries = std::fs::read_dir(root.join("sha256")).unwrap().count();
        let staging = std::fs::read_dir(&root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(STAGING_PREFIX)
            })
            .count();
        (entries, staging)
    }
}

#[test]
fn a_tree_is_copied_verified_once_and_then_served_from_the_cache() {
    let place = Place::new();
    let cache = place.cache(1 << 30);
    let (src, d) = place.tree("rel", 1, 1000);
    let used = cache.fetch(&d, &src).unwrap();
    assert!(
        used.path()
            .starts_with(place.dir.path().join("cache/sha256"))
    );
    assert_eq!(hako_image::tree_digest(used.path()).unwrap(), d);
    assert_eq!(cache.fetched(), 1);
    // Later uses take the cached copy, even with the source gone.
    std::fs::remove_dir_all(&src).unwrap();
    let again = cache.fetch(&d, &src).unwrap();
    assert_eq!(again.path(), used.path());
    assert_eq!(cache.fetched(), 1, "no second copy");
    assert_eq!(cache.usage(), (1, 1000 + 8));
    // It survives a restart of the agent.
    drop((used, again));
    let reopened = place.cache(1 << 30);
    assert_eq!(reopened.usage(), (1, 1008));
    reopened.fetch(&d, &src).unwrap();
    assert_eq!(reopened.fetched(), 0);
}

#[test]
fn other_bytes_than_the_recorded_ones_are_refused_and_leave_nothing() {
    let place = Place::new();
    let cache = place.cache(1 << 30);
    let (src, recorded) = place.tree("rel", 1, 1000);
    // One byte changes on shared storage after the digest was recorded.
    let mut bytes = vec![1u8; 1000];
    bytes[500] = 2;
    std::fs::write(src.join("sub/file"), &bytes).unwrap();
    let now = hako_image::tree_digest(&src).unwrap();
    match cache.fetch(&recorded, &src) {
        Err(BlobError::Mismatch { expected, got }) => {
            assert_eq!(expected, recorded);
            assert_eq!(got, now);
        }
        other => panic!("a changed tree must not verify: {other:?}"),
    }
    assert_eq!(place.on_disk(), (0, 0), "no entry, no staging dir left");
    assert_eq!(cache.usage(), (0, 0));
    // A missing source is its own error.
    let e = cache
        .fetch(&recorded, &place.dir.path().join("shared/none"))
        .unwrap_err();
    assert!(matches!(e, BlobError::Source { .. }), "{e:?}");
}

#[test]
fn concurrent_first_uses_fetch_once() {
    let place = Place::new();
    let cache = Arc::new(place.cache(1 << 30));
    let (src, d) = place.tree("rel", 3, 2_000_000);
    let barrier = Arc::new(std::sync::Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (cache, src, d, barrier) = (cache.clone(), src.clone(), d.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.fetch(&d, &src).unwrap().path().to_path_buf()
            })
        })
        .collect();
    let paths: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(paths.iter().all(|p| *p == paths[0]));
    assert_eq!(cache.fetched(), 1);
    assert!(cache.fetching.lock().unwrap().is_empty());
}

#[test]
fn the_least_recently_used_entry_nothing_uses_is_evicted_over_the_bound() {
    let place = Place::new();
    // Room for two trees of ~1000 bytes, not three.
    let cache = place.cache(2500);
    let (a_src, a) = place.tree("a", 1, 1000);
    let (b_src, b) = place.tree("b", 2, 1000);
    let (c_src, c) = place.tree("c", 3, 1000);
    let a_use = cache.fetch(&a, &a_src).unwrap();
    drop(cache.fetch(&b, &b_src).unwrap());
    // a is older but in use: b goes.
    let c_use = cache.fetch(&c, &c_src).unwrap();
    assert_eq!(cache.usage().0, 2);
    assert!(a_use.path().is_dir() && c_use.path().is_dir());
    assert!(!cache.entry_dir(&b).exists());
    // Nothing in use: the least recently used (a, then c) goes first.
    drop((a_use, c_use));
    drop(cache.fetch(&c, &c_src).unwrap());
    drop(cache.fetch(&b, &b_src).unwrap());
    assert!(!cache.entry_dir(&a).exists());
    assert!(cache.entry_dir(&b).is_dir() && cache.entry_dir(&c).is_dir());
    assert_eq!(place.on_disk(), (2, 0));
}

#[test]
fn entries_nothing_names_go_unless_in_use() {
    let place = Place::new();
    let cache = place.cache(1 << 30);
    let (a_src, a) = place.tree("a", 1, 10);
    let (b_src, b) = place.tree("b", 2, 10);
    let (c_src, c) = place.tree("c", 3, 10);
    drop(cache.fetch(&a, &a_src).unwrap());
    let b_use = cache.fetch(&b, &b_src).unwrap();
    drop(cache.fetch(&c, &c_src).unwrap());
    // Only c is still named by the cluster; b is not, but an instance uses it.
    let removed = cache.retain(&HashSet::from([c.clone()]));
    assert_eq!(removed, 1);
    assert!(!cache.entry_dir(&a).exists());
    assert!(b_use.path().is_dir() && cache.entry_dir(&c).is_dir());
    drop(b_use);
    assert_eq!(cache.retain(&HashSet::from([c.clone()])), 1);
    assert_eq!(place.on_disk(), (1, 0));
}
