//! Staging directories: where a new image version (or a doomed one) lives until
//! it is renamed into place (or deleted).
//!
//! A staging directory is `<root>/.tmp-<random>`, flocked by its owner for its
//! whole life. Dropping a [`Staging`] that was not [`Staging::keep`]t deletes it,
//! so any error on the way leaves nothing behind; a process that dies leaves an
//! unlocked directory that [`sweep`] deletes later.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::lock::Flock;

/// Prefix of staging directory names in the store root.
pub(crate) const STAGING_PREFIX: &str = ".tmp-";

/// A locked temporary directory in the store root.
#[derive(Debug)]
pub(crate) struct Staging {
    // Field order matters: the directory is deleted before the lock is released.
    dir: Option<TempDir>,
    _lock: Flock,
}

impl Staging {
    /// Creates and locks a new staging dir (mode 0755) in `root`. Call with the
    /// store lock held, so that [`sweep`] never sees it unlocked.
    pub(crate) fn create(root: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(root)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let lock = Flock::try_existing(dir.path())?
            .ok_or_else(|| io::Error::other("fresh staging dir is already locked"))?;
        Ok(Self {
            dir: Some(dir),
            _lock: lock,
        })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .unwrap_or(Path::new(""))
    }

    /// Disarms deletion: call after the directory was renamed into place.
    pub(crate) fn keep(mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
    }
}

/// Deletes staging dirs in `root` whose owner is gone (not locked). Call with
/// the store lock held. Returns the paths removed.
pub(crate) fn sweep(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) || !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        if let Some(_held) = Flock::try_existing(&path)? {
            std::fs::remove_dir_all(&path)?;
            tracing::info!(path = %path.display(), "removed abandoned image staging dir");
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_staging_is_deleted_and_kept_one_stays() {
        let root = tempfile::Builder::new()
            .prefix("hako-stg-")
            .tempdir()
            .unwrap();
        let s = Staging::create(root.path()).unwrap();
        let p = s.path().to_path_buf();
        std::fs::create_dir_all(p.join("rootfs/etc")).unwrap();
        assert!(p.exists());
        drop(s);
        assert!(!p.exists());

        let s = Staging::create(root.path()).unwrap();
        let moved = root.path().join("v1");
        std::fs::rename(s.path(), &moved).unwrap();
        s.keep();
        assert!(moved.is_dir());
    }

    #[test]
    fn sweep_removes_only_abandoned_dirs() {
        let root = tempfile::Builder::new()
            .prefix("hako-stg-")
            .tempdir()
            .unwrap();
        let live = Staging::create(root.path()).unwrap();
        let abandoned = root.path().join(".tmp-dead");
        std::fs::create_dir_all(abandoned.join("x")).unwrap();
        let other = root.path().join("web");
        std::fs::create_dir(&other).unwrap();
        let removed = sweep(root.path()).unwrap();
        assert_eq!(removed, vec![abandoned.clone()]);
        assert!(!abandoned.exists());
        assert!(live.path().exists());
        assert!(other.exists());
    }
}
