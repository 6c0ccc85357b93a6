//! A minimal rtnetlink client: create bridges and veth pairs, add addresses, list and delete
//! links; routes in [`route`]. Synchronous, one request at a time, each acknowledged by the
//! kernel.

pub(crate) mod route;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELNEIGH: u16 = 29;
const NDA_DST: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

/// A link as listed by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: i32,
    pub name: String,
    pub master: Option<i32>,
}

/// A message under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: kernel fills
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn ifinfo(mut self, index: i32, flags: u32, change: u32) -> Msg {
        self.put_ifinfo(index, flags, change);
        self
    }

    fn put_ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Msg {
        let start = self.nests.pop().expect("balanced nests");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A NETLINK_ROUTE socket in the caller's network namespace.
pub(crate) struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub(crate) fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket call; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink {
            // SAFETY: fd is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sending a valid buffer on our socket (kernel address by default: pid 0).
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: receiving into a valid buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(n as usize);
        }
    }

    /// Sends a request and waits for its acknowledgement.
    fn request(&self, msg: Vec<u8>) -> io::Result<()> {
        self.send(&msg)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            for (kind, payload) in messages(&buf[..n]) {
                if kind == NLMSG_ERROR {
                    let code = i32::from_ne_bytes(payload[0..4].try_into().unwrap_or([0; 4]));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
            }
        }
    }

    /// Creates a bridge named `name`, up.
    pub(crate) fn add_bridge(&self, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(
            0,
            libc::IFF_UP as u32,
            libc::IFF_UP as u32,
        );
        m.attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(m.finish())
    }

    /// Sets link `index`'s hardware address. A bridge whose address was set keeps it;
    /// otherwise the kernel gives it the lowest address among its ports, which changes as
    /// containers come and go and leaves their ARP caches pointing at a vanished address.
    pub(crate) fn set_address(&self, index: i32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK).ifinfo(index, 0, 0);
        m.attr(IFLA_ADDRESS, &mac);
        self.request(m.finish())
    }

    /// Creates a veth pair: `host_name` on the host (up, attached to `master`), and its peer
    /// `peer_name` directly inside the network namespace of process `peer_pid`.
    pub(crate) fn add_veth(
        &self,
        host_name: &str,
        master: i32,
        peer_name: &str,
        peer_pid: i32,
    ) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(
            0,
            libc::IFF_UP as u32,
            libc::IFF_UP as u32,
        );
        m.attr_str(IFLA_IFNAME, host_name);
        m.attr_u32(IFLA_MASTER, master as u32);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        m.put_ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer_name);
        m.attr_u32(IFLA_NET_NS_PID, peer_pid as u32);
        m.end().end().end();
        self.request(m.finish())
    }

    /// Adds an IPv4 address with prefix length to link `index`.
    pub(crate) fn add_address(&self, index: i32, addr: [u8; 4], prefix: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.buf.push(libc::AF_INET as u8);
        m.buf.push(prefix);
        m.buf.push(0); // flags
        m.buf.push(0); // scope: universe
        m.buf.extend_from_slice(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr);
        m.attr(IFA_ADDRESS, &addr);
        self.request(m.finish())
    }

    /// Forgets the host's neighbour (ARP) entry for `addr` on link `index`. Addresses are
    /// reused by later containers with other MACs; a stale entry would send the first packets
    /// to a MAC that is gone and cost a second of ARP retries.
    pub(crate) fn delete_neighbour(&self, index: i32, addr: [u8; 4]) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELNEIGH, NLM_F_ACK);
        m.buf.push(libc::AF_INET as u8);
        m.buf.extend_from_slice(&[0, 0, 0]); // padding
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.buf.extend_from_slice(&0u16.to_ne_bytes()); // state
        m.buf.push(0); // flags
        m.buf.push(0); // type
        m.attr(NDA_DST, &addr);
        match self.request(m.finish()) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) => Ok(()),
            r => r,
        }
    }

    /// Deletes a link by name; a link that is already gone is not an error.
    pub(crate) fn delete_link(&self, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m.finish()) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r,
        }
    }

    /// Every link in this namespace.
    pub(crate) fn links(&self) -> io::Result<Vec<Link>> {
        let m = Msg::new(RTM_GETLINK, NLM_F_DUMP).ifinfo(0, 0, 0);
        let mut out = Vec::new();
        self.dump(m.finish(), |kind, payload| {
            if kind != RTM_NEWLINK || payload.len() < 16 {
                return;
            }
            let index = i32::from_ne_bytes(payload[4..8].try_into().unwrap_or([0; 4]));
            let mut link = Link {
                index,
                name: String::new(),
                master: None,
            };
            for (t, v) in attributes(&payload[16..]) {
                match t {
                    IFLA_IFNAME => {
                        link.name =
                            String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(&[]))
                                .into_owned()
                    }
                    IFLA_MASTER if v.len() >= 4 => {
                        link.master = Some(i32::from_ne_bytes(v[0..4].try_into().unwrap_or([0; 4])))
                    }
                    _ => {}
                }
            }
            out.push(link);
        })?;
        Ok(out)
    }

    /// Sends a dump request and hands every message of the answer to `each` until the kernel
    /// says it is done.
    fn dump(&self, msg: Vec<u8>, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.send(&msg)?;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.recv(&mut buf)?;
            for (kind, payload) in messages(&buf[..n]) {
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(payload[0..4].try_into().unwrap_or([0; 4]));
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => each(kind, payload),
                }
            }
        }
    }
}

/// Splits a receive buffer into (type, payload) messages.
fn messages(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap_or([0; 4])) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap_or([0; 2]));
        if len < 16 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[16..len]));
        let aligned = (len + 3) & !3;
        buf = &buf[aligned.min(buf.len())..];
    }
    out
}

/// Splits attribute bytes into (type, value) pairs.
fn attributes(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & !NLA_F_NESTED;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let aligned = (len + 3) & !3;
        buf = &buf[aligned.min(buf.len())..];
    }
    out
}

/// The index of link `name`, if it exists.
pub(crate) fn link_index(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: valid C string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_have_right_lengths() {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(0, 0, 0);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .end();
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        let attrs = attributes(&b[32..]);
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].0, IFLA_LINKINFO);
        let inner = attributes(attrs[0].1);
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"veth\0"[..])]);
    }
}
