//! A good rootfs tarball keeps everything a root filesystem needs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use hako_image::{ImageKind, Rootfs, Storage};

use super::support::{Meta, TarBuilder, TestStore};

fn rootfs_of(image: &hako_image::Image) -> std::path::PathBuf {
    match image.rootfs() {
        Rootfs::Layers(layers) => {
            assert_eq!(layers.len(), 1);
            layers[0].clone()
        }
        other => panic!("expected layers, got {other:?}"),
    }
}

fn good_tarball() -> TarBuilder {
    let mut tb = TarBuilder::new();
    tb.dir("./", 0o755)
        .dir("./usr", 0o755)
        .dir("./usr/bin", 0o755)
        .dir("./etc", 0o755)
        .dir("./tmp", 0o1777);
    tb.file(
        "./usr/bin/tool",
        b"#!/bin/sh\necho hi\n",
        Meta {
            mode: 0o755,
            uid: 1000,
            gid: 1001,
            mtime: 1_500_000_000,
        },
    );
    tb.file(
        "./usr/bin/su",
        b"setuid binary",
        Meta {
            mode: 0o4755,
            ..Meta::default()
        },
    );
    tb.file(
        "./usr/bin/wall",
        b"setgid binary",
        Meta {
            mode: 0o2755,
            uid: 0,
            gid: 5,
            ..Meta::default()
        },
    );
    tb.hardlink("./usr/bin/tool-link", "./usr/bin/tool");
    tb.symlink("./usr/bin/awk", "/etc/alternatives/awk");
    tb.symlink("./bin", "usr/bin");
    tb.symlink("./etc/os-release", "../usr/lib/os-release");
    tb.file(
        "./etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\n",
        Meta::default(),
    );
    // A file whose parent dir has no entry of its own.
    tb.file("./var/lib/misc/state", b"s", Meta::default());
    tb
}

#[test]
fn good_tarball_keeps_links_owners_modes_and_times() {
    let t = TestStore::new();
    let src = good_tarball().write_to(&t.scratch("rootfs.tar.gz"), true);
    let image = t.store.import("good", &src).unwrap();
    assert_eq!((image.name.as_str(), image.version), ("good", 1));
    assert_eq!(image.kind, ImageKind::Rootfs);
    assert_eq!(image.storage, Storage::Local);
    assert_eq!(image.source, src.display().to_string());
    let root = rootfs_of(&image);
    assert_eq!(root, t.store.root().join("good/1/rootfs"));

    let tool = std::fs::symlink_metadata(root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o755);
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(tool.mtime(), 1_500_000_000);
    let link = std::fs::symlink_metadata(root.join("usr/bin/tool-link")).unwrap();
    assert_eq!(link.ino(), tool.ino(), "hard link shares the inode");
    assert_eq!(tool.nlink(), 2);

    let su = std::fs::metadata(root.join("usr/bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid bit kept");
    let wall = std::fs::metadata(root.join("usr/bin/wall")).unwrap();
    assert_eq!(wall.mode() & 0o7777, 0o2755, "setgid bit kept");
    assert_eq!(wall.gid(), 5);
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    let usr_bin = std::fs::metadata(root.join("usr/bin")).unwrap();
    assert_eq!(
        usr_bin.mtime(),
        1_600_000_000,
        "dir mtime restored after its children"
    );

    assert_eq!(
        std::fs::read_link(root.join("usr/bin/awk")).unwrap(),
        Path::new("/etc/alternatives/awk")
    );
    assert_eq!(
        std::fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/os-release")).unwrap(),
        Path::new("../usr/lib/os-release")
    );
    assert_eq!(
        std::fs::read(root.join("var/lib/misc/state")).unwrap(),
        b"s"
    );
    assert_eq!(image.passwd_path(), root.join("etc/passwd"));
    assert!(
        std::fs::read_to_string(image.passwd_path())
            .unwrap()
            .starts_with("root:")
    );

    let expected = [
        "#!/bin/sh\necho hi\n".len(),
        "setuid binary".len(),
        "setgid binary".len(),
        "/etc/alternatives/awk".len(),
        "usr/bin".len(),
        "../usr/lib/os-release".len(),
        "root:x:0:0:root:/root:/bin/sh\n".len(),
        1,
    ]
    .iter()
    .sum::<usize>() as u64;
    assert_eq!(image.size_bytes, expected);
    // Nothing but the image itself in the store.
    assert_eq!(t.leftovers(), vec!["good".to_string()]);
    // The metadata read back equals what import returned.
    assert_eq!(t.store.get("good", None).unwrap(), image);
}

#[test]
fn format_is_detected_by_content_not_extension() {
    let t = TestStore::new();
    // A plain tar named .tgz and a gzip named .tar both import.
    let plain = good_tarball().write_to(&t.scratch("looks-gzipped.tgz"), false);
    let gz = good_tarball().write_to(&t.scratch("looks-plain.tar"), true);
    let a = t.store.import("fmt", &plain).unwrap();
    let b = t.store.import("fmt", &gz).unwrap();
    assert_eq!((a.version, b.version), (1, 2));
    assert_eq!(a.size_bytes, b.size_bytes);
}

#[test]
fn later_entry_replaces_an_earlier_symlink_without_touching_its_target() {
    let t = TestStore::new();
    let outside = t.scratch("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut tb = TarBuilder::new();
    tb.symlink("x", &outside.display().to_string());
    tb.dir("x", 0o777); // a chmod through the symlink would change `outside`
    tb.symlink("y", &outside.display().to_string());
    tb.file("y", b"plain", Meta::default());
    let src = tb.write_to(&t.scratch("replace.tar"), false);
    let image = t.store.import("replace", &src).unwrap();
    let root = rootfs_of(&image);
    assert!(std::fs::symlink_metadata(root.join("x")).unwrap().is_dir());
    assert_eq!(std::fs::read(root.join("y")).unwrap(), b"plain");
    let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "target of the replaced symlink untouched"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}
