//! Header work on the request path: finding the site name (Host) and removing hop-by-hop
//! headers. What the app is told about the client is in [`crate::forwarded`].

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;

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

/// Headers a `Connection` list may not remove: those the proxy sets (Host, X-Forwarded-*,
/// Forwarded, X-Real-IP) or needs to frame the message (Content-Length). Transfer-Encoding
/// is always removed and the body re-framed by the proxy; Upgrade is handled on its own.
fn never_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH || crate::forwarded::is_set_by_proxy(name)
}

/// Remove hop-by-hop headers: the fixed list of RFC 9110 §7.6.1 and those named
/// in `Connection` (except the ones the proxy sets or needs: `Connection: Host` does not
/// strip Host). With `upgrade`, keeps `Connection: upgrade` and `Upgrade`
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
            let kept = never_hop_by_hop(&name) || (upgrade && name == header::UPGRADE);
            if !kept {
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
    fn connection_cannot_name_what_the_proxy_sets_or_needs() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Host, content-length, X-Forwarded-For, forwarded, x-gone"),
        );
        h.insert(header::HOST, HeaderValue::from_static("a.example"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
        h.insert("x-gone", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h[header::HOST], "a.example");
        assert_eq!(h[header::CONTENT_LENGTH], "3");
        assert!(h.contains_key("x-forwarded-for") && h.contains_key("forwarded"));
        assert!(!h.contains_key("x-gone") && !h.contains_key(header::CONNECTION));
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
