//! The two traits every cgroup version implements: one container's cgroup, and the manager
//! that creates them under a scope.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::error::CgroupError;
use crate::limits::Limits;
use crate::stats::Stats;

/// How long freeze and destroy wait for the kernel unless a manager is told otherwise
/// (`with_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which cgroup hierarchy the host uses for hako's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Separate hierarchies per controller (memory, cpu, cpuacct, pids, freezer).
    V1,
    /// The unified hierarchy.
    V2,
}

/// One container's cgroup (a directory in every used hierarchy for v1).
///
/// All calls are synchronous and cheap; the object only holds precomputed paths (and for v2
/// an open directory fd), so it may be shared between threads.
pub trait Cgroup: Send + Sync + std::fmt::Debug {
    /// The container's cgroup name (its directory under the scope).
    fn name(&self) -> &str;
    /// Moves a process (with all its threads) into the cgroup.
    fn add_pid(&self, pid: i32) -> Result<(), CgroupError>;
    /// v2: an `O_DIRECTORY` fd of the cgroup for `clone3(CLONE_INTO_CGROUP)`, which starts
    /// the child inside the cgroup without a later write to cgroup.procs. v1: `None`.
    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>>;
    /// The `cgroup.procs` file of every hierarchy the cgroup lives in: a process that writes
    /// `0` to each moves itself in (how a helper about to fork the container's processes,
    /// such as CRIU restoring them, joins the cgroup before it execs).
    fn procs_files(&self) -> Vec<std::path::PathBuf>;
    /// Validates and applies limits; works on a running container too. `None` removes a limit.
    /// A memory limit below the current usage fails with [`CgroupError::MemoryBelowUsage`].
    fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError>;
    /// Current usage.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// Freezes every process; returns once the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Lets frozen processes run again.
    fn thaw(&self) -> Result<(), CgroupError>;
    /// The processes in the cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Sends SIGKILL to every process, without a race against processes that fork meanwhile.
    /// Returns without waiting for them to be gone; a missing cgroup is not an error.
    fn kill_all(&self) -> Result<(), CgroupError>;
    /// Kills every process, waits (bounded) until the cgroup is empty and removes its
    /// directories. Idempotent: destroying a destroyed cgroup succeeds.
    fn destroy(&self) -> Result<(), CgroupError>;
}

/// Creates and finds container cgroups under one scope directory (e.g. `hako`).
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// The cgroup version this manager drives.
    fn version(&self) -> Version;
    /// The scope: the parent directory of all containers' cgroups.
    fn scope(&self) -> &str;
    /// Creates a container's cgroup with `limits` (validated first). Fails if it exists.
    fn create(&self, name: &str, limits: &Limits) -> Result<Box<dyn Cgroup>, CgroupError>;
    /// Opens an existing container cgroup, e.g. one a previous hako process left behind.
    fn open(&self, name: &str) -> Result<Box<dyn Cgroup>, CgroupError>;
    /// The names of the container cgroups under the scope, sorted.
    fn list(&self) -> Result<Vec<String>, CgroupError>;
    /// Removes the scope directories; every container cgroup must be destroyed first.
    /// A missing scope is not an error.
    fn remove_scope(&self) -> Result<(), CgroupError>;
}

/// Checks that a scope or container name is one safe directory name that cannot collide
/// with a cgroup control file (those all contain a dot).
pub(crate) fn check_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Some("it holds a character other than a letter, digit, '-' or '_'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CgroupError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("hako").is_ok());
        assert!(check_name("web-1_a").is_ok());
        for bad in ["", "..", "a/b", "memory.max", "a b", &"x".repeat(201)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid cgroup name"), "{bad:?}: {e}");
        }
    }
}
