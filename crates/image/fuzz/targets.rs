//! Fuzz targets for the tarball importer and the layers of OCI/Docker images.
//!
//! The tarball importer (`hako image import`, release uploads): whatever the
//! bytes, an import either makes an image whose tree holds only directories, regular files
//! and symlinks that stay inside it, or is refused leaving nothing behind — and nothing
//! outside the store is ever touched.
//!
//! Each input is tried twice: as raw bytes (a tar, or a gzip of one), and as a program that
//! builds a tar of hostile entries (`..`, absolute paths, links through links, devices…)
//! with raw headers. `cargo test` replays `fuzz/__fuzz__/tar_import/{corpus,crashes}/` and
//! then runs random inputs for under a second. Long runs: README, "Fuzzing". Needs root
//! (owners are kept), as the import does.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use hako_image::{ImageStore, ImportLimits};

/// Path pieces the builder picks from: ordinary names, `..`, `.`, empty, spaces, the root.
const PIECES: [&str; 8] = ["a", "b", "..", ".", "", "c d", "/", "etc"];

/// A tar built from `program`: each entry takes 4 bytes (kind, path, link target, size).
fn hostile_tar(program: &[u8]) -> Vec<u8> {
    hostile_tar_of(program, &PIECES)
}

/// [`hostile_tar`] with its paths made of `pieces`.
fn hostile_tar_of(program: &[u8], pieces: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in program.chunks(4).take(24) {
        let byte = |i: usize| chunk.get(i).copied().unwrap_or(0);
        let path = pick_path(byte(1), pieces);
        let target = pick_path(byte(2), pieces);
        let kind = match byte(0) % 8 {
            0 | 1 => b'0', // file
            2 => b'5',     // directory
            3 => b'2',     // symlink
            4 => b'1',     // hard link
            5 => b'3',     // character device
            6 => b'6',     // fifo
            _ => b'x',     // pax header (or an unknown type)
        };
        let size = if kind == b'0' {
            usize::from(byte(3) % 64)
        } else {
            0
        };
        out.extend_from_slice(&header(&path, kind, &target, size));
        let mut data = vec![b'z'; size];
        data.resize(size.div_ceil(512) * 512, 0);
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn pick_path(b: u8, pieces: &[&str]) -> String {
    let depth = 1 + usize::from(b >> 6);
    (0..depth)
        .map(|i| pieces[usize::from(b.rotate_left(3 * i as u32)) % pieces.len()])
        .collect::<Vec<_>>()
        .join("/")
}

/// A ustar header with `name` written raw (the tar crate's builder refuses `..`).
fn header(name: &str, kind: u8, link: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    h[100..107].copy_from_slice(b"0000755");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    let l = link.as_bytes();
    h[157..157 + l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Every path under `dir` (not following symlinks).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Where a relative symlink at `link` (inside `root`) points, lexically; `None` if above root.
fn resolves_inside(root: &Path, link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true; // resolves inside the container's own root
    }
    let mut depth: isize = link
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .map_or(0, |p| p.components().count() as isize);
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// A store next to a directory nothing may touch, kept for the whole run.
struct Place {
    tmp: tempfile::TempDir,
    store: ImageStore,
}

impl Place {
    fn new() -> Place {
        let tmp = tempfile::Builder::new()
            .prefix("hako-fuzz-tar")
            .tempdir()
            .unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"untouched").unwrap();
        let store = ImageStore::open(tmp.path().join("store"))
            .unwrap()
            .with_import_limits(ImportLimits {
                max_entries: 64,
                max_bytes: 1 << 20,
            });
        Place { tmp, store }
    }
}

fn check_import(place: &Place, bytes: &[u8], gzip: bool) {
    let file = place.tmp.path().join("input.tar");
    let mut f = std::fs::File::create(&file).unwrap();
    if gzip {
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap();
    } else {
        f.write_all(bytes).unwrap();
    }
    check_source(place, &file, false);
}

/// Imports `source` and checks what the import left, made or refused.
fn check_source(place: &Place, source: &Path, images: bool) {
    let tmp = place.tmp.path();
    let store = &place.store;
    let store_root = store.root().to_path_buf();
    let outside = tmp.join("outside");
    let before: Vec<PathBuf> = walk(tmp);

    let imported = if images {
        store.import_image("fuzzed", source, &|_| {})
    } else {
        store.import("fuzzed", source)
    };
    match imported {
        Ok(image) => {
            let root = image.dir().join("rootfs");
            for p in walk(&root) {
                let m = p.symlink_metadata().unwrap();
                let t = m.file_type();
                assert!(
                    t.is_dir() || t.is_file() || t.is_symlink(),
                    "{p:?} is {t:?}"
                );
                if t.is_symlink() {
                    let target = std::fs::read_link(&p).unwrap();
                    assert!(resolves_inside(&root, &p, &target), "{p:?} -> {target:?}");
                }
            }
            store.remove("fuzzed", None).unwrap();
        }
        Err(_) => {
            // Refused: nothing new but the (empty) name's bookkeeping, no staging dir.
            let after = walk(tmp);
            let new: Vec<_> = after
                .iter()
                .filter(|p| !before.contains(p))
                .filter(|p| !p.starts_with(store_root.join("fuzzed")))
                .collect();
            assert!(new.is_empty(), "left behind: {new:?}");
        }
    }
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"untouched");
    assert_eq!(
        walk(&outside),
        [outside.join("secret")],
        "something was written outside"
    );
    let staging: Vec<_> = walk(&store_root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/.tmp"))
        .collect();
    assert!(staging.is_empty(), "{staging:?}");
}

#[test]
fn tar_import() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the importer keeps owners: run the fuzz target as root"
    );
    let place = Place::new();
    bolero::check!(name = "tar_import")
        .with_test_time(Duration::from_millis(700))
        .for_each(|input: &[u8]| {
            let gzip = input.first().is_some_and(|b| b & 1 == 1);
            check_import(&place, input, gzip);
            check_import(&place, &hostile_tar(input), gzip);
        });
}

/// Writes an OCI image layout of `layers` (tar bytes) to `dir`, with true digests.
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) {
    use sha2::Digest as _;
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    };
    let layers: Vec<_> = layers.iter().map(|l| put(l)).collect();
    let config = put(br#"{"config": {"Cmd": ["x"]}}"#);
    let manifest =
        put(&serde_json::to_vec(&serde_json::json!({"config": config, "layers": layers})).unwrap());
    let index = serde_json::json!({"manifests": [manifest]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), b"{}").unwrap();
}

/// Fuzz target for image layers (`hako image import` of an OCI layout or `docker save`):
/// two layers of hostile entries, whiteouts among them (`.wh.NAME`, `.wh..wh..opq`, a
/// whiteout of `..`) and symlinks to a directory outside the store; whatever they hold, the
/// import makes a tree of directories, files and symlinks that stay inside, or is refused
/// leaving nothing, and nothing outside is touched or deleted.
#[test]
fn oci_layers() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the importer keeps owners: run the fuzz target as root"
    );
    let place = Place::new();
    let out = place.tmp.path().join("outside").display().to_string();
    let pieces = [
        "a",
        "b",
        "..",
        ".wh.a",
        ".wh..wh..opq",
        out.as_str(),
        ".wh...",
        "secret",
    ];
    let layout = place.tmp.path().join("layout");
    bolero::check!(name = "oci_layers")
        .with_test_time(Duration::from_millis(700))
        .for_each(|input: &[u8]| {
            let (lower, upper) = input.split_at(input.len() / 2);
            oci_layout(
                &layout,
                &[
                    hostile_tar_of(lower, &pieces),
                    hostile_tar_of(upper, &pieces),
                ],
            );
            check_source(&place, &layout, true);
            std::fs::remove_dir_all(&layout).unwrap();
        });
}
