//! A network namespace for a restored container, made before CRIU runs: `lo` up, the
//! container's end of a fresh veth as `eth0` with the new instance's address and default
//! route. CRIU then restores the app's processes into it (the dumped namespace is marked
//! external), so two instances restored from one checkpoint have an address each.
//!
//! A short-lived thread `unshare`s a new network namespace for itself, hands its thread id
//! and a namespace fd to the caller (who moves the veth's peer into it by that id, as for
//! a cloned container), configures the interfaces from inside with the classic ioctls, and
//! ends; the fd keeps the namespace alive until the restored processes are in it.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;

use crate::child::NetConfig;

/// A network namespace being made.
pub(crate) struct Pending {
    /// The thread's id: where `Network::attach` moves the veth's peer.
    pub tid: i32,
    pub fd: OwnedFd,
    go: mpsc::SyncSender<Option<NetConfig>>,
    done: mpsc::Receiver<std::io::Result<()>>,
}

/// Starts a thread in a new network namespace and returns once the namespace exists.
pub(crate) fn create() -> std::io::Result<Pending> {
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let (go, go_rx) = mpsc::sync_channel::<Option<NetConfig>>(1);
    let (done_tx, done) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("hako-netns".into())
        .spawn(move || {
            // SAFETY: unshare on this short-lived thread only.
            let made = if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
                Err(std::io::Error::last_os_error())
            } else {
                File::open("/proc/thread-self/ns/net").map(|f| {
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() };
                    (tid, OwnedFd::from(f))
                })
            };
            let ok = made.is_ok();
            let _ = ready_tx.send(made);
            if !ok {
                return;
            }
            // Wait until the veth's peer is here (or the caller gave up).
            let Ok(cfg) = go_rx.recv() else { return };
            let _ = done_tx.send(configure(cfg));
        })?;
    let (tid, fd) = ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the namespace thread ended"))??;
    Ok(Pending { tid, fd, go, done })
}

impl Pending {
    /// Brings `lo` up and, with `cfg`, `eth0` (which must be in the namespace by now) with
    /// its address and default route. Returns the namespace.
    pub(crate) fn configure(self, cfg: Option<NetConfig>) -> std::io::Result<OwnedFd> {
        self.go
            .send(cfg)
            .map_err(|_| std::io::Error::other("the namespace thread ended"))?;
        self.done
            .recv()
            .map_err(|_| std::io::Error::other("the namespace thread ended"))??;
        Ok(self.fd)
    }
}

/// The inode of a namespace file (what CRIU names namespaces by).
pub(crate) fn inode(path: &str) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.ino())
}

/// Runs on the namespace's own thread.
fn configure(cfg: Option<NetConfig>) -> std::io::Result<()> {
    let s = Socket::new()?;
    s.up("lo")?;
    if let Some(net) = cfg {
        s.set_addr("eth0", libc::SIOCSIFADDR, net.addr)?;
        s.set_addr("eth0", libc::SIOCSIFNETMASK, net.netmask)?;
        s.up("eth0")?;
        s.default_route(net.gateway)?;
    }
    Ok(())
}

struct Socket(OwnedFd);

fn sockaddr(ip: [u8; 4]) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(Ipv4Addr::from(ip).octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the socket API takes one as the other.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is valid.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
        r.ifr_name[i] = b as libc::c_char;
    }
    r
}

/// `struct rtentry` of net/route.h (LP64).
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

impl Socket {
    fn new() -> std::io::Result<Socket> {
        // SAFETY: socket(2) with constant arguments; we own the result.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        Ok(Socket(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn ioctl<T>(&self, req: libc::Ioctl, arg: &mut T) -> std::io::Result<()> {
        // SAFETY: `arg` is the struct this request reads or writes, alive for the call.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), req, arg as *mut T) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn up(&self, name: &str) -> std::io::Result<()> {
        let mut r = ifreq(name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut r)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe {
            r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        self.ioctl(libc::SIOCSIFFLAGS, &mut r)
    }

    fn set_addr(&self, name: &str, req: libc::Ioctl, ip: [u8; 4]) -> std::io::Result<()> {
        let mut r = ifreq(name);
        r.ifr_ifru.ifru_addr = sockaddr(ip);
        self.ioctl(req, &mut r)
    }

    fn default_route(&self, gateway: [u8; 4]) -> std::io::Result<()> {
        // SAFETY: an all-zero rtentry is valid; the fields we need are set below.
        let mut rt: RtEntry = unsafe { std::mem::zeroed() };
        rt.rt_dst = sockaddr([0, 0, 0, 0]);
        rt.rt_genmask = sockaddr([0, 0, 0, 0]);
        rt.rt_gateway = sockaddr(gateway);
        rt.rt_flags = (libc::RTF_UP | libc::RTF_GATEWAY) as libc::c_ushort;
        self.ioctl(libc::SIOCADDRT, &mut rt)
    }
}
