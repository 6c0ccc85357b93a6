//! cgroup v2: containers at `<root>/<scope>/<name>` in the unified hierarchy.
//!
//! The manager enables the memory, cpu and pids controllers in the `cgroup.subtree_control`
//! of the root and of the scope (those the root offers), once. It also works on a plain
//! directory tree standing in for cgroupfs (tests): files are then created when written,
//! and directories emptied before rmdir.

mod cgroup;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use cgroup::V2Cgroup;

use crate::error::CgroupError;
use crate::fsio;
use crate::limits::Limits;
use crate::manager::{Cgroup, CgroupManager, DEFAULT_TIMEOUT, Version, check_name};

/// The controllers hako uses, in the order it enables them.
const WANTED: [&str; 3] = ["memory", "cpu", "pids"];

/// What the scope offers its containers, learned once when the scope is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScopeInfo {
    pub memory: bool,
    pub cpu: bool,
    pub pids: bool,
    /// memory.swap.max exists (swap accounting), so swap is limited too.
    pub swap: bool,
}

/// The cgroup v2 manager.
#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    scope: String,
    scope_dir: PathBuf,
    /// Real cgroup2 (as opposed to a plain directory tree in tests).
    kernel: bool,
    timeout: Duration,
    info: Mutex<Option<ScopeInfo>>,
}

impl V2Manager {
    /// A manager for the cgroup2 hierarchy mounted at `root` (or a plain directory tree
    /// standing in for it). Touches nothing until `create`.
    pub fn at(root: impl Into<PathBuf>, scope: &str) -> Result<Self, CgroupError> {
        check_name(scope)?;
        let root = root.into();
        let kernel = nix::sys::statfs::statfs(&root)
            .map_err(|e| CgroupError::io("statfs", &root, e.into()))?
            .filesystem_type()
            == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
        Ok(V2Manager {
            scope_dir: root.join(scope),
            root,
            scope: scope.to_owned(),
            kernel,
            timeout: DEFAULT_TIMEOUT,
            info: Mutex::new(None),
        })
    }

    /// Sets how long freeze and destroy wait for the kernel.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The scope directory.
    pub fn scope_dir(&self) -> &Path {
        &self.scope_dir
    }

    /// Whether `root` is a real cgroup2 filesystem.
    pub fn is_kernel(&self) -> bool {
        self.kernel
    }

    /// The scope's info, setting the scope up the first time.
    fn scope_info(&self) -> Result<ScopeInfo, CgroupError> {
        let mut guard = self.info.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(info) = *guard {
            return Ok(info);
        }
        let info = self.ensure_scope()?;
        *guard = Some(info);
        Ok(info)
    }

    /// Enables the wanted controllers in the root, makes the scope, enables them there.
    fn ensure_scope(&self) -> Result<ScopeInfo, CgroupError> {
        let offered =
            fsio::read_optional(&self.root.join("cgroup.controllers"))?.unwrap_or_default();
        let wanted: Vec<&str> = WANTED
            .into_iter()
            .filter(|c| offered.split_ascii_whitespace().any(|o| o == *c))
            .collect();
        self.enable(&self.root, &wanted)?;
        fsio::mkdir(&self.scope_dir)?;
        self.enable(&self.scope_dir, &wanted)?;
        Ok(ScopeInfo {
            memory: wanted.contains(&"memory"),
            cpu: wanted.contains(&"cpu"),
            pids: wanted.contains(&"pids"),
            swap: self.scope_dir.join("memory.swap.max").exists(),
        })
    }

    /// Writes `+c` to `dir`'s cgroup.subtree_control for each wanted controller not yet on.
    fn enable(&self, dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
        let file = dir.join("cgroup.subtree_control");
        let on = fsio::read_optional(&file)?.unwrap_or_default();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|c| !on.split_ascii_whitespace().any(|o| o == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let value = if self.kernel {
            missing.join(" ")
        } else {
            // A plain file keeps only what is written: keep it looking like the kernel's.
            on.split_ascii_whitespace()
                .map(|c| format!("+{c}"))
                .chain(missing)
                .collect::<Vec<_>>()
                .join(" ")
        };
        fsio::write(&file, &value, !self.kernel)
    }

    fn cgroup(&self, name: &str, info: ScopeInfo) -> Result<V2Cgroup, CgroupError> {
        V2Cgroup::new(
            name,
            self.scope_dir.join(name),
            info,
            self.kernel,
            self.timeout,
        )
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> Version {
        Version::V2
    }

    fn scope(&self) -> &str {
        &self.scope
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<Box<dyn Cgroup>, CgroupError> {
        check_name(name)?;
        limits.validate()?;
        let info = self.scope_info()?;
        let dir = self.scope_dir.join(name);
        let made = match fsio::mkdir(&dir) {
            // The scope was removed behind our back: set it up again, once.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                *self.info.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.scope_info()?;
                fsio::mkdir(&dir)?
            }
            other => other?,
        };
        if !made {
            return Err(CgroupError::AlreadyExists(dir));
        }
        let cg = match self.cgroup(name, info) {
            Ok(cg) => cg,
            Err(e) => {
                let _ = fsio::rmdir(&dir);
                return Err(e);
            }
        };
        if let Err(e) = cg.apply(limits, true) {
            if let Err(cleanup) = cg.destroy() {
                tracing::warn!(cgroup = name, error = %cleanup, "cannot remove a half-made cgroup");
            }
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Cgroup>, CgroupError> {
        check_name(name)?;
        let dir = self.scope_dir.join(name);
        if !dir.is_dir() {
            return Err(CgroupError::NotFound(dir));
        }
        Ok(Box::new(self.cgroup(name, self.scope_info()?)?))
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        fsio::subdirs(&self.scope_dir)
    }

    fn remove_scope(&self) -> Result<(), CgroupError> {
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let children = fsio::subdirs(&self.scope_dir)?;
        if !children.is_empty() {
            return Err(CgroupError::ScopeNotEmpty {
                path: self.scope_dir.clone(),
                children,
            });
        }
        cgroup::remove_dir(&self.scope_dir, self.kernel)
    }
}
