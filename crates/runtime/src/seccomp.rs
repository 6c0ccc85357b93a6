//! The default system-call filter of containers (seccomp), compiled once per process.
//!
//! A deny list: everything a web app may call is allowed; the calls below, which web apps
//! never need and which are kernel attack surface, fail with `EPERM` (the app gets an error,
//! it is not killed):
//! - kernel and system: `kexec_load`, `kexec_file_load`, `init_module`, `finit_module`,
//!   `delete_module`, `reboot`, `swapon`, `swapoff`, `acct`, `syslog`, `quotactl`,
//!   `quotactl_fd`, `lookup_dcookie`, `uselib`, `nfsservctl`, `_sysctl`, `vhangup`, `iopl`,
//!   `ioperm`;
//! - clocks: `settimeofday`, `clock_settime`, `clock_adjtime`;
//! - BPF, keys, tracing: `bpf`, `keyctl`, `add_key`, `request_key`, `perf_event_open`,
//!   `userfaultfd`, `ptrace`, `process_vm_readv`, `process_vm_writev`;
//! - io_uring: `io_uring_setup`, `io_uring_enter`, `io_uring_register`;
//! - mounts: `mount`, `umount2`, `pivot_root`, `move_mount`, `open_tree`, `fsopen`,
//!   `fsconfig`, `fsmount`, `fspick`, `mount_setattr`;
//! - file handles: `name_to_handle_at`, `open_by_handle_at`;
//! - namespaces: `setns`, and `unshare`/`clone` with `CLONE_NEWUSER` (so `unshare -Ur` fails);
//!   `clone3` answers `ENOSYS` (its flags cannot be inspected; libc then falls back to
//!   `clone`, which can).
//!
//! On x86_64 the x32 system-call ABI answers `ENOSYS`, and a call made through another
//! architecture's ABI (32-bit `int 0x80`) ends the process (seccompiler's architecture check).
//! The filter is installed by the container's child after `no_new_privs`, just before it is
//! parked ([`crate::child`]); a restore of a checkpoint installs the same [`Filters`].

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// Which system-call filter a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// hako's default profile (see the module docs).
    #[default]
    Default,
    /// No filter (an app that needs one of the denied calls; it must say why).
    Unconfined,
}

impl std::str::FromStr for Seccomp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Seccomp::Default),
            "unconfined" => Ok(Seccomp::Unconfined),
            other => Err(format!(
                "seccomp profile {other:?} is unknown: use default or unconfined"
            )),
        }
    }
}

impl std::fmt::Display for Seccomp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Seccomp::Default => "default",
            Seccomp::Unconfined => "unconfined",
        })
    }
}

/// Why the default profile could not be compiled (a bug, or an unsupported architecture).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the seccomp filter: {0}; run the app with seccomp unconfined to go on")]
pub struct SeccompError(String);

/// Compiled BPF programs, installed in order; shared by every container of the process.
#[derive(Debug)]
pub(crate) struct Filters {
    pub(crate) programs: Vec<Vec<sock_filter>>,
}

/// The calls denied outright (by name, for docs and tests) and their numbers.
pub(crate) fn denied() -> Vec<(&'static str, i64)> {
    macro_rules! calls {
        ($($name:ident),* $(,)?) => { vec![$((stringify!($name), sys::$name)),*] };
    }
    #[allow(unused_mut)]
    let mut all = calls!(
        kexec_load,
        kexec_file_load,
        init_module,
        finit_module,
        delete_module,
        reboot,
        swapon,
        swapoff,
        acct,
        syslog,
        quotactl,
        quotactl_fd,
        lookup_dcookie,
        vhangup,
        settimeofday,
        clock_settime,
        clock_adjtime,
        bpf,
        keyctl,
        add_key,
        request_key,
        perf_event_open,
        userfaultfd,
        ptrace,
        process_vm_readv,
        process_vm_writev,
        io_uring_setup,
        io_uring_enter,
        io_uring_register,
        mount,
        umount2,
        pivot_root,
        move_mount,
        open_tree,
        fsopen,
        fsconfig,
        fsmount,
        fspick,
        mount_setattr,
        name_to_handle_at,
        open_by_handle_at,
        setns,
    );
    #[cfg(target_arch = "x86_64")]
    all.extend(calls!(iopl, ioperm, uselib, nfsservctl, _sysctl));
    all
}

/// System-call numbers of the target (libc's `SYS_*`), by their plain names.
#[allow(non_upper_case_globals)]
mod sys {
    macro_rules! nr {
        ($($name:ident => $sys:ident),* $(,)?) => { $(pub const $name: i64 = libc::$sys as i64;)* };
    }
    nr!(
        kexec_load => SYS_kexec_load, kexec_file_load => SYS_kexec_file_load,
        init_module => SYS_init_module, finit_module => SYS_finit_module,
        delete_module => SYS_delete_module, reboot => SYS_reboot, swapon => SYS_swapon,
        swapoff => SYS_swapoff, acct => SYS_acct, syslog => SYS_syslog,
        quotactl => SYS_quotactl, quotactl_fd => SYS_quotactl_fd,
        lookup_dcookie => SYS_lookup_dcookie, vhangup => SYS_vhangup,
        settimeofday => SYS_settimeofday, clock_settime => SYS_clock_settime,
        clock_adjtime => SYS_clock_adjtime, bpf => SYS_bpf, keyctl => SYS_keyctl,
        add_key => SYS_add_key, request_key => SYS_request_key,
        perf_event_open => SYS_perf_event_open, userfaultfd => SYS_userfaultfd,
        ptrace => SYS_ptrace, process_vm_readv => SYS_process_vm_readv,
        process_vm_writev => SYS_process_vm_writev, io_uring_setup => SYS_io_uring_setup,
        io_uring_enter => SYS_io_uring_enter, io_uring_register => SYS_io_uring_register,
        mount => SYS_mount, umount2 => SYS_umount2, pivot_root => SYS_pivot_root,
        move_mount => SYS_move_mount, open_tree => SYS_open_tree, fsopen => SYS_fsopen,
        fsconfig => SYS_fsconfig, fsmount => SYS_fsmount, fspick => SYS_fspick,
        mount_setattr => SYS_mount_setattr, name_to_handle_at => SYS_name_to_handle_at,
        open_by_handle_at => SYS_open_by_handle_at, setns => SYS_setns,
        unshare => SYS_unshare, clone => SYS_clone, clone3 => SYS_clone3,
    );
    #[cfg(target_arch = "x86_64")]
    nr!(iopl => SYS_iopl, ioperm => SYS_ioperm, uselib => SYS_uselib,
        nfsservctl => SYS_nfsservctl, _sysctl => SYS__sysctl);
}

/// The default profile, compiled on first use.
pub(crate) fn default_filters() -> Result<Arc<Filters>, SeccompError> {
    static COMPILED: OnceLock<Result<Arc<Filters>, SeccompError>> = OnceLock::new();
    COMPILED.get_or_init(|| compile().map(Arc::new)).clone()
}

fn compile() -> Result<Filters, SeccompError> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| SeccompError(format!("architecture {}: {e:?}", std::env::consts::ARCH)))?;
    let err = |e: seccompiler::BackendError| SeccompError(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied()
        .into_iter()
        .map(|(_, nr)| (nr, Vec::new()))
        .collect();
    // unshare(flags) and clone(flags, …): only with CLONE_NEWUSER set.
    let new_user = libc::CLONE_NEWUSER as u64;
    for nr in [sys::unshare, sys::clone] {
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(new_user),
            new_user,
        )
        .map_err(err)?;
        rules.insert(nr, vec![SeccompRule::new(vec![cond]).map_err(err)?]);
    }
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let deny: BpfProgram = deny.try_into().map_err(err)?;
    Ok(Filters {
        programs: vec![enosys_prefilter(), deny],
    })
}

/// `clone3` and (on x86_64) every x32-ABI call answer ENOSYS; everything else passes on to
/// the next filter. Hand-written: seccompiler has one match action per filter, and no ranges.
fn enosys_prefilter() -> Vec<sock_filter> {
    const LD_ABS_W: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JEQ: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    // `struct seccomp_data`: nr at 0, arch at 4.
    #[cfg(target_arch = "x86_64")]
    let (arch, x32_bit) = (62 | 0x8000_0000 | 0x4000_0000u32, 0x4000_0000u32);
    #[cfg(target_arch = "aarch64")]
    let (arch, x32_bit) = (183 | 0x8000_0000 | 0x4000_0000u32, u32::MAX);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let (arch, x32_bit) = (0u32, u32::MAX);
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    vec![
        op(LD_ABS_W, 0, 0, 4),                  // 0: A = arch
        op(JEQ, 0, 5, arch),                    // 1: other arch → 7 (the next filter decides)
        op(LD_ABS_W, 0, 0, 0),                  // 2: A = nr
        op(JGE, 2, 0, x32_bit),                 // 3: x32 call → 6
        op(JEQ, 1, 0, sys::clone3 as u32),      // 4: clone3 → 6
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW), // 5
        op(RET, 0, 0, enosys),                  // 6
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW), // 7
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_and_names_what_it_denies() {
        let f = default_filters().expect("compiles on this architecture");
        assert_eq!(f.programs.len(), 2);
        assert!(f.programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
        let names: Vec<_> = denied().into_iter().map(|(n, _)| n).collect();
        for must in [
            "kexec_load",
            "bpf",
            "mount",
            "setns",
            "keyctl",
            "userfaultfd",
        ] {
            assert!(names.contains(&must), "{must}");
        }
        // Nothing a web server needs.
        for fine in ["read", "write", "accept4", "epoll_wait", "execve", "socket"] {
            assert!(!names.contains(&fine), "{fine}");
        }
    }

    #[test]
    fn profiles_parse_and_print() {
        assert_eq!("default".parse::<Seccomp>(), Ok(Seccomp::Default));
        assert_eq!("unconfined".parse::<Seccomp>(), Ok(Seccomp::Unconfined));
        assert!(
            "strict"
                .parse::<Seccomp>()
                .unwrap_err()
                .contains("default or unconfined")
        );
        assert_eq!(Seccomp::Unconfined.to_string(), "unconfined");
        assert_eq!(Seccomp::default(), Seccomp::Default);
    }
}
