//! Taking a bed down — also one brought up by another process, or half up, or already gone —
//! and checking that nothing of it is left: no process, namespace, link, cgroup, mount,
//! nftables table or state directory.
//!
//! Order: the hako processes (front, agents) get SIGTERM and up to [`STOP_GRACE`] to stop
//! their instances and remove what they made; then etcd; then anything still running in the
//! bed's namespaces or in its nodes' cgroups is killed (`kill -9`), the cgroups removed, the
//! mounts under the state dir detached, the namespaces and links deleted, the state dir
//! removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::lan;
use crate::netns::Netns;
use crate::process::{POLL, Proc, ProcRecord};
use crate::state::BedState;
use crate::{Result, TestbedError};

/// How long hako processes get after SIGTERM (an agent stops its instances first).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The runtime prefix of node `n` of bed `name`: `hakon` + name + n.
pub fn node_prefix(name: &str, n: usize) -> String {
    format!("hakon{name}{n}")
}

/// The runtime prefix of the front of bed `name` (when it runs no node).
pub fn front_prefix(name: &str) -> String {
    format!("hakof{name}")
}

/// Every runtime prefix bed `name` may have used.
pub fn prefixes(name: &str) -> Vec<String> {
    let mut v: Vec<String> = (1..=9).map(|n| node_prefix(name, n)).collect();
    v.push(front_prefix(name));
    v
}

/// Stops `procs` together: SIGTERM to all, then each gets what is left of `grace` before
/// SIGKILL. Names of those that had to be killed.
pub(crate) fn stop_all(procs: &mut [Proc], grace: Duration) -> Vec<String> {
    for p in procs.iter() {
        p.record.signal(Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    let mut killed = Vec::new();
    for p in procs.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if !p.stop(left.max(Duration::from_millis(1))) {
            killed.push(p.record.name.clone());
        }
    }
    killed
}

/// Cgroup directories named `prefix`, in every hierarchy (v1 controllers, the v2 root).
fn cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    std::iter::once(root.to_path_buf())
        .chain(
            std::fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path()),
        )
        .map(|d| d.join(prefix))
        .filter(|d| d.is_dir())
        .collect()
}

/// `dir` and every cgroup below it, deepest first.
fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(cgroup_tree(&e.path()));
        }
    }
    out.push(dir.to_path_buf());
    out
}

/// Kills every process in the cgroups of `prefix` and removes them.
fn remove_cgroups(prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = cgroup_dirs(prefix);
        if dirs.is_empty() || Instant::now() >= deadline {
            return;
        }
        for dir in &dirs {
            for cg in cgroup_tree(dir) {
                let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.trim().parse().ok()) {
                    if let Some(pid) = Pid::from_raw(pid) {
                        let _ = kill_process(pid, Signal::KILL);
                    }
                }
                let _ = std::fs::remove_dir(&cg);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Mount points under `dir` in this mount namespace, deepest (latest) first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.reverse();
    out
}

/// Kills whatever still runs in the namespaces of bed `name` (only the bed's processes, and
/// what they started, can be there).
fn kill_in_namespaces(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in Netns::list(&lan::stem(name)) {
        loop {
            let pids = ns.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in pids.into_iter().filter_map(Pid::from_raw) {
                let _ = kill_process(pid, Signal::KILL);
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Takes down bed `name` whose state is in `state_dir`, whatever is left of it; returns what
/// could not be removed (empty: nothing is left).
pub fn down(state_dir: &Path, name: &str) -> Result<Vec<String>> {
    lan::check_name(name)?;
    let state = BedState::load(state_dir).ok().flatten();
    let (hako, etcd): (Vec<ProcRecord>, Vec<ProcRecord>) = state
        .as_ref()
        .map(|s| s.processes.clone())
        .unwrap_or_default()
        .into_iter()
        .partition(|r| !r.name.starts_with("etcd"));
    let mut hako: Vec<Proc> = hako.into_iter().map(Proc::adopt).collect();
    stop_all(&mut hako, STOP_GRACE);
    // etcd's data goes with the bed: no graceful stop (seconds of leader hand-overs).
    for mut p in etcd.into_iter().map(Proc::adopt) {
        p.kill();
        p.stop(Duration::from_secs(10));
    }
    kill_in_namespaces(name);
    for prefix in prefixes(name) {
        remove_cgroups(&prefix);
    }
    for m in mounts_under(state_dir) {
        let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
    }
    let lan_err = lan::remove(name).err();
    let mut left = leftovers(state_dir, name, state.as_ref());
    if left.is_empty()
        && state_dir.exists()
        && let Err(e) = std::fs::remove_dir_all(state_dir)
    {
        left.push(format!("state dir {} ({e})", state_dir.display()));
    }
    if let Some(e) = lan_err
        && !left.is_empty()
    {
        left.push(format!("network: {e}"));
    }
    Ok(left)
}

/// What of bed `name` is on this machine, one description per object (the state dir
/// itself is not counted: `down` removes it last).
pub fn leftovers(state_dir: &Path, name: &str, state: Option<&BedState>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(s) = state {
        for r in s.processes.iter().filter(|r| r.alive()) {
            found.push(format!("process {} ({}, pid {})", r.name, r.command, r.pid));
        }
    }
    let stem = lan::stem(name);
    for ns in Netns::list(&stem) {
        found.push(format!("network namespace {}", ns.name()));
    }
    for l in lan::links(&stem) {
        found.push(format!("link {l}"));
    }
    for prefix in prefixes(name) {
        for d in cgroup_dirs(&prefix) {
            found.push(format!("cgroup {}", d.display()));
        }
    }
    for m in mounts_under(state_dir) {
        found.push(format!("mount {}", m.display()));
    }
    let tables = crate::cmd::nft(&["list", "tables"]).unwrap_or_default();
    for t in tables.lines() {
        if prefixes(name)
            .iter()
            .any(|p| t.split_whitespace().last() == Some(p.as_str()))
            || t.contains(&stem)
        {
            found.push(format!("nftables {t}"));
        }
    }
    found
}

/// Whether bed `name` (state in `state_dir`) is up: a recorded process runs or its
/// namespaces exist.
pub fn is_up(state_dir: &Path, name: &str) -> bool {
    let alive = BedState::load(state_dir)
        .ok()
        .flatten()
        .is_some_and(|s| s.processes.iter().any(ProcRecord::alive));
    alive || !Netns::list(&lan::stem(name)).is_empty()
}

/// Whether anything of bed `name` exists (up, half up, or its state dir).
pub fn exists(state_dir: &Path, name: &str) -> bool {
    is_up(state_dir, name) || state_dir.exists() || !lan::links(&lan::stem(name)).is_empty()
}

/// [`down`], failing with [`TestbedError::Leftovers`] when something is left.
pub fn down_clean(state_dir: &Path, name: &str) -> Result<()> {
    let left = down(state_dir, name)?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(TestbedError::Leftovers {
            name: name.to_string(),
            left,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_valid_runtime_prefixes_of_the_bed_only() {
        for p in prefixes("ab1") {
            let rest = p.strip_prefix("hako").unwrap();
            assert!(rest.len() <= 5, "{p}");
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            );
        }
        assert_eq!(node_prefix("ab1", 3), "hakonab13");
        assert!(!prefixes("ab").contains(&node_prefix("ab1", 3)));
    }

    #[test]
    fn mounts_are_found_under_a_dir_only() {
        assert!(mounts_under(Path::new("/proc")).contains(&PathBuf::from("/proc")));
        assert!(mounts_under(Path::new("/nonexistent-hako-dir")).is_empty());
    }
}
