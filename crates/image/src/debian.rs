//! Debian images built with debootstrap, cached by package set.
//!
//! A build is identified by a key: the SHA-256 of (suite, mirror, arch,
//! variant, sorted package set). Its root filesystem lives once in
//! `<root>/.cache/debian/<key>/rootfs`; every image version built from the same
//! set refers to it (`Storage::DebianCache`), so a rebuild is instant. A
//! per-key flock (`<key>.lock`) makes concurrent builds of one set wait for
//! each other, and keeps [`crate::ImageStore::remove`] from deleting a cache
//! that a build is about to use.

mod debootstrap;
mod update;

pub use update::{DebianUpdate, PackageChange, packages_built_unix};

use std::path::{Path, PathBuf};

use hako_model::Digest;
use sha2::{Digest as _, Sha256};

use crate::store::{Flock, ImageError, ImageStore, io_err};
use crate::{Image, Storage};

/// Default mirror when the host's apt sources name none.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Options of a debootstrap build; `None` fields are taken from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianBuild {
    /// Suite (e.g. `bookworm`); `None`: the host's `VERSION_CODENAME` from /etc/os-release.
    pub suite: Option<String>,
    /// Mirror URL; `None`: the first Debian mirror in the host's apt sources,
    /// else [`DEFAULT_MIRROR`].
    pub mirror: Option<String>,
    /// Architecture; `None`: `dpkg --print-architecture`.
    pub arch: Option<String>,
    /// debootstrap variant (default `minbase`).
    pub variant: String,
    /// The debootstrap program (default `debootstrap`, found in `PATH`).
    pub debootstrap: PathBuf,
    /// A directory whose files lie over the built system (configuration, entrypoints):
    /// copied into the image version as its top layer. Not part of the cache key — the
    /// cached system is shared, the added files belong to the version.
    pub add: Option<PathBuf>,
}

impl Default for DebianBuild {
    fn default() -> Self {
        Self {
            suite: None,
            mirror: None,
            arch: None,
            variant: "minbase".into(),
            debootstrap: PathBuf::from("debootstrap"),
            add: None,
        }
    }
}

/// Why a debootstrap build failed.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// A package name that is not a Debian package name.
    #[error("invalid Debian package name {0:?}: use names like php-cli or ca-certificates")]
    BadPackage(String),
    /// A suite, arch, variant or mirror with characters debootstrap must not see.
    #[error("invalid debootstrap {what} {value:?}: {hint}")]
    BadOption {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        hint: &'static str,
    },
    /// The host's suite is unknown.
    #[error(
        "cannot tell the host's Debian suite (no VERSION_CODENAME in /etc/os-release): pass a suite explicitly"
    )]
    NoSuite,
    /// debootstrap (or unshare) could not be started.
    #[error("cannot run debootstrap ({source}): install it with `apt-get install -y debootstrap`")]
    Spawn {
        /// The OS error.
        source: std::io::Error,
    },
    /// debootstrap exited with an error.
    #[error("debootstrap failed ({status}); the end of its log:\n{tail}")]
    Failed {
        /// Its exit status.
        status: String,
        /// The last lines of its output.
        tail: String,
    },
}

/// A build resolved against the host: everything that goes into its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) suite: String,
    pub(crate) mirror: String,
    pub(crate) arch: String,
    pub(crate) variant: String,
    pub(crate) packages: Vec<String>,
}

impl Resolved {
    /// The cache key: hex SHA-256 (first 32 digits) of every input, in order.
    pub(crate) fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.suite, &self.mirror, &self.arch, &self.variant] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        h.update(self.packages.join(",").as_bytes());
        let digest = h.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A cached build ready for use; holds the key's lock until dropped.
pub(crate) struct Cached {
    pub(crate) key: String,
    pub(crate) source: String,
    pub(crate) packages: Vec<String>,
    pub(crate) size_bytes: u64,
    /// The digest of the cached root filesystem (kept in `<key>/digest`).
    pub(crate) digest: Digest,
    _lock: Flock,
}

/// `<root>/.cache/debian`.
pub(crate) fn cache_base(root: &Path) -> PathBuf {
    root.join(".cache").join("debian")
}

/// The root filesystem of the cached build `key`.
pub(crate) fn cache_rootfs(root: &Path, key: &str) -> PathBuf {
    cache_base(root).join(key).join("rootfs")
}

/// Returns the cached build for `packages`, running debootstrap first if the
/// cache has none.
pub(crate) fn ensure_cached(
    store: &ImageStore,
    packages: &[String],
    opts: &DebianBuild,
) -> Result<Cached, ImageError> {
    let resolved = resolve(packages, opts)?;
    let key = resolved.key();
    let base = cache_base(store.root());
    std::fs::create_dir_all(&base).map_err(io_err("cannot create", &base))?;
    let lock_path = base.join(format!("{key}.lock"));
    let lock = Flock::exclusive(&lock_path).map_err(io_err("cannot lock", &lock_path))?;
    let dir = base.join(&key);
    let size_path = dir.join("size_bytes");
    let source = format!("debootstrap {} {}", resolved.suite, resolved.mirror);
    if let Ok(size) = std::fs::read_to_string(&size_path) {
        tracing::info!(%key, "debootstrap cache hit");
        let digest = cached_digest(&dir)?;
        return Ok(Cached {
            key,
            source,
            packages: resolved.packages,
            size_bytes: size.trim().parse().unwrap_or(0),
            digest,
            _lock: lock,
        });
    }
    let staging = store.staging()?;
    let size_bytes = debootstrap::build(&resolved, &opts.debootstrap, staging.path())?;
    let digest = crate::digest::tree_digest(&staging.path().join("rootfs"))?;
    let digest_file = staging.path().join(DIGEST_FILE);
    std::fs::write(&digest_file, format!("{digest}\n"))
        .map_err(io_err("cannot write", &digest_file))?;
    let size_file = staging.path().join("size_bytes");
    std::fs::write(&size_file, format!("{size_bytes}\n"))
        .map_err(io_err("cannot write", &size_file))?;
    std::fs::rename(staging.path(), &dir).map_err(io_err("cannot rename into", &dir))?;
    staging.keep();
    tracing::info!(%key, size_bytes, "debootstrap build cached");
    Ok(Cached {
        key,
        source,
        packages: resolved.packages,
        size_bytes,
        digest,
        _lock: lock,
    })
}

/// Where a cached build keeps the digest of its root filesystem.
const DIGEST_FILE: &str = "digest";

/// The digest of the cached build in `dir`: read from its digest file, or — for a build cached
/// before hako recorded digests — computed now from its root filesystem and kept. Call with
/// the key's lock held.
fn cached_digest(dir: &Path) -> Result<Digest, ImageError> {
    let path = dir.join(DIGEST_FILE);
    if let Some(d) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return Ok(d);
    }
    let digest = crate::digest::tree_digest(&dir.join("rootfs"))?;
    let tmp = dir.join(".digest.tmp");
    std::fs::write(&tmp, format!("{digest}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(io_err("cannot write", &path))?;
    Ok(digest)
}

/// Cache keys used by `removed` that no image left in the store refers to.
/// Call with the store lock held, after the removed versions are gone.
pub(crate) fn unused_cache_keys(
    store: &ImageStore,
    removed: &[Image],
) -> Result<Vec<String>, ImageError> {
    let mut keys: Vec<String> = removed
        .iter()
        .filter_map(|i| match &i.storage {
            Storage::DebianCache { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(keys);
    }
    for image in store.list()? {
        if let Storage::DebianCache { key, .. } = &image.storage {
            keys.retain(|k| k != key);
        }
    }
    Ok(keys)
}

/// Moves the cache `key` into `trash` unless a build holds its lock. Returns
/// where it went, or `None` if it is busy or absent.
pub(crate) fn take_cache(
    store: &ImageStore,
    key: &str,
    trash: &Path,
) -> Result<Option<PathBuf>, ImageError> {
    let base = cache_base(store.root());
    let dir = base.join(key);
    if !dir.exists() {
        return Ok(None);
    }
    let lock_path = base.join(format!("{key}.lock"));
    let lock = Flock::exclusive_if_free(&lock_path).map_err(io_err("cannot lock", &lock_path))?;
    if lock.is_none() {
        return Ok(None);
    }
    let to = trash.join(format!("cache-{key}"));
    std::fs::rename(&dir, &to).map_err(io_err("cannot remove cache", &dir))?;
    Ok(Some(to))
}

/// Resolves `None` options from the host and validates everything.
pub(crate) fn resolve(packages: &[String], opts: &DebianBuild) -> Result<Resolved, DebianError> {
    let mut pkgs: Vec<String> = packages
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    for p in &pkgs {
        if !valid_package(p) {
            return Err(DebianError::BadPackage(p.clone()));
        }
    }
    pkgs.sort();
    pkgs.dedup();
    let suite = match &opts.suite {
        Some(s) => s.clone(),
        None => debootstrap::host_suite().ok_or(DebianError::NoSuite)?,
    };
    let mirror = opts
        .mirror
        .clone()
        .or_else(debootstrap::host_mirror)
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned());
    let arch = match &opts.arch {
        Some(a) => a.clone(),
        None => debootstrap::host_arch(),
    };
    let word = "use lowercase letters, digits, '.', '_' or '-'";
    for (what, value) in [
        ("suite", &suite),
        ("arch", &arch),
        ("variant", &opts.variant),
    ] {
        if !valid_word(value) {
            return Err(DebianError::BadOption {
                what,
                value: value.clone(),
                hint: word,
            });
        }
    }
    let url_ok = (mirror.starts_with("http://")
        || mirror.starts_with("https://")
        || mirror.starts_with("file:/"))
        && !mirror.chars().any(|c| c.is_whitespace() || c == ',');
    if !url_ok {
        return Err(DebianError::BadOption {
            what: "mirror",
            value: mirror,
            hint: "use an http://, https:// or file:/ URL",
        });
    }
    Ok(Resolved {
        suite,
        mirror: mirror.trim_end_matches('/').to_owned(),
        arch,
        variant: opts.variant.clone(),
        packages: pkgs,
    })
}

/// Debian policy: lowercase letters, digits, `+`, `-`, `.`; at least two
/// characters; starts with an alphanumeric.
fn valid_package(p: &str) -> bool {
    p.len() >= 2
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DebianBuild {
        DebianBuild {
            suite: Some("bookworm".into()),
            mirror: Some("http://deb.debian.org/debian/".into()),
            arch: Some("amd64".into()),
            ..DebianBuild::default()
        }
    }

    fn pkgs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_ignores_package_order_and_duplicates() {
        let a = resolve(&pkgs(&["php-cli", "curl"]), &opts()).unwrap();
        let b = resolve(&pkgs(&["curl", "php-cli", "curl", " "]), &opts()).unwrap();
        assert_eq!(a.packages, ["curl", "php-cli"]);
        assert_eq!(a.mirror, "http://deb.debian.org/debian");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key().len(), 32);
    }

    #[test]
    fn key_changes_with_every_input() {
        let base = resolve(&pkgs(&["curl"]), &opts()).unwrap().key();
        let mut o = opts();
        o.suite = Some("trixie".into());
        assert_ne!(resolve(&pkgs(&["curl"]), &o).unwrap().key(), base);
        let mut o = opts();
        o.arch = Some("arm64".into());
        assert_ne!(resolve(&pkgs(&["curl"]), &o).unwrap().key(), base);
        let mut o = opts();
        o.variant = "buildd".into();
        assert_ne!(resolve(&pkgs(&["curl"]), &o).unwrap().key(), base);
        assert_ne!(
            resolve(&pkgs(&["curl", "nginx"]), &opts()).unwrap().key(),
            base
        );
    }

    #[test]
    fn refuses_option_injection() {
        assert!(matches!(
            resolve(&pkgs(&["--foreign"]), &opts()),
            Err(DebianError::BadPackage(_))
        ));
        assert!(matches!(
            resolve(&pkgs(&["a,b"]), &opts()),
            Err(DebianError::BadPackage(_))
        ));
        let mut o = opts();
        o.suite = Some("--unpack-tarball=/x".into());
        assert!(matches!(
            resolve(&[], &o),
            Err(DebianError::BadOption { what: "suite", .. })
        ));
        let mut o = opts();
        o.mirror = Some("ftp://x y".into());
        assert!(matches!(
            resolve(&[], &o),
            Err(DebianError::BadOption { what: "mirror", .. })
        ));
    }
}
