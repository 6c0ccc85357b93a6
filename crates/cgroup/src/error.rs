//! The one error type every cgroup operation returns.
//!
//! Each variant's message names the file or cgroup involved and says what to do about it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::limits::LimitsError;
use crate::mountinfo::MountinfoError;

/// Everything that can go wrong while managing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A read, write, mkdir or rmdir on the cgroup filesystem failed.
    #[error(
        "cannot {op} {path}: {source}; check that hako runs as root and the cgroup filesystem is mounted read-write"
    )]
    Io {
        /// What was attempted ("write", "read", "mkdir", "rmdir", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The requested limits make no sense; nothing was written.
    #[error(transparent)]
    InvalidLimits(#[from] LimitsError),
    /// /proc/self/mountinfo could not be understood.
    #[error(transparent)]
    Mountinfo(#[from] MountinfoError),
    /// A live memory limit below what the container already uses.
    #[error("memory limit of {requested} bytes is below what cgroup {cgroup} uses now{}; choose a larger limit or free memory in the container first", current.map(|c| format!(" ({c} bytes)")).unwrap_or_default())]
    MemoryBelowUsage {
        /// The cgroup.
        cgroup: String,
        /// The limit asked for.
        requested: u64,
        /// The usage when known.
        current: Option<u64>,
    },
    /// No cgroup filesystem that hako can use is mounted.
    #[error(
        "no usable cgroup filesystem in /proc/self/mountinfo ({0}); mount cgroup2 at /sys/fs/cgroup, or the v1 memory, cpu, cpuacct, pids and freezer controllers"
    )]
    NoCgroupFs(String),
    /// A cgroup v1 controller hako needs is not mounted.
    #[error(
        "cgroup v1 controller {0} is not mounted; mount it (e.g. `mount -t cgroup -o {0} cgroup /sys/fs/cgroup/{0}`) or switch the host to cgroup v2"
    )]
    ControllerNotMounted(&'static str),
    /// A cgroup v2 controller is not available where hako needs it.
    #[error(
        "cgroup v2 controller {controller} is not available in {path}; enable it in the parent's cgroup.subtree_control or leave that limit unset"
    )]
    ControllerUnavailable {
        /// "memory", "cpu" or "pids".
        controller: &'static str,
        /// The cgroup.controllers file that lacks it.
        path: PathBuf,
    },
    /// A container or scope name that would not be a single safe directory name.
    #[error(
        "invalid cgroup name {name:?}: {reason}; use 1 to 200 ASCII letters, digits, '-' or '_'"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `create` found a cgroup of that name already there.
    #[error(
        "cgroup {0} already exists; destroy the leftover first (open it and call destroy) or pick another name"
    )]
    AlreadyExists(PathBuf),
    /// `open` found no cgroup of that name.
    #[error("cgroup {0} does not exist; list the scope to see which containers have cgroups")]
    NotFound(PathBuf),
    /// The kernel did not report the cgroup frozen in time.
    #[error(
        "cgroup {path} did not report frozen within {waited:?}; a process may be stuck in uninterruptible sleep, retry or kill the container"
    )]
    FreezeTimeout {
        /// The cgroup directory.
        path: PathBuf,
        /// How long hako waited.
        waited: Duration,
    },
    /// Processes were still in the cgroup when destroy gave up.
    #[error(
        "cgroup {path} still holds processes {pids:?} after {waited:?}; kill them (they may be stuck in uninterruptible sleep) and call destroy again"
    )]
    NotEmpty {
        /// The cgroup directory left behind.
        path: PathBuf,
        /// The processes seen in it last.
        pids: Vec<i32>,
        /// How long hako waited.
        waited: Duration,
    },
    /// The scope still has container cgroups in it.
    #[error("scope {path} still holds cgroups {children:?}; destroy them first")]
    ScopeNotEmpty {
        /// The scope directory.
        path: PathBuf,
        /// The container cgroups still in it.
        children: Vec<String>,
    },
    /// A cgroup file held something hako could not parse.
    #[error("cannot parse {path}: {what}; is this really a cgroup filesystem?")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// Sending a signal failed for another reason than the process being gone.
    #[error("cannot send SIGKILL to process {pid}: {source}; check that hako runs as root")]
    Signal {
        /// The process.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    /// Wraps an io error with what was attempted and on which path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error number when this is an io error.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_say_what_to_do() {
        let e = CgroupError::MemoryBelowUsage {
            cgroup: "hako/web-1".into(),
            requested: 1 << 20,
            current: Some(5 << 20),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("memory limit of 1048576 bytes"), "{msg}");
        assert!(msg.contains("(5242880 bytes)"), "{msg}");
        assert!(msg.contains("choose a larger limit"), "{msg}");
    }

    #[test]
    fn raw_os_error_is_kept() {
        let e = CgroupError::io("write", "/x", io::Error::from_raw_os_error(libc::EBUSY));
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        assert!(e.to_string().starts_with("cannot write /x"));
    }
}
