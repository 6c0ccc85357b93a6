//! Isolated networking: one bridge per runtime, a veth per container, NAT out, and firewall
//! rules so that containers reach neither each other nor the host's own services.
//!
//! Kernel objects (all carry the runtime's prefix, e.g. `hakoab12`):
//! - bridge `<prefix>` holding the gateway address of the subnet;
//! - veths `<prefix>v<n>` (host side; the container side is `eth0` in its namespace);
//! - nftables tables `<prefix>` (inet: drop new connections from containers to the host, and
//!   anything routed between this bridge and any other hako link — every prefix starts with
//!   `hako`, so containers of different runtimes, e.g. a `hako run` and a `hako serve`, never
//!   reach each other whichever runtime made the rules — and new connections to the cluster's
//!   addresses; bridge: drop frames between container ports) and `<prefix>_nat` (ip:
//!   masquerade out). The rules themselves are in [`firewall`].

pub(crate) mod firewall;
mod ipam;
pub(crate) mod netlink;

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ipam::Ipam;
pub use ipam::Subnet;
use ipnet::Ipv4Net;
use netlink::Netlink;

use crate::child::NetConfig;

/// Why networking could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot create bridge {name}: {source}")]
    Bridge {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot install firewall rules with nft (install the nftables package): {0}")]
    Firewall(String),
    #[error("cannot create veth {name} for the container: {source}")]
    Veth {
        name: String,
        source: std::io::Error,
    },
    #[error("no free address left in subnet {0}: use a larger subnet")]
    SubnetFull(Subnet),
    #[error("netlink: {0}")]
    Netlink(#[from] std::io::Error),
}

/// A container's place on the bridge.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub veth: String,
    pub addr: Ipv4Addr,
}

/// The bridge, its subnet and the addresses handed out on it.
#[derive(Debug)]
pub(crate) struct Network {
    prefix: String,
    subnet: Subnet,
    nat: bool,
    bridge_index: i32,
    ipam: Mutex<Ipam>,
    counter: AtomicU64,
}

/// The bridge's fixed hardware address: locally administered, unicast, from the prefix.
fn bridge_mac(prefix: &str) -> [u8; 6] {
    let h = prefix.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

impl Network {
    /// Creates (or adopts) the bridge and installs the firewall rules.
    pub(crate) fn setup(
        prefix: &str,
        subnet: Subnet,
        nat: bool,
        cluster: &[Ipv4Net],
    ) -> Result<Network, NetworkError> {
        let nl = Netlink::open()?;
        let bridge_err = |source| NetworkError::Bridge {
            name: prefix.to_string(),
            source,
        };
        if netlink::link_index(prefix).is_none() {
            match nl.add_bridge(prefix) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(bridge_err(e)),
                _ => {}
            }
        }
        let bridge_index = netlink::link_index(prefix).ok_or_else(|| {
            bridge_err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "bridge vanished",
            ))
        })?;
        nl.set_address(bridge_index, bridge_mac(prefix))
            .map_err(bridge_err)?;
        match nl.add_address(bridge_index, subnet.gateway().octets(), subnet.prefix) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(bridge_err(e)),
            _ => {}
        }
        firewall::install(prefix, subnet, nat, cluster)?;
        if nat || !cluster.is_empty() {
            // Forwarding is needed for NAT out and for proxies on other nodes to reach this
            // node's instances; it is host-wide (as with every container engine).
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        }
        // One neighbour entry per instance: room for thousands of sites on this host.
        crate::tune::neighbour_table(std::path::Path::new("/proc/sys/net/ipv4/neigh/default"));
        crate::tune::bridge_arp_retry(
            &std::path::Path::new("/proc/sys/net/ipv4/neigh").join(prefix),
        );
        Ok(Network {
            prefix: prefix.to_string(),
            subnet,
            nat,
            bridge_index,
            ipam: Mutex::new(Ipam::new(subnet)),
            counter: AtomicU64::new(0),
        })
    }

    /// Reserves an address and a veth name for a container about to be cloned.
    pub(crate) fn reserve(&self) -> Result<(Attachment, NetConfig), NetworkError> {
        let addr = self
            .ipam
            .lock()
            .expect("ipam lock")
            .allocate()
            .ok_or(NetworkError::SubnetFull(self.subnet))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let veth = veth_name(&self.prefix, n);
        let cfg = NetConfig {
            addr: addr.octets(),
            netmask: self.subnet.netmask().octets(),
            gateway: self.subnet.gateway().octets(),
        };
        Ok((Attachment { veth, addr }, cfg))
    }

    /// Creates the veth pair for a cloned container (peer `eth0` in its namespace).
    pub(crate) fn attach(&self, att: &Attachment, pid: i32) -> Result<(), NetworkError> {
        let nl = Netlink::open()?;
        if let Err(e) = nl.delete_neighbour(self.bridge_index, att.addr.octets()) {
            tracing::debug!(addr = %att.addr, error = %e, "cannot flush neighbour entry");
        }
        nl.add_veth(&att.veth, self.bridge_index, "eth0", pid)
            .map_err(|source| NetworkError::Veth {
                name: att.veth.clone(),
                source,
            })
    }

    /// Waits (bounded) until the container's port on the bridge forwards frames. Once the
    /// container has brought its side up the kernel moves the port to forwarding, but not
    /// always before the first packet: a packet sent earlier is dropped and its ARP request
    /// retried only a second later. Waiting here keeps that out of the first request.
    pub(crate) fn wait_forwarding(&self, att: &Attachment) {
        let path = format!("/sys/class/net/{}/brport/state", att.veth);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            match std::fs::read_to_string(&path) {
                Ok(s) if s.trim() == "3" => return, // BR_STATE_FORWARDING
                Err(_) => return,                   // no such port: nothing to wait for
                _ => {}
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(veth = %att.veth, "bridge port is not forwarding yet");
                return;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Deletes the veth pair (if the kernel has not already) and frees the address.
    pub(crate) fn release(&self, att: &Attachment) {
        if let Ok(nl) = Netlink::open() {
            if let Err(e) = nl.delete_link(&att.veth) {
                tracing::warn!(veth = %att.veth, error = %e, "could not delete veth");
            }
            let _ = nl.delete_neighbour(self.bridge_index, att.addr.octets());
        }
        self.ipam.lock().expect("ipam lock").release(att.addr);
    }

    /// Deletes veths of this prefix left by an earlier run.
    pub(crate) fn remove_leftover_veths(prefix: &str) -> Result<usize, NetworkError> {
        let nl = Netlink::open()?;
        let stem = format!("{prefix}v");
        let mut n = 0;
        for link in nl.links()? {
            if link.name.starts_with(&stem) {
                nl.delete_link(&link.name)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes the bridge and the firewall tables.
    pub(crate) fn teardown(&self) {
        remove_all(&self.prefix, self.nat);
    }
}

/// Removes bridge and tables of `prefix` (also used for leftovers of a dead run).
pub(crate) fn remove_all(prefix: &str, _nat: bool) {
    let _ = Network::remove_leftover_veths(prefix);
    if let Ok(nl) = Netlink::open() {
        let _ = nl.delete_link(prefix);
    }
    for (family, name) in firewall::tables(prefix) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", family, &name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `<prefix>v<n in base 36>`, at most 15 bytes (IFNAMSIZ - 1).
fn veth_name(prefix: &str, n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    let mut v = n;
    loop {
        s.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    let mut name = format!("{prefix}v{}", String::from_utf8_lossy(&s));
    name.truncate(15);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz_and_differ() {
        let a = veth_name("hakoab12", 0);
        let b = veth_name("hakoab12", 123456);
        assert_eq!(a, "hakoab12v0");
        assert_ne!(a, b);
        assert!(b.len() <= 15);
        assert!(b.starts_with("hakoab12v"));
    }
}
