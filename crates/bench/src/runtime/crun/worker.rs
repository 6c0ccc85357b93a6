//! A thread in its own private mount namespace, where crun sees plain cgroup v1.
//!
//! crun 1.8 refuses this machine's hybrid layout (v1 controllers plus cgroup2 at
//! /sys/fs/cgroup/unified). The worker thread unshares its mount namespace once (only that
//! thread's: `CLONE_NEWNS` implies `CLONE_FS`, not a process-wide change), makes every mount
//! private and detaches the cgroup2 mount. Jobs sent to it run on that thread, so processes
//! they spawn start in that namespace without an extra `unshare`/`nsenter` process.

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context;

type Job = Box<dyn FnOnce() + Send>;

/// A thread living in its own private mount namespace (without the cgroup2 mount), running
/// jobs sent to it; processes it spawns inherit that namespace.
pub struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn new() -> anyhow::Result<Worker> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hako-bench-crun".into())
            .spawn(move || {
                let entered = enter_private_mount_ns();
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for job in rx {
                        job();
                    }
                }
            })
            .context("spawn the crun worker thread")?;
        ready_rx
            .recv()
            .context("the crun worker thread died")?
            .context("cannot make a private mount namespace for crun")?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the worker thread and returns its result.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .expect("worker running")
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("crun worker thread alive");
        rx.recv().expect("crun job finished")
    }

    /// Ends the thread (and with it the mount namespace, once crun processes are gone).
    pub fn stop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread into a new mount namespace where crun sees plain cgroup v1.
#[allow(unsafe_code)] // The crate's one unsafe call; see the SAFETY comment.
fn enter_private_mount_ns() -> anyhow::Result<()> {
    use rustix::mount::{MountPropagationFlags, UnmountFlags, mount_change, unmount};
    use rustix::thread::{UnshareFlags, unshare_unsafe};
    // SAFETY: only CLONE_NEWNS (implying CLONE_FS for this thread); the file descriptor
    // table stays shared, so no thread can lose sight of a descriptor.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS) }.context("unshare(CLONE_NEWNS)")?;
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .context("make mounts private")?;
    let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo")?;
    if mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup/unified"))
    {
        unmount("/sys/fs/cgroup/unified", UnmountFlags::DETACH)
            .context("unmount /sys/fs/cgroup/unified")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn worker_runs_jobs_in_its_own_mount_namespace() {
        assert!(rustix::process::geteuid().is_root(), "run as root");
        let mut w = Worker::new().unwrap();
        let here = std::fs::read_link("/proc/thread-self/ns/mnt").unwrap();
        let there = w.run(|| std::fs::read_link("/proc/thread-self/ns/mnt").unwrap());
        assert_ne!(here, there);
        let unified = w.run(|| {
            std::fs::read_to_string("/proc/thread-self/mountinfo")
                .unwrap()
                .contains(" /sys/fs/cgroup/unified ")
        });
        assert!(!unified);
        w.stop();
        // The host still has its mounts.
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            host.contains(" /sys/fs/cgroup/unified "),
            Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
        );
    }
}
