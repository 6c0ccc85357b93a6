//! Fuzz targets for what the proxy reads from clients: whole requests (head, chunked
//! bodies, pipelining, upgrades) through a real proxy on loopback, and the Host and
//! forwarding-header helpers on their own.
//!
//! `request` sends each input twice, as raw bytes and as a mutation of a valid request, to a
//! proxy in front of two checking backends. It asserts that the proxy answers with a
//! well-formed status line or closes, never panics, and that whatever reaches an app has
//! exactly one Host, the one it was routed by, and forwarding headers the client could not
//! forge. `cargo test` replays `fuzz/__fuzz__/<target>/{corpus,crashes}/` and then runs
//! random inputs for under a second. Long runs: README, "Fuzzing".

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use hako_proxy::headers::{normalize_host, remove_hop_by_hop, request_host};
use hako_proxy::{AppRoute, LogEvents, NoLauncher, Proxy, ProxyConfig, Router, TrustedProxies};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

const SUITE_TIME: Duration = Duration::from_millis(700);

/// Panics on threads other than the test's (the proxy's tasks), counted.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// What the backends saw that they must never see.
type Violations = Arc<Mutex<Vec<String>>>;

/// A backend for `host` that reads the whole body and checks the request's headers.
async fn backend(host: &'static str, violations: Violations) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let violations = violations.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let violations = violations.clone();
                    async move {
                        if let Some(problem) = check(host, req.headers()) {
                            violations.lock().unwrap().push(problem);
                        }
                        let _ = req.into_body().collect().await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(host))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// What an app may rely on, for requests routed to `host` from an untrusted client.
fn check(host: &str, h: &HeaderMap) -> Option<String> {
    let one = |name: &str| -> Result<&str, String> {
        let mut all = h.get_all(name).iter();
        let v = all.next().ok_or(format!("no {name}"))?;
        if all.next().is_some() {
            return Err(format!("two {name} headers: {h:?}"));
        }
        v.to_str().map_err(|_| format!("{name} is not text"))
    };
    let run = || -> Result<(), String> {
        let got = one("host")?;
        if normalize_host(got).map_err(|_| format!("bad host {got:?}"))? != host {
            return Err(format!("app {host} got Host {got:?}"));
        }
        if one("x-forwarded-host")? != got {
            return Err(format!("x-forwarded-host differs from Host: {h:?}"));
        }
        if one("x-forwarded-for")? != "127.0.0.1" || one("x-real-ip")? != "127.0.0.1" {
            return Err(format!("forged client address: {h:?}"));
        }
        if one("x-forwarded-proto")? != "http" {
            return Err(format!("forged proto: {h:?}"));
        }
        for hop in [
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "x-forwarded-port",
        ] {
            if h.contains_key(hop) {
                return Err(format!("{hop} passed: {h:?}"));
            }
        }
        Ok(())
    };
    run().err()
}

/// Seeds for mutation: valid requests of the kinds the proxy handles.
const SEEDS: [&[u8]; 8] = [
    b"GET /headers HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET http://b.example/headers HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Host: evil\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: b.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: A.example:8080\r\nContent-Length: 5\r\nConnection: Host, X-Forwarded-For\r\n\r\nhello",
    b"GET / HTTP/1.0\r\nHost: a.example\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    b"GET /headers HTTP/1.1\r\nHost: b.example\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-Port: 1\r\n\r\n",
];

/// Tokens the mutator inserts (the parts of requests that matter to a proxy).
const TOKENS: [&[u8]; 12] = [
    b"\r\n",
    b"Host: b.example\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Connection: host, content-length\r\n",
    b"X-Forwarded-Host: evil.example\r\n",
    b" ",
    b":",
    b"0\r\n\r\n",
    b"http://b.example",
    b"zz\r\n",
    b"\n",
];

/// `seed[program[0]]` changed by `program`'s following 3-byte operations.
fn mutate(program: &[u8]) -> Vec<u8> {
    let Some((&pick, ops)) = program.split_first() else {
        return SEEDS[0].to_vec();
    };
    let mut out = SEEDS[usize::from(pick) % SEEDS.len()].to_vec();
    for op in ops.chunks(3).take(16) {
        let [kind, at, arg] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        let pos = usize::from(at) * out.len() / 256;
        match kind % 4 {
            0 => out.insert(pos, arg),
            1 if !out.is_empty() => {
                out.remove(pos.min(out.len() - 1));
            }
            2 if !out.is_empty() => {
                let i = pos.min(out.len() - 1);
                out[i] = arg;
            }
            _ => {
                let token = TOKENS[usize::from(arg) % TOKENS.len()];
                out.splice(pos..pos, token.iter().copied());
            }
        }
    }
    out
}

/// Sends `bytes` on a fresh connection, half-closes it and reads what comes back.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn well_formed(reply: &[u8]) -> bool {
    reply.is_empty()
        || ((reply.starts_with(b"HTTP/1.1 ") || reply.starts_with(b"HTTP/1.0 "))
            && reply.len() >= 12
            && reply[9..12].iter().all(u8::is_ascii_digit))
}

#[test]
fn request() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let violations: Violations = Arc::default();
    let addr = rt.block_on(async {
        let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
        for (app, host) in [("a", "a.example"), ("b", "b.example")] {
            router.set_app(AppRoute::new(app, [host])).unwrap();
            let backend = backend(host, violations.clone()).await;
            router.add_ready(app, &format!("{app}-1"), backend).unwrap();
        }
        let config = ProxyConfig {
            header_read_timeout: Duration::from_millis(300),
            upstream_response_timeout: Duration::from_secs(2),
            max_body_size: 64 << 10,
            ..ProxyConfig::default()
        };
        let proxy = Proxy::new(router, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { proxy.serve(listener, std::future::pending()).await });
        addr
    });
    let hook = Once::new();
    bolero::check!(name = "request")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            hook.call_once(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    if std::thread::current().name() != Some("request") {
                        PANICS.fetch_add(1, Ordering::SeqCst);
                    }
                    previous(info)
                }));
            });
            for bytes in [input.to_vec(), mutate(input)] {
                let reply = exchange(addr, &bytes);
                assert!(
                    well_formed(&reply),
                    "{:?} → {:?}",
                    String::from_utf8_lossy(&bytes),
                    String::from_utf8_lossy(&reply[..reply.len().min(200)])
                );
                let seen = std::mem::take(&mut *violations.lock().unwrap());
                assert!(
                    seen.is_empty(),
                    "{:?}: {seen:?}",
                    String::from_utf8_lossy(&bytes)
                );
                assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the proxy panicked");
            }
        });
}

/// The Host parsing and the hop-by-hop pass on arbitrary header values.
#[test]
fn host_header() {
    bolero::check!(name = "host_header")
        .with_test_time(SUITE_TIME)
        .for_each(|input: &[u8]| {
            let (target, rest) = input.split_at(input.len() / 3);
            let mut headers = HeaderMap::new();
            for line in rest.split(|&b| b == b'\n').take(8) {
                let mut parts = line.splitn(2, |&b| b == b':');
                let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n), HeaderValue::from_bytes(v)) {
                    headers.append(n, v);
                }
            }
            let uri = std::str::from_utf8(target)
                .ok()
                .and_then(|t| t.parse::<http::Uri>().ok())
                .unwrap_or_else(|| http::Uri::from_static("/"));
            if let Ok(host) = request_host(&uri, &headers) {
                assert!(!host.is_empty() && !host.bytes().any(|b| b.is_ascii_uppercase()));
                assert!(
                    !host.contains(':') || host.starts_with('['),
                    "port kept: {host}"
                );
            }
            let had_host = headers.get(http::header::HOST).cloned();
            remove_hop_by_hop(&mut headers, false);
            assert_eq!(headers.get(http::header::HOST).cloned(), had_host);
            assert!(!headers.contains_key(http::header::CONNECTION));
            let text = String::from_utf8_lossy(input);
            if let Ok(t) = text.parse::<TrustedProxies>() {
                let again: TrustedProxies =
                    t.entries().collect::<Vec<_>>().join(",").parse().unwrap();
                assert_eq!(again, t);
            }
        });
}
