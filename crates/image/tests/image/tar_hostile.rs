//! Hostile tarballs: each is refused with an error naming the entry, and
//! leaves nothing in the store root and nothing outside it.

use hako_image::{ImageError, ImportLimits, UnpackError};
use tar::EntryType;

use super::support::{Meta, TarBuilder, TestStore};

/// Imports the archive built by `build` (as .tar.gz) and returns the error.
fn refuse(t: &TestStore, build: impl FnOnce(&mut TarBuilder)) -> UnpackError {
    let mut tb = TarBuilder::new();
    tb.dir("./", 0o755).dir("etc", 0o755);
    tb.file("etc/hostname", b"ok\n", Meta::default());
    build(&mut tb);
    let path = tb.write_to(&t.scratch("hostile.tar.gz"), true);
    match t.store.import("bad", &path) {
        Err(ImageError::Unpack(e)) => {
            assert_eq!(t.leftovers(), Vec::<String>::new(), "after {e}");
            assert!(t.store.list().unwrap().is_empty());
            e
        }
        other => panic!("hostile tarball was not refused: {other:?}"),
    }
}

#[test]
fn absolute_path_is_refused() {
    let t = TestStore::new();
    let e = refuse(&t, |tb| {
        tb.file("/tmp/hako-abs-pwned", b"x", Meta::default());
    });
    assert!(matches!(&e, UnpackError::AbsolutePath { entry } if entry == "/tmp/hako-abs-pwned"));
    assert!(e.to_string().contains("/tmp/hako-abs-pwned"), "{e}");
    assert!(!std::path::Path::new("/tmp/hako-abs-pwned").exists());
}

#[test]
fn parent_dir_components_are_refused() {
    let t = TestStore::new();
    for name in ["../escaped", "etc/../../escaped", "etc/.."] {
        let e = refuse(&t, |tb| {
            tb.file(name, b"x", Meta::default());
        });
        assert!(
            matches!(&e, UnpackError::ParentDir { entry } if entry == name),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(name), "{e}");
    }
    assert!(!t.store.root().parent().unwrap().join("escaped").exists());
    assert!(!t.dir.path().join("escaped").exists());
}

#[test]
fn writing_through_an_extracted_symlink_is_refused() {
    let t = TestStore::new();
    let outside = t.scratch("outside");
    std::fs::create_dir(&outside).unwrap();
    // Absolute symlinks are fine by themselves, but nothing may be written through them.
    let target = outside.display().to_string();
    let e = refuse(&t, |tb| {
        tb.symlink("evil", &target);
        tb.file("evil/pwned", b"x", Meta::default());
    });
    match &e {
        UnpackError::ThroughSymlink { entry, link } => {
            assert_eq!(entry, "evil/pwned");
            assert_eq!(link, "evil");
        }
        other => panic!("{other}"),
    }
    assert!(!outside.join("pwned").exists());
    // Same through a relative symlink that stays inside, then a deeper path.
    let e = refuse(&t, |tb| {
        tb.symlink("etc/inner", "../etc");
        tb.dir("etc/inner/sub", 0o755);
    });
    assert!(
        matches!(&e, UnpackError::ThroughSymlink { link, .. } if link == "etc/inner"),
        "{e}"
    );
}

#[test]
fn relative_symlink_escaping_the_root_is_refused() {
    let t = TestStore::new();
    let e = refuse(&t, |tb| {
        tb.symlink("etc/up", "../../outside");
    });
    match &e {
        UnpackError::SymlinkEscapes { entry, target } => {
            assert_eq!(entry, "etc/up");
            assert_eq!(target, "../../outside");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn bad_hard_links_are_refused() {
    let t = TestStore::new();
    /// (hard link target, symlinks made first, expected reason)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("/etc/passwd", &[], "absolute"),
        ("../outside", &[], "'..'"),
        ("etc/missing", &[], "not an earlier entry"),
        ("etc", &[], "directory"),
        ("ln/passwd", &[("ln", "/etc")], "under a symlink"),
    ];
    for (target, symlinks, reason) in cases {
        let e = refuse(&t, |tb| {
            for (l, to) in *symlinks {
                tb.symlink(l, to);
            }
            tb.hardlink("hl", target);
        });
        match &e {
            UnpackError::HardLink {
                entry,
                target: got,
                reason: why,
            } => {
                assert_eq!(entry, "hl");
                assert_eq!(got, target);
                assert!(why.contains(reason), "{target}: {why}");
            }
            other => panic!("{target}: {other}"),
        }
    }
}

#[test]
fn devices_and_fifos_are_refused() {
    let t = TestStore::new();
    for (name, kind, word) in [
        ("dev/null", EntryType::Char, "character device"),
        ("sda", EntryType::Block, "block device"),
        ("run/p", EntryType::Fifo, "fifo"),
    ] {
        let e = refuse(&t, |tb| {
            tb.raw(name, kind, Meta::default(), None, &[]);
        });
        match &e {
            UnpackError::SpecialFile { entry, kind } => {
                assert_eq!(entry, name);
                assert_eq!(*kind, word);
            }
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn limits_stop_oversized_archives() {
    let t = TestStore::new();
    let store = t.store.clone().with_import_limits(ImportLimits {
        max_entries: 10,
        max_bytes: 1000,
    });
    let mut tb = TarBuilder::new();
    for i in 0..11 {
        tb.file(&format!("f{i}"), b"", Meta::default());
    }
    let path = tb.write_to(&t.scratch("many.tar"), false);
    let err = store.import("many", &path).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Unpack(UnpackError::TooManyEntries { limit: 10 })
        ),
        "{err}"
    );
    let mut tb = TarBuilder::new();
    tb.file("a", &[0u8; 600], Meta::default());
    tb.file("b", &[0u8; 600], Meta::default());
    let path = tb.write_to(&t.scratch("big.tar"), false);
    let err = store.import("big", &path).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Unpack(UnpackError::TooLarge { limit: 1000 })
        ),
        "{err}"
    );
    assert_eq!(t.leftovers(), Vec::<String>::new());
}

#[test]
fn truncated_or_unknown_archives_are_refused_cleanly() {
    let t = TestStore::new();
    let mut tb = TarBuilder::new();
    tb.file("etc/big", &vec![7u8; 100_000], Meta::default());
    let full = tb.write_to(&t.scratch("full.tar.gz"), true);
    let bytes = std::fs::read(&full).unwrap();
    let cut = t.scratch("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = t.store.import("cut", &cut).unwrap_err();
    assert!(matches!(err, ImageError::Unpack(_)), "{err}");

    let junk = t.scratch("junk.tar");
    std::fs::write(&junk, b"this is not an archive at all").unwrap();
    let err = t.store.import("junk", &junk).unwrap_err();
    assert!(matches!(err, ImageError::Source { .. }), "{err}");
    assert!(err.to_string().contains("neither"), "{err}");
    assert_eq!(t.leftovers(), Vec::<String>::new());
}
