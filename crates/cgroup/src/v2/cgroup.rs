//! One container's cgroup v2 directory, its files, and an open fd of it for
//! `clone3(CLONE_INTO_CGROUP)`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ScopeInfo;
use crate::error::CgroupError;
use crate::fsio;
use crate::limits::{CPU_PERIOD_US, Limits};
use crate::manager::Cgroup;
use crate::signal::{kill_each, poll_until};
use crate::stats::{self, Stats};

/// A container's cgroup in the unified hierarchy.
#[derive(Debug)]
pub struct V2Cgroup {
    name: String,
    dir: PathBuf,
    fd: OwnedFd,
    info: ScopeInfo,
    kernel: bool,
    timeout: Duration,
}

impl V2Cgroup {
    pub(super) fn new(
        name: &str,
        dir: PathBuf,
        info: ScopeInfo,
        kernel: bool,
        timeout: Duration,
    ) -> Result<Self, CgroupError> {
        let fd = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|e| CgroupError::io("open", &dir, e))?
            .into();
        Ok(V2Cgroup {
            name: name.to_owned(),
            dir,
            fd,
            info,
            kernel,
            timeout,
        })
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a control file; on a plain directory tree (tests) the file is created.
    fn write(&self, name: &str, value: &str) -> Result<(), CgroupError> {
        fsio::write(&self.file(name), value, !self.kernel)
    }

    fn num(&self, name: &str) -> Result<u64, CgroupError> {
        let path = self.file(name);
        stats::parse_u64(&path, &fsio::read(&path)?)
    }

    fn keyed(&self, name: &str, key: &str) -> Result<u64, CgroupError> {
        let path = self.file(name);
        stats::keyed_u64(&path, &fsio::read(&path)?, key)
    }

    fn unavailable(&self, controller: &'static str) -> CgroupError {
        CgroupError::ControllerUnavailable {
            controller,
            path: self
                .dir
                .parent()
                .unwrap_or(&self.dir)
                .join("cgroup.controllers"),
        }
    }

    /// Writes the limits; `fresh` (just created, so nothing is limited yet) skips the `None`s.
    pub(super) fn apply(&self, limits: &Limits, fresh: bool) -> Result<(), CgroupError> {
        let wants = |set: bool, on: bool, name| match (set, on) {
            (true, false) => Err(self.unavailable(name)),
            (true, true) => Ok(true),
            (false, on) => Ok(on && !fresh),
        };
        if wants(limits.memory_max.is_some(), self.info.memory, "memory")? {
            self.set_memory(limits.memory_max, fresh)?;
        }
        if wants(limits.cpu_cores.is_some(), self.info.cpu, "cpu")? {
            let value = match limits.cpu_quota_us() {
                Some(quota) => format!("{quota} {CPU_PERIOD_US}"),
                None => format!("max {CPU_PERIOD_US}"),
            };
            self.write("cpu.max", &value)?;
        }
        if wants(limits.pids_max.is_some(), self.info.pids, "pids")? {
            let value = limits
                .pids_max
                .map_or_else(|| "max".to_owned(), |n| n.to_string());
            self.write("pids.max", &value)?;
        }
        Ok(())
    }

    /// Sets memory.max and keeps swap out (memory.swap.max 0) while memory is limited.
    /// The kernel would answer a memory.max below the usage by OOM-killing the container,
    /// so a live decrease below memory.current is refused instead, as v1 does.
    fn set_memory(&self, max: Option<u64>, fresh: bool) -> Result<(), CgroupError> {
        if let (Some(requested), false) = (max, fresh) {
            let current = self.num("memory.current")?;
            if current > requested {
                return Err(CgroupError::MemoryBelowUsage {
                    cgroup: self.name.clone(),
                    requested,
                    current: Some(current),
                });
            }
        }
        let value = max.map_or_else(|| "max".to_owned(), |m| m.to_string());
        self.write("memory.max", &value)?;
        if self.info.swap {
            self.write("memory.swap.max", if max.is_some() { "0" } else { "max" })?;
        }
        Ok(())
    }

    /// Fallback for kernels without cgroup.kill (before 5.14): freeze, kill each, thaw.
    fn kill_frozen(&self) -> Result<(), CgroupError> {
        if self.pids()?.is_empty() {
            return Ok(());
        }
        match self.freeze() {
            Ok(()) => {}
            Err(e @ CgroupError::FreezeTimeout { .. }) => {
                tracing::warn!(cgroup = %self.name, error = %e, "killing without a complete freeze");
            }
            Err(e) => return Err(e),
        }
        let killed = self.pids().and_then(|pids| kill_each(&pids));
        let thawed = self.thaw();
        killed.and(thawed)
    }
}

/// Removes a cgroup directory. On a plain directory tree (tests) the files standing in for
/// the kernel's are removed first; a real cgroup's rmdir ignores its control files.
pub(super) fn remove_dir(dir: &Path, kernel: bool) -> Result<(), CgroupError> {
    match fsio::rmdir(dir) {
        Err(e) if !kernel && e.raw_os_error() == Some(libc::ENOTEMPTY) => {
            for entry in std::fs::read_dir(dir).map_err(|e| CgroupError::io("list", dir, e))? {
                let path = entry.map_err(|e| CgroupError::io("list", dir, e))?.path();
                if path.is_file() {
                    std::fs::remove_file(&path).map_err(|e| CgroupError::io("remove", &path, e))?;
                }
            }
            fsio::rmdir(dir).map_err(|e| CgroupError::io("rmdir", dir, e))
        }
        other => other.map_err(|e| CgroupError::io("rmdir", dir, e)),
    }
}

impl Cgroup for V2Cgroup {
    fn name(&self) -> &str {
        &self.name
    }

    fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        self.write("cgroup.procs", &pid.to_string())
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.file("cgroup.procs")]
    }

    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        self.apply(limits, false)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let peak = self.file("memory.peak");
        Ok(Stats {
            memory_current: self.num("memory.current")?,
            memory_peak: match fsio::read_optional(&peak)? {
                Some(text) => Some(stats::parse_u64(&peak, &text)?),
                None => None,
            },
            cpu_usage_ns: self.keyed("cpu.stat", "usage_usec")?.saturating_mul(1000),
            pids_current: self.num("pids.current")?,
            oom_kills: self.keyed("memory.events", "oom_kill")?,
        })
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.write("cgroup.freeze", "1")?;
        let frozen = poll_until(self.timeout, || {
            self.keyed("cgroup.events", "frozen").map(|f| f == 1)
        })?;
        if frozen {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: self.dir.clone(),
                waited: self.timeout,
            })
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.write("cgroup.freeze", "0")
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let path = self.file("cgroup.procs");
        match fsio::read_optional(&path)? {
            Some(text) => stats::parse_pids(&path, &text),
            None if self.kernel => Err(CgroupError::io(
                "read",
                path,
                io::ErrorKind::NotFound.into(),
            )),
            None => Ok(Vec::new()),
        }
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        if !self.dir.exists() {
            return Ok(());
        }
        // Never created on a plain tree: its absence means "kernel without cgroup.kill".
        match fsio::write(&self.file("cgroup.kill"), "1", false) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.kill_frozen(),
            other => other,
        }
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        self.kill_all()?;
        let mut last_err = None;
        let removed = poll_until(self.timeout, || match fsio::rmdir(&self.dir) {
            Ok(()) => Ok(true),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || (!self.kernel && e.raw_os_error() == Some(libc::ENOTEMPTY)) =>
            {
                let pids = self.pids()?;
                if !self.kernel && pids.is_empty() {
                    remove_dir(&self.dir, false)?;
                    return Ok(true);
                }
                kill_each(&pids)?;
                last_err = Some(e);
                Ok(false)
            }
            Err(e) => Err(CgroupError::io("rmdir", &self.dir, e)),
        })?;
        if removed {
            return Ok(());
        }
        let pids = self.pids()?;
        if pids.is_empty()
            && let Some(e) = last_err
        {
            return Err(CgroupError::io("rmdir", &self.dir, e));
        }
        Err(CgroupError::NotEmpty {
            path: self.dir.clone(),
            pids,
            waited: self.timeout,
        })
    }
}
