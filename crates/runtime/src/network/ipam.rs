//! Address management for one bridge subnet: the gateway takes the first host address,
//! containers get the others, lowest free first.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// An IPv4 subnet such as `10.88.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0))
    }

    /// The bridge's own address (first host address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix as u32)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("subnet {s:?} is not valid: write it like 10.88.0.0/16 (prefix 8 to 28)");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let base: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=28).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix as u32);
        if u32::from(base) & !mask != 0 {
            return Err(format!(
                "subnet {s:?} has host bits set: use {}/{prefix}",
                Ipv4Addr::from(u32::from(base) & mask)
            ));
        }
        Ok(Subnet { base, prefix })
    }
}

/// Hands out container addresses in a subnet.
#[derive(Debug)]
pub(crate) struct Ipam {
    subnet: Subnet,
    used: BTreeSet<u32>,
    next: u32,
}

impl Ipam {
    pub(crate) fn new(subnet: Subnet) -> Ipam {
        Ipam {
            subnet,
            used: BTreeSet::new(),
            next: 2,
        }
    }

    /// The next free address, or None when the subnet is full.
    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = self.subnet.size();
        // Offsets 0 (network), 1 (gateway) and size-1 (broadcast) are never given out.
        let usable = size - 3;
        for _ in 0..usable {
            let off = self.next;
            self.next = if self.next + 1 >= size - 1 {
                2
            } else {
                self.next + 1
            };
            if self.used.insert(off) {
                return Some(Ipv4Addr::from(u32::from(self.subnet.base) + off));
            }
        }
        None
    }

    pub(crate) fn release(&mut self, addr: Ipv4Addr) {
        let off = u32::from(addr).wrapping_sub(u32::from(self.subnet.base));
        self.used.remove(&off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_subnets() {
        let s: Subnet = "10.88.0.0/16".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 0, 0));
        assert!("10.88.0.1/16".parse::<Subnet>().is_err());
        assert!("10.88.0.0/30".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
    }

    #[test]
    fn allocates_distinct_until_full_then_reuses() {
        let mut ipam = Ipam::new("10.1.2.0/28".parse().unwrap());
        let mut got = Vec::new();
        while let Some(a) = ipam.allocate() {
            got.push(a);
        }
        assert_eq!(got.len(), 13); // 16 - network - gateway - broadcast
        assert_eq!(got[0], Ipv4Addr::new(10, 1, 2, 2));
        assert!(!got.contains(&Ipv4Addr::new(10, 1, 2, 15)));
        ipam.release(got[5]);
        assert_eq!(ipam.allocate(), Some(got[5]));
        assert_eq!(ipam.allocate(), None);
    }
}
