//! The test bed's network: "hosts" as network namespaces, each with an `eth0` on one private
//! bridge in the root namespace, like machines on one switch.
//!
//! For a bed named `NAME` on `10.99.0.0/24`: the bridge `hakotbNAME-br` holds `10.99.0.1`
//! (the machine running the bed reaches every host through it); host `n` is the namespace
//! `hakotbNAME-hn` with loopback up, `eth0` = `10.99.0.(10+n)`, a default route via the
//! bridge and forwarding on (a node passes the proxies' connections to its instances); its
//! cable is the veth `hakotbNAME-hn` on the bridge, which [`Lan::cut`] unplugs. Every name
//! starts with `hakotb` and the bed's name, so nothing of another bed or of a hako runtime is
//! ever touched.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cmd;
use crate::netns::Netns;
use crate::{Result, TestbedError};

/// The stem of every kernel object of bed `name`.
pub fn stem(name: &str) -> String {
    format!("hakotb{name}-")
}

/// The bridge of bed `name`.
pub fn bridge_name(name: &str) -> String {
    format!("{}br", stem(name))
}

/// Host `n`'s namespace, and its cable's name on the bridge.
pub fn host_name(name: &str, n: usize) -> String {
    format!("{}h{n}", stem(name))
}

/// Checks a bed name: 1 to 3 lowercase letters or digits (interface names are short).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 3
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(TestbedError::Config(format!(
            "bed name {name:?}: use 1 to 3 lowercase letters or digits"
        )));
    }
    Ok(())
}

/// Host `n`'s address on `lan`: the 10+n-th.
pub fn host_addr(lan: Ipv4Net, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(lan.network()) + 10 + n as u32)
}

/// The bridge's address on `lan`: the first.
pub fn gateway(lan: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(lan.network()) + 1)
}

/// One host of the LAN.
#[derive(Debug, Clone)]
pub struct LanHost {
    /// 1, 2, …
    pub index: usize,
    pub netns: Netns,
    /// Its `eth0` address.
    pub addr: Ipv4Addr,
    /// Its cable: the veth on the bridge (root namespace).
    pub port: String,
}

/// The bridge and its hosts; taken down on drop unless [`Lan::keep`] was called.
#[derive(Debug)]
pub struct Lan {
    name: String,
    subnet: Ipv4Net,
    hosts: Vec<LanHost>,
    armed: bool,
    /// The lock on the subnet, held while this value lives (see [`claim`]).
    _claim: std::fs::File,
}

impl Lan {
    /// Makes the bridge and `hosts` hosts on `subnet` (a /27 or larger). On failure, what was
    /// made is removed again.
    pub fn up(name: &str, hosts: usize, subnet: Ipv4Net) -> Result<Lan> {
        check_name(name)?;
        if !(1..=9).contains(&hosts) {
            return Err(TestbedError::Config(format!(
                "{hosts} hosts: a bed has 1 to 9"
            )));
        }
        let subnet = subnet.trunc();
        if subnet.prefix_len() > 27 {
            return Err(TestbedError::Config(format!(
                "LAN {subnet} is too small: give a /27 or larger"
            )));
        }
        let bridge = bridge_name(name);
        if std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
        {
            return Err(TestbedError::Running {
                name: name.to_string(),
                state: format!("bridge {bridge}").into(),
            });
        }
        let in_use = |why: String| {
            TestbedError::Config(format!(
                "LAN {subnet} is already in use on this machine ({why}): pick another"
            ))
        };
        let claim = claim(subnet)?.ok_or_else(|| in_use("another bed is making it".into()))?;
        if let Some(route) = overlapping_route(subnet)? {
            return Err(in_use(format!("route {route}")));
        }
        let mut lan = Lan {
            name: name.to_string(),
            subnet,
            hosts: Vec::new(),
            armed: true,
            _claim: claim,
        };
        // From here on, dropping `lan` removes what exists so far.
        let gw = gateway(subnet);
        let len = subnet.prefix_len().to_string();
        cmd::ip(&["link", "add", &bridge, "type", "bridge"])?;
        cmd::ip(&["addr", "add", &format!("{gw}/{len}"), "dev", &bridge])?;
        cmd::ip(&["link", "set", &bridge, "up"])?;
        for n in 1..=hosts {
            let host = host_name(name, n);
            let netns = Netns::create(&host)?;
            let addr = host_addr(subnet, n);
            lan.hosts.push(LanHost {
                index: n,
                netns: netns.clone(),
                addr,
                port: host.clone(),
            });
            cmd::ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &host,
            ])?;
            cmd::ip(&["link", "set", &host, "master", &bridge, "up"])?;
            netns.ip(&["addr", "add", &format!("{addr}/{len}"), "dev", "eth0"])?;
            netns.ip(&["link", "set", "eth0", "up"])?;
            netns.ip(&["route", "add", "default", "via", &gw.to_string()])?;
            netns.sysctl("ipv4/ip_forward", "1")?;
        }
        Ok(lan)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The bridge's address (the machine's side).
    pub fn gateway(&self) -> Ipv4Addr {
        gateway(self.subnet)
    }

    pub fn hosts(&self) -> &[LanHost] {
        &self.hosts
    }

    /// Host `n` (1-based).
    pub fn host(&self, n: usize) -> &LanHost {
        &self.hosts[n - 1]
    }

    /// Unplugs host `n`'s cable: its link stays up inside (routes and addresses stay), but
    /// nothing reaches it or leaves it until [`Lan::plug`].
    pub fn cut(&self, n: usize) -> Result<()> {
        cmd::ip(&["link", "set", &self.host(n).port, "down"]).map(drop)
    }

    /// Plugs host `n`'s cable back in.
    pub fn plug(&self, n: usize) -> Result<()> {
        cmd::ip(&["link", "set", &self.host(n).port, "up"]).map(drop)
    }

    /// Routes every host's instance subnet from every other host via that host's address, as
    /// an operator routes them on the network (`ip route replace SUBNET via ADDR proto 77`:
    /// the routes hako's own `cluster_routes` makes, which it keeps as they are).
    /// `subnets[i]` belongs to host `i + 1`.
    pub fn route_subnets(&self, subnets: &[Ipv4Net]) -> Result<()> {
        for h in &self.hosts {
            for (other, subnet) in self.hosts.iter().zip(subnets) {
                if other.index != h.index {
                    h.netns.ip(&[
                        "route",
                        "replace",
                        &subnet.to_string(),
                        "via",
                        &other.addr.to_string(),
                        "proto",
                        "77",
                    ])?;
                }
            }
        }
        Ok(())
    }

    /// Gives the bridge (the machine's side) one more address, e.g. one standing for a
    /// server outside the cluster; it goes with the bridge.
    pub fn add_address(&self, addr: Ipv4Addr) -> Result<()> {
        cmd::ip(&[
            "addr",
            "add",
            &format!("{addr}/32"),
            "dev",
            &bridge_name(&self.name),
        ])
        .map(drop)
    }

    /// Leaves the LAN up when this value is dropped (for `cargo xtask testbed up`).
    pub fn keep(mut self) {
        self.armed = false;
    }

    /// Removes the hosts and the bridge.
    pub fn down(mut self) -> Result<()> {
        self.armed = false;
        remove(&self.name)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if self.armed {
            let _ = remove(&self.name);
        }
    }
}

/// Removes every namespace and link of bed `name` (those of a bed that is gone too);
/// nothing there is not an error.
pub fn remove(name: &str) -> Result<()> {
    check_name(name)?;
    let stem = stem(name);
    let mut first_err = None;
    for ns in Netns::list(&stem) {
        if let Err(e) = ns.delete() {
            first_err.get_or_insert(e);
        }
    }
    // A namespace that something still holds (a process, a socket) outlives its name, and
    // its cable with it: delete the cables too (one that went meanwhile is fine).
    for link in links(&stem) {
        match cmd::ip(&["link", "del", &link]) {
            Err(TestbedError::Command { output, .. }) if output.contains("Cannot find device") => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
            Ok(_) => {}
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Names of the root namespace's links that start with `stem`.
pub fn links(stem: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(stem))
        .collect();
    // Ports before the bridge (deleting a port is enough for its peer to go).
    out.sort_by_key(|n| n.ends_with("br"));
    out
}

/// Locks `subnet` for this process (a non-blocking `flock` on
/// `/run/lock/hako-testbed-<net>-<len>.lock`): two beds made at the same moment never take the
/// same one. `None` if another process holds it. Once a bed's bridge exists its route marks the
/// subnet as taken ([`is_free`]), also after the lock is gone. The (empty) lock files stay:
/// removing one that another process may have just opened would let a third take it too.
pub fn claim(subnet: Ipv4Net) -> Result<Option<std::fs::File>> {
    let dir = std::path::Path::new("/run/lock");
    std::fs::create_dir_all(dir).map_err(TestbedError::io("cannot create /run/lock"))?;
    let path = dir.join(format!(
        "hako-testbed-{}-{}.lock",
        subnet.network(),
        subnet.prefix_len()
    ));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(TestbedError::io(format!("cannot open {}", path.display())))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(TestbedError::Io {
            what: format!("cannot lock {}", path.display()),
            source: e.into(),
        }),
    }
}

/// Whether `subnet` is free: no bed is making it and no route of this machine overlaps it.
pub fn is_free(subnet: Ipv4Net) -> bool {
    matches!(claim(subnet), Ok(Some(_))) && matches!(overlapping_route(subnet), Ok(None))
}

/// A route of the root namespace whose destination overlaps `subnet`, if any.
fn overlapping_route(subnet: Ipv4Net) -> Result<Option<String>> {
    let routes = cmd::ip(&["-4", "route", "show", "table", "all"])?;
    Ok(routes
        .lines()
        .find(|l| {
            l.split_whitespace()
                .find(|w| !matches!(*w, "local" | "broadcast" | "unicast"))
                .and_then(|dst| {
                    if dst.contains('/') {
                        dst.parse::<Ipv4Net>().ok()
                    } else {
                        dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)
                    }
                })
                .is_some_and(|d| {
                    (d.prefix_len() > 0 && d.contains(&subnet.network()))
                        || subnet.contains(&d.network())
                })
        })
        .map(str::to_string))
}
