//! What an app may store on a node: the size of each code release (unpacked bytes and file
//! count, checked while unpacking, so a small archive that expands without end stops at the
//! bound and leaves nothing) and of its persistent `/data`.
//!
//! `/data` is bounded by a periodic check, not by the kernel: hard per-directory limits need
//! project quotas (ext4 with the `project` and `quota` features and `prjquota`, or XFS with
//! `pquota`), which kernels built without `CONFIG_QFMT_V2`/`CONFIG_XFS_QUOTA` lack. The agent
//! measures an app's `/data` when an instance is made (at most every
//! [`StorageLimits::data_measure_interval`], in the background after the first time) and,
//! once it is over [`StorageLimits::data_quota`], gives new instances `/data` read-only until
//! files are removed: running instances may write past the quota until they are replaced.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hako_image::ImportLimits;

/// Bounds on what each app stores on this node (`hako serve`'s `release_max_size`,
/// `release_max_files` and `data_quota`; per tenant later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Most bytes of file data in one code release, unpacked (default 1 GiB).
    pub release_max_bytes: u64,
    /// Most entries (files, directories, links) in one code release (default 100,000).
    pub release_max_files: u64,
    /// Most bytes in an app's `/data` before new instances get it read-only (default 10 GiB;
    /// `None`: unbounded).
    pub data_quota: Option<u64>,
    /// How stale a measurement of an app's `/data` may be before it is taken again
    /// (default 30s; zero measures at every start, on the start's path).
    pub data_measure_interval: Duration,
}

impl Default for StorageLimits {
    fn default() -> Self {
        StorageLimits {
            release_max_bytes: 1 << 30,
            release_max_files: 100_000,
            data_quota: Some(10 << 30),
            data_measure_interval: Duration::from_secs(30),
        }
    }
}

impl StorageLimits {
    /// The bounds a release import checks.
    pub fn release_import(&self) -> ImportLimits {
        ImportLimits {
            max_entries: self.release_max_files,
            max_bytes: self.release_max_bytes,
        }
    }
}

/// One app's last measurement.
#[derive(Debug, Clone, Copy)]
struct Measured {
    bytes: u64,
    at: Instant,
    refreshing: bool,
}

/// The measured size of each app's `/data`.
#[derive(Debug, Default, Clone)]
pub(crate) struct DataUsage {
    apps: Arc<Mutex<HashMap<String, Measured>>>,
}

impl DataUsage {
    /// The bytes under `dir` (`app`'s `/data`) as last measured: measured now the first time
    /// (and every time with a zero `interval`), refreshed in the background when older.
    pub(crate) fn bytes(&self, app: &str, dir: &Path, interval: Duration) -> u64 {
        let now = Instant::now();
        let last = self.apps.lock().expect("usage lock").get(app).copied();
        match last {
            _ if interval.is_zero() => measure(dir),
            None => {
                let bytes = measure(dir);
                self.apps.lock().expect("usage lock").insert(
                    app.to_string(),
                    Measured {
                        bytes,
                        at: now,
                        refreshing: false,
                    },
                );
                bytes
            }
            Some(m) if now.duration_since(m.at) < interval || m.refreshing => m.bytes,
            Some(m) => {
                if let Some(e) = self.apps.lock().expect("usage lock").get_mut(app) {
                    e.refreshing = true;
                }
                let (apps, app, dir) = (self.apps.clone(), app.to_string(), dir.to_path_buf());
                std::thread::spawn(move || {
                    let bytes = measure(&dir);
                    apps.lock().expect("usage lock").insert(
                        app,
                        Measured {
                            bytes,
                            at: Instant::now(),
                            refreshing: false,
                        },
                    );
                });
                m.bytes
            }
        }
    }

    /// Whether `app`'s `/data` (at `dir`) is over `limits.data_quota`: its new instances then
    /// get it read-only (see the module docs).
    pub(crate) fn over_quota(&self, app: &str, dir: &Path, limits: &StorageLimits) -> bool {
        let Some(quota) = limits.data_quota else {
            return false;
        };
        let used = self.bytes(app, dir, limits.data_measure_interval);
        if used > quota {
            tracing::warn!(
                app,
                used,
                quota,
                "the app's /data is over its quota: new instances get it read-only until files are removed"
            );
        }
        used > quota
    }

    /// Forgets an app (deleted).
    pub(crate) fn forget(&self, app: &str) {
        self.apps.lock().expect("usage lock").remove(app);
    }
}

/// Bytes of disk the tree under `dir` takes (allocated blocks; never follows symlinks).
fn measure(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total = total.saturating_add(m.blocks().saturating_mul(512));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_measured_once_then_cached() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), vec![1u8; 100_000]).unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/b"), vec![1u8; 50_000]).unwrap();
        std::os::unix::fs::symlink("/usr", tmp.path().join("out")).unwrap();
        let usage = DataUsage::default();
        let every = Duration::from_secs(30);
        let first = usage.bytes("app", tmp.path(), every);
        assert!((150_000..400_000).contains(&first), "{first}");
        // More data within the interval: the cached figure stands (no walk per start).
        std::fs::write(tmp.path().join("c"), vec![1u8; 1_000_000]).unwrap();
        assert_eq!(usage.bytes("app", tmp.path(), every), first);
        assert!(usage.bytes("app", tmp.path(), Duration::ZERO) > first + 900_000);
        usage.forget("app");
        assert!(usage.bytes("app", tmp.path(), every) > first + 900_000);
    }
}
