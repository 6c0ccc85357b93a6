//! Installing the system-call filters in the child: one `seccomp(2)` call per compiled
//! program, no allocation. The one place filters are installed, for a fresh container and
//! for a restored one alike.

use crate::seccomp::Filters;

/// `struct sock_fprog` of linux/filter.h.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

/// Installs `filters` on the calling thread (which must have set `no_new_privs`).
///
/// # Safety
/// Only in the container's child between clone and exec (or a restored process's
/// equivalent): it restricts every system call the process makes from here on.
pub(crate) unsafe fn install(filters: &Filters) -> Result<(), i32> {
    for program in &filters.programs {
        let prog = SockFprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr(),
        };
        // SAFETY: `prog` points at a live, well-formed BPF program; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const SockFprog,
            )
        };
        if rc == -1 {
            // SAFETY: errno read.
            return Err(unsafe { super::errno() });
        }
    }
    Ok(())
}
