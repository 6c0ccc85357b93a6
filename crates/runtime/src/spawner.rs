//! The one thread that clones containers.
//!
//! A container's init dies with its runtime through `PR_SET_PDEATHSIG`, and Linux sends that
//! signal when the *thread* that created the child exits, not the process. Worker threads
//! come and go (tokio retires idle blocking threads after seconds), so every clone happens on
//! this dedicated thread, which lives exactly as long as the [`crate::Runtime`].

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::mpsc;

use crate::child::{self, ChildPlan};
use crate::sys::{self, Forked};

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
                for job in rx {
                    // SAFETY: see `Job`; the child runs only `child::run`, which never returns.
                    let result = match unsafe { sys::clone3(job.flags, job.cgroup_fd) } {
                        Ok(Forked::Child) => unsafe { child::run(&*job.plan) },
                        Ok(Forked::Parent { pid, pidfd }) => Ok((pid, pidfd)),
                        Err(e) => Err(e),
                    };
                    let _ = job.reply.send(result);
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
