//! Code releases: each deploy of an app's code becomes an immutable, numbered, read-only tree
//! (mounted at /app in new instances). Stored with the image store's machinery under
//! `<data-dir>/releases/<app>/…`, so uploads get the same hostile-archive checks as images,
//! within the node's [`StorageLimits`] (a release over them is refused and leaves nothing).

use std::path::{Path, PathBuf};

use hako_image::{ImageError, ImageStore, Rootfs};
use hako_model::Release;

use crate::storage::StorageLimits;

/// The releases of every app on this node.
///
/// Release numbers are handed out by the API; the image store numbers its versions itself, so
/// `<root>/.index/<app>/<number>` records which stored version holds which release.
#[derive(Debug)]
pub struct Releases {
    store: ImageStore,
    index: PathBuf,
    /// The node's bounds on one release.
    limits: hako_image::ImportLimits,
}

impl Releases {
    pub fn open(root: impl Into<PathBuf>, limits: &StorageLimits) -> Result<Releases, ImageError> {
        let root = root.into();
        Ok(Releases {
            store: ImageStore::open(&root)?.with_import_limits(limits.release_import()),
            index: root.join(".index"),
            limits: limits.release_import(),
        })
    }

    /// Makes release `number` of `app` from a directory or a .tar / .tar.gz file, with the
    /// digest of its tree ([`Release::digest`]). Over the limits: an error for which
    /// [`ImageError::is_over_limit`] holds.
    pub fn create(
        &self,
        app: &str,
        number: u64,
        source: &Path,
        source_text: &str,
    ) -> Result<Release, ImageError> {
        self.create_within(app, number, source, source_text, None)
    }

    /// [`Releases::create`] with a tighter bound on the release's file data than the node's
    /// (a tenant's quota): the smaller of the two applies, checked while unpacking.
    pub fn create_within(
        &self,
        app: &str,
        number: u64,
        source: &Path,
        source_text: &str,
        max_bytes: Option<u64>,
    ) -> Result<Release, ImageError> {
        let img = match max_bytes {
            Some(b) if b < self.limits.max_bytes => self
                .store
                .clone()
                .with_import_limits(hako_image::ImportLimits {
                    max_bytes: b,
                    ..self.limits
                })
                .import(app, source)?,
            _ => self.store.import(app, source)?,
        };
        let dir = self.index.join(app);
        let io = |source| ImageError::Io {
            what: "record release",
            path: dir.clone(),
            source,
        };
        let recorded = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(number.to_string()), img.version.to_string()));
        if let Err(e) = recorded {
            // Nothing partial stays: the unpacked version goes with its record (a full disk
            // here is answered 507 like one while unpacking).
            let _ = std::fs::remove_file(dir.join(number.to_string()));
            if let Err(r) = self.store.remove(app, Some(img.version)) {
                tracing::warn!(app, error = %r, "removing an unrecorded release failed");
            }
            return Err(io(e));
        }
        Ok(Release {
            app: app.to_string(),
            number,
            created_unix: img.created_unix,
            size_bytes: img.size_bytes,
            files: 0,
            source: source_text.to_string(),
            digest: img.digests.first().cloned(),
        })
    }

    /// The directory of release `n` of `app`, if it exists.
    pub fn path(&self, app: &str, n: u64) -> Option<PathBuf> {
        let version = match std::fs::read_to_string(self.index.join(app).join(n.to_string())) {
            Ok(v) => v.trim().parse().ok()?,
            Err(_) => u32::try_from(n).ok()?,
        };
        let img = self.store.get(app, Some(version)).ok()?;
        match img.rootfs() {
            Rootfs::Layers(l) => l.into_iter().next(),
            Rootfs::Host { skeleton, .. } => Some(skeleton),
        }
    }

    /// Removes every release of `app` (the app was deleted).
    pub fn remove_app(&self, app: &str) -> Result<(), ImageError> {
        let _ = std::fs::remove_dir_all(self.index.join(app));
        match self.store.remove(app, None) {
            Err(ImageError::NotFound { .. }) => Ok(()),
            r => r,
        }
    }
}
