//! The code that runs in a new container between clone and exec.
//!
//! The parent builds a [`ChildPlan`] (all allocation happens there, [`plan`]); the child, a
//! fork of a multi-threaded process, only reads the plan and makes raw system calls: no
//! allocation, no locks, no panics. It talks to the parent over the [`channel`] (messages in
//! [`message`]): fixed-size reports of progress and failures on a close-on-exec pipe, so the
//! pipe reaching EOF without a failure report means exec succeeded.
//!
//! Order in the child (this file): close inherited descriptors, set up stdio, run the mount
//! operations ([`ops`], ending in pivot_root), set the hostname, wait for the parent's `Go`
//! (cgroup joined, veth in place), configure the network ([`net`]), drop privileges
//! ([`caps`]), set no_new_privs, install the system-call filter ([`seccomp`]), report
//! `Parked`, wait for `Release`, exec.

pub(crate) mod caps;
pub(crate) mod channel;
pub(crate) mod message;
mod net;
mod ops;
pub(crate) mod plan;
pub(crate) mod seccomp;

use std::os::fd::RawFd;

use channel::ChildChannel;
use message::{ParentMessage, Stage};
pub(crate) use plan::{ChildPlan, NetConfig, Op};

/// Runs the plan in the freshly cloned child. Never returns.
///
/// # Safety
/// Must be called only in the child of [`crate::sys::clone3`], once, with a plan built by the
/// parent before the clone.
pub(crate) unsafe fn run(plan: &ChildPlan) -> ! {
    let chan = ChildChannel::of(plan);
    // SAFETY: (for the whole function) only async-signal-safe libc calls on data owned by the
    // plan or on the stack; no allocation, no panicking operations (no indexing that can fail
    // except within fixed bounds we checked).
    unsafe {
        close_inherited(plan);
        // Device nodes and mount points get exactly the modes the plan gives.
        libc::umask(0);
        if let Err(e) = stdio(plan) {
            chan.fail(Stage::Stdio, 0, e);
        }
        // Its own session and process group: otherwise the container shares the runtime's,
        // and an app that signals its group (`kill(0, …)`, as Apache does when it stops)
        // would signal every other container and the runtime itself.
        if libc::setsid() == -1 {
            chan.fail(Stage::Session, 0, errno());
        }
        if plan.host_netns_fd >= 0 && libc::setns(plan.host_netns_fd, libc::CLONE_NEWNET) == -1 {
            chan.fail(Stage::HostNetwork, 0, errno());
        }
        for (i, op) in plan.ops.iter().enumerate() {
            if let Err(e) = ops::run_op(op) {
                chan.fail(Stage::Op, i as u32, e);
            }
        }
        let name = plan.hostname.as_bytes();
        if libc::sethostname(name.as_ptr().cast(), name.len()) == -1 {
            chan.fail(Stage::Hostname, 0, errno());
        }
        // The parent says Go once the cgroup is joined and the veth is in our namespace.
        if !chan.wait_for(ParentMessage::Go) {
            libc::_exit(125);
        }
        if let Err(e) = net::configure(plan) {
            chan.fail(Stage::Network, 0, e);
        }
        let lim = libc::rlimit {
            rlim_cur: plan.nofile,
            rlim_max: plan.nofile,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == -1 {
            chan.fail(Stage::Rlimit, 0, errno());
        }
        if let Err(e) = caps::drop_bounding(plan.keep_caps) {
            chan.fail(Stage::Capabilities, 0, e);
        }
        // Raw syscalls, not glibc's wrappers: those broadcast the change to every thread glibc
        // believes exists (the parent's), and would wait forever for threads this child lacks.
        if libc::syscall(libc::SYS_setgroups, plan.groups.len(), plan.groups.as_ptr()) == -1 {
            chan.fail(Stage::Groups, 0, errno());
        }
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) == -1 {
            chan.fail(Stage::SetGid, 0, errno());
        }
        if libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) == -1 {
            chan.fail(Stage::SetUid, 0, errno());
        }
        if plan.uid == 0
            && let Err(e) = caps::set_caps(plan.keep_caps)
        {
            chan.fail(Stage::Capabilities, 1, e);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 {
            chan.fail(Stage::NoNewPrivs, 0, errno());
        }
        // From here on only calls the filter allows (reporting, waiting, chdir, exec are).
        if let Some(filters) = plan.seccomp.as_deref()
            && let Err(e) = seccomp::install(filters)
        {
            chan.fail(Stage::Seccomp, 0, e);
        }
        // After the credential change (which clears it): die with the runtime. A parent that
        // died before this line is caught by wait_for below seeing EOF.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        chan.report(Stage::Parked, 0, 0);
        if !chan.wait_for(ParentMessage::Release) {
            libc::_exit(125);
        }
        if libc::chdir(plan.workdir.as_ptr()) == -1 {
            chan.fail(Stage::Workdir, 0, errno());
        }
        chan.close_sync();
        libc::umask(0o022);
        let mut last = libc::ENOENT;
        for path in &plan.exec_candidates {
            libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            let e = errno();
            // Keep the most telling error: "permission denied" beats "not found".
            if e != libc::ENOENT || last == libc::ENOENT {
                last = e;
            }
        }
        chan.fail(Stage::Exec, 0, last);
    }
}

/// The calling thread's errno.
///
/// # Safety
/// None beyond being on a thread (kept `unsafe` for symmetry with the raw calls around it).
unsafe fn errno() -> i32 {
    // SAFETY: errno location is valid for the current thread.
    unsafe { *libc::__errno_location() }
}

/// Closes every descriptor inherited from the runtime except the plan's own.
unsafe fn close_inherited(plan: &ChildPlan) {
    let mut keep = [
        plan.sync_fd,
        plan.report_fd,
        plan.stdio[0],
        plan.stdio[1],
        plan.stdio[2],
        plan.host_netns_fd,
        0,
        1,
        2,
    ];
    // Insertion sort: no allocation.
    for i in 1..keep.len() {
        let mut j = i;
        while j > 0 && keep[j - 1] > keep[j] {
            keep.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut next: i64 = 0;
    for &fd in keep.iter() {
        if fd < 0 {
            continue;
        }
        let fd = fd as i64;
        if fd > next {
            // SAFETY: close_range on a range of descriptors this process owns.
            unsafe { libc::syscall(libc::SYS_close_range, next as u32, (fd - 1) as u32, 0u32) };
        }
        if fd + 1 > next {
            next = fd + 1;
        }
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next as u32, u32::MAX, 0u32) };
}

/// Installs the plan's descriptors as 0, 1, 2.
unsafe fn stdio(plan: &ChildPlan) -> Result<(), i32> {
    for (target, &fd) in plan.stdio.iter().enumerate() {
        if fd >= 0 && fd != target as RawFd {
            // SAFETY: dup2 between descriptors we own.
            if unsafe { libc::dup2(fd, target as RawFd) } == -1 {
                // SAFETY: errno read.
                return Err(unsafe { errno() });
            }
        }
    }
    for &fd in plan.stdio.iter() {
        if fd > 2 {
            // SAFETY: closing our copy; 0-2 now refer to the same files.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}
