//! Code releases against hostile uploads: an archive that expands past the node's bounds
//! (a gzip bomb, too many files) is refused while unpacking and leaves nothing behind.
//! Needs no root: only the release store.

use std::io::Write;
use std::path::Path;

use hako_agent::{Releases, StorageLimits};

/// A 512-byte ustar header for a regular file of `size` bytes.
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A .tar.gz of one file of `size` zero bytes, as concatenated gzip members (one compressed
/// MiB of zeros repeated), so a 1 GiB bomb is a file of about a megabyte, made at once.
fn zero_bomb(path: &Path, size: u64) {
    let mib = gz(&vec![0u8; 1 << 20]);
    let mut out = std::fs::File::create(path).unwrap();
    out.write_all(&gz(&tar_header("big", size))).unwrap();
    assert_eq!(size % (1 << 20), 0);
    for _ in 0..size >> 20 {
        out.write_all(&mib).unwrap();
    }
    out.write_all(&gz(&[0u8; 1024])).unwrap();
}

/// Everything left under the release store (staging dirs, versions), ignoring its lock.
fn left(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".lock" {
                continue;
            }
            if e.path().is_dir() {
                stack.push(e.path());
            }
            found.push(e.path().display().to_string());
        }
    }
    found.retain(|p| !p.ends_with("/site")); // the app's (empty) directory may stay
    found
}

#[test]
fn a_gzip_bomb_past_the_default_bound_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.tar.gz");
    // 1 GiB + 1 MiB of zeros in about a megabyte: over the default 1 GiB per release.
    zero_bomb(&bomb, (1 << 30) + (1 << 20));
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4 << 20);
    let root = tmp.path().join("releases");
    let releases = Releases::open(&root, &StorageLimits::default()).unwrap();
    let started = std::time::Instant::now();
    let err = releases
        .create("site", 1, &bomb, "upload")
        .expect_err("a release over the bound is refused");
    assert!(err.is_over_limit(), "{err}");
    assert!(err.to_string().contains("1073741824"), "{err}");
    // Refused from the entry's header: nothing was decompressed to disk.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(releases.path("site", 1), None);
    assert!(left(&root).is_empty(), "{:?}", left(&root));
}

#[test]
fn a_release_is_bounded_by_files_and_bytes_also_from_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("releases");
    let limits = StorageLimits {
        release_max_bytes: 1 << 20,
        release_max_files: 20,
        ..StorageLimits::default()
    };
    let releases = Releases::open(&root, &limits).unwrap();
    // Within the bounds: made.
    let ok = tmp.path().join("ok");
    std::fs::create_dir(&ok).unwrap();
    std::fs::write(ok.join("index.html"), vec![b'x'; 500_000]).unwrap();
    releases.create("site", 1, &ok, "dir").unwrap();
    assert!(
        releases
            .path("site", 1)
            .unwrap()
            .join("index.html")
            .exists()
    );
    // Too many files.
    let many = tmp.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..25 {
        std::fs::write(many.join(format!("f{i}")), b"").unwrap();
    }
    let err = releases.create("site", 2, &many, "dir").unwrap_err();
    assert!(
        err.is_over_limit() && err.to_string().contains("20 entries"),
        "{err}"
    );
    // Too many bytes, from a directory and from an archive.
    std::fs::write(ok.join("big"), vec![b'y'; 700_000]).unwrap();
    let err = releases.create("site", 2, &ok, "dir").unwrap_err();
    assert!(err.is_over_limit(), "{err}");
    let bomb = tmp.path().join("bomb.tar.gz");
    zero_bomb(&bomb, 2 << 20);
    let err = releases.create("site", 2, &bomb, "upload").unwrap_err();
    assert!(err.is_over_limit(), "{err}");
    // Release 1 is intact; nothing of the refused ones is left.
    assert!(releases.path("site", 1).is_some());
    assert_eq!(releases.path("site", 2), None);
    let leftovers: Vec<_> = left(&root)
        .into_iter()
        .filter(|p| p[root.display().to_string().len()..].contains("/.tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A tmpfs of `size` mounted for one test (source `hako-release-full-<pid>`), unmounted when
/// dropped, also when the test fails midway.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("");
        assert_eq!(euid, "0", "this test mounts a tmpfs: run it as root");
        let dir = tempfile::Builder::new()
            .prefix("hako-release-full-")
            .tempdir()
            .unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}")])
            .arg(format!("hako-release-full-{}", std::process::id()))
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs failed");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(self.0.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0.path())
                .status();
        }
    }
}

#[test]
fn a_release_that_fills_the_disk_is_out_of_space_and_leaves_nothing() {
    let fs = Tmpfs::mount("2m");
    let tmp = tempfile::tempdir().unwrap();
    // 8 MiB of file data: well within the node's bounds, more than the disk holds.
    let archive = tmp.path().join("big.tar.gz");
    zero_bomb(&archive, 8 << 20);
    let root = fs.0.path().join("releases");
    let releases = Releases::open(&root, &StorageLimits::default()).unwrap();
    let err = releases
        .create("site", 1, &archive, "upload")
        .expect_err("the disk is too small");
    assert!(err.is_out_of_space(), "{err}");
    assert!(!err.is_over_limit(), "{err}");
    assert_eq!(left(&root), Vec::<String>::new());
    assert!(releases.path("site", 1).is_none());
    // Room for a small one: it works, on the same disk.
    let small = tmp.path().join("small.tar.gz");
    zero_bomb(&small, 1 << 20);
    releases.create("site", 2, &small, "upload").unwrap();
    assert!(releases.path("site", 2).is_some());
    drop(releases);
    drop(fs);
}
