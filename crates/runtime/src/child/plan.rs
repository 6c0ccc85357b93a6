//! What the parent prepares for a container's child before the clone: the [`ChildPlan`].
//!
//! Everything the child needs is allocated here, in the parent, so that the child (a fork of
//! a multi-threaded process) only reads memory and makes system calls.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::seccomp::Filters;

/// One filesystem operation of the child's mount plan.
#[derive(Debug)]
pub(crate) enum Op {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `mkdir`, tolerating an existing directory.
    Mkdir {
        path: CString,
        mode: u32,
    },
    /// Creates an empty file if missing (a mount point for a file bind).
    Touch {
        path: CString,
    },
    Mknod {
        path: CString,
        mode: u32,
        dev: u64,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Writes a small file (hosts, hostname); skipped if its directory is missing.
    WriteFile {
        path: CString,
        content: Vec<u8>,
    },
    /// Binds `path` onto itself read-only; skipped if `path` does not exist.
    ReadOnlyIfExists {
        path: CString,
    },
    /// Makes `new_root` the root and detaches the old one.
    PivotRoot {
        new_root: CString,
    },
}

impl Op {
    /// A short description for error messages, e.g. "mount overlay on /run/…/root".
    pub(crate) fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => format!(
                "mount {} ({}) on {}",
                source.as_ref().map(s).unwrap_or_default(),
                fstype.as_ref().map(s).unwrap_or_else(|| "bind".into()),
                s(target)
            ),
            Op::Mkdir { path, .. } => format!("mkdir {}", s(path)),
            Op::Touch { path } => format!("create mount point {}", s(path)),
            Op::Mknod { path, .. } => format!("mknod {}", s(path)),
            Op::Symlink { link, .. } => format!("symlink {}", s(link)),
            Op::WriteFile { path, .. } => format!("write {}", s(path)),
            Op::ReadOnlyIfExists { path } => format!("make {} read-only", s(path)),
            Op::PivotRoot { new_root } => format!("pivot_root into {}", s(new_root)),
        }
    }
}

/// IPv4 settings for `eth0` inside the container's network namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetConfig {
    pub addr: [u8; 4],
    pub netmask: [u8; 4],
    pub gateway: [u8; 4],
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ops: Vec<Op>,
    pub hostname: CString,
    /// Bring `lo` up (own network namespace).
    pub lo_up: bool,
    pub net: Option<NetConfig>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// Capabilities kept (bitmask of CAP_* numbers); all others leave the bounding set.
    pub keep_caps: u64,
    pub workdir: CString,
    /// Full paths to try for the program, in order (PATH search done by the parent).
    pub exec_candidates: Vec<CString>,
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
    /// Keeps the strings behind `argv`/`envp` alive.
    pub _strings: Vec<CString>,
    /// Descriptors to install as 0, 1, 2 (-1: keep what the parent had).
    pub stdio: [RawFd; 3],
    /// The child's ends of the [`super::channel`] pipes.
    pub sync_fd: RawFd,
    pub report_fd: RawFd,
    pub nofile: u64,
    /// The host's network namespace, for host-network containers (-1 otherwise): the spawner
    /// may have cloned the child into a fresh network namespace made ahead of time.
    pub host_netns_fd: RawFd,
    /// System-call filters to install after no_new_privs (`None`: unconfined).
    pub seccomp: Option<Arc<Filters>>,
}

// SAFETY: the raw pointers in argv/envp point into `_strings`, owned by the same plan; the plan
// is only read after construction.
unsafe impl Send for ChildPlan {}
// SAFETY: as above, the plan is immutable once built.
unsafe impl Sync for ChildPlan {}

impl ChildPlan {
    /// The command as the user gave it (for error messages).
    pub(crate) fn command(&self) -> String {
        self._strings
            .first()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
