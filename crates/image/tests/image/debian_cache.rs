//! Debian build caching, with a fake debootstrap so it runs in milliseconds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hako_image::{DebianBuild, DebianError, ImageError, Rootfs, Storage};

use super::support::TestStore;

/// A script that acts like debootstrap: makes `<target>/etc/passwd` and a
/// device-like entry in dev/, and counts its runs in `<dir>/runs`.
/// With `fail`, prints a long log and exits 1.
fn fake_debootstrap(dir: &Path, fail: bool) -> PathBuf {
    let script = dir.join(if fail {
        "fail-debootstrap"
    } else {
        "fake-debootstrap"
    });
    let body = if fail {
        "for i in $(seq 1 50); do echo \"progress $i\"; done\necho 'E: Couldn'\"'\"'t download packages: nope' >&2\nexit 1\n".to_string()
    } else {
        format!(
            "echo run >> {runs}\nfor a; do last2=$last1; last1=$a; done\ntarget=\"$last2\"\n\
             mkdir -p \"$target/etc\" \"$target/dev\" \"$target/var/cache/apt/archives\"\n\
             echo \"root:x:0:0::/root:/bin/sh\" > \"$target/etc/passwd\"\n\
             echo \"$*\" > \"$target/etc/args\"\n\
             ln -s /proc/self/fd \"$target/dev/fd\"\n\
             echo deb > \"$target/var/cache/apt/archives/x.deb\"\n",
            runs = dir.join("runs").display()
        )
    };
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn opts(program: PathBuf) -> DebianBuild {
    DebianBuild {
        suite: Some("bookworm".into()),
        mirror: Some("http://deb.debian.org/debian".into()),
        arch: Some("amd64".into()),
        debootstrap: program,
        ..DebianBuild::default()
    }
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn pkgs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn same_package_set_builds_once_and_cache_outlives_only_its_users() {
    let t = TestStore::new();
    let o = opts(fake_debootstrap(t.dir.path(), false));
    let a = t
        .store
        .build_debian("php", &pkgs(&["php-cli", "curl"]), &o)
        .unwrap();
    let b = t
        .store
        .build_debian("php", &pkgs(&["curl", "php-cli"]), &o)
        .unwrap();
    let c = t
        .store
        .build_debian("other", &pkgs(&["curl", "php-cli"]), &o)
        .unwrap();
    assert_eq!(
        runs(t.dir.path()),
        1,
        "one debootstrap run for one package set"
    );
    assert_eq!((a.version, b.version, c.version), (1, 2, 1));
    assert_eq!(a.packages, ["curl", "php-cli"]);
    assert_eq!(
        a.source,
        "debootstrap bookworm http://deb.debian.org/debian"
    );
    let Storage::DebianCache { key, .. } = &a.storage else {
        panic!("{:?}", a.storage);
    };
    assert_eq!(b.storage, a.storage);
    let Rootfs::Layers(layers) = a.rootfs() else {
        panic!("layers");
    };
    let cache = t
        .store
        .root()
        .join(".cache/debian")
        .join(key)
        .join("rootfs");
    assert_eq!(layers, vec![cache.clone()]);
    assert_eq!(b.rootfs(), a.rootfs());
    assert_eq!(a.passwd_path(), cache.join("etc/passwd"));
    let args = std::fs::read_to_string(cache.join("etc/args")).unwrap();
    assert!(
        args.starts_with("--variant=minbase --arch=amd64 --include=curl,php-cli bookworm "),
        "{args}"
    );
    assert!(
        args.trim_end().ends_with(" http://deb.debian.org/debian"),
        "{args}"
    );
    // Trimmed: dev/ emptied, downloaded packages gone.
    assert_eq!(std::fs::read_dir(cache.join("dev")).unwrap().count(), 0);
    assert!(!cache.join("var/cache/apt/archives/x.deb").exists());
    assert_eq!(a.size_bytes, crate_size(&cache));
    // The cached system is digested once and kept with the cache; each version records it.
    let digest = hako_image::tree_digest(&cache).unwrap();
    assert_eq!(a.digests, std::slice::from_ref(&digest));
    assert_eq!(b.digests, a.digests);
    assert_eq!(
        std::fs::read_to_string(cache.parent().unwrap().join("digest")).unwrap(),
        format!("{digest}\n")
    );
    // A cache from before digests were kept gets its digest on its next use.
    std::fs::remove_file(cache.parent().unwrap().join("digest")).unwrap();
    let d = t
        .store
        .build_debian("php", &pkgs(&["curl", "php-cli"]), &o)
        .unwrap();
    assert_eq!(d.digests, a.digests);
    assert!(cache.parent().unwrap().join("digest").is_file());
    t.store.remove("php", Some(d.version)).unwrap();

    // Still used by php v2 and other v1: the cache stays.
    t.store.remove("php", None).unwrap();
    assert!(cache.is_dir());
    assert!(t.store.get("other", Some(1)).unwrap().rootfs() == c.rootfs());
    // Last user gone: the cache goes too.
    t.store.remove("other", Some(1)).unwrap();
    assert!(!cache.exists());
    // A new build of the same set runs debootstrap again.
    t.store
        .build_debian("php", &pkgs(&["php-cli", "curl"]), &o)
        .unwrap();
    assert_eq!(runs(t.dir.path()), 2);
}

/// Bytes of regular files and symlinks, the same way the store counts.
fn crate_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += crate_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[test]
fn failed_build_reports_the_log_tail_and_leaves_nothing() {
    let t = TestStore::new();
    let o = opts(fake_debootstrap(t.dir.path(), true));
    let err = t
        .store
        .build_debian("broken", &pkgs(&["hello"]), &o)
        .unwrap_err();
    match &err {
        ImageError::Debian(DebianError::Failed { tail, .. }) => {
            assert!(tail.contains("Couldn't download packages"), "{tail}");
            assert!(tail.contains("progress 50"), "{tail}");
            assert!(!tail.contains("progress 1\n"), "only the tail: {tail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("debootstrap failed"), "{err}");
    let cache_entries: Vec<_> = std::fs::read_dir(t.store.root().join(".cache/debian"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(cache_entries.is_empty(), "{cache_entries:?}");
    assert_eq!(t.leftovers(), vec![".cache".to_string()]);
    assert!(t.store.list().unwrap().is_empty());
}

#[test]
fn missing_debootstrap_says_how_to_install_it() {
    let t = TestStore::new();
    let o = opts(PathBuf::from("/nonexistent/hako-debootstrap"));
    let err = t
        .store
        .build_debian("x", &pkgs(&["hello"]), &o)
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Debian(DebianError::Spawn { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("apt-get install -y debootstrap"), "{text}");
    assert!(text.contains("/nonexistent/hako-debootstrap"), "{text}");
    assert_eq!(t.leftovers(), vec![".cache".to_string()]);
}

#[test]
fn added_files_lie_over_the_shared_cached_system() {
    let t = TestStore::new();
    let add = t.dir.path().join("add");
    std::fs::create_dir_all(add.join("etc/app")).unwrap();
    std::fs::write(add.join("etc/app/conf"), "port=1\n").unwrap();
    std::fs::write(
        add.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nweb:x:5:5::/:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/data/uploads", add.join("uploads")).unwrap();
    let mut o = opts(fake_debootstrap(t.dir.path(), false));
    let plain = t.store.build_debian("plain", &pkgs(&["curl"]), &o).unwrap();
    o.add = Some(add.clone());
    let img = t.store.build_debian("web", &pkgs(&["curl"]), &o).unwrap();
    assert_eq!(runs(t.dir.path()), 1, "the system is built once and shared");
    let Rootfs::Layers(layers) = img.rootfs() else {
        panic!("layers");
    };
    let Rootfs::Layers(plain_layers) = plain.rootfs() else {
        panic!("layers");
    };
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], plain_layers[0], "the cached system below");
    let digests: Vec<_> = layers
        .iter()
        .map(|l| hako_image::tree_digest(l).unwrap())
        .collect();
    assert_eq!(img.digests, digests, "one digest per layer, lowest first");
    assert_eq!(img.digests[0], plain.digests[0]);
    let record = img.record().unwrap();
    assert_eq!((record.version, record.host), (img.version, false));
    assert_eq!(record.layers, digests);
    assert_eq!(
        std::fs::read_to_string(layers[1].join("etc/app/conf")).unwrap(),
        "port=1\n"
    );
    assert_eq!(
        std::fs::read_link(layers[1].join("uploads")).unwrap(),
        Path::new("/data/uploads"),
        "symlinks stay symlinks"
    );
    assert!(img.size_bytes > plain.size_bytes);
    assert!(
        img.read_etc("passwd").unwrap().contains("web:x:5"),
        "the top layer's /etc wins"
    );
    // Removing the plain image keeps the cache: the added image still uses it.
    t.store.remove("plain", None).unwrap();
    assert!(layers[0].join("etc/passwd").is_file());

    o.add = Some(t.dir.path().join("no-such-dir"));
    let err = t
        .store
        .build_debian("bad", &pkgs(&["curl"]), &o)
        .unwrap_err();
    assert!(err.to_string().contains("must be a directory"), "{err}");
}
