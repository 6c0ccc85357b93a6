//! One container's cgroup v1: its directory in each hierarchy and the files hako uses,
//! all paths computed once when the handle is made.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::V1Mounts;
use crate::error::CgroupError;
use crate::fsio;
use crate::limits::{CPU_PERIOD_US, Limits};
use crate::manager::Cgroup;
use crate::signal::{kill_each, poll_until};
use crate::stats::{self, Stats};

/// A container's cgroup in every v1 hierarchy.
#[derive(Debug)]
pub struct V1Cgroup {
    name: String,
    /// `<hierarchy>/<scope>/<name>` per distinct hierarchy, memory first.
    dirs: Vec<PathBuf>,
    memory_limit: PathBuf,
    memsw_limit: Option<PathBuf>,
    memory_usage: PathBuf,
    memory_max_usage: PathBuf,
    oom_control: PathBuf,
    cpu_period: PathBuf,
    cpu_quota: PathBuf,
    cpuacct_usage: PathBuf,
    pids_max: PathBuf,
    pids_current: PathBuf,
    freezer_dir: PathBuf,
    freezer_state: PathBuf,
    freezer_procs: PathBuf,
    timeout: Duration,
}

impl V1Cgroup {
    pub(super) fn new(
        name: &str,
        mounts: &V1Mounts,
        hierarchies: &[PathBuf],
        scope: &str,
        memsw: bool,
        timeout: Duration,
    ) -> Self {
        let dir = |h: &Path| h.join(scope).join(name);
        let memory = dir(&mounts.memory);
        let cpu = dir(&mounts.cpu);
        let cpuacct = dir(&mounts.cpuacct);
        let pids = dir(&mounts.pids);
        let freezer = dir(&mounts.freezer);
        V1Cgroup {
            name: name.to_owned(),
            dirs: hierarchies.iter().map(|h| dir(h)).collect(),
            memory_limit: memory.join("memory.limit_in_bytes"),
            memsw_limit: memsw.then(|| memory.join("memory.memsw.limit_in_bytes")),
            memory_usage: memory.join("memory.usage_in_bytes"),
            memory_max_usage: memory.join("memory.max_usage_in_bytes"),
            oom_control: memory.join("memory.oom_control"),
            cpu_period: cpu.join("cpu.cfs_period_us"),
            cpu_quota: cpu.join("cpu.cfs_quota_us"),
            cpuacct_usage: cpuacct.join("cpuacct.usage"),
            pids_max: pids.join("pids.max"),
            pids_current: pids.join("pids.current"),
            freezer_state: freezer.join("freezer.state"),
            freezer_procs: freezer.join("cgroup.procs"),
            freezer_dir: freezer,
            timeout,
        }
    }

    /// The container's directory in each distinct hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Writes the limits; `fresh` (just created, so nothing is limited yet) skips the `None`s.
    pub(super) fn apply(&self, limits: &Limits, fresh: bool) -> Result<(), CgroupError> {
        if limits.memory_max.is_some() || !fresh {
            self.set_memory(limits.memory_max)?;
        }
        match limits.cpu_quota_us() {
            Some(quota) => {
                fsio::write(&self.cpu_period, &CPU_PERIOD_US.to_string(), false)?;
                fsio::write(&self.cpu_quota, &quota.to_string(), false)?;
            }
            None if !fresh => fsio::write(&self.cpu_quota, "-1", false)?,
            None => {}
        }
        match limits.pids_max {
            Some(n) => fsio::write(&self.pids_max, &n.to_string(), false)?,
            None if !fresh => fsio::write(&self.pids_max, "max", false)?,
            None => {}
        }
        Ok(())
    }

    /// Sets memory and memory+swap to the same value, so swap cannot extend the limit.
    /// The kernel insists memsw >= memory at every moment, so raising writes memsw first
    /// and lowering writes memory first; we try memory first and swap the order on EINVAL.
    fn set_memory(&self, max: Option<u64>) -> Result<(), CgroupError> {
        let value = max.map_or_else(|| "-1".to_owned(), |m| m.to_string());
        let busy = |e: CgroupError| match (e.raw_os_error(), max) {
            (Some(libc::EBUSY), Some(requested)) => CgroupError::MemoryBelowUsage {
                cgroup: self.name.clone(),
                requested,
                current: fsio::read(&self.memory_usage)
                    .ok()
                    .and_then(|t| t.trim().parse().ok()),
            },
            _ => e,
        };
        match (
            fsio::write(&self.memory_limit, &value, false),
            &self.memsw_limit,
        ) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(memsw)) => fsio::write(memsw, &value, false).map_err(busy),
            (Err(e), Some(memsw)) if e.raw_os_error() == Some(libc::EINVAL) => {
                fsio::write(memsw, &value, false).map_err(busy)?;
                fsio::write(&self.memory_limit, &value, false).map_err(busy)
            }
            (Err(e), _) => Err(busy(e)),
        }
    }

    fn procs_of(dir: &Path) -> Result<Vec<i32>, CgroupError> {
        let path = dir.join("cgroup.procs");
        match fsio::read_optional(&path)? {
            Some(text) => stats::parse_pids(&path, &text),
            None => Ok(Vec::new()),
        }
    }

    /// Removes one hierarchy's directory, killing stragglers while the kernel says EBUSY.
    fn remove_dir(&self, dir: &Path) -> Result<(), CgroupError> {
        let mut last_err = None;
        let removed = poll_until(self.timeout, || match fsio::rmdir(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                kill_each(&Self::procs_of(dir)?)?;
                last_err = Some(e);
                Ok(false)
            }
            Err(e) => Err(CgroupError::io("rmdir", dir, e)),
        })?;
        if removed {
            return Ok(());
        }
        let pids = Self::procs_of(dir)?;
        if pids.is_empty()
            && let Some(e) = last_err
        {
            return Err(CgroupError::io("rmdir", dir, e));
        }
        Err(CgroupError::NotEmpty {
            path: dir.to_owned(),
            pids,
            waited: self.timeout,
        })
    }
}

impl Cgroup for V1Cgroup {
    fn name(&self) -> &str {
        &self.name
    }

    fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in &self.dirs {
            fsio::write(&dir.join("cgroup.procs"), &pid, false)?;
        }
        Ok(())
    }

    fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        self.apply(limits, false)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let num = |p: &Path| stats::parse_u64(p, &fsio::read(p)?);
        Ok(Stats {
            memory_current: num(&self.memory_usage)?,
            memory_peak: Some(num(&self.memory_max_usage)?),
            cpu_usage_ns: num(&self.cpuacct_usage)?,
            pids_current: num(&self.pids_current)?,
            oom_kills: stats::keyed_u64(
                &self.oom_control,
                &fsio::read(&self.oom_control)?,
                "oom_kill",
            )?,
        })
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        fsio::write(&self.freezer_state, "FROZEN", false)?;
        let frozen = poll_until(self.timeout, || {
            Ok(fsio::read(&self.freezer_state)?.trim() == "FROZEN")
        })?;
        if frozen {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: self.freezer_dir.clone(),
                waited: self.timeout,
            })
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        fsio::write(&self.freezer_state, "THAWED", false)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        stats::parse_pids(&self.freezer_procs, &fsio::read(&self.freezer_procs)?)
    }

    /// v1 has no cgroup.kill: freeze so nothing can fork, SIGKILL each process, thaw so
    /// the signals are delivered.
    fn kill_all(&self) -> Result<(), CgroupError> {
        if !self.freezer_dir.exists() {
            return Ok(());
        }
        match self.freeze() {
            Ok(()) => {}
            // Kill anyway; destroy's retries catch whatever forked meanwhile.
            Err(e @ CgroupError::FreezeTimeout { .. }) => {
                tracing::warn!(cgroup = %self.name, error = %e, "killing without a complete freeze");
            }
            Err(e) => return Err(e),
        }
        let killed = self.pids().and_then(|pids| kill_each(&pids));
        let thawed = self.thaw();
        killed.and(thawed)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        self.kill_all()?;
        let mut first_err = None;
        for dir in &self.dirs {
            if let Err(e) = self.remove_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
