//! `hako image update NAME`: rebuild a Debian-package image against its archive as it is now
//! (a fresh debootstrap of the same suite, mirror and packages, bypassing the cache), compare
//! the two systems' installed packages (`/var/lib/dpkg/status` of each), and make the next
//! version of the image only if a package changed. Apps that track the image (`NAME` or
//! `NAME:latest`) get it as their instances cycle.
//!
//! What it covers: the suite's archive (point releases, which carry the suite's security
//! fixes as they are folded in). Debian's separate security archive (`SUITE-security`) is
//! not consulted: debootstrap installs from one mirror.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{DebianBuild, cache_base, resolve};
use crate::store::{Flock, ImageError, ImageStore, NewImage, io_err};
use crate::{Image, ImageKind, ImportLimits, Storage};

/// One package that differs between two builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// The package.
    pub name: String,
    /// Its version before (`None`: newly installed).
    pub old: Option<String>,
    /// Its version now (`None`: no longer installed).
    pub new: Option<String>,
}

impl fmt::Display for PackageChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.old, &self.new) {
            (Some(o), Some(n)) => write!(f, "{} {o} → {n}", self.name),
            (None, Some(n)) => write!(f, "{} (new) {n}", self.name),
            (Some(o), None) => write!(f, "{} {o} (removed)", self.name),
            (None, None) => write!(f, "{}", self.name),
        }
    }
}

/// What an update found.
#[derive(Debug, Clone)]
pub struct DebianUpdate {
    /// The version it started from.
    pub previous: Image,
    /// The new version; `None` when no package changed (nothing was made).
    pub image: Option<Image>,
    /// The packages that differ, by name.
    pub changes: Vec<PackageChange>,
}

/// The installed packages of a dpkg status file: name → version (only those whose status
/// says installed).
pub fn installed_packages(status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let (mut name, mut version, mut installed) = (None, None, false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed) {
            out.insert(n.to_string(), v.to_string());
        }
    }
    out
}

/// The packages that differ between two installed sets, by name.
pub fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<PackageChange> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| PackageChange {
            name: n.clone(),
            old: old.get(n).cloned(),
            new: new.get(n).cloned(),
        })
        .collect()
}

/// The installed packages of an image version's system (its Debian cache).
fn image_packages(store: &ImageStore, key: &str) -> Result<BTreeMap<String, String>, ImageError> {
    let status = super::cache_rootfs(store.root(), key).join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&status).map_err(io_err("cannot read", &status))?;
    Ok(installed_packages(&text))
}

impl ImageStore {
    /// Rebuilds the latest version of Debian-package image `name` against its archive as it
    /// is now and makes the next version if any package changed (see the module's docs).
    /// Takes minutes: debootstrap downloads every package again.
    pub fn update_debian(
        &self,
        name: &str,
        opts: &DebianBuild,
    ) -> Result<DebianUpdate, ImageError> {
        let previous = self.get(name, None)?;
        let Storage::DebianCache {
            key: old_key,
            added,
        } = previous.storage.clone()
        else {
            return Err(ImageError::Source {
                path: previous.dir().to_path_buf(),
                reason: format!(
                    "{}:{} was not built from Debian packages: only images made with 'hako image build' can be updated (import or rebuild the others)",
                    previous.name, previous.version
                ),
            });
        };
        // The build's inputs as recorded: `debootstrap SUITE MIRROR` and the packages.
        let mut words = previous.source.split_whitespace().skip(1);
        let opts = DebianBuild {
            suite: opts
                .suite
                .clone()
                .or_else(|| words.next().map(str::to_owned)),
            mirror: opts
                .mirror
                .clone()
                .or_else(|| words.next().map(str::to_owned)),
            ..opts.clone()
        };
        let resolved = resolve(&previous.packages, &opts)?;
        // A fresh cache entry: the same inputs plus the time of the rebuild.
        let stamp = hako_model::now_unix_ms();
        let mut h = Sha256::new();
        h.update(resolved.key().as_bytes());
        h.update(format!("\nrefreshed {stamp}").as_bytes());
        let key: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let base = cache_base(self.root());
        std::fs::create_dir_all(&base).map_err(io_err("cannot create", &base))?;
        let lock_path = base.join(format!("{key}.lock"));
        let lock = Flock::exclusive(&lock_path).map_err(io_err("cannot lock", &lock_path))?;
        let staging = self.staging()?;
        let size_bytes = super::debootstrap::build(&resolved, &opts.debootstrap, staging.path())?;
        let before = image_packages(self, &old_key)?;
        let status = staging.path().join("rootfs/var/lib/dpkg/status");
        let after = installed_packages(
            &std::fs::read_to_string(&status).map_err(io_err("cannot read", &status))?,
        );
        let changes = diff(&before, &after);
        if changes.is_empty() {
            drop(staging); // removed: nothing new
            let _ = std::fs::remove_file(&lock_path);
            return Ok(DebianUpdate {
                previous,
                image: None,
                changes,
            });
        }
        let dir = base.join(&key);
        let size_file = staging.path().join("size_bytes");
        std::fs::write(&size_file, format!("{size_bytes}\n"))
            .map_err(io_err("cannot write", &size_file))?;
        std::fs::rename(staging.path(), &dir).map_err(io_err("cannot rename into", &dir))?;
        staging.keep();
        // The new system's digest, kept with the cache entry (computed once).
        let mut digests = vec![super::cached_digest(&dir)?];
        // The version's own layer (files added at build time) carries over.
        let version_dir = self.staging()?;
        let mut added_bytes = 0;
        if added {
            let from = previous.dir().join(crate::image::ROOTFS_DIR);
            let layer = version_dir.path().join(crate::image::ROOTFS_DIR);
            crate::copy::copy_tree(&from, &layer, &ImportLimits::default())?;
            added_bytes =
                crate::usage::disk_usage(&layer).map_err(io_err("cannot measure", &layer))?;
            digests.push(crate::digest::tree_digest(&layer)?);
        }
        let image = self.commit(
            version_dir,
            name,
            NewImage {
                kind: ImageKind::Rootfs,
                source: format!("debootstrap {} {}", resolved.suite, resolved.mirror),
                packages: resolved.packages.clone(),
                storage: Storage::DebianCache { key, added },
                size_bytes: size_bytes + added_bytes,
                digests,
                config: None,
            },
        )?;
        drop(lock);
        Ok(DebianUpdate {
            previous,
            image: Some(image),
            changes,
        })
    }
}

/// When an image version's packages were fetched from the archive (Unix seconds): for a
/// Debian-package image, when its cached system was built (a rebuild of the same set reuses
/// it); for others, when the version was made.
pub fn packages_built_unix(store: &ImageStore, image: &Image) -> u64 {
    if let Storage::DebianCache { key, .. } = &image.storage {
        let size = cache_base(store.root()).join(key).join("size_bytes");
        if let Some(t) = std::fs::metadata(&size)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            return t.as_secs();
        }
    }
    image.created_unix
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "Package: openssl\nStatus: install ok installed\nPriority: optional\nVersion: 3.0.15-1~deb12u1\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u8\n\nPackage: gone\nStatus: install ok installed\nVersion: 1.0\n\nPackage: half\nStatus: deinstall ok config-files\nVersion: 0.9\n";
    const NEW: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\n\nPackage: openssl\nStatus: install ok installed\nVersion: 3.0.16-1~deb12u1\n\nPackage: fresh\nStatus: install ok installed\nVersion: 2.0\n";

    #[test]
    fn reads_installed_packages_only() {
        let p = installed_packages(OLD);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p["openssl"], "3.0.15-1~deb12u1");
        assert!(
            !p.contains_key("half"),
            "config-files only is not installed"
        );
    }

    #[test]
    fn the_diff_names_each_changed_package_old_to_new() {
        let changes = diff(&installed_packages(OLD), &installed_packages(NEW));
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "fresh (new) 2.0",
                "gone 1.0 (removed)",
                "libc6 2.36-9+deb12u8 → 2.36-9+deb12u10",
                "openssl 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1",
            ]
        );
        assert!(diff(&installed_packages(NEW), &installed_packages(NEW)).is_empty());
    }
}
