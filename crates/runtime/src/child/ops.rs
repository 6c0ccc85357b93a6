//! The child's filesystem operations: one [`Op`] of the mount plan at a time, raw calls only.

use std::ffi::CString;

use super::errno;
use super::plan::Op;

/// Runs one operation; `Err(errno)` on failure.
///
/// # Safety
/// Only in the container's child, in its own mount namespace.
pub(crate) unsafe fn run_op(op: &Op) -> Result<(), i32> {
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
