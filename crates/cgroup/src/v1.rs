//! cgroup v1: one directory per container in each of the memory, cpu, cpuacct, pids and
//! freezer hierarchies (co-mounted hierarchies such as `cpu,cpuacct` share one directory).

mod cgroup;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use cgroup::V1Cgroup;

use crate::error::CgroupError;
use crate::fsio;
use crate::limits::Limits;
use crate::manager::{Cgroup, CgroupManager, DEFAULT_TIMEOUT, Version, check_name};
use crate::mountinfo::CgroupMount;

/// Where each v1 controller hako uses is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mounts {
    /// The memory hierarchy, e.g. /sys/fs/cgroup/memory.
    pub memory: PathBuf,
    /// The cpu hierarchy (often the same directory as cpuacct).
    pub cpu: PathBuf,
    /// The cpuacct hierarchy.
    pub cpuacct: PathBuf,
    /// The pids hierarchy.
    pub pids: PathBuf,
    /// The freezer hierarchy.
    pub freezer: PathBuf,
}

impl V1Mounts {
    /// Finds the five controllers among parsed mounts; the first mount of each wins.
    pub fn from_mounts(mounts: &[CgroupMount]) -> Result<Self, CgroupError> {
        let find = |controller: &'static str| {
            mounts
                .iter()
                .find_map(|m| match m {
                    CgroupMount::V1 {
                        mount_point,
                        controllers,
                    } if controllers.iter().any(|c| c == controller) => Some(mount_point.clone()),
                    _ => None,
                })
                .ok_or(CgroupError::ControllerNotMounted(controller))
        };
        Ok(V1Mounts {
            memory: find("memory")?,
            cpu: find("cpu")?,
            cpuacct: find("cpuacct")?,
            pids: find("pids")?,
            freezer: find("freezer")?,
        })
    }

    /// The distinct hierarchy mount points, memory first.
    fn hierarchies(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::with_capacity(5);
        for p in [
            &self.memory,
            &self.cpu,
            &self.cpuacct,
            &self.pids,
            &self.freezer,
        ] {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// The cgroup v1 manager: containers at `<hierarchy>/<scope>/<name>`.
#[derive(Debug)]
pub struct V1Manager {
    mounts: V1Mounts,
    hierarchies: Vec<PathBuf>,
    scope: String,
    /// Whether memory.memsw.* exist (swap accounting), so swap is limited too.
    memsw: bool,
    timeout: Duration,
    scope_ready: AtomicBool,
}

impl V1Manager {
    /// A manager for the given mounts and scope name. Touches nothing until `create`.
    pub fn with_mounts(mounts: V1Mounts, scope: &str) -> Result<Self, CgroupError> {
        check_name(scope)?;
        let memsw = mounts.memory.join("memory.memsw.limit_in_bytes").exists();
        Ok(V1Manager {
            hierarchies: mounts.hierarchies(),
            mounts,
            scope: scope.to_owned(),
            memsw,
            timeout: DEFAULT_TIMEOUT,
            scope_ready: AtomicBool::new(false),
        })
    }

    /// Sets how long freeze and destroy wait for the kernel.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The scope directory in each hierarchy.
    pub fn scope_dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.join(&self.scope))
            .collect()
    }

    fn ensure_scope(&self) -> Result<(), CgroupError> {
        for dir in self.scope_dirs() {
            fsio::mkdir(&dir)?;
        }
        self.scope_ready.store(true, Ordering::Release);
        Ok(())
    }

    fn cgroup(&self, name: &str) -> V1Cgroup {
        V1Cgroup::new(
            name,
            &self.mounts,
            &self.hierarchies,
            &self.scope,
            self.memsw,
            self.timeout,
        )
    }

    /// mkdir in every hierarchy; undoes its own mkdirs when one fails.
    fn make_dirs(&self, dirs: &[PathBuf]) -> Result<(), CgroupError> {
        let mut made: Vec<&Path> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let result = match fsio::mkdir(dir) {
                Ok(true) => {
                    made.push(dir);
                    continue;
                }
                Ok(false) => Err(CgroupError::AlreadyExists(dir.clone())),
                Err(e) => Err(e),
            };
            for d in made {
                let _ = fsio::rmdir(d);
            }
            return result;
        }
        Ok(())
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> Version {
        Version::V1
    }

    fn scope(&self) -> &str {
        &self.scope
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<Box<dyn Cgroup>, CgroupError> {
        check_name(name)?;
        limits.validate()?;
        if !self.scope_ready.load(Ordering::Acquire) {
            self.ensure_scope()?;
        }
        let cg = self.cgroup(name);
        match self.make_dirs(cg.dirs()) {
            // The scope was removed behind our back: make it again, once.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.ensure_scope()?;
                self.make_dirs(cg.dirs())?;
            }
            other => other?,
        }
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
        let cg = self.cgroup(name);
        // A leftover may be partial (a crash between mkdirs): any directory will do.
        if !cg.dirs().iter().any(|d| d.is_dir()) {
            return Err(CgroupError::NotFound(cg.dirs()[0].clone()));
        }
        Ok(Box::new(cg))
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut names = Vec::new();
        for dir in self.scope_dirs() {
            names.extend(fsio::subdirs(&dir)?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn remove_scope(&self) -> Result<(), CgroupError> {
        self.scope_ready.store(false, Ordering::Release);
        for dir in self.scope_dirs() {
            match fsio::rmdir(&dir) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::ScopeNotEmpty {
                        children: fsio::subdirs(&dir)?,
                        path: dir,
                    });
                }
                Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo;

    #[test]
    fn co_mounted_cpu_and_cpuacct_share_one_directory() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/pids rw shared:14 - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/freezer rw shared:15 - cgroup cgroup rw,freezer
";
        let mounts = V1Mounts::from_mounts(&mountinfo::parse(text).unwrap()).unwrap();
        assert_eq!(mounts.cpu, mounts.cpuacct);
        let m = V1Manager::with_mounts(mounts, "hako").unwrap();
        assert_eq!(
            m.scope_dirs(),
            ["memory", "cpu,cpuacct", "pids", "freezer"]
                .map(|h| PathBuf::from(format!("/sys/fs/cgroup/{h}/hako")))
        );
        let cg = m.cgroup("web-1");
        assert_eq!(cg.dirs().len(), 4);
        assert_eq!(
            cg.dirs()[1],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/hako/web-1")
        );
    }

    #[test]
    fn a_missing_controller_is_named() {
        let text = "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let e = V1Mounts::from_mounts(&mountinfo::parse(text).unwrap()).unwrap_err();
        assert!(matches!(e, CgroupError::ControllerNotMounted("cpu")), "{e}");
    }

    #[test]
    fn bad_scope_is_refused() {
        let mounts = V1Mounts {
            memory: "/m".into(),
            cpu: "/c".into(),
            cpuacct: "/a".into(),
            pids: "/p".into(),
            freezer: "/f".into(),
        };
        assert!(V1Manager::with_mounts(mounts, "../etc").is_err());
    }
}
