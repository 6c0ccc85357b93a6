//! The child's network set-up: `lo` up and `eth0` addressed and routed, with classic ioctls
//! (no netlink, so no allocation in the child).

use super::errno;
use super::plan::ChildPlan;

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

/// Brings `lo` up and configures `eth0` as the plan says.
///
/// # Safety
/// Only in the container's child, in its own network namespace.
pub(crate) unsafe fn configure(plan: &ChildPlan) -> Result<(), i32> {
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
