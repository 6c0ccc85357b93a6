//! Code releases: each deploy of an app's code becomes an immutable, numbered, read-only tree
//! (mounted at /app in new instances). Stored with the image store's machinery under
//! `<data-dir>/releases/<app>/<n>`, so uploads get the same hostile-archive checks as images.

use std::path::{Path, PathBuf};

use hako_image::{ImageError, ImageStore, Rootfs};
use hako_model::Release;

/// The releases of every app on this node.
#[derive(Debug)]
pub struct Releases {
    store: ImageStore,
}

impl Releases {
    pub fn open(root: impl Into<PathBuf>) -> Result<Releases, ImageError> {
        Ok(Releases {
            store: ImageStore::open(root)?,
        })
    }

    /// Makes the next release of `app` from a directory or a .tar / .tar.gz file.
    pub fn create(
        &self,
        app: &str,
        source: &Path,
        source_text: &str,
    ) -> Result<Release, ImageError> {
        let img = self.store.import(app, source)?;
        Ok(Release {
            app: app.to_string(),
            number: img.version as u64,
            created_unix: img.created_unix,
            size_bytes: img.size_bytes,
            files: 0,
            source: source_text.to_string(),
        })
    }

    /// The directory of release `n` of `app`, if it exists.
    pub fn path(&self, app: &str, n: u64) -> Option<PathBuf> {
        let img = self.store.get(app, Some(u32::try_from(n).ok()?)).ok()?;
        match img.rootfs() {
            Rootfs::Layers(l) => l.into_iter().next(),
            Rootfs::Host { skeleton, .. } => Some(skeleton),
        }
    }

    /// Removes every release of `app` (the app was deleted).
    pub fn remove_app(&self, app: &str) -> Result<(), ImageError> {
        match self.store.remove(app, None) {
            Err(ImageError::NotFound { .. }) => Ok(()),
            r => r,
        }
    }
}
