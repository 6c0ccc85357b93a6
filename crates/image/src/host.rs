//! Host images: the host's own system directories, read-only, in a container.
//!
//! A host image is a tiny skeleton directory used as the overlay lower layer,
//! plus read-only bind mounts that the runtime makes on top before
//! `pivot_root`:
//! - `/usr` → `/usr`;
//! - each top-level `bin`, `sbin`, `lib`, `lib32`, `lib64`, `libx32` that the
//!   host has: mirrored as the same symlink on a merged-/usr host (Debian:
//!   `bin -> usr/bin`), or bound like `/usr` where it is a real directory;
//! - the `/etc` entries in [`ETC_BINDS`] that exist on the host (never
//!   `shadow`, `gshadow`, ssh keys or other secrets). `hosts`, `hostname` and
//!   `resolv.conf` are left to the runtime, which knows the container's network.
//!
//! The skeleton also holds empty directories as mount points and places for
//! the writable upper layer: [`SKELETON_DIRS`]. Because the binds are made at
//! each container start, instances pick up host package updates as they cycle.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::HostBind;

/// `/etc` entries bound read-only from the host, when present there.
pub const ETC_BINDS: &[&str] = &[
    "passwd",
    "group",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "mime.types",
    "mailcap",
    "magic",
    "magic.mime",
    "localtime",
    "timezone",
    "services",
    "protocols",
    "ethertypes",
    "rpc",
    "os-release",
    "debian_version",
    "php",
    "ImageMagick-6",
    "fonts",
];

/// Top-level entries mirrored (symlink) or bound (real directory) from the host.
const TOP_LEVEL: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Empty directories in every skeleton, with their modes.
pub const SKELETON_DIRS: &[(&str, u32)] = &[
    ("app", 0o755),
    ("data", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("var", 0o755),
    ("var/cache", 0o755),
    ("var/lib", 0o755),
    ("var/log", 0o755),
    ("var/tmp", 0o1777),
];

/// Why a host image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Reading the host or writing the skeleton failed.
    #[error("cannot build the host image skeleton at {}: {source}", .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The host has no `/usr` directory to bind.
    #[error("the host has no {} directory: a host image needs one; use `hako image import` instead", .0.display())]
    NoUsr(PathBuf),
}

/// Writes the skeleton for the host whose root is `host` (normally `/`) to
/// `skeleton` (created; must not exist) and returns the binds, in mount order.
pub(crate) fn build_skeleton(host: &Path, skeleton: &Path) -> Result<Vec<HostBind>, HostError> {
    let usr = host.join("usr");
    if !usr.is_dir() {
        return Err(HostError::NoUsr(usr));
    }
    mkdir(skeleton, 0o755)?;
    for (dir, mode) in SKELETON_DIRS {
        mkdir(&skeleton.join(dir), *mode)?;
    }
    let mut binds = vec![HostBind {
        source: usr,
        target: PathBuf::from("/usr"),
        is_dir: true,
    }];
    for name in TOP_LEVEL {
        let source = host.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&source) else {
            continue;
        };
        if meta.is_symlink() {
            let target = std::fs::read_link(&source).map_err(io_at(&source))?;
            let link = skeleton.join(name);
            std::os::unix::fs::symlink(&target, &link).map_err(io_at(&link))?;
        } else if meta.is_dir() {
            mkdir(&skeleton.join(name), 0o755)?;
            binds.push(HostBind {
                source,
                target: Path::new("/").join(name),
                is_dir: true,
            });
        }
    }
    for name in ETC_BINDS {
        let source = host.join("etc").join(name);
        // Follow symlinks (e.g. os-release -> ../usr/lib/os-release): mount(2) will.
        let Ok(meta) = std::fs::metadata(&source) else {
            continue;
        };
        let point = skeleton.join("etc").join(name);
        if meta.is_dir() {
            mkdir(&point, 0o755)?;
        } else if meta.is_file() {
            std::fs::write(&point, b"").map_err(io_at(&point))?;
            std::fs::set_permissions(&point, std::fs::Permissions::from_mode(0o644))
                .map_err(io_at(&point))?;
        } else {
            continue;
        }
        binds.push(HostBind {
            source,
            target: Path::new("/etc").join(name),
            is_dir: meta.is_dir(),
        });
    }
    Ok(binds)
}

/// True when `bind` is one a host image may hold: the host's `/usr`, one of its top-level
/// `bin`/`lib*`/`sbin` directories, or one of the [`ETC_BINDS`], bound at the same path. A
/// node checks the binds of a host image whose `image.json` it read from shared storage (its
/// skeleton is verified by digest, the binds by this rule), so that a changed `image.json`
/// can never bind `/etc/shadow` or `/root` into a container.
pub fn bind_allowed(bind: &HostBind) -> bool {
    if bind.source != bind.target {
        return false;
    }
    let t = &bind.target;
    t == Path::new("/usr")
        || TOP_LEVEL.iter().any(|n| t == &Path::new("/").join(n))
        || ETC_BINDS.iter().any(|n| t == &Path::new("/etc").join(n))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), HostError> {
    std::fs::create_dir(path).map_err(io_at(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_at(path))
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> HostError {
    let path = path.to_path_buf();
    move |source| HostError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_binds_secrets() {
        for secret in ["shadow", "gshadow", "shadow-", "gshadow-", "ssh", "sudoers"] {
            assert!(!ETC_BINDS.contains(&secret), "{secret}");
        }
    }

    #[test]
    fn fake_host_without_merged_usr_binds_real_dirs_and_skips_missing() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-host-")
            .tempdir()
            .unwrap();
        let host = tmp.path().join("host");
        for d in ["usr/bin", "bin", "etc/ssl", "etc/ssh"] {
            std::fs::create_dir_all(host.join(d)).unwrap();
        }
        for f in ["etc/passwd", "etc/shadow", "etc/group"] {
            std::fs::write(host.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink("usr/lib", host.join("lib")).unwrap();
        let skel = tmp.path().join("skel");
        let binds = build_skeleton(&host, &skel).unwrap();
        let targets: Vec<_> = binds
            .iter()
            .map(|b| b.target.display().to_string())
            .collect();
        assert_eq!(
            targets,
            ["/usr", "/bin", "/etc/passwd", "/etc/group", "/etc/ssl"]
        );
        assert!(skel.join("bin").is_dir());
        assert_eq!(
            std::fs::read_link(skel.join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        assert!(!skel.join("etc/shadow").exists());
        assert!(!skel.join("etc/ssh").exists());
        assert_eq!(std::fs::read(skel.join("etc/passwd")).unwrap(), b"");
        let tmp_mode = std::fs::metadata(skel.join("tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(tmp_mode & 0o7777, 0o1777);
    }

    #[test]
    fn only_the_binds_a_host_image_makes_are_allowed() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-host-")
            .tempdir()
            .unwrap();
        // Everything the builder makes on this host passes.
        let binds = build_skeleton(Path::new("/"), &tmp.path().join("skel")).unwrap();
        assert!(binds.iter().all(bind_allowed), "{binds:?}");
        let bind = |source: &str, target: &str| HostBind {
            source: source.into(),
            target: target.into(),
            is_dir: false,
        };
        for (source, target) in [
            ("/etc/shadow", "/etc/shadow"),
            ("/root", "/root"),
            ("/etc/shadow", "/etc/passwd"),
            ("/", "/usr"),
            ("/usr/../etc", "/usr/../etc"),
            ("/etc/ssl/../shadow", "/etc/ssl/../shadow"),
        ] {
            assert!(!bind_allowed(&bind(source, target)), "{source} -> {target}");
        }
        assert!(bind_allowed(&bind("/etc/passwd", "/etc/passwd")));
    }

    #[test]
    fn host_without_usr_is_refused() {
        let tmp = tempfile::Builder::new()
            .prefix("hako-host-")
            .tempdir()
            .unwrap();
        let err = build_skeleton(tmp.path(), &tmp.path().join("skel")).unwrap_err();
        assert!(matches!(err, HostError::NoUsr(_)), "{err}");
        assert!(!tmp.path().join("skel").exists());
    }
}
