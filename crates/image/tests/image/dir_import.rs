//! Importing a directory: a faithful copy that never leaves the source.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use filetime::FileTime;
use hako_image::{CopyError, ImageError, Rootfs};

use super::support::TestStore;

fn mknod(path: &Path, kind: &str) {
    let mut cmd = Command::new("mknod");
    cmd.arg(path).arg(kind);
    if kind != "p" {
        cmd.args(["1", "3"]);
    }
    assert!(cmd.status().unwrap().success(), "mknod {}", path.display());
}

#[test]
fn directory_import_is_faithful_and_skips_dev_nodes() {
    let t = TestStore::new();
    let src = t.scratch("src");
    for d in ["usr/bin", "etc", "dev/pts", "data"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("usr/bin/tool"), b"tool").unwrap();
    std::os::unix::fs::chown(src.join("usr/bin/tool"), Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(src.join("usr/bin/tool"), PermissionsExt::from_mode(0o4750)).unwrap();
    filetime::set_file_mtime(
        src.join("usr/bin/tool"),
        FileTime::from_unix_time(1_400_000_000, 0),
    )
    .unwrap();
    std::fs::hard_link(src.join("usr/bin/tool"), src.join("usr/bin/tool2")).unwrap();
    std::fs::write(src.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    symlink("usr/bin", src.join("bin")).unwrap();
    symlink("/etc/alternatives/awk", src.join("usr/bin/awk")).unwrap();
    // A symlink out of the source must be copied as a link, never followed.
    symlink("/etc", src.join("data/host-etc")).unwrap();
    symlink("../../../../../../etc/shadow", src.join("data/up")).unwrap();
    mknod(&src.join("dev/null"), "c");
    mknod(&src.join("dev/pts/x"), "c");
    mknod(&src.join("dev/initctl"), "p");
    std::fs::set_permissions(src.join("etc"), PermissionsExt::from_mode(0o750)).unwrap();
    filetime::set_file_mtime(src.join("etc"), FileTime::from_unix_time(1_300_000_000, 0)).unwrap();

    let image = t.store.import("copy", &src).unwrap();
    let Rootfs::Layers(layers) = image.rootfs() else {
        panic!("a directory import gives layers");
    };
    let root = &layers[0];
    let tool = std::fs::symlink_metadata(root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4750);
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(tool.mtime(), 1_400_000_000);
    assert_eq!(std::fs::read(root.join("usr/bin/tool")).unwrap(), b"tool");
    let tool2 = std::fs::symlink_metadata(root.join("usr/bin/tool2")).unwrap();
    assert_eq!(tool2.ino(), tool.ino(), "hard links stay hard links");
    assert_eq!(
        std::fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/awk")).unwrap(),
        Path::new("/etc/alternatives/awk")
    );
    let host_etc = std::fs::symlink_metadata(root.join("data/host-etc")).unwrap();
    assert!(host_etc.file_type().is_symlink());
    assert!(
        std::fs::symlink_metadata(root.join("data/up"))
            .unwrap()
            .is_symlink()
    );
    let etc = std::fs::metadata(root.join("etc")).unwrap();
    assert_eq!(etc.mode() & 0o7777, 0o750);
    assert_eq!(etc.mtime(), 1_300_000_000);
    assert!(root.join("dev").is_dir());
    assert!(root.join("dev/pts").is_dir());
    let dev_entries: Vec<_> = std::fs::read_dir(root.join("dev"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(dev_entries, vec![std::ffi::OsString::from("pts")]);
    assert_eq!(std::fs::read_dir(root.join("dev/pts")).unwrap().count(), 0);
    assert_eq!(image.size_bytes, (4 + 26 + 7 + 21 + 4 + 28) as u64);
}

#[test]
fn special_files_outside_dev_are_refused_and_leave_nothing() {
    let t = TestStore::new();
    for (rel, kind, word) in [
        ("run/ctl", "p", "fifo"),
        ("etc/null", "c", "character device"),
    ] {
        let src = t.scratch(&format!("src-{word}").replace(' ', "-"));
        std::fs::create_dir_all(src.join("etc")).unwrap();
        std::fs::create_dir_all(src.join("run")).unwrap();
        std::fs::write(src.join("etc/passwd"), b"x").unwrap();
        mknod(&src.join(rel), kind);
        match t.store.import("bad", &src) {
            Err(ImageError::Copy(CopyError::SpecialFile { path, kind })) => {
                assert_eq!(path, Path::new(rel));
                assert_eq!(kind, word);
            }
            other => panic!("{rel}: {other:?}"),
        }
        assert_eq!(t.leftovers(), Vec::<String>::new());
    }
}

#[test]
fn a_symlinked_source_root_is_followed_but_nothing_inside() {
    let t = TestStore::new();
    let real = t.scratch("real");
    std::fs::create_dir_all(real.join("etc")).unwrap();
    std::fs::write(real.join("etc/passwd"), b"p").unwrap();
    let link = t.scratch("link");
    symlink(&real, &link).unwrap();
    let image = t.store.import("viaslink", &link).unwrap();
    let Rootfs::Layers(layers) = image.rootfs() else {
        panic!("layers");
    };
    assert_eq!(std::fs::read(layers[0].join("etc/passwd")).unwrap(), b"p");
}
