//! The one thread that clones containers.
//!
//! A container's init dies with its runtime through `PR_SET_PDEATHSIG`, and Linux sends that
//! signal when the *thread* that created the child exits, not the process. Worker threads
//! come and go (tokio retires idle blocking threads after seconds), so every clone happens on
//! this dedicated thread, which lives exactly as long as the [`crate::Runtime`].
//!
//! The thread also makes the *next* container's ipc, uts and network namespaces ahead of time
//! (`unshare` on itself, ~0.6 ms, mostly the network namespace), right after each clone: the
//! clone then only makes the mount and pid namespaces, and the child inherits the rest.
//! A host-network container leaves the pre-made network namespace for the host's
//! (`setns` in the child).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::mpsc;

use crate::child::{self, ChildPlan};
use crate::sys::{self, Forked};

/// Namespaces made ahead of time on the spawner thread. Not the pid namespace: once a
/// thread's namespace for children differs from its own, the kernel refuses to make another
/// (and the clone would fail), so the clone makes that one (it is cheap).
const ARMED: u64 = (libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u64;

/// Gives the spawner thread fresh namespaces for its next child; false if the kernel refuses.
fn arm() -> bool {
    // SAFETY: unshare on the calling thread only; this thread runs nothing else that depends
    // on its namespaces.
    unsafe { libc::unshare(ARMED as i32) == 0 }
}

struct Job {
    plan: *const ChildPlan,
    flags: u64,
    cgroup_fd: Option<RawFd>,
    reply: mpsc::SyncSender<io::Result<(i32, OwnedFd)>>,
}

// SAFETY: the plan pointer is only dereferenced while the caller of `clone` blocks on the
// reply, so the plan outlives every use; ChildPlan itself is Sync.
unsafe impl Send for Job {}

/// Handle to the cloning thread; dropping it ends the thread (and, through PDEATHSIG, every
/// container it made that is still running).
pub(crate) struct Spawner {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

impl Spawner {
    pub(crate) fn start() -> io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("hako-spawner".into())
            .spawn(move || {
                let mut armed = arm();
                if !armed {
                    tracing::debug!("cannot make namespaces ahead of time; each clone makes them");
                }
                for job in rx {
                    let flags = if armed { job.flags & !ARMED } else { job.flags };
                    // SAFETY: see `Job`; the child runs only `child::run`, which never returns.
                    let result = match unsafe { sys::clone3(flags, job.cgroup_fd) } {
                        // SAFETY: we are the child of that clone, once, with the plan the
                        // parent built before it (`child::run`'s contract).
                        Ok(Forked::Child) => unsafe { child::run(&*job.plan) },
                        Ok(Forked::Parent { pid, pidfd }) => Ok((pid, pidfd)),
                        Err(e) => Err(e),
                    };
                    let _ = job.reply.send(result);
                    // The child took these namespaces: make fresh ones for the next.
                    armed = arm();
                }
            })?;
        Ok(Spawner {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Clones a child running `plan` in new namespaces (`flags`), on the spawner thread.
    pub(crate) fn clone(
        &self,
        plan: &ChildPlan,
        flags: u64,
        cgroup_fd: Option<RawFd>,
    ) -> io::Result<(i32, OwnedFd)> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            plan,
            flags,
            cgroup_fd,
            reply,
        };
        {
            let jobs = self.jobs.lock().expect("spawner lock");
            let tx = jobs
                .as_ref()
                .ok_or_else(|| io::Error::other("the runtime is shut down"))?;
            tx.send(job)
                .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        }
        answer
            .recv()
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }

    /// Ends the thread.
    pub(crate) fn stop(&self) {
        self.jobs.lock().expect("spawner lock").take();
        if let Some(t) = self.thread.lock().expect("spawner lock").take() {
            let _ = t.join();
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.stop();
    }
}
