//! The checkpoints kept on this node: CRIU images of ready, warmed instances, one per app
//! version, under `<data-dir>/checkpoints/<app>/<key>/` (root-only, 0700; never mounted
//! into any container).
//!
//! A checkpoint's key names the exact version it was made from: the app's
//! [`App::version_key`](hako_model::App::version_key) (release, rollout generation, command,
//! environment, limits…) and the image version it ran (name, number and creation time), so a
//! start can only ever find a checkpoint of its own version. Checkpoints of other versions
//! are removed when the owner says which version is current, with the app, and by the disk
//! bound: when the total passes [`Checkpoints::max_bytes`], the least recently used go first
//! (never one a restore is reading).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What hako knows of one checkpoint (`info.json` beside CRIU's images).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointInfo {
    pub app: String,
    /// The app version and image version it belongs to.
    pub key: String,
    pub release: Option<u64>,
    /// The image version it ran, e.g. "php:3".
    pub image: String,
    pub created_unix: u64,
    /// Disk use: CRIU's images (mostly the app's memory) and the carried /tmp, /run content.
    pub bytes: u64,
    /// How long the checkpointed instance took from start to ready (a cold start's setup
    /// plus the app's own start).
    pub cold_ready_ms: f64,
    /// How long CRIU took to dump it.
    pub dump_ms: f64,
    /// How long a trial restore took to be ready (restore plus first accepted connection).
    pub restore_ready_ms: f64,
    /// From the checkpointed instance's start until its first request (the warm-up) was
    /// answered: what a visitor of a cold start waits for (`None`: no warm-up request).
    #[serde(default)]
    pub cold_first_ms: Option<f64>,
    /// From the trial restore's start until its first request was answered.
    #[serde(default)]
    pub restore_first_ms: Option<f64>,
}

impl CheckpointInfo {
    /// (cold, restore) milliseconds to compare: until the first answered request where both
    /// were measured (a restored WordPress answers its first page warm, a cold one does not),
    /// else until ready.
    pub fn compared_ms(&self) -> (f64, f64) {
        match (self.cold_first_ms, self.restore_first_ms) {
            (Some(c), Some(r)) => (c, r),
            _ => (self.cold_ready_ms, self.restore_ready_ms),
        }
    }

    /// Whether restoring it is faster than a cold start, as measured when it was made.
    pub fn restore_pays(&self) -> bool {
        let (cold, restore) = self.compared_ms();
        restore < cold
    }
}

/// The store.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    dir: PathBuf,
    max_bytes: u64,
    /// Directories being read by a restore now (with how many), never evicted meanwhile.
    in_use: Mutex<HashMap<PathBuf, usize>>,
    /// Checkpoints removed by the disk bound since the owner last asked
    /// ([`Checkpoints::take_evicted`]).
    evicted: Mutex<Vec<CheckpointInfo>>,
}

impl Checkpoints {
    pub(crate) fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<Checkpoints> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        // Half-made checkpoints of a run that died.
        for app in read_dirs(&dir) {
            for d in read_dirs(&app) {
                if d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
                {
                    let _ = std::fs::remove_dir_all(&d);
                }
            }
        }
        Ok(Checkpoints {
            dir,
            max_bytes,
            in_use: Mutex::new(HashMap::new()),
            evicted: Mutex::new(Vec::new()),
        })
    }

    /// The disk bound of all checkpoints together.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(crate) fn path(&self, app: &str, key: &str) -> PathBuf {
        self.dir.join(app).join(key)
    }

    /// A fresh directory to dump into, published later with [`Checkpoints::publish`].
    pub(crate) fn staging(&self, app: &str, key: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        self.dir.join(app).join(format!(".tmp-{key}-{n}"))
    }

    /// Whether the app has any checkpoint at all (one `stat`: the cheap test a start makes
    /// before it looks for its own version's).
    pub(crate) fn has_any(&self, app: &str) -> bool {
        self.dir.join(app).is_dir()
    }

    /// The checkpoint of exactly this version, if there is one (not counted as a use).
    pub(crate) fn get(&self, app: &str, key: &str) -> Option<CheckpointInfo> {
        read_info(&self.path(app, key))
    }

    /// Bytes of all checkpoints together.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.list(None).iter().map(|i| i.bytes).sum()
    }

    /// The checkpoint of exactly this version, marked in use until the guard drops.
    pub(crate) fn take(&self, app: &str, key: &str) -> Option<(InUse<'_>, CheckpointInfo)> {
        let dir = self.path(app, key);
        let info = read_info(&dir)?;
        *self
            .in_use
            .lock()
            .expect("checkpoints lock")
            .entry(dir.clone())
            .or_default() += 1;
        touch(&dir.join("info.json"));
        Some((InUse { store: self, dir }, info))
    }

    /// Moves a dumped and tried checkpoint into place, then keeps the store within its bound.
    /// If one of this version was filed meanwhile (two makers at once), that one stays (a
    /// restore may be reading it) and this one is dropped.
    pub(crate) fn publish(&self, staging: &Path, info: &CheckpointInfo) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(info).expect("info serialises");
        std::fs::write(staging.join("info.json"), text)?;
        // Beside its staging dir, in the app's storage-key dir (`info.app` is the app's name,
        // which differs from its storage key for any app with a uid).
        let dir = match staging.parent() {
            Some(app_dir) => app_dir.join(&info.key),
            None => self.path(&info.app, &info.key),
        };
        if read_info(&dir).is_some() {
            let _ = std::fs::remove_dir_all(staging);
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(staging, &dir)?;
        self.evict();
        Ok(())
    }

    /// Every checkpoint (of one app), oldest first.
    pub(crate) fn list(&self, app: Option<&str>) -> Vec<CheckpointInfo> {
        let apps: Vec<PathBuf> = match app {
            Some(a) => vec![self.dir.join(a)],
            None => read_dirs(&self.dir),
        };
        let mut v: Vec<CheckpointInfo> = apps
            .iter()
            .flat_map(|a| read_dirs(a))
            .filter_map(|d| read_info(&d))
            .collect();
        v.sort_by(|a, b| a.created_unix.cmp(&b.created_unix).then(a.key.cmp(&b.key)));
        v
    }

    /// Removes the app's checkpoints except the one of `keep` (all with `None`).
    pub(crate) fn remove(&self, app: &str, keep: Option<&str>) -> usize {
        let mut n = 0;
        for d in read_dirs(&self.dir.join(app)) {
            let key = d.file_name().map(|k| k.to_string_lossy().into_owned());
            if key.as_deref() != keep && !self.is_in_use(&d) && std::fs::remove_dir_all(&d).is_ok()
            {
                n += 1;
            }
        }
        if keep.is_none() {
            let _ = std::fs::remove_dir(self.dir.join(app));
        }
        n
    }

    fn is_in_use(&self, dir: &Path) -> bool {
        self.in_use
            .lock()
            .expect("checkpoints lock")
            .contains_key(dir)
    }

    /// The checkpoints the disk bound removed since the last call.
    pub(crate) fn take_evicted(&self) -> Vec<CheckpointInfo> {
        std::mem::take(&mut *self.evicted.lock().expect("checkpoints lock"))
    }

    /// Removes the least recently used checkpoints until the total is within the bound.
    fn evict(&self) {
        let mut all: Vec<(std::time::SystemTime, PathBuf, u64)> = read_dirs(&self.dir)
            .iter()
            .flat_map(|a| read_dirs(a))
            .filter(|d| {
                !d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
            })
            .filter_map(|d| {
                let used = std::fs::metadata(d.join("info.json"))
                    .ok()?
                    .modified()
                    .ok()?;
                let bytes = read_info(&d).map(|i| i.bytes).unwrap_or(0);
                Some((used, d, bytes))
            })
            .collect();
        all.sort();
        let mut total: u64 = all.iter().map(|(_, _, b)| b).sum();
        for (_, d, bytes) in all {
            if total <= self.max_bytes {
                break;
            }
            if self.is_in_use(&d) {
                continue;
            }
            tracing::info!(checkpoint = %d.display(), bytes, "removing the least recently used checkpoint (disk bound)");
            let info = read_info(&d);
            if std::fs::remove_dir_all(&d).is_ok() {
                total -= bytes;
                if let Some(i) = info {
                    self.evicted.lock().expect("checkpoints lock").push(i);
                }
            }
        }
    }
}

/// A checkpoint a restore is reading.
pub(crate) struct InUse<'a> {
    store: &'a Checkpoints,
    pub(crate) dir: PathBuf,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        let mut m = self.store.in_use.lock().expect("checkpoints lock");
        if let Some(n) = m.get_mut(&self.dir) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.dir);
            }
        }
    }
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

fn read_info(dir: &Path) -> Option<CheckpointInfo> {
    serde_json::from_slice(&std::fs::read(dir.join("info.json")).ok()?).ok()
}

fn touch(p: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(p) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(app: &str, key: &str, bytes: u64) -> CheckpointInfo {
        CheckpointInfo {
            app: app.into(),
            key: key.into(),
            release: Some(1),
            image: "base:1".into(),
            created_unix: 1,
            bytes,
            cold_ready_ms: 600.0,
            dump_ms: 50.0,
            restore_ready_ms: 60.0,
            cold_first_ms: None,
            restore_first_ms: None,
        }
    }

    fn add(s: &Checkpoints, app: &str, key: &str, bytes: u64) {
        let st = s.staging(app, key);
        std::fs::create_dir_all(&st).unwrap();
        std::fs::write(st.join("pages-1.img"), vec![0u8; bytes as usize]).unwrap();
        s.publish(&st, &info(app, key, bytes)).unwrap();
    }

    #[test]
    fn a_checkpoint_is_filed_under_the_apps_storage_key_not_its_name() {
        let d = tempfile::tempdir().unwrap();
        let s = Checkpoints::open(d.path().join("c"), 1 << 30).unwrap();
        let st = s.staging("blog_0123456789ab", "k1");
        std::fs::create_dir_all(&st).unwrap();
        s.publish(&st, &info("blog", "k1", 10)).unwrap();
        assert!(s.get("blog_0123456789ab", "k1").is_some());
        assert!(s.has_any("blog_0123456789ab") && !s.has_any("blog"));
    }

    #[test]
    fn finds_only_its_own_version_and_evicts_the_least_recently_used() {
        let d = tempfile::tempdir().unwrap();
        let s = Checkpoints::open(d.path().join("c"), 250).unwrap();
        add(&s, "a", "k1", 100);
        std::thread::sleep(std::time::Duration::from_millis(20));
        add(&s, "b", "k1", 100);
        assert!(s.take("a", "k2").is_none());
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Using a's makes b's the least recently used.
        let (guard, i) = s.take("a", "k1").unwrap();
        assert_eq!(i.bytes, 100);
        drop(guard);
        add(&s, "c", "k1", 100);
        let mut left: Vec<String> = s.list(None).into_iter().map(|i| i.app).collect();
        left.sort();
        assert_eq!(left, ["a", "c"], "the least recently used went");
        let evicted: Vec<String> = s.take_evicted().into_iter().map(|i| i.app).collect();
        assert_eq!(evicted, ["b"], "the owner hears which went");
        assert!(s.take_evicted().is_empty());
        // A checkpoint being read survives the bound.
        let (_reading, _) = s.take("a", "k1").unwrap();
        add(&s, "d", "k1", 200);
        assert!(s.take("a", "k1").is_some());
        // Removing an app's other versions keeps the current one.
        add(&s, "a", "k9", 10);
        drop(_reading);
        assert_eq!(s.remove("a", Some("k9")), 1);
        assert!(s.take("a", "k9").is_some());
        assert_eq!(s.remove("a", None), 1);
        assert!(s.list(Some("a")).is_empty());
    }

    #[test]
    fn half_made_checkpoints_are_removed_at_open() {
        let d = tempfile::tempdir().unwrap();
        let st = d.path().join("c/app/.tmp-k-0");
        std::fs::create_dir_all(&st).unwrap();
        Checkpoints::open(d.path().join("c"), 1 << 30).unwrap();
        assert!(!st.exists());
    }
}
