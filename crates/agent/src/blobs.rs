//! The node's verified cache of code releases and image layers (a node of a cluster, whose
//! releases and images lie on shared storage).
//!
//! Before a start uses a release or an image layer, [`Blobs::fetch`] copies its tree from
//! shared storage into a staging dir of the cache (`<data-dir>/cache/.tmp-…`, with the
//! importer's faithful copy: symlinks never followed, no extended attributes), computes the
//! digest of the *copy* and compares it with the digest the cluster store records for it. Only
//! a match is renamed into place, `<data-dir>/cache/sha256/<hex>/tree`; a mismatch leaves
//! nothing and is an error naming both digests. From then on every start on this node uses
//! the cached copy without hashing it again (the cache is the node's own, mode 0700; a copy
//! that is in place was verified). Concurrent first starts of one digest fetch it once.
//!
//! Entries in use by an instance or a parked container are held by a [`BlobUse`] and never
//! removed. The others go when nothing the cluster store names reaches them any more
//! ([`Blobs::retain`]: a deleted app's releases, an app's superseded releases, removed image
//! versions), and, least recently used first, when the cache outgrows its bound
//! ([`crate::AgentConfig::blob_cache_max_bytes`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hako_image::{CopyError, DigestError, ImportLimits};
use hako_model::Digest;

/// Prefix of staging dirs in the cache root.
const STAGING_PREFIX: &str = ".tmp-";
/// Where a fetched tree lies inside its entry.
const TREE: &str = "tree";
/// An entry's size in bytes (written last before it is renamed into place).
const SIZE: &str = "size";
/// An empty file whose mtime is the entry's last use (for least-recently-used eviction).
const USED: &str = "used";

/// Why a release or layer could not be had from the cache.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlobError {
    /// The copy's digest is not the recorded one: shared storage holds other bytes.
    #[error("expected {expected}, got {got}")]
    Mismatch { expected: Digest, got: Digest },
    /// The tree on shared storage is missing or unreadable.
    #[error("cannot copy it from {}: {reason}", .source_path.display())]
    Source {
        source_path: PathBuf,
        reason: String,
    },
    /// The tree holds what no release or image may hold (a device node outside dev/…): it
    /// cannot be what was recorded.
    #[error("{0}")]
    Refused(String),
    /// The node's own disk failed (or is full).
    #[error("the node's cache at {}: {source}", .path.display())]
    Cache { path: PathBuf, source: io::Error },
}

/// One cached tree.
#[derive(Debug)]
struct Entry {
    size: u64,
    last_used: SystemTime,
    /// Instances and parked containers using it now.
    in_use: usize,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Digest, Entry>,
}

impl State {
    fn total(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }
}

/// The verified cache of one node.
#[derive(Debug)]
pub(crate) struct Blobs {
    root: PathBuf,
    max_bytes: u64,
    state: Arc<Mutex<State>>,
    /// One lock per digest being fetched: concurrent first uses fetch once.
    fetching: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// Trees copied from shared storage and verified since the cache was opened.
    fetched: AtomicU64,
}

/// A cached tree in use (by an instance, a parked container, or a start being prepared): the
/// cache never removes it while this lives.
#[derive(Debug)]
pub(crate) struct BlobUse {
    digest: Digest,
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

impl BlobUse {
    /// The verified tree.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BlobUse {
    fn drop(&mut self) {
        if let Some(e) = self
            .state
            .lock()
            .expect("blob state lock")
            .entries
            .get_mut(&self.digest)
        {
            e.in_use = e.in_use.saturating_sub(1);
        }
    }
}

impl Blobs {
    /// Opens (or makes) the cache at `root`: entries in place are kept, staging dirs a killed
    /// agent left are deleted.
    pub(crate) fn open(root: impl Into<PathBuf>, max_bytes: u64) -> io::Result<Blobs> {
        use std::os::unix::fs::PermissionsExt;
        let root = root.into();
        std::fs::create_dir_all(root.join("sha256"))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(STAGING_PREFIX)
            {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        let mut state = State::default();
        for entry in std::fs::read_dir(root.join("sha256"))? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("{}{name}", hako_model::DIGEST_PREFIX).parse::<Digest>();
            let size = std::fs::read_to_string(path.join(SIZE))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            match (digest, size) {
                (Ok(digest), Some(size)) => {
                    let last_used = std::fs::metadata(path.join(USED))
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    state.entries.insert(
                        digest,
                        Entry {
                            size,
                            last_used,
                            in_use: 0,
                        },
                    );
                }
                _ => {
                    tracing::warn!(path = %path.display(), "removing an unreadable cache entry");
                    std::fs::remove_dir_all(&path)?;
                }
            }
        }
        Ok(Blobs {
            root,
            max_bytes,
            state: Arc::new(Mutex::new(state)),
            fetching: Mutex::new(HashMap::new()),
            fetched: AtomicU64::new(0),
        })
    }

    fn entry_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }

    /// The tree with `digest`: the cached copy, or else a copy of `source` made now and
    /// verified against `digest` first. Blocking (it may copy and hash a whole tree).
    pub(crate) fn fetch(&self, digest: &Digest, from: &Path) -> Result<BlobUse, BlobError> {
        if let Some(u) = self.hit(digest) {
            return Ok(u);
        }
        let lock = self
            .fetching
            .lock()
            .expect("fetching lock")
            .entry(digest.clone())
            .or_default()
            .clone();
        let fetched = {
            let _one = lock.lock().expect("fetch lock");
            match self.hit(digest) {
                Some(u) => Ok(u),
                None => self.copy_in(digest, from),
            }
        };
        let mut fetching = self.fetching.lock().expect("fetching lock");
        if Arc::strong_count(&lock) == 2 {
            fetching.remove(digest);
        }
        drop(fetching);
        let used = fetched?;
        self.evict();
        Ok(used)
    }

    /// A use of the entry `digest` if it is in place.
    fn hit(&self, digest: &Digest) -> Option<BlobUse> {
        let mut state = self.state.lock().expect("blob state lock");
        let e = state.entries.get_mut(digest)?;
        e.in_use += 1;
        e.last_used = SystemTime::now();
        drop(state);
        let dir = self.entry_dir(digest);
        // The last use outlives restarts of the agent (it orders eviction).
        let _ = std::fs::File::options()
            .write(true)
            .open(dir.join(USED))
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(BlobUse {
            digest: digest.clone(),
            path: dir.join(TREE),
            state: self.state.clone(),
        })
    }

    /// Copies `source` into a staging dir, verifies the copy and renames it into place.
    fn copy_in(&self, digest: &Digest, from: &Path) -> Result<BlobUse, BlobError> {
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Cache { path, source }
        };
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(cache_err(&self.root))?;
        let tree = staging.path().join(TREE);
        let started = std::time::Instant::now();
        hako_image::copy_tree(from, &tree, &ImportLimits::default()).map_err(|e| match e {
            CopyError::SpecialFile { .. } => BlobError::Refused(e.to_string()),
            CopyError::Io { source, .. } if is_out_of_space(&source) => BlobError::Cache {
                path: self.root.clone(),
                source,
            },
            e => BlobError::Source {
                source_path: from.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        let got = hako_image::tree_digest(&tree).map_err(|e| match e {
            DigestError::Io { source, .. } => BlobError::Cache {
                path: tree.clone(),
                source,
            },
            e => BlobError::Refused(e.to_string()),
        })?;
        if &got != digest {
            return Err(BlobError::Mismatch {
                expected: digest.clone(),
                got,
            });
        }
        let size = hako_image::disk_usage(&tree).map_err(cache_err(&tree))?;
        let meta = |name: &str, text: String| {
            let p = staging.path().join(name);
            std::fs::write(&p, text).map_err(cache_err(&p))
        };
        meta(USED, String::new())?;
        meta(SIZE, format!("{size}\n"))?;
        let dir = self.entry_dir(digest);
        std::fs::rename(staging.path(), &dir).map_err(cache_err(&dir))?;
        let _ = staging.keep();
        self.fetched.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            digest = %digest,
            from = %from.display(),
            size,
            ms = started.elapsed().as_millis() as u64,
            "fetched and verified into the node's cache"
        );
        self.state.lock().expect("blob state lock").entries.insert(
            digest.clone(),
            Entry {
                size,
                last_used: SystemTime::now(),
                in_use: 1,
            },
        );
        Ok(BlobUse {
            digest: digest.clone(),
            path: dir.join(TREE),
            state: self.state.clone(),
        })
    }

    /// Removes least recently used entries that nothing uses until the cache is within its
    /// bound (or only entries in use are left).
    fn evict(&self) {
        let mut trash = Vec::new();
        {
            let mut state = self.state.lock().expect("blob state lock");
            let mut total = state.total();
            while total > self.max_bytes {
                let Some(victim) = state
                    .entries
                    .iter()
                    .filter(|(_, e)| e.in_use == 0)
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(d, _)| d.clone())
                else {
                    tracing::warn!(
                        total,
                        bound = self.max_bytes,
                        "the node's cache is over its bound with every entry in use"
                    );
                    break;
                };
                let e = state.entries.remove(&victim).expect("victim entry");
                total -= e.size;
                tracing::info!(digest = %victim, "evicted from the node's cache (least recently used)");
                trash.extend(self.take_out(&victim));
            }
        }
        drop(trash); // deleted outside the lock
    }

    /// Removes every entry whose digest is not in `live` and that nothing uses now; returns
    /// how many went.
    pub(crate) fn retain(&self, live: &HashSet<Digest>) -> usize {
        let mut trash = Vec::new();
        let mut removed = 0;
        {
            let mut state = self.state.lock().expect("blob state lock");
            let doomed: Vec<Digest> = state
                .entries
                .iter()
                .filter(|(d, e)| e.in_use == 0 && !live.contains(*d))
                .map(|(d, _)| d.clone())
                .collect();
            for d in doomed {
                state.entries.remove(&d);
                tracing::info!(digest = %d, "removed from the node's cache: nothing in the cluster names it");
                trash.extend(self.take_out(&d));
                removed += 1;
            }
        }
        drop(trash);
        removed
    }

    /// Moves an entry out of place into a staging dir that deletes it when dropped. Call with
    /// the state lock held, after taking the entry out of the state: a fetch of the same
    /// digest then finds neither the entry nor its directory.
    fn take_out(&self, digest: &Digest) -> Option<tempfile::TempDir> {
        let dir = self.entry_dir(digest);
        let moved = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .and_then(|trash| std::fs::rename(&dir, trash.path().join(TREE)).map(|()| trash));
        match moved {
            Ok(trash) => Some(trash),
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "cannot remove a cache entry");
                None
            }
        }
    }

    /// Entries in the cache and their bytes.
    pub(crate) fn usage(&self) -> (usize, u64) {
        let state = self.state.lock().expect("blob state lock");
        (state.entries.len(), state.total())
    }

    /// Trees copied and verified since the agent started.
    pub(crate) fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }
}

fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122)) // ENOSPC, EDQUOT
}

#[cfg(test)]
mod tests;
