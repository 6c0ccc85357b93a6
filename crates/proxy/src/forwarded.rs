//! What the app is told about who sent a request and how: `Host`, `X-Forwarded-For`,
//! `-Host`, `-Proto`, `X-Real-IP` and `Forwarded` (RFC 7239), under one trust rule.
//!
//! **The trust rule.** A client is trusted only when its address is in
//! [`TrustedProxies`] (CIDRs; none by default). From a client that is *not* trusted, every
//! forwarding header it sent is dropped (also `X-Forwarded-Port`, `-Prefix`, `-Server`,
//! `-Ssl`, `Front-End-Https`, `X-Url-Scheme`) and hako sets its own: the client's address,
//! the scheme it used to reach hako, and the host the request was routed by. From a trusted
//! front proxy, its `X-Forwarded-For` and `Forwarded` lists are kept and hako appends its
//! hop (the front proxy's address), and its `X-Forwarded-Host`, `-Proto`, `X-Real-IP` and
//! other forwarding headers are kept (hako fills in those it did not send).
//!
//! Either way the app gets `Host` = the host the request was routed by: for an
//! absolute-form target (`GET http://b.example/ HTTP/1.1`) that is the target's authority
//! (without user info), whatever `Host` the client also sent (RFC 9112 §3.2.2).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub(crate) static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Forwarding headers hako neither sets nor trusts from an untrusted client: dropped.
static UNTRUSTED_ONLY_DROPPED: [HeaderName; 6] = [
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("front-end-https"),
    HeaderName::from_static("x-url-scheme"),
];

/// True for the headers hako sets on every forwarded request (so a client's `Connection`
/// header may not name them as hop-by-hop).
pub(crate) fn is_set_by_proxy(name: &HeaderName) -> bool {
    name == header::HOST
        || name == X_FORWARDED_FOR
        || name == X_FORWARDED_PROTO
        || name == X_FORWARDED_HOST
        || name == X_REAL_IP
        || name == FORWARDED
}

/// Addresses of front proxies whose forwarding headers hako believes (CIDRs, IPv4 or IPv6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted-proxy entry that is not a CIDR or an address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "trusted proxy {0:?} is not an address or CIDR: write it like 10.0.0.0/8, 192.0.2.7 or fd00::/8"
)]
pub struct TrustedProxyError(pub String);

impl TrustedProxies {
    /// Trust nobody (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses entries like `10.0.0.0/8`, `192.0.2.7` (one address) or `fd00::/8`.
    pub fn parse<I, S>(entries: I) -> Result<Self, TrustedProxyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|e| parse_net(e.as_ref()))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether `addr` (an IPv4-mapped IPv6 address counts as its IPv4 address) is trusted.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, as CIDRs.
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|n| n.to_string())
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxyError;

    /// A comma-separated list (the command-line form); empty means none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.split(',').map(str::trim).filter(|e| !e.is_empty()))
    }
}

fn parse_net(entry: &str) -> Result<IpNet, TrustedProxyError> {
    let bad = || TrustedProxyError(entry.to_owned());
    if entry.contains('/') {
        let net: IpNet = entry.parse().map_err(|_| bad())?;
        // 10.0.0.1/8 is most likely a typo for 10.0.0.0/8; say so rather than guess.
        if net.network() != net.addr() {
            return Err(bad());
        }
        Ok(net)
    } else {
        let addr: IpAddr = entry.parse().map_err(|_| bad())?;
        Ok(IpNet::from(addr.to_canonical()))
    }
}

/// One client connection as the forwarding rule sees it, made once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address as a header value (each request only clones it).
    value: HeaderValue,
    /// Its `Forwarded` node: `1.2.3.4` or `"[::1]"`.
    node: String,
    trusted: bool,
}

impl Peer {
    /// The peer at `addr`, trusted if `trusted` contains it.
    pub fn new(addr: IpAddr, trusted: &TrustedProxies) -> Self {
        let addr = addr.to_canonical();
        let node = match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("\"[{a}]\""),
        };
        Self {
            value: HeaderValue::from_str(&addr.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            node,
            trusted: trusted.contains(addr),
        }
    }

    /// Whether this peer's forwarding headers are believed.
    pub fn trusted(&self) -> bool {
        self.trusted
    }
}

/// Sets `Host` to `routed_host` and the forwarding headers under the trust rule (module docs).
/// `proto` is the scheme clients use to reach hako (`http` unless a TLS front says otherwise).
pub fn set_forwarding(
    headers: &mut HeaderMap,
    peer: &Peer,
    routed_host: HeaderValue,
    proto: &'static str,
) {
    let ours = forwarded_element(&peer.node, &routed_host, proto);
    if peer.trusted {
        let xff = append_list(headers, &X_FORWARDED_FOR, peer.value.as_bytes());
        headers.insert(X_FORWARDED_FOR.clone(), xff);
        let fwd = append_list(headers, &FORWARDED, ours.as_bytes());
        headers.insert(FORWARDED.clone(), fwd);
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
        }
        if !headers.contains_key(&X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST.clone(), routed_host.clone());
        }
        if !headers.contains_key(&X_REAL_IP) {
            headers.insert(X_REAL_IP.clone(), peer.value.clone());
        }
    } else {
        for name in &UNTRUSTED_ONLY_DROPPED {
            headers.remove(name);
        }
        // `insert` replaces every value a client sent under these names.
        headers.insert(X_FORWARDED_FOR.clone(), peer.value.clone());
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
        headers.insert(X_FORWARDED_HOST.clone(), routed_host.clone());
        headers.insert(X_REAL_IP.clone(), peer.value.clone());
        let fwd = HeaderValue::from_str(&ours).unwrap_or_else(|_| peer.value.clone());
        headers.insert(FORWARDED.clone(), fwd);
    }
    headers.insert(header::HOST, routed_host);
}

/// The value of `Host` for a request routed by `uri`'s authority (absolute form), else by
/// its one `Host` header (already checked by [`crate::headers::request_host`]).
pub fn routed_host(uri: &http::Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.host() {
        Some(host) => {
            let text = match uri.port_u16() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            HeaderValue::from_str(&text).ok()
        }
        None => headers.get(header::HOST).cloned(),
    }
}

/// `for=…;host=…;proto=…`, quoting the host when it is not a token (it has a port).
fn forwarded_element(node: &str, host: &HeaderValue, proto: &str) -> String {
    let host = host.to_str().unwrap_or("");
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !host.is_empty() && host.bytes().all(token) {
        format!("for={node};host={host};proto={proto}")
    } else {
        let quoted = host.replace('\\', "\\\\").replace('"', "\\\"");
        format!("for={node};host=\"{quoted}\";proto={proto}")
    }
}

/// Every value of `name` joined with ", ", then `last`.
fn append_list(headers: &HeaderMap, name: &HeaderName, last: &[u8]) -> HeaderValue {
    let mut joined = Vec::with_capacity(64);
    for value in headers.get_all(name) {
        joined.extend_from_slice(value.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(last);
    HeaderValue::from_bytes(&joined)
        .or_else(|_| HeaderValue::from_bytes(last))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, trusted: &str) -> Peer {
        Peer::new(addr.parse().unwrap(), &trusted.parse().unwrap())
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses_and_refuse_the_rest() {
        let t: TrustedProxies = "10.0.0.0/8, 192.0.2.7,fd00::/8".parse().unwrap();
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("192.0.2.7".parse().unwrap()));
        assert!(!t.contains("192.0.2.8".parse().unwrap()));
        assert!(t.contains("fd00::1".parse().unwrap()));
        assert!(t.contains("::ffff:10.9.9.9".parse().unwrap()), "mapped v4");
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "example.com", "10.0.0", "*"] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(err.to_string().contains("CIDR"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_untrusted_client_is_described_by_hako_alone() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("evil.example"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        h.insert(&X_FORWARDED_HOST, HeaderValue::from_static("evil.example"));
        h.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        h.insert("x-forwarded-port", HeaderValue::from_static("443"));
        h.insert(&FORWARDED, HeaderValue::from_static("for=1.1.1.1"));
        let p = peer("192.0.2.7", "");
        let host = HeaderValue::from_static("blog.example:8080");
        set_forwarding(&mut h, &p, host, "http");
        assert_eq!(h[header::HOST], "blog.example:8080");
        assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[&X_FORWARDED_HOST], "blog.example:8080");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_REAL_IP], "192.0.2.7");
        assert!(!h.contains_key("x-forwarded-port"));
        assert_eq!(
            h[&FORWARDED],
            "for=192.0.2.7;host=\"blog.example:8080\";proto=http"
        );
    }

    #[test]
    fn a_trusted_front_proxy_keeps_its_headers_and_gets_appended() {
        let mut h = HeaderMap::new();
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        h.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        h.insert(&X_FORWARDED_HOST, HeaderValue::from_static("www.example"));
        h.insert("x-forwarded-port", HeaderValue::from_static("443"));
        h.insert(&FORWARDED, HeaderValue::from_static("for=203.0.113.9"));
        let p = peer("::ffff:10.0.0.5", "10.0.0.0/8");
        assert!(p.trusted());
        set_forwarding(&mut h, &p, HeaderValue::from_static("blog.example"), "http");
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.9, 10.0.0.5");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "www.example");
        assert_eq!(h["x-forwarded-port"], "443");
        assert_eq!(h[&X_REAL_IP], "10.0.0.5");
        assert_eq!(
            h[&FORWARDED],
            "for=203.0.113.9, for=10.0.0.5;host=blog.example;proto=http"
        );
    }

    #[test]
    fn ipv6_peers_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        set_forwarding(
            &mut h,
            &peer("2001:db8::1", ""),
            HeaderValue::from_static("a.example"),
            "https",
        );
        assert_eq!(h[&X_FORWARDED_FOR], "2001:db8::1");
        assert_eq!(
            h[&FORWARDED],
            "for=\"[2001:db8::1]\";host=a.example;proto=https"
        );
    }

    #[test]
    fn the_routed_host_of_an_absolute_target_drops_user_info() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("evil.example"));
        let uri: http::Uri = "http://user:pw@B.example:81/x".parse().unwrap();
        assert_eq!(routed_host(&uri, &h).unwrap(), "B.example:81");
        let origin: http::Uri = "/x".parse().unwrap();
        assert_eq!(routed_host(&origin, &h).unwrap(), "evil.example");
    }
}
