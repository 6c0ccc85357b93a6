//! The code that runs in a new container between clone and exec.
//!
//! The parent builds a [`ChildPlan`] (all allocation happens there); the child, a fork of a
//! multi-threaded process, only reads the plan and makes raw system calls: no allocation, no
//! locks, no panics. It reports progress and failures to the parent as fixed-size [`Report`]s
//! on a close-on-exec pipe: the pipe reaching EOF without a failure report means exec succeeded.
//!
//! Order in the child: close inherited descriptors, set up stdio, run the mount operations
//! (ending in pivot_root), set the hostname, wait for the parent's `G` (cgroup joined, veth in
//! place), configure the network, drop privileges, report `Parked`, wait for `R`, exec.

use std::ffi::CString;
use std::os::fd::RawFd;

/// One filesystem operation of the child's mount plan.
#[derive(Debug)]
pub(crate) enum Op {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `mkdir`, tolerating an existing directory.
    Mkdir {
        path: CString,
        mode: u32,
    },
    /// Creates an empty file if missing (a mount point for a file bind).
    Touch {
        path: CString,
    },
    Mknod {
        path: CString,
        mode: u32,
        dev: u64,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Writes a small file (hosts, hostname); skipped if its directory is missing.
    WriteFile {
        path: CString,
        content: Vec<u8>,
    },
    /// Binds `path` onto itself read-only; skipped if `path` does not exist.
    ReadOnlyIfExists {
        path: CString,
    },
    /// Makes `new_root` the root and detaches the old one.
    PivotRoot {
        new_root: CString,
    },
}

impl Op {
    /// A short description for error messages, e.g. "mount overlay on /run/…/root".
    pub(crate) fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => format!(
                "mount {} ({}) on {}",
                source.as_ref().map(s).unwrap_or_default(),
                fstype.as_ref().map(s).unwrap_or_else(|| "bind".into()),
                s(target)
            ),
            Op::Mkdir { path, .. } => format!("mkdir {}", s(path)),
            Op::Touch { path } => format!("create mount point {}", s(path)),
            Op::Mknod { path, .. } => format!("mknod {}", s(path)),
            Op::Symlink { link, .. } => format!("symlink {}", s(link)),
            Op::WriteFile { path, .. } => format!("write {}", s(path)),
            Op::ReadOnlyIfExists { path } => format!("make {} read-only", s(path)),
            Op::PivotRoot { new_root } => format!("pivot_root into {}", s(new_root)),
        }
    }
}

/// IPv4 settings for `eth0` inside the container's network namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetConfig {
    pub addr: [u8; 4],
    pub netmask: [u8; 4],
    pub gateway: [u8; 4],
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ops: Vec<Op>,
    pub hostname: CString,
    /// Bring `lo` up (own network namespace).
    pub lo_up: bool,
    pub net: Option<NetConfig>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// Capabilities kept (bitmask of CAP_* numbers); all others leave the bounding set.
    pub keep_caps: u64,
    pub workdir: CString,
    /// Full paths to try for the program, in order (PATH search done by the parent).
    pub exec_candidates: Vec<CString>,
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
    /// Keeps the strings behind `argv`/`envp` alive.
    pub _strings: Vec<CString>,
    /// Descriptors to install as 0, 1, 2 (-1: keep what the parent had).
    pub stdio: [RawFd; 3],
    pub sync_fd: RawFd,
    pub report_fd: RawFd,
    pub nofile: u64,
    /// The host's network namespace, for host-network containers (-1 otherwise): the spawner
    /// may have cloned the child into a fresh network namespace made ahead of time.
    pub host_netns_fd: RawFd,
}

// SAFETY: the raw pointers in argv/envp point into `_strings`, owned by the same plan; the plan
// is only read after construction.
unsafe impl Send for ChildPlan {}
// SAFETY: as above, the plan is immutable once built.
unsafe impl Sync for ChildPlan {}

/// What a report is about.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Op = 1,
    Stdio,
    HostNetwork,
    Hostname,
    SyncWait,
    Network,
    Rlimit,
    Capabilities,
    Groups,
    SetGid,
    SetUid,
    NoNewPrivs,
    Workdir,
    Exec,
    Session,
    /// Not a failure: the container is prepared and waits for release.
    Parked = 100,
}

impl Stage {
    fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [
            Op,
            Stdio,
            HostNetwork,
            Hostname,
            SyncWait,
            Network,
            Rlimit,
            Capabilities,
            Groups,
            SetGid,
            SetUid,
            NoNewPrivs,
            Workdir,
            Exec,
            Session,
            Parked,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Stage::Op => "filesystem setup",
            Stage::Stdio => "setting up stdin/stdout/stderr",
            Stage::HostNetwork => "joining the host's network namespace",
            Stage::Hostname => "setting the hostname",
            Stage::SyncWait => "waiting for the runtime (it went away)",
            Stage::Network => "configuring the network inside the container",
            Stage::Rlimit => "setting resource limits",
            Stage::Capabilities => "dropping capabilities",
            Stage::Groups => "setting supplementary groups",
            Stage::SetGid => "setting the group id",
            Stage::SetUid => "setting the user id",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Workdir => "changing to the working directory",
            Stage::Exec => "executing the command",
            Stage::Session => "starting a new session",
            Stage::Parked => "parked",
        }
    }
}

/// A fixed-size message from the child (12 bytes: atomic on a pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub stage: Stage,
    pub index: u32,
    pub errno: i32,
}

impl Report {
    pub(crate) const SIZE: usize = 12;

    fn encode(stage: Stage, index: u32, errno: i32) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..12].copy_from_slice(&errno.to_ne_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; 12]) -> Option<Report> {
        let stage = Stage::from_u32(u32::from_ne_bytes(b[0..4].try_into().ok()?))?;
        Some(Report {
            stage,
            index: u32::from_ne_bytes(b[4..8].try_into().ok()?),
            errno: i32::from_ne_bytes(b[8..12].try_into().ok()?),
        })
    }
}

/// Linux capability numbers a web server may keep.
pub(crate) mod caps {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const NET_BIND_SERVICE: u32 = 10;
    #[cfg(test)]
    pub const SYS_ADMIN: u32 = 21;
    /// The set kept by default: enough for a web server to drop to its own user, own its
    /// files and bind low ports; no SYS_ADMIN, NET_ADMIN, SYS_PTRACE, MKNOD, ….
    pub const WEB_SERVER: u64 = (1 << CHOWN)
        | (1 << DAC_OVERRIDE)
        | (1 << FOWNER)
        | (1 << FSETID)
        | (1 << KILL)
        | (1 << SETGID)
        | (1 << SETUID)
        | (1 << NET_BIND_SERVICE);
    /// Highest capability number the kernel may know (we read cap_last_cap at run time
    /// in the parent; this is an upper bound for the drop loop).
    pub const LAST_POSSIBLE: u32 = 63;
}

/// Runs the plan in the freshly cloned child. Never returns.
///
/// # Safety
/// Must be called only in the child of [`crate::sys::clone3`], once, with a plan built by the
/// parent before the clone.
pub(crate) unsafe fn run(plan: &ChildPlan) -> ! {
    // SAFETY: (for the whole function) only async-signal-safe libc calls on data owned by the
    // plan or on the stack; no allocation, no panicking operations (no indexing that can fail
    // except within fixed bounds we checked).
    unsafe {
        close_inherited(plan);
        // Device nodes and mount points get exactly the modes the plan gives.
        libc::umask(0);
        if let Err(e) = stdio(plan) {
            fail(plan, Stage::Stdio, 0, e);
        }
        // Its own session and process group: otherwise the container shares the runtime's,
        // and an app that signals its group (`kill(0, …)`, as Apache does when it stops)
        // would signal every other container and the runtime itself.
        if libc::setsid() == -1 {
            fail(plan, Stage::Session, 0, errno());
        }
        if plan.host_netns_fd >= 0 && libc::setns(plan.host_netns_fd, libc::CLONE_NEWNET) == -1 {
            fail(plan, Stage::HostNetwork, 0, errno());
        }
        for (i, op) in plan.ops.iter().enumerate() {
            if let Err(e) = run_op(op) {
                fail(plan, Stage::Op, i as u32, e);
            }
        }
        let name = plan.hostname.as_bytes();
        if libc::sethostname(name.as_ptr().cast(), name.len()) == -1 {
            fail(plan, Stage::Hostname, 0, errno());
        }
        // The parent says G once the cgroup is joined and the veth is in our namespace.
        if !wait_byte(plan.sync_fd, b'G') {
            libc::_exit(125);
        }
        if let Err(e) = network(plan) {
            fail(plan, Stage::Network, 0, e);
        }
        let lim = libc::rlimit {
            rlim_cur: plan.nofile,
            rlim_max: plan.nofile,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == -1 {
            fail(plan, Stage::Rlimit, 0, errno());
        }
        if let Err(e) = drop_bounding(plan.keep_caps) {
            fail(plan, Stage::Capabilities, 0, e);
        }
        // Raw syscalls, not glibc's wrappers: those broadcast the change to every thread glibc
        // believes exists (the parent's), and would wait forever for threads this child lacks.
        if libc::syscall(libc::SYS_setgroups, plan.groups.len(), plan.groups.as_ptr()) == -1 {
            fail(plan, Stage::Groups, 0, errno());
        }
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) == -1 {
            fail(plan, Stage::SetGid, 0, errno());
        }
        if libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) == -1 {
            fail(plan, Stage::SetUid, 0, errno());
        }
        if plan.uid == 0
            && let Err(e) = set_caps(plan.keep_caps)
        {
            fail(plan, Stage::Capabilities, 1, e);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 {
            fail(plan, Stage::NoNewPrivs, 0, errno());
        }
        // After the credential change (which clears it): die with the runtime. A parent that
        // died before this line is caught by wait_byte below seeing EOF.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        report(plan, Stage::Parked, 0, 0);
        if !wait_byte(plan.sync_fd, b'R') {
            libc::_exit(125);
        }
        if libc::chdir(plan.workdir.as_ptr()) == -1 {
            fail(plan, Stage::Workdir, 0, errno());
        }
        libc::close(plan.sync_fd);
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
        fail(plan, Stage::Exec, 0, last);
    }
}

/// The calling thread's `errno`.
///
/// # Safety
/// Any thread may call it; it reads the thread's own errno location.
unsafe fn errno() -> i32 {
    // SAFETY: errno location is valid for the current thread.
    unsafe { *libc::__errno_location() }
}

/// Tells the parent which stage failed and why, over the plan's report pipe.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only),
/// with the plan the parent built: its `report_fd` is open for writing.
unsafe fn report(plan: &ChildPlan, stage: Stage, index: u32, err: i32) {
    let b = Report::encode(stage, index, err);
    // SAFETY: writing a stack buffer to our own pipe.
    unsafe {
        libc::write(plan.report_fd, b.as_ptr().cast(), b.len());
    }
}

/// Reports the failure to the parent and exits the child with 127. Never returns.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only):
/// it ends the process without running destructors or `atexit` handlers.
unsafe fn fail(plan: &ChildPlan, stage: Stage, index: u32, err: i32) -> ! {
    // SAFETY: see `report`; _exit never returns.
    unsafe {
        report(plan, stage, index, err);
        libc::_exit(127)
    }
}

/// Waits for one byte from the parent; false on EOF (the parent is gone) or a wrong byte.
///
/// # Safety
/// `fd` must be an open descriptor this process owns; it blocks until a byte or EOF comes.
unsafe fn wait_byte(fd: RawFd, want: u8) -> bool {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte into a stack variable.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return b == want;
        }
        // SAFETY: errno read.
        if n == -1 && unsafe { errno() } == libc::EINTR {
            continue;
        }
        return false;
    }
}

/// Closes every descriptor inherited from the runtime except the plan's own.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only):
/// no other thread may use a descriptor it closes (the clone has only this one).
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

/// Puts the plan's descriptors on 0, 1 and 2 and closes the originals.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only),
/// after [`close_inherited`]: the plan's stdio descriptors are open and owned by it.
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

/// Carries out one mount, directory, file or pivot step of the plan.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only),
/// in its own mount namespace: the step changes that namespace's mounts and files only.
unsafe fn run_op(op: &Op) -> Result<(), i32> {
    let opt = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer comes from a CString owned by the plan.
    unsafe {
        let ret = match op {
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => libc::mount(
                opt(source),
                target.as_ptr(),
                opt(fstype),
                *flags,
                opt(data) as *const libc::c_void,
            ),
            Op::Mkdir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) == -1 && errno() != libc::EEXIST {
                    -1
                } else {
                    0
                }
            }
            Op::Touch { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else if errno() == libc::EISDIR {
                    0
                } else {
                    -1
                }
            }
            Op::Mknod { path, mode, dev } => libc::mknod(path.as_ptr(), *mode, *dev),
            Op::Symlink { target, link } => {
                if libc::symlink(target.as_ptr(), link.as_ptr()) == -1 && errno() != libc::EEXIST {
                    -1
                } else {
                    0
                }
            }
            Op::WriteFile { path, content } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT
                        | libc::O_WRONLY
                        | libc::O_TRUNC
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd < 0 {
                    if errno() == libc::ENOENT { 0 } else { -1 }
                } else {
                    let n = libc::write(fd, content.as_ptr().cast(), content.len());
                    libc::close(fd);
                    if n == content.len() as isize { 0 } else { -1 }
                }
            }
            Op::ReadOnlyIfExists { path } => {
                let p = path.as_ptr();
                if libc::mount(p, p, std::ptr::null(), libc::MS_BIND, std::ptr::null()) == -1 {
                    if errno() == libc::ENOENT { 0 } else { -1 }
                } else {
                    let flags = libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC;
                    libc::mount(
                        std::ptr::null(),
                        p,
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    )
                }
            }
            Op::PivotRoot { new_root } => {
                if libc::chdir(new_root.as_ptr()) == -1 {
                    -1
                } else {
                    let dot = c".".as_ptr();
                    if libc::syscall(libc::SYS_pivot_root, dot, dot) == -1
                        || libc::umount2(dot, libc::MNT_DETACH) == -1
                        || libc::chdir(c"/".as_ptr()) == -1
                    {
                        -1
                    } else {
                        0
                    }
                }
            }
        };
        if ret == -1 { Err(errno()) } else { Ok(()) }
    }
}

/// `struct rtentry` of net/route.h (x86_64 and other LP64 layouts).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn sockaddr_in(ip: [u8; 4]) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the socket API is used.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ifreq(name: &[u8]) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in name.iter().take(libc::IFNAMSIZ - 1).enumerate() {
        r.ifr_name[i] = *b as libc::c_char;
    }
    r
}

/// Brings `lo` up and configures `eth0` with classic ioctls (no allocation needed).
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only),
/// in the container's own network namespace, after the parent moved the veth into it.
unsafe fn network(plan: &ChildPlan) -> Result<(), i32> {
    if !plan.lo_up && plan.net.is_none() {
        return Ok(());
    }
    // SAFETY: ioctls on a socket we own, with properly initialised request structs.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let up = |name: &[u8]| -> Result<(), i32> {
            let mut r = ifreq(name);
            if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut r) == -1 {
                return Err(errno());
            }
            r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(s, libc::SIOCSIFFLAGS, &r) == -1 {
                return Err(errno());
            }
            Ok(())
        };
        let result = (|| {
            if plan.lo_up {
                up(b"lo")?;
            }
            if let Some(net) = &plan.net {
                let mut r = ifreq(b"eth0");
                r.ifr_ifru.ifru_addr = sockaddr_in(net.addr);
                if libc::ioctl(s, libc::SIOCSIFADDR, &r) == -1 {
                    return Err(errno());
                }
                let mut r = ifreq(b"eth0");
                r.ifr_ifru.ifru_netmask = sockaddr_in(net.netmask);
                if libc::ioctl(s, libc::SIOCSIFNETMASK, &r) == -1 {
                    return Err(errno());
                }
                up(b"eth0")?;
                let mut rt: RtEntry = std::mem::zeroed();
                rt.rt_dst = sockaddr_in([0, 0, 0, 0]);
                rt.rt_genmask = sockaddr_in([0, 0, 0, 0]);
                rt.rt_gateway = sockaddr_in(net.gateway);
                rt.rt_flags = (libc::RTF_UP | libc::RTF_GATEWAY) as libc::c_ushort;
                if libc::ioctl(s, libc::SIOCADDRT, &rt) == -1 {
                    return Err(errno());
                }
            }
            Ok(())
        })();
        libc::close(s);
        result
    }
}

/// Removes every capability not in `keep` from the bounding set.
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only):
/// it changes the capabilities of this process only, for good.
unsafe fn drop_bounding(keep: u64) -> Result<(), i32> {
    for cap in 0..=caps::LAST_POSSIBLE {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with plain integers.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } == -1 {
            // SAFETY: errno read.
            let e = unsafe { errno() };
            if e == libc::EINVAL {
                break; // past the kernel's last capability
            }
            return Err(e);
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective and permitted sets to `keep` (for a container running as uid 0).
///
/// # Safety
/// Only in the cloned child, from [`run`] (before exec: async-signal-safe calls only),
/// after [`drop_bounding`]: it changes this process's capability sets only.
unsafe fn set_caps(keep: u64) -> Result<(), i32> {
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = keep as u32;
    let hi = (keep >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: header and a 2-element data array as capset(2) requires for version 3.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } == -1 {
        // SAFETY: errno read.
        return Err(unsafe { errno() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let b = Report::encode(Stage::Exec, 7, libc::ENOENT);
        assert_eq!(
            Report::decode(&b),
            Some(Report {
                stage: Stage::Exec,
                index: 7,
                errno: libc::ENOENT
            })
        );
        let mut bad = b;
        bad[0..4].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(Report::decode(&bad), None);
    }

    #[test]
    fn web_server_caps_exclude_sys_admin() {
        assert_eq!(caps::WEB_SERVER & (1 << caps::SYS_ADMIN), 0);
        assert_ne!(caps::WEB_SERVER & (1 << caps::NET_BIND_SERVICE), 0);
    }
}
