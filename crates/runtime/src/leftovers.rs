//! Finding and removing what a dead runtime left behind.
//!
//! Each runtime holds an flock on `<state_root>/<prefix>.lock` for its whole life. A prefix
//! whose lock can be taken belongs to a runtime that is gone (killed, crashed): its
//! cgroups (with any process still in them), veths, bridge, firewall tables and directories
//! are removed. Container processes themselves die with the runtime (PDEATHSIG on their init,
//! which takes its whole pid namespace and mount namespace with it).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use hako_cgroup::CgroupManager;

use crate::error::RuntimeError;

/// The lock file of a prefix: `<state_root>/<prefix>.lock`.
fn lock_path(state_root: &Path, prefix: &str) -> std::path::PathBuf {
    state_root.join(format!("{prefix}.lock"))
}

/// Tries once to take the lock of `prefix`; `None` if someone holds it. The lock is only
/// valid if the file we locked is still the one at the path (a sweeper may have removed it).
fn try_lock(state_root: &Path, prefix: &str) -> Result<Option<File>, RuntimeError> {
    let path = lock_path(state_root, prefix);
    let io = |what: &str, source| RuntimeError::Io {
        what: what.into(),
        path: path.clone(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("open", e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(io("lock", e));
    }
    use std::os::unix::fs::MetadataExt;
    let held = f.metadata().map_err(|e| io("stat", e))?;
    match std::fs::metadata(&path) {
        Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => Ok(Some(f)),
        _ => Ok(None),
    }
}

/// Takes the lock of `prefix` for a new runtime. A sweeper of another runtime may hold it for
/// a moment while it checks for leftovers, so a held lock is retried for a short while before
/// the prefix counts as taken by a live runtime.
pub(crate) fn lock(state_root: &Path, prefix: &str) -> Result<Option<File>, RuntimeError> {
    for _ in 0..100 {
        if let Some(f) = try_lock(state_root, prefix)? {
            return Ok(Some(f));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(None)
}

/// Removes the leftovers of every dead runtime under `state_root` (except `skip`, which the
/// caller handles itself after taking its lock).
pub(crate) fn sweep(state_root: &Path, skip: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(state_root) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".lock") else {
            continue;
        };
        if !name.starts_with("hako") || Some(name) == skip {
            continue;
        }
        let Ok(Some(_lock)) = try_lock(state_root, name) else {
            continue; // alive
        };
        match hako_cgroup::detect(name) {
            Ok(cg) => {
                tracing::info!(prefix = %name, "removing what a dead hako runtime left");
                remove_prefix(state_root, name, cg.as_ref(), true);
                // Unlinked while we hold it: a runtime that opened it meanwhile re-checks.
                let _ = std::fs::remove_file(lock_path(state_root, name));
            }
            Err(err) => tracing::warn!(prefix = %name, error = %err, "cannot inspect cgroups"),
        }
    }
}

/// What [`remove_prefix`] found and removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub cgroups: usize,
    pub dirs: usize,
}

/// Removes every container cgroup, veth and directory of `prefix`, its bridge and firewall
/// tables; with `whole`, also the state directory itself.
pub(crate) fn remove_prefix(
    state_root: &Path,
    prefix: &str,
    cgroups: &dyn CgroupManager,
    whole: bool,
) -> Removed {
    let mut removed = Removed::default();
    for name in cgroups.list().unwrap_or_default() {
        match cgroups.open(&name).and_then(|c| c.destroy()) {
            Ok(()) => removed.cgroups += 1,
            Err(e) => tracing::warn!(cgroup = %name, error = %e, "cannot remove leftover cgroup"),
        }
    }
    if let Err(e) = cgroups.remove_scope() {
        tracing::warn!(prefix, error = %e, "cannot remove cgroup scope");
    }
    crate::network::remove_all(prefix, true);
    let state_dir = state_root.join(prefix);
    if let Ok(entries) = std::fs::read_dir(&state_dir) {
        for e in entries.flatten() {
            let p = e.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match r {
                Ok(()) => removed.dirs += 1,
                Err(err) => {
                    tracing::warn!(path = %p.display(), error = %err, "cannot remove leftover")
                }
            }
        }
    }
    if whole {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    removed
}
