//! Versions, listing, lookup, removal, concurrency and crash leftovers.

use std::collections::BTreeSet;

use hako_image::{ImageError, ImageStore, NameError};

use super::support::{Meta, TarBuilder, TestStore};

fn small_tar(t: &TestStore, tag: &str) -> std::path::PathBuf {
    let mut tb = TarBuilder::new();
    tb.dir("etc", 0o755);
    tb.file("etc/tag", tag.as_bytes(), Meta::default());
    tb.write_to(&t.scratch(&format!("{tag}.tar")), false)
}

#[test]
fn versions_increase_and_get_finds_each() {
    let t = TestStore::new();
    for (i, tag) in ["one", "two", "three"].iter().enumerate() {
        let img = t.store.import("web", &small_tar(&t, tag)).unwrap();
        assert_eq!(img.version, i as u32 + 1);
    }
    t.store.import("api", &small_tar(&t, "api")).unwrap();
    let latest = t.store.get("web", None).unwrap();
    assert_eq!(latest.version, 3);
    let v2 = t.store.get("web", Some(2)).unwrap();
    let hako_image::Rootfs::Layers(layers) = v2.rootfs() else {
        panic!("layers");
    };
    assert_eq!(std::fs::read(layers[0].join("etc/tag")).unwrap(), b"two");
    // Each version records the digest of its tree, computed when it was made.
    assert_eq!(v2.digests, [hako_image::tree_digest(&layers[0]).unwrap()]);
    assert_ne!(v2.digests, latest.digests, "other contents, other digest");
    let listed: Vec<(String, u32)> = t
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("api".into(), 1),
            ("web".into(), 1),
            ("web".into(), 2),
            ("web".into(), 3)
        ]
    );
    assert!(matches!(
        t.store.get("web", Some(9)),
        Err(ImageError::NotFound {
            version: Some(9),
            ..
        })
    ));
    let err = t.store.get("nope", None).unwrap_err();
    assert!(err.to_string().contains("image nope not found"), "{err}");
    assert!(matches!(
        t.store.import("Bad/Name", &small_tar(&t, "x")),
        Err(ImageError::Name(NameError::BadStart(_)))
    ));
}

#[test]
fn remove_one_version_or_all_and_numbers_are_not_reused() {
    let t = TestStore::new();
    for tag in ["a", "b", "c"] {
        t.store.import("site", &small_tar(&t, tag)).unwrap();
    }
    t.store.remove("site", Some(3)).unwrap();
    assert!(!t.store.root().join("site/3").exists());
    assert_eq!(t.store.get("site", None).unwrap().version, 2);
    // Version 3 was given out once; the next import gets 4.
    assert_eq!(
        t.store.import("site", &small_tar(&t, "d")).unwrap().version,
        4
    );
    assert!(matches!(
        t.store.remove("site", Some(3)),
        Err(ImageError::NotFound {
            version: Some(3),
            ..
        })
    ));
    t.store.remove("site", Some(1)).unwrap();
    let left: Vec<u32> = t.store.list().unwrap().iter().map(|i| i.version).collect();
    assert_eq!(left, [2, 4]);
    t.store.remove("site", None).unwrap();
    assert!(t.store.list().unwrap().is_empty());
    assert_eq!(t.leftovers(), Vec::<String>::new());
    assert!(matches!(
        t.store.remove("site", None),
        Err(ImageError::NotFound { version: None, .. })
    ));
}

#[test]
fn concurrent_imports_get_distinct_versions() {
    let t = TestStore::new();
    let src = small_tar(&t, "same");
    let root = t.store.root().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (root, src) = (root.clone(), src.clone());
            // Separate handles, as separate processes would have.
            std::thread::spawn(move || {
                let store = ImageStore::open(root).unwrap();
                store.import("race", &src).unwrap().version
            })
        })
        .collect();
    let versions: BTreeSet<u32> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(versions, (1..=8).collect());
    assert_eq!(t.store.list().unwrap().len(), 8);
    assert_eq!(t.leftovers(), vec!["race".to_string()]);
}

#[test]
fn open_removes_staging_dirs_left_by_a_dead_process() {
    let t = TestStore::new();
    let stale = t.store.root().join(".tmp-killed");
    std::fs::create_dir_all(stale.join("rootfs/etc")).unwrap();
    std::fs::write(stale.join("rootfs/etc/passwd"), b"x").unwrap();
    let _reopened = ImageStore::open(t.store.root()).unwrap();
    assert!(!stale.exists());
    assert_eq!(t.leftovers(), Vec::<String>::new());
}

#[test]
fn a_version_with_corrupt_metadata_is_reported_and_removable() {
    let t = TestStore::new();
    t.store.import("broken", &small_tar(&t, "a")).unwrap();
    t.store.import("broken", &small_tar(&t, "b")).unwrap();
    std::fs::write(t.store.root().join("broken/1/image.json"), b"{ not json").unwrap();
    let err = t.store.list().unwrap_err();
    assert!(matches!(err, ImageError::Meta { .. }), "{err}");
    assert!(err.to_string().contains("broken/1/image.json"), "{err}");
    t.store.remove("broken", Some(1)).unwrap();
    let left: Vec<u32> = t.store.list().unwrap().iter().map(|i| i.version).collect();
    assert_eq!(left, [2]);
}
