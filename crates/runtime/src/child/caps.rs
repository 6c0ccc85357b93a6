//! Capabilities in the child: the set a web server keeps, and dropping the rest.

/// Linux capability numbers a web server may keep.
pub(crate) const CHOWN: u32 = 0;
pub(crate) const DAC_OVERRIDE: u32 = 1;
pub(crate) const FOWNER: u32 = 3;
pub(crate) const FSETID: u32 = 4;
pub(crate) const KILL: u32 = 5;
pub(crate) const SETGID: u32 = 6;
pub(crate) const SETUID: u32 = 7;
pub(crate) const NET_BIND_SERVICE: u32 = 10;
#[cfg(test)]
pub(crate) const SYS_ADMIN: u32 = 21;
/// The set kept by default: enough for a web server to drop to its own user, own its
/// files and bind low ports; no SYS_ADMIN, NET_ADMIN, SYS_PTRACE, MKNOD, ….
pub(crate) const WEB_SERVER: u64 = (1 << CHOWN)
    | (1 << DAC_OVERRIDE)
    | (1 << FOWNER)
    | (1 << FSETID)
    | (1 << KILL)
    | (1 << SETGID)
    | (1 << SETUID)
    | (1 << NET_BIND_SERVICE);
/// Highest capability number the kernel may know (an upper bound for the drop loop, which
/// stops at the kernel's first EINVAL).
const LAST_POSSIBLE: u32 = 63;

/// Removes every capability not in `keep` from the bounding set.
///
/// # Safety
/// Only in the container's child (it changes the calling process's credentials).
pub(crate) unsafe fn drop_bounding(keep: u64) -> Result<(), i32> {
    for cap in 0..=LAST_POSSIBLE {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with plain integers.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } == -1 {
            // SAFETY: errno read.
            let e = unsafe { super::errno() };
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
/// As [`drop_bounding`].
pub(crate) unsafe fn set_caps(keep: u64) -> Result<(), i32> {
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
        return Err(unsafe { super::errno() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_server_caps_exclude_sys_admin() {
        assert_eq!(WEB_SERVER & (1 << SYS_ADMIN), 0);
        assert_ne!(WEB_SERVER & (1 << NET_BIND_SERVICE), 0);
    }
}
