//! The thread every CRIU run starts from, each in a mount namespace of its own.
//!
//! Three reasons for one dedicated thread:
//! - A restored container's init is a child of the thread that forked CRIU
//!   (`--restore-sibling`), and it keeps the `PR_SET_PDEATHSIG` it had when dumped: it dies
//!   when that *thread* ends. This thread lives as long as the [`crate::Runtime`], exactly
//!   like the spawner thread that clones ordinary containers.
//! - A restore mounts a scratch tmpfs and an overlay root for the new container before CRIU
//!   runs. The thread makes those in a private mount namespace (`unshare(CLONE_NEWNS)` on
//!   itself, then back to the host's with `setns` when the job is done), so the host never
//!   sees them, not even when hako dies half-way.
//! - CRIU keeps what it learns about the kernel in `/run/criu.kdat` (about 20 ms saved per
//!   run), but only on a tmpfs, and a dump as the app's own user (see `dump.rs`) cannot
//!   work it out at all. In the private namespace that file is a bind of a tmpfs file made
//!   once per boot by `criu check` ([`Worker::kdat_ready`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The CRIU thread.
pub(crate) struct Worker {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CriuWorker")
    }
}

/// Where the kernel-facts cache lives on the host: a tmpfs (gone at reboot, as the cache
/// must be), root-only.
pub(crate) fn kdat_dir() -> PathBuf {
    PathBuf::from(format!("/dev/shm/hako-criu-{}", hako_criu::VERSION))
}

impl Worker {
    pub(crate) fn start() -> std::io::Result<Worker> {
        let host_mnt = File::open("/proc/self/ns/mnt")?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("hako-criu".into())
            .spawn(move || {
                for job in rx {
                    job();
                    // Back to the host's mount namespace: the job's private one (with its
                    // scratch and overlay mounts) goes away with its last user.
                    // SAFETY: setns on this thread with a namespace fd we own; this thread
                    // has its own fs_struct since its first unshare(CLONE_NEWNS).
                    if unsafe { libc::setns(host_mnt.as_raw_fd(), libc::CLONE_NEWNS) } == -1 {
                        tracing::error!(error = %std::io::Error::last_os_error(),
                            "the CRIU thread cannot return to the host's mount namespace");
                    }
                }
            })?;
        Ok(Worker {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` on the CRIU thread inside a fresh private copy of the host's mount namespace
    /// (with `/run/criu.kdat` bound to the cache when `kdat` says so) and returns its result.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        kdat: Kdat,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let r = enter_private_namespace(kdat).map(|()| f());
            let _ = reply.send(r);
        });
        {
            let jobs = self.jobs.lock().expect("criu worker lock");
            let tx = jobs
                .as_ref()
                .ok_or_else(|| std::io::Error::other("the runtime is shut down"))?;
            tx.send(job)
                .map_err(|_| std::io::Error::other("the CRIU thread is gone"))?;
        }
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the CRIU thread is gone"))?
    }

    fn stop(&self) {
        self.jobs.lock().expect("criu worker lock").take();
        if let Some(t) = self.thread.lock().expect("criu worker lock").take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a job sees CRIU's kernel-facts cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kdat {
    /// Not at all (CRIU works it out itself).
    None,
    /// All of `/run` is the cache directory: CRIU writes the cache there (`criu check`).
    Make,
    /// `/run/criu.kdat` is the cache file, read-only use.
    Use,
}

fn enter_private_namespace(kdat: Kdat) -> std::io::Result<()> {
    let err = std::io::Error::last_os_error;
    // SAFETY: unshare and mount on this thread with valid, NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) == -1 {
            return Err(err());
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == -1
        {
            return Err(err());
        }
    }
    let dir = kdat_dir();
    match kdat {
        Kdat::None => Ok(()),
        Kdat::Make => {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            bind(&dir, Path::new("/run"))
        }
        Kdat::Use => {
            // The mount point must exist as a file in the host's /run; CRIU itself would put
            // its cache at this very path where /run is a tmpfs.
            let target = Path::new("/run/criu.kdat");
            if !target.exists() {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(target)?;
            }
            bind(&dir.join("criu.kdat"), target)
        }
    }
}

fn bind(source: &Path, target: &Path) -> std::io::Result<()> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("NUL in a path"))
    };
    let (s, t) = (c(source)?, c(target)?);
    // SAFETY: a bind mount between two valid paths, in this thread's private namespace.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Worker {
    /// Whether the kernel-facts cache exists (made by [`Kdat::Make`] with `criu check`).
    pub(crate) fn kdat_ready() -> bool {
        std::fs::metadata(kdat_dir().join("criu.kdat")).is_ok_and(|m| m.len() > 0)
    }
}
