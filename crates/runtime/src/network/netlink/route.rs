//! IPv4 routes over rtnetlink: list the main table, replace or delete one route tagged with a
//! routing protocol number (as `ip route replace … proto N` does). Used by
//! [`crate::cluster_routes`].

use std::io;
use std::net::Ipv4Addr;

use super::{Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, Netlink, attributes};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLM_F_REPLACE: u16 = 0x100;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
/// The main routing table (`ip route` without `table`).
pub(crate) const RT_TABLE_MAIN: u32 = 254;
const RT_SCOPE_UNIVERSE: u8 = 0;
/// The scope of routes to directly connected networks.
pub(crate) const RT_SCOPE_LINK: u8 = 253;
/// In a delete request: match routes of any scope.
const RT_SCOPE_NOWHERE: u8 = 255;
const RTN_UNICAST: u8 = 1;

/// An IPv4 route as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub dst: Ipv4Addr,
    pub dst_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub protocol: u8,
    pub table: u32,
    pub scope: u8,
    pub kind: u8,
    pub oif: Option<u32>,
    pub priority: u32,
}

/// The fixed part of a route message (`struct rtmsg`).
fn rtmsg(m: &mut Msg, dst_len: u8, protocol: u8, scope: u8, kind: u8) {
    m.buf.push(libc::AF_INET as u8);
    m.buf.push(dst_len);
    m.buf.push(0); // src_len
    m.buf.push(0); // tos
    m.buf.push(RT_TABLE_MAIN as u8);
    m.buf.push(protocol);
    m.buf.push(scope);
    m.buf.push(kind);
    m.buf.extend_from_slice(&0u32.to_ne_bytes()); // flags
}

impl Netlink {
    /// Every IPv4 route of every table in this namespace.
    pub(crate) fn routes(&self) -> io::Result<Vec<Route>> {
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_DUMP);
        rtmsg(&mut m, 0, 0, 0, 0);
        let mut out = Vec::new();
        self.dump(m.finish(), |kind, p| {
            if kind != RTM_NEWROUTE || p.len() < 12 || p[0] != libc::AF_INET as u8 {
                return;
            }
            let mut r = Route {
                dst: Ipv4Addr::UNSPECIFIED,
                dst_len: p[1],
                gateway: None,
                protocol: p[5],
                table: u32::from(p[4]),
                scope: p[6],
                kind: p[7],
                oif: None,
                priority: 0,
            };
            let addr = |v: &[u8]| <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
            let num = |v: &[u8]| <[u8; 4]>::try_from(v).ok().map(u32::from_ne_bytes);
            for (t, v) in attributes(&p[12..]) {
                match t {
                    RTA_DST => r.dst = addr(v).unwrap_or(r.dst),
                    RTA_GATEWAY => r.gateway = addr(v),
                    RTA_OIF => r.oif = num(v),
                    RTA_PRIORITY => r.priority = num(v).unwrap_or(0),
                    RTA_TABLE => r.table = num(v).unwrap_or(r.table),
                    _ => {}
                }
            }
            out.push(r);
        })?;
        Ok(out)
    }

    /// Adds, or replaces, the main table's route to `dst/dst_len` (metric 0) with one via
    /// `gateway`, tagged `protocol`. The kernel replaces whatever route has that destination
    /// and metric, whoever made it: callers check first.
    pub(crate) fn replace_route(
        &self,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Ipv4Addr,
        protocol: u8,
    ) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        rtmsg(&mut m, dst_len, protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST);
        m.attr(RTA_DST, &dst.octets());
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.request(m.finish())
    }

    /// Deletes the main table's route to `dst/dst_len` tagged `protocol` (and no other); one
    /// that is already gone is not an error.
    pub(crate) fn delete_route(&self, dst: Ipv4Addr, dst_len: u8, protocol: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELROUTE, NLM_F_ACK);
        rtmsg(&mut m, dst_len, protocol, RT_SCOPE_NOWHERE, 0);
        m.attr(RTA_DST, &dst.octets());
        match self.request(m.finish()) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replace_request_carries_destination_gateway_and_protocol() {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        rtmsg(&mut m, 24, 77, RT_SCOPE_UNIVERSE, RTN_UNICAST);
        m.attr(RTA_DST, &[10, 77, 2, 0]);
        m.attr(RTA_GATEWAY, &[10, 99, 0, 12]);
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        let body = &b[16..];
        assert_eq!(
            (body[0], body[1], body[4], body[5], body[7]),
            (libc::AF_INET as u8, 24, 254, 77, RTN_UNICAST)
        );
        assert_eq!(
            attributes(&body[12..]),
            vec![
                (RTA_DST, &[10, 77, 2, 0][..]),
                (RTA_GATEWAY, &[10, 99, 0, 12][..])
            ]
        );
    }
}
