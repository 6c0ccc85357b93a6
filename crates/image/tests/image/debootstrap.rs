//! The one real debootstrap build (minutes; needs the Debian mirror).

use std::time::{Duration, Instant};

use hako_image::{DebianBuild, Rootfs, Storage};

use super::support::TestStore;

#[test]
fn real_debootstrap_build_then_instant_rebuild() {
    let t = TestStore::new();
    let pkgs = vec!["hello".to_string()];
    let first = t
        .store
        .build_debian("hello", &pkgs, &DebianBuild::default())
        .unwrap();
    let Rootfs::Layers(layers) = first.rootfs() else {
        panic!("layers");
    };
    let root = &layers[0];
    assert!(
        root.join("usr/bin/hello").is_file(),
        "the package is installed"
    );
    assert!(root.join("etc/passwd").is_file());
    assert!(
        first.size_bytes > 10_000_000,
        "a minbase system: {}",
        first.size_bytes
    );
    let dev: Vec<_> = std::fs::read_dir(root.join("dev")).unwrap().collect();
    assert!(dev.is_empty(), "dev/ emptied: {dev:?}");
    let lists = std::fs::read_dir(root.join("var/lib/apt/lists"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("Packages")
        })
        .count();
    assert_eq!(lists, 0, "apt lists cleaned");

    let started = Instant::now();
    let second = t
        .store
        .build_debian("hello", &pkgs, &DebianBuild::default())
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "cache hit took {took:?}");
    assert_eq!(second.version, 2);
    assert_eq!(second.storage, first.storage);
    assert!(matches!(second.storage, Storage::DebianCache { .. }));
    assert_eq!(second.rootfs(), first.rootfs());
    assert_eq!(second.size_bytes, first.size_bytes);
}
