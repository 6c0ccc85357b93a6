//! The digest names a tree by everything a container sees of it, and nothing else.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::unpack::ImportLimits;

fn root_required() {
    assert!(
        rustix::process::geteuid().is_root(),
        "tree digests cover owners: run these tests as root"
    );
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hako-digest-")
        .tempdir()
        .unwrap()
}

/// A small tree with every kind of entry: dirs, files, an empty file, a setuid file, a
/// symlink, a hard link, a device under dev/.
fn sample(at: &Path) {
    std::fs::create_dir_all(at.join("bin")).unwrap();
    std::fs::create_dir_all(at.join("etc/empty")).unwrap();
    std::fs::create_dir_all(at.join("dev")).unwrap();
    std::fs::write(at.join("bin/tool"), vec![7u8; 300_000]).unwrap();
    std::fs::set_permissions(at.join("bin/tool"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::write(at.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(at.join("etc/nothing"), "").unwrap();
    std::fs::hard_link(at.join("etc/passwd"), at.join("etc/passwd.bak")).unwrap();
    symlink("../bin/tool", at.join("etc/tool")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        at.join("dev/null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::fs::set_permissions(at, PermissionsExt::from_mode(0o755)).unwrap();
}

fn digest(p: &Path) -> Digest {
    tree_digest(p).unwrap()
}

#[test]
fn a_faithful_copy_has_the_same_digest_and_times_do_not_count() {
    root_required();
    let t = tmp();
    let a = t.path().join("a");
    std::fs::create_dir(&a).unwrap();
    sample(&a);
    let first = digest(&a);
    assert_eq!(digest(&a), first, "stable across runs");
    let b = t.path().join("b");
    crate::copy::copy_tree(&a, &b, &ImportLimits::default()).unwrap();
    assert_eq!(digest(&b), first, "stable across a faithful copy");
    let old = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(b.join("etc/passwd"), old).unwrap();
    assert_eq!(digest(&b), first, "mtimes are not part of it");
    assert!(first.to_string().starts_with("sha256:"));
}

/// Each change makes another digest, and undoing it gives the first one back.
#[test]
fn every_change_a_container_could_see_changes_it() {
    root_required();
    let t = tmp();
    let a = t.path().join("a");
    std::fs::create_dir(&a).unwrap();
    sample(&a);
    let first = digest(&a);
    let mut seen = std::collections::HashSet::from([first.clone()]);
    let mut differs = |what: &str, change: &dyn Fn(), undo: &dyn Fn()| {
        change();
        let d = digest(&a);
        assert!(
            seen.insert(d),
            "{what}: the digest did not change (or met an earlier one)"
        );
        undo();
        assert_eq!(
            digest(&a),
            first,
            "{what}: undoing it gives the first digest"
        );
    };
    let passwd = a.join("etc/passwd");
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
    differs(
        "one byte of a file",
        &|| std::fs::write(a.join("bin/tool"), [&[8u8][..], &[7u8; 299_999]].concat()).unwrap(),
        &|| std::fs::write(a.join("bin/tool"), vec![7u8; 300_000]).unwrap(),
    );
    differs(
        "a file longer by one byte",
        &|| std::fs::write(a.join("etc/nothing"), "\n").unwrap(),
        &|| std::fs::write(a.join("etc/nothing"), "").unwrap(),
    );
    differs(
        "the setuid bit",
        &|| mode(&a.join("bin/tool"), 0o755),
        &|| mode(&a.join("bin/tool"), 0o4755),
    );
    differs(
        "a directory's mode",
        &|| mode(&a.join("etc"), 0o700),
        &|| mode(&a.join("etc"), 0o755),
    );
    differs("the root's mode", &|| mode(&a, 0o750), &|| mode(&a, 0o755));
    differs(
        "a file's owner",
        &|| std::os::unix::fs::chown(&passwd, Some(1234), None).unwrap(),
        &|| std::os::unix::fs::chown(&passwd, Some(0), None).unwrap(),
    );
    differs(
        "a file's group",
        &|| std::os::unix::fs::chown(&passwd, None, Some(1234)).unwrap(),
        &|| std::os::unix::fs::chown(&passwd, None, Some(0)).unwrap(),
    );
    differs(
        "a symlink's owner",
        &|| std::os::unix::fs::lchown(a.join("etc/tool"), Some(99), None).unwrap(),
        &|| std::os::unix::fs::lchown(a.join("etc/tool"), Some(0), None).unwrap(),
    );
    let relink = |target: &str| {
        std::fs::remove_file(a.join("etc/tool")).unwrap();
        symlink(target, a.join("etc/tool")).unwrap();
    };
    differs("a symlink's target", &|| relink("/etc/shadow"), &|| {
        relink("../bin/tool")
    });
    differs(
        "a symlink in place of the same-content file",
        &|| {
            std::fs::remove_file(a.join("etc/passwd.bak")).unwrap();
            symlink("passwd", a.join("etc/passwd.bak")).unwrap();
        },
        &|| {
            std::fs::remove_file(a.join("etc/passwd.bak")).unwrap();
            std::fs::hard_link(&passwd, a.join("etc/passwd.bak")).unwrap();
        },
    );
    differs(
        "a copy in place of a hard link",
        &|| {
            std::fs::remove_file(a.join("etc/passwd.bak")).unwrap();
            std::fs::copy(&passwd, a.join("etc/passwd.bak")).unwrap();
        },
        &|| {
            std::fs::remove_file(a.join("etc/passwd.bak")).unwrap();
            std::fs::hard_link(&passwd, a.join("etc/passwd.bak")).unwrap();
        },
    );
    differs(
        "a renamed file",
        &|| std::fs::rename(a.join("etc/nothing"), a.join("etc/nothing2")).unwrap(),
        &|| std::fs::rename(a.join("etc/nothing2"), a.join("etc/nothing")).unwrap(),
    );
    differs(
        "a file moved into another directory",
        &|| std::fs::rename(a.join("etc/nothing"), a.join("etc/empty/nothing")).unwrap(),
        &|| std::fs::rename(a.join("etc/empty/nothing"), a.join("etc/nothing")).unwrap(),
    );
    differs(
        "an empty directory more",
        &|| std::fs::create_dir(a.join("srv")).unwrap(),
        &|| std::fs::remove_dir(a.join("srv")).unwrap(),
    );
}

#[test]
fn device_nodes_and_fifos_are_refused_outside_dev() {
    root_required();
    let t = tmp();
    sample(t.path());
    let before = digest(t.path());
    // Under dev/ they are skipped, as the importer skips them.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t.path().join("dev/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(digest(t.path()), before);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t.path().join("etc/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    match tree_digest(t.path()) {
        Err(DigestError::SpecialFile { path, kind }) => {
            assert_eq!(path, Path::new("etc/fifo"));
            assert_eq!(kind, "fifo");
        }
        other => panic!("a fifo in etc/ must be refused: {other:?}"),
    }
}

#[test]
fn symlinks_are_never_followed() {
    let t = tmp();
    std::fs::create_dir(t.path().join("a")).unwrap();
    symlink("/usr", t.path().join("a/usr")).unwrap();
    let d = digest(&t.path().join("a"));
    // Pointing the link elsewhere changes the digest, the host's /usr never enters it.
    std::fs::remove_file(t.path().join("a/usr")).unwrap();
    symlink("/usr/", t.path().join("a/usr")).unwrap();
    assert_ne!(digest(&t.path().join("a")), d);
    let missing = tree_digest(&t.path().join("no-such-dir")).unwrap_err();
    assert!(matches!(missing, DigestError::Io { .. }), "{missing:?}");
}

/// The format is fixed: hako builds of different ages on different nodes must agree on the
/// digest of the same tree. A change here must come with a new format name.
#[test]
fn the_format_is_stable() {
    root_required();
    let t = tmp();
    let a = t.path();
    std::fs::set_permissions(a, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir(a.join("d")).unwrap();
    std::fs::set_permissions(a.join("d"), PermissionsExt::from_mode(0o750)).unwrap();
    std::fs::write(a.join("d/f"), "hello\n").unwrap();
    std::fs::set_permissions(a.join("d/f"), PermissionsExt::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(a.join("d/f"), Some(33), Some(33)).unwrap();
    std::fs::hard_link(a.join("d/f"), a.join("g")).unwrap();
    symlink("d/f", a.join("l")).unwrap();
    // Built by hand from the documented encoding.
    let mut h = Sha256::new();
    h.update(FORMAT);
    let entry = |h: &mut Sha256, tag: u8, path: &str, mode: u32, uid: u32, gid: u32| {
        h.update([tag]);
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(mode.to_le_bytes());
        h.update(uid.to_le_bytes());
        h.update(gid.to_le_bytes());
    };
    entry(&mut h, b'd', "", 0o755, 0, 0);
    entry(&mut h, b'd', "d", 0o750, 0, 0);
    entry(&mut h, b'f', "d/f", 0o644, 33, 33);
    h.update(6u64.to_le_bytes());
    h.update(b"hello\n");
    entry(&mut h, b'h', "g", 0o644, 33, 33);
    h.update(3u64.to_le_bytes());
    h.update(b"d/f");
    entry(&mut h, b'l', "l", 0o777, 0, 0);
    h.update(3u64.to_le_bytes());
    h.update(b"d/f");
    let expected = Digest::from_bytes(h.finalize().into());
    assert_eq!(digest(a), expected);
}
