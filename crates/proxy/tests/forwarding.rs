//! What an app is told about a request: the Host it was routed by, and forwarded headers
//! that a client cannot forge (unless it is a configured trusted front proxy). Also the
//! headers a client may not strip with `Connection`, and bad chunked bodies. Real sockets.

mod support;

use hako_proxy::{NoLauncher, ProxyConfig};
use std::sync::Arc;
use support::*;

/// Two apps on real backends; `a.example` and `b.example`.
async fn two_apps(config: ProxyConfig) -> (TestProxy, Arc<Backend>, Arc<Backend>) {
    let proxy = TestProxy::start(Arc::new(NoLauncher), config).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    proxy.app("a", &["a.example"]);
    proxy.app("b", &["b.example"]);
    proxy.router.add_ready("a", "a-1", a.addr).unwrap();
    proxy.router.add_ready("b", "b-1", b.addr).unwrap();
    (proxy, a, b)
}

/// The request headers the backend saw (its `/headers` page), as (name, value) lines.
async fn seen_by_app(addr: std::net::SocketAddr, request: &[u8]) -> Vec<(String, String)> {
    let reply = raw(addr, request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn values<'a>(seen: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    seen.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn an_absolute_target_sends_the_routed_host_not_the_clients_other_host() {
    let (proxy, a, _b) = two_apps(ProxyConfig::default()).await;
    let seen = seen_by_app(
        proxy.addr,
        b"GET http://b.example/headers HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "host"), ["b.example"], "{seen:?}");
    assert_eq!(values(&seen, "x-forwarded-host"), ["b.example"], "{seen:?}");
    // With the other app's name in Host, it is still b that answers, and sees b.
    let seen = seen_by_app(
        proxy.addr,
        b"GET http://user@B.example:8080/headers HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "host"), ["B.example:8080"], "{seen:?}");
    assert_eq!(a.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_clients_forwarded_headers_are_replaced_not_passed() {
    let (proxy, _a, _b) = two_apps(ProxyConfig::default()).await;
    let seen = seen_by_app(
        proxy.addr,
        b"GET /headers HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Host: evil.example\r\n\
X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\
X-Real-IP: 203.0.113.9\r\nForwarded: for=203.0.113.9;host=evil.example;proto=https\r\n\
Connection: close\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "x-forwarded-host"), ["a.example"], "{seen:?}");
    assert_eq!(values(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen:?}");
    assert_eq!(values(&seen, "x-forwarded-proto"), ["http"], "{seen:?}");
    assert_eq!(values(&seen, "x-real-ip"), ["127.0.0.1"], "{seen:?}");
    assert!(values(&seen, "x-forwarded-port").is_empty(), "{seen:?}");
    assert_eq!(
        values(&seen, "forwarded"),
        ["for=127.0.0.1;host=a.example;proto=http"],
        "{seen:?}"
    );
}

#[tokio::test]
async fn connection_cannot_strip_the_headers_the_proxy_sets_or_needs() {
    let (proxy, _a, _b) = two_apps(ProxyConfig::default()).await;
    let seen = seen_by_app(
        proxy.addr,
        b"GET /headers HTTP/1.1\r\nHost: a.example\r\n\
Connection: Host, X-Forwarded-For, X-Forwarded-Host, Forwarded, Content-Length, X-Hop, close\r\n\
X-Hop: gone\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "host"), ["a.example"], "{seen:?}");
    assert_eq!(values(&seen, "x-forwarded-host"), ["a.example"], "{seen:?}");
    assert_eq!(values(&seen, "x-forwarded-for"), ["127.0.0.1"], "{seen:?}");
    assert!(values(&seen, "x-hop").is_empty(), "{seen:?}");
}

#[tokio::test]
async fn a_bad_chunk_size_is_the_clients_fault_400() {
    let (proxy, a, _b) = two_apps(ProxyConfig::default()).await;
    for body in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\r\nffffffffffffffffff\r\n",
    ] {
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        request.extend_from_slice(body);
        let reply = raw(proxy.addr, &request).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(reply.contains("body"), "says what was wrong: {reply}");
    }
    // The app is unharmed and still answers.
    let ok = raw(
        proxy.addr,
        b"GET /whoami HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let _ = a;
}

#[tokio::test]
async fn a_trusted_front_proxys_headers_are_kept_and_extended() {
    let config = ProxyConfig {
        trusted_proxies: "127.0.0.0/8".parse().unwrap(),
        ..ProxyConfig::default()
    };
    let (proxy, _a, _b) = two_apps(config).await;
    let seen = seen_by_app(
        proxy.addr,
        b"GET /headers HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Host: www.a.example\r\n\
X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "host"), ["a.example"], "{seen:?}");
    assert_eq!(
        values(&seen, "x-forwarded-host"),
        ["www.a.example"],
        "{seen:?}"
    );
    assert_eq!(
        values(&seen, "x-forwarded-for"),
        ["203.0.113.9, 127.0.0.1"],
        "{seen:?}"
    );
    assert_eq!(values(&seen, "x-forwarded-proto"), ["https"], "{seen:?}");
    // Trusting another network changes nothing for this client: replaced again.
    let config = ProxyConfig {
        trusted_proxies: "10.0.0.0/8".parse().unwrap(),
        ..ProxyConfig::default()
    };
    let (proxy, _a, _b) = two_apps(config).await;
    let seen = seen_by_app(
        proxy.addr,
        b"GET /headers HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Host: www.a.example\r\n\
Connection: close\r\n\r\n",
    )
    .await;
    assert_eq!(values(&seen, "x-forwarded-host"), ["a.example"], "{seen:?}");
}
