//! One container's lifecycle: start (release from parked), wait, stop, stats, live limits,
//! freeze/thaw, and removal that always cleans up.
//!
//! Removal kills what is left, reaps the container's init, removes its cgroup, its veth and
//! its state directory. Its mounts live only in its own mount namespace and vanish with its
//! last process. A `Container` dropped without [`Container::remove`] is removed by `Drop`.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hako_cgroup::{Cgroup, Limits, Stats};
use tokio::io::unix::AsyncFd;

use crate::child::ChildPlan;
use crate::child::channel::ParentChannel;
use crate::error::RuntimeError;
use crate::network::{Attachment, Network};
use crate::runtime::Runtime;
use crate::spec::LogSpec;
use crate::sys::{self, ExitStatus};

/// How long the steps of making this container took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// From `create` to the clone returning in the parent.
    pub clone: Duration,
    /// From `create` to the container parked, ready to exec.
    pub prepare: Duration,
    /// From `start` to exec done (the app's own code starts running).
    pub release: Option<Duration>,
}

/// The parent's ends of a parked container.
struct Parked {
    chan: ParentChannel,
    plan: ChildPlan,
}

/// A container made by [`Runtime::create`].
pub struct Container {
    /// Keeps the runtime (and its spawner thread, whose end would kill this container
    /// through PDEATHSIG) alive as long as the container exists.
    _runtime: Arc<Runtime>,
    id: String,
    pid: i32,
    pidfd: OwnedFd,
    cgroup: Arc<dyn Cgroup>,
    net: Option<(Arc<Network>, Attachment)>,
    dir: PathBuf,
    parked: Mutex<Option<Parked>>,
    log: LogSpec,
    log_done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    exit: Mutex<Option<ExitStatus>>,
    removed: AtomicBool,
    timings: Mutex<Timings>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("addr", &self.address())
            .finish()
    }
}

impl Container {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        id: String,
        pid: i32,
        pidfd: OwnedFd,
        cgroup: Arc<dyn Cgroup>,
        net: Option<(Arc<Network>, Attachment)>,
        dir: PathBuf,
        chan: ParentChannel,
        plan: ChildPlan,
        log: LogSpec,
        log_done: Option<tokio::sync::oneshot::Receiver<()>>,
        timings: Timings,
    ) -> Container {
        Container {
            _runtime: runtime,
            id,
            pid,
            pidfd,
            cgroup,
            net,
            dir,
            parked: Mutex::new(Some(Parked { chan, plan })),
            log,
            log_done: Mutex::new(log_done),
            exit: Mutex::new(None),
            removed: AtomicBool::new(false),
            timings: Mutex::new(timings),
        }
    }

    /// A container CRIU restored: running, never parked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restored(
        runtime: Arc<Runtime>,
        id: String,
        pid: i32,
        pidfd: OwnedFd,
        cgroup: Arc<dyn Cgroup>,
        net: Option<(Arc<Network>, Attachment)>,
        dir: PathBuf,
        log: LogSpec,
        log_done: Option<tokio::sync::oneshot::Receiver<()>>,
        timings: Timings,
    ) -> Container {
        Container {
            _runtime: runtime,
            id,
            pid,
            pidfd,
            cgroup,
            net,
            dir,
            parked: Mutex::new(None),
            log,
            log_done: Mutex::new(log_done),
            exit: Mutex::new(None),
            removed: AtomicBool::new(false),
            timings: Mutex::new(timings),
        }
    }

    /// The container's id, unique within its runtime (also its cgroup's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pid of the container's init, as seen from the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its address on the bridge (isolated network only).
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.net.as_ref().map(|(_, a)| a.addr)
    }

    /// The host-side veth name (isolated network only).
    pub fn veth(&self) -> Option<&str> {
        self.net.as_ref().map(|(_, a)| a.veth.as_str())
    }

    /// The log file, when output goes to one.
    pub fn log_path(&self) -> Option<&Path> {
        match &self.log {
            LogSpec::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The last `max` bytes of the log.
    pub fn log_tail(&self, max: usize) -> String {
        self.log_path()
            .map(|p| crate::log::tail(p, max))
            .unwrap_or_default()
    }

    /// Waits until everything the container wrote is in its log file (its processes are
    /// gone and the copy has caught up). Returns at once when output does not go to a file.
    pub async fn logs_flushed(&self) {
        let rx = self.log_done.lock().expect("log lock").take();
        if let Some(rx) = rx {
            let _ = rx.await;
        }
    }

    pub fn timings(&self) -> Timings {
        *self.timings.lock().expect("timings lock")
    }

    /// True while prepared and waiting for [`Container::start`].
    pub fn is_parked(&self) -> bool {
        self.parked.lock().expect("parked lock").is_some()
    }

    /// Releases a parked container: it execs its command now. Returns once exec succeeded
    /// (or with the reason it failed).
    pub fn start(&self) -> Result<(), RuntimeError> {
        let t0 = Instant::now();
        let parked = self
            .parked
            .lock()
            .expect("parked lock")
            .take()
            .ok_or_else(|| RuntimeError::NotParked(self.id.clone()))?;
        let failure = parked.chan.release(&parked.plan, &self.log)?;
        self.timings.lock().expect("timings lock").release = Some(t0.elapsed());
        match failure {
            None => Ok(()),
            Some(e) => {
                // The child exits right after reporting; reap it so its status is known.
                let _ = self.reap(true);
                Err(e)
            }
        }
    }

    /// Collects the exit status if the container's init has exited.
    fn reap(&self, block: bool) -> Result<Option<ExitStatus>, RuntimeError> {
        let mut exit = self.exit.lock().expect("exit lock");
        if exit.is_some() {
            return Ok(*exit);
        }
        match sys::waitid_pidfd(&self.pidfd, block) {
            Ok(Some(s)) => {
                *exit = Some(s);
                Ok(Some(s))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(RuntimeError::Sys {
                what: "waitid",
                source: e,
            }),
        }
    }

    /// The exit status, if the container has exited.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, RuntimeError> {
        self.reap(false)
    }

    /// Blocks until the container's init exits.
    pub fn wait_blocking(&self) -> Result<ExitStatus, RuntimeError> {
        Ok(self.reap(true)?.expect("blocking wait returns a status"))
    }

    /// Waits (asynchronously) until the container's init exits. When init exits the kernel
    /// kills everything else in its pid namespace.
    pub async fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        if let Some(s) = self.reap(false)? {
            return Ok(s);
        }
        let fd = self
            .pidfd
            .try_clone()
            .map_err(RuntimeError::sys("dup pidfd"))?;
        // SAFETY: `fd` is an owned duplicate of our pidfd, kept open for as long as the AsyncFd
        // lives and never closed behind its back.
        let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| RuntimeError::sys("watch pidfd")(e.into()))?;
        loop {
            let mut guard = afd
                .readable()
                .await
                .map_err(RuntimeError::sys("watch pidfd"))?;
            if let Some(s) = self.reap(false)? {
                return Ok(s);
            }
            guard.clear_ready();
        }
    }

    /// Sends a signal to the container's init.
    pub fn signal(&self, sig: i32) -> Result<(), RuntimeError> {
        sys::pidfd_send_signal(&self.pidfd, sig).map_err(RuntimeError::sys("signal"))
    }

    /// Kills every process of the container at once.
    pub fn kill(&self) -> Result<(), RuntimeError> {
        self.cgroup.kill_all()?;
        self.signal(libc::SIGKILL)
    }

    /// Graceful stop: SIGTERM to init, up to `grace` to exit, then SIGKILL to every process
    /// in the container's cgroup. Returns the exit status.
    pub async fn stop(&self, grace: Duration) -> Result<ExitStatus, RuntimeError> {
        self.stop_with(libc::SIGTERM, grace).await
    }

    /// Like [`Container::stop`] with another stop signal (e.g. SIGINT for `php -S`).
    pub async fn stop_with(&self, sig: i32, grace: Duration) -> Result<ExitStatus, RuntimeError> {
        if self.is_parked() {
            self.kill()?;
            return self.wait().await;
        }
        // As pid 1 of its namespace, an app that neither handles nor ignores the signal never
        // sees it (the kernel drops it); outside a container the default action would end it
        // at once. Do exactly that instead of waiting out the grace period for nothing.
        if !self.handles(sig) {
            self.kill()?;
            return self.wait().await;
        }
        self.signal(sig)?;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(r) => r,
            Err(_) => {
                self.kill()?;
                self.wait().await
            }
        }
    }

    /// Whether the container's init catches or deliberately ignores `sig` (from
    /// /proc/<pid>/status SigCgt and SigIgn). If it does neither, the signal's default action
    /// applies, which the kernel withholds from a pid namespace's init.
    fn handles(&self, sig: i32) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return true; // unknown: be graceful
        };
        let mask = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        };
        match (mask("SigCgt:"), mask("SigIgn:")) {
            (Some(cgt), Some(ign)) => (cgt | ign) & (1u64 << (sig - 1)) != 0,
            _ => true,
        }
    }

    /// Memory, CPU time and process count.
    pub fn stats(&self) -> Result<Stats, RuntimeError> {
        Ok(self.cgroup.stats()?)
    }

    /// Changes limits on the running container.
    pub fn update_limits(&self, limits: &Limits) -> Result<(), RuntimeError> {
        limits.validate().map_err(crate::spec::SpecError::from)?;
        Ok(self.cgroup.set_limits(limits)?)
    }

    /// Pids of every process in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>, RuntimeError> {
        Ok(self.cgroup.pids()?)
    }

    pub fn freeze(&self) -> Result<(), RuntimeError> {
        Ok(self.cgroup.freeze()?)
    }

    pub fn thaw(&self) -> Result<(), RuntimeError> {
        Ok(self.cgroup.thaw()?)
    }

    /// Kills what is left and removes everything the container had on the host.
    /// Blocking (usually well under a millisecond after the container exited).
    pub fn remove(self) -> Result<(), RuntimeError> {
        self.cleanup()
    }

    /// Like [`Container::remove`] for a container shared behind an `Arc`: the first call
    /// removes everything, later calls do nothing.
    pub fn cleanup(&self) -> Result<(), RuntimeError> {
        if self.removed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Close the parked pipes first so a parked child sees EOF and exits.
        self.parked.lock().expect("parked lock").take();
        if self.reap(false)?.is_none() {
            let _ = self.cgroup.thaw();
            let _ = self.kill();
            self.reap(true)?;
        }
        let cg = self.cgroup.destroy();
        if let Some((net, att)) = &self.net {
            net.release(att);
        }
        let dir = std::fs::remove_dir_all(&self.dir);
        cg?;
        match dir {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::Io {
                what: "remove".into(),
                path: self.dir.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(container = %self.id, error = %e, "cleanup of a dropped container failed");
        }
    }
}
