//! Host images: a skeleton whose mount points match binds of existing host paths.

use std::path::Path;

use hako_image::{ETC_BINDS, ImageKind, Rootfs};

use super::support::TestStore;

#[test]
fn host_image_skeleton_and_binds_match_the_host() {
    let t = TestStore::new();
    let image = t.store.host("host").unwrap();
    assert_eq!((image.kind, image.version), (ImageKind::Host, 1));
    assert_eq!(image.passwd_path(), Path::new("/etc/passwd"));
    let Rootfs::Host { skeleton, binds } = image.rootfs() else {
        panic!("a host image gives a host rootfs");
    };
    assert_eq!(skeleton, t.store.root().join("host/1/rootfs"));
    // The skeleton is digested (the binds are the node's own system, checked by rule).
    assert_eq!(image.digests, [hako_image::tree_digest(&skeleton).unwrap()]);
    assert!(image.record().unwrap().host);
    assert!(binds.iter().all(hako_image::bind_allowed));
    assert_eq!(binds[0].source, Path::new("/usr"));
    assert_eq!(binds[0].target, Path::new("/usr"));
    for b in &binds {
        assert!(
            b.source.exists(),
            "{} exists on the host",
            b.source.display()
        );
        assert_eq!(b.source.is_dir(), b.is_dir, "{}", b.source.display());
        let point = skeleton.join(b.target.strip_prefix("/").unwrap());
        let meta = std::fs::symlink_metadata(&point).unwrap();
        assert_eq!(meta.is_dir(), b.is_dir, "mount point {}", point.display());
        if !b.is_dir {
            assert!(meta.is_file() && meta.len() == 0, "{}", point.display());
        }
        assert!(!b.target.to_string_lossy().contains("shadow"));
    }
    // Every listed /etc entry that the host has is bound, and only those.
    let bound: Vec<_> = binds.iter().map(|b| b.target.clone()).collect();
    for name in ETC_BINDS {
        let on_host = Path::new("/etc").join(name).exists();
        assert_eq!(
            bound.contains(&Path::new("/etc").join(name)),
            on_host,
            "{name}"
        );
    }
    assert!(bound.contains(&Path::new("/etc/passwd").to_path_buf()));
    // Top-level symlinks mirror the host's (merged /usr on Debian).
    for top in ["bin", "sbin", "lib", "lib64"] {
        let host = std::fs::symlink_metadata(Path::new("/").join(top));
        let skel = std::fs::symlink_metadata(skeleton.join(top));
        match host {
            Ok(m) if m.is_symlink() => assert_eq!(
                std::fs::read_link(skeleton.join(top)).unwrap(),
                std::fs::read_link(Path::new("/").join(top)).unwrap()
            ),
            Ok(_) => assert!(skel.unwrap().is_dir()),
            Err(_) => assert!(skel.is_err()),
        }
    }
    for dir in [
        "app", "data", "proc", "dev", "tmp", "run", "var/tmp", "etc", "usr",
    ] {
        assert!(skeleton.join(dir).is_dir(), "{dir}");
    }
    // Instant and tiny: the skeleton holds no file data.
    assert_eq!(image.size_bytes, 0);
    assert_eq!(t.store.get("host", None).unwrap(), image);
}
