//! Named network namespaces (`ip netns`), the "hosts" of a test bed: run code on a thread
//! inside one, or start a program in one as if it ran on that host.
//!
//! A program started with [`Netns::host_command`] gets the namespace's network and a mount
//! namespace of its own in which `/sys` is the namespace's (so `/sys/class/net` lists its
//! links) with the host's cgroup hierarchies still mounted under `/sys/fs/cgroup` (`ip netns
//! exec` loses them, and hako's runtime needs them), and `/run/hako` is a directory of that
//! host alone, as on a machine of its own. The program keeps the pid it was started with (the
//! wrappers `exec` it).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::{Result, TestbedError};

/// What [`Netns::host_command`] runs before the program: `$1` is an empty directory that
/// briefly holds the cgroup mounts, `$2` the host's own `/run/hako`.
const HOST_SCRIPT: &str = r#"set -e
cg=$1; run=$2; shift 2
mount --rbind /sys/fs/cgroup "$cg"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$cg" /sys/fs/cgroup
mkdir -p /run/hako
mount --bind "$run" /run/hako
exec "$@""#;

/// A named network namespace (`/run/netns/<name>`). Dropping it removes nothing: its owner
/// ([`crate::Lan`]) deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (fails if it exists) with its loopback up.
    pub fn create(name: &str) -> Result<Netns> {
        cmd::ip(&["netns", "add", name])?;
        let ns = Netns::named(name);
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The existing namespace `name` (nothing is checked).
    pub fn named(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
        }
    }

    /// Every named namespace whose name starts with `prefix`.
    pub fn list(prefix: &str) -> Vec<Netns> {
        let mut out: Vec<Netns> = std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .map(|n| Netns::named(&n))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// `ip -n <name> ARGS…`; its output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        cmd::ip(&all)
    }

    /// Moves the calling thread into this namespace (for good): what it opens from then on —
    /// sockets, netlink, `/proc/sys/net` — and the threads and processes it starts are this
    /// namespace's.
    pub fn enter(&self) -> Result<()> {
        let f = std::fs::File::open(self.path()).map_err(TestbedError::io(format!(
            "cannot open {}",
            self.path().display()
        )))?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| TestbedError::Io {
            what: format!("cannot enter network namespace {}", self.name),
            source: e.into(),
        })
    }

    /// Runs `f` on a thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Sets a sysctl under `/proc/sys/net` of this namespace, e.g. `ipv4/ip_forward`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys/net").join(key);
        self.run(|| std::fs::write(&path, value))?
            .map_err(TestbedError::io(format!(
                "cannot set {} in {}",
                path.display(),
                self.name
            )))
    }

    /// A command that runs `program` in this namespace only (its network; the caller's mounts
    /// and `/sys`), like `ip netns exec` without the remount.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// A command that runs `program` as if on its own host (see the module's doc). `scratch`
    /// is an empty directory of that host's (it holds the cgroup mounts for a moment), and
    /// `run_dir` becomes its `/run/hako`.
    pub fn host_command(&self, program: &str, scratch: &Path, run_dir: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .args(["--", "unshare", "--mount", "--propagation", "slave", "--"])
            .args(["sh", "-c", HOST_SCRIPT, "sh"])
            .arg(scratch)
            .arg(run_dir)
            .arg(program);
        c
    }

    /// Pids of the processes in this namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        cmd::ip(&["netns", "pids", &self.name])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Deletes the namespace (its links go with it); one that is gone is not an error.
    pub fn delete(&self) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        cmd::ip(&["netns", "del", &self.name]).map(drop)
    }
}
