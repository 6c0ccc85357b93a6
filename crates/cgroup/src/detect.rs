//! Choosing cgroup v1 or v2 from what /proc/self/mountinfo says is mounted.

use std::path::PathBuf;

use crate::error::CgroupError;
use crate::fsio;
use crate::manager::CgroupManager;
use crate::mountinfo::{self, CgroupMount};
use crate::v1::{V1Manager, V1Mounts};
use crate::v2::V2Manager;

/// The cgroup layout hako will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The memory controller is on a v1 hierarchy (pure v1, or "hybrid" with an empty cgroup2).
    V1(V1Mounts),
    /// No v1 memory hierarchy; the unified hierarchy is mounted here.
    V2 {
        /// The cgroup2 mount point, e.g. /sys/fs/cgroup.
        root: PathBuf,
    },
}

/// Decides the layout from a mountinfo text. The memory controller decides: where it is
/// mounted as v1, v1 is used, whatever cgroup2 mount sits beside it.
pub fn layout(mountinfo_text: &str) -> Result<Layout, CgroupError> {
    let mounts = mountinfo::parse(mountinfo_text)?;
    let v1_memory = mounts.iter().any(|m| {
        matches!(m, CgroupMount::V1 { controllers, .. } if controllers.iter().any(|c| c == "memory"))
    });
    if v1_memory {
        return Ok(Layout::V1(V1Mounts::from_mounts(&mounts)?));
    }
    // Prefer the conventional mount point when cgroup2 is mounted more than once.
    let v2_roots: Vec<&PathBuf> = mounts
        .iter()
        .filter_map(|m| match m {
            CgroupMount::V2 { mount_point } => Some(mount_point),
            CgroupMount::V1 { .. } => None,
        })
        .collect();
    let root = v2_roots
        .iter()
        .find(|p| p.as_os_str() == "/sys/fs/cgroup")
        .or(v2_roots.first())
        .ok_or_else(|| {
            CgroupError::NoCgroupFs("neither a v1 memory hierarchy nor cgroup2".into())
        })?;
    Ok(Layout::V2 {
        root: (*root).clone(),
    })
}

/// Reads /proc/self/mountinfo and returns the manager for this host, with containers under
/// `scope`. Creates nothing; the scope directory is made by the first `create`.
pub fn detect(scope: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let path = std::path::Path::new("/proc/self/mountinfo");
    match layout(&fsio::read(path)?)? {
        Layout::V1(mounts) => Ok(Box::new(V1Manager::with_mounts(mounts, scope)?)),
        Layout::V2 { root } => {
            let controllers_file = root.join("cgroup.controllers");
            let controllers = fsio::read(&controllers_file)?;
            if !controllers.split_ascii_whitespace().any(|c| c == "memory") {
                return Err(CgroupError::ControllerUnavailable {
                    controller: "memory",
                    path: controllers_file,
                });
            }
            Ok(Box::new(V2Manager::at(root, scope)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const CO_MOUNTED: &str = "\
26 25 0:24 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
30 26 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:13 - cgroup cgroup rw,cpu,cpuacct
31 26 0:29 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,memory
32 26 0:30 / /sys/fs/cgroup/pids rw shared:15 - cgroup cgroup rw,pids
33 26 0:31 / /sys/fs/cgroup/freezer rw shared:16 - cgroup cgroup rw,freezer
34 26 0:32 / /sys/fs/cgroup/net_cls,net_prio rw shared:17 - cgroup cgroup rw,net_cls,net_prio
";

    #[test]
    fn hybrid_chooses_v1_with_separate_hierarchies() {
        let Layout::V1(m) = layout(HYBRID).unwrap() else {
            panic!("hybrid must choose v1")
        };
        assert_eq!(m.memory, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m.cpu, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m.cpuacct, PathBuf::from("/sys/fs/cgroup/cpuacct"));
        assert_eq!(m.pids, PathBuf::from("/sys/fs/cgroup/pids"));
        assert_eq!(m.freezer, PathBuf::from("/sys/fs/cgroup/freezer"));
    }

    #[test]
    fn pure_v2_chooses_v2() {
        assert_eq!(
            layout(PURE_V2).unwrap(),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn co_mounted_cpu_cpuacct_chooses_v1() {
        let Layout::V1(m) = layout(CO_MOUNTED).unwrap() else {
            panic!("v1 memory must choose v1")
        };
        assert_eq!(m.cpu, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m.cpuacct, m.cpu);
    }

    #[test]
    fn nothing_mounted_is_a_clear_error() {
        let e = layout("25 30 0:23 / /sys rw - sysfs sysfs rw\n").unwrap_err();
        assert!(matches!(e, CgroupError::NoCgroupFs(_)), "{e}");
        assert!(e.to_string().contains("mount cgroup2 at /sys/fs/cgroup"));
    }

    #[test]
    fn this_host_is_detected() {
        // Whatever this machine mounts, detection must succeed and agree with `layout`.
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let expected = layout(&text).unwrap();
        let m = detect("hako-detect-test").unwrap();
        assert_eq!(m.scope(), "hako-detect-test");
        let v = match expected {
            Layout::V1(_) => crate::Version::V1,
            Layout::V2 { .. } => crate::Version::V2,
        };
        assert_eq!(m.version(), v);
    }
}
