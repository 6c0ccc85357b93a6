//! Header work on the request path: finding the site name (Host), removing
//! hop-by-hop headers, and setting X-Forwarded-For/-Proto/-Host.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;
use std::net::IpAddr;

/// Errors in a request's Host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// No Host header and no absolute URI.
    #[error("request has no Host header; send Host: <site name>")]
    Missing,
    /// Host present but not a valid name.
    #[error("Host header is not a valid host name; send Host: <site name>[:port]")]
    Invalid,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The host name a request is for, lowercased, without port.
///
/// HTTP/1.1 puts it in `Host`; an absolute-form request target wins over it.
/// Borrows when the name is already lowercase (the usual case).
pub fn request_host<'a>(
    uri: &'a http::Uri,
    headers: &'a HeaderMap,
) -> Result<Cow<'a, str>, HostError> {
    let raw = match uri.host() {
        Some(host) => host,
        None => {
            let mut values = headers.get_all(header::HOST).iter();
            let value = values.next().ok_or(HostError::Missing)?;
            if values.next().is_some() {
                return Err(HostError::Invalid);
            }
            value.to_str().map_err(|_| HostError::Invalid)?
        }
    };
    normalize_host(raw)
}

/// Lowercase a `host[:port]` and strip the port; rejects anything that is not
/// a DNS name or an IP literal.
pub fn normalize_host(raw: &str) -> Result<Cow<'_, str>, HostError> {
    let name = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: "[::1]" or "[::1]:8080"
        let end = rest.find(']').ok_or(HostError::Invalid)?;
        let after = &rest[end + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return Err(HostError::Invalid);
        }
        let inner = &rest[..end];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(HostError::Invalid);
        }
        &raw[..end + 2]
    } else {
        let (name, port) = match raw.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (raw, None),
        };
        if port.is_some_and(|p| !is_port(p)) {
            return Err(HostError::Invalid);
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        let valid_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
        if name.is_empty()
            || name.len() > 253
            || !name.bytes().all(valid_char)
            || name.starts_with('.')
        {
            return Err(HostError::Invalid);
        }
        name
    };
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(name.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(name))
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// True when the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Remove hop-by-hop headers: the fixed list of RFC 9110 §7.6.1 and those named
/// in `Connection`. With `upgrade`, keeps `Connection: upgrade` and `Upgrade`
/// so a protocol switch reaches the other side.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if !(upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    for name in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The client's address as a header value, made once per connection so that
/// each request only clones it (a reference count).
pub fn client_value(client: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&client.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Set `X-Forwarded-For` (appending the client to an existing list),
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (the Host the client sent).
/// `client` comes from [`client_value`].
pub fn set_forwarded(headers: &mut HeaderMap, client: &HeaderValue, proto: &'static str) {
    let mut existing = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
    let value = if existing.peek().is_none() {
        client.clone()
    } else {
        let mut joined = Vec::with_capacity(64);
        for value in existing {
            joined.extend_from_slice(value.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(client.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client.clone())
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_lowercased_and_port_stripped() {
        assert_eq!(normalize_host("Blog.Example:8080").unwrap(), "blog.example");
        assert!(matches!(
            normalize_host("blog.example").unwrap(),
            Cow::Borrowed("blog.example")
        ));
        assert_eq!(normalize_host("blog.example.").unwrap(), "blog.example");
        assert_eq!(normalize_host("[::1]:80").unwrap(), "[::1]");
        assert_eq!(normalize_host("127.0.0.1:80").unwrap(), "127.0.0.1");
    }

    #[test]
    fn bad_hosts_are_rejected() {
        for bad in [
            "",
            ":80",
            "a b",
            "blog.example:http",
            "[::1",
            "[::1]x",
            "bad/host",
            ".x",
            "x:123456",
        ] {
            assert_eq!(normalize_host(bad), Err(HostError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn host_comes_from_absolute_uri_then_header() {
        let mut headers = HeaderMap::new();
        let origin: http::Uri = "/x".parse().unwrap();
        assert_eq!(request_host(&origin, &headers), Err(HostError::Missing));
        headers.insert(header::HOST, HeaderValue::from_static("A.example"));
        assert_eq!(request_host(&origin, &headers).unwrap(), "a.example");
        let absolute: http::Uri = "http://B.example:81/x".parse().unwrap();
        assert_eq!(request_host(&absolute, &headers).unwrap(), "b.example");
        headers.append(header::HOST, HeaderValue::from_static("c.example"));
        assert_eq!(request_host(&origin, &headers), Err(HostError::Invalid));
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-app", HeaderValue::from_static("kept"));
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-app"], "kept");
    }

    #[test]
    fn upgrade_keeps_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
    }

    #[test]
    fn forwarded_headers_append_client() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("blog.example:8080"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        set_forwarded(&mut h, &client_value("192.0.2.7".parse().unwrap()), "http");
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2, 192.0.2.7");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "blog.example:8080");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, &client_value("::1".parse().unwrap()), "https");
        assert_eq!(fresh[&X_FORWARDED_FOR], "::1");
        assert!(!fresh.contains_key(&X_FORWARDED_HOST));
    }

    /// A small fuzz: random bytes never panic the parser, and whatever it
    /// accepts is lowercase, port-free and made of host characters only.
    #[test]
    fn random_hosts_never_panic_and_accepted_ones_are_clean() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"aZ09-._:[]/ @\x7f%\xc3\xa9";
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i % 8 * 8)) as usize + i) % alphabet.len()])
                .collect();
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(host) = normalize_host(text) {
                assert!(!host.is_empty());
                assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{host}");
                let ipv6 = host.starts_with('[');
                assert!(
                    host.bytes().all(|b| b.is_ascii_alphanumeric()
                        || b"-._".contains(&b)
                        || (ipv6 && b"[]:".contains(&b))),
                    "{text:?} -> {host:?}"
                );
            }
        }
    }
}
