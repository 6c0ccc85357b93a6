//! The proxy as an HTTP/1.1 server: Host routing, bad requests, limits,
//! streaming, upgrades, forwarded headers and graceful shutdown. Real sockets.

mod support;

use bytes::Bytes;
use hako_proxy::{NoLauncher, ProxyConfig};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

async fn proxy_with(config: ProxyConfig) -> TestProxy {
    TestProxy::start(Arc::new(NoLauncher), config).await
}

async fn one_app(config: ProxyConfig) -> (TestProxy, Arc<Backend>) {
    let proxy = proxy_with(config).await;
    let backend = Backend::start("a").await;
    proxy.app("a", &["a.example"]);
    proxy.router.add_ready("a", "a-1", backend.addr).unwrap();
    (proxy, backend)
}

#[tokio::test]
async fn routes_by_host_ignoring_case_and_port() {
    let proxy = proxy_with(ProxyConfig::default()).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    proxy.app("a", &["a.example"]);
    proxy.app("b", &["b.example", "www.b.example"]);
    proxy.router.add_ready("a", "a-1", a.addr).unwrap();
    proxy.router.add_ready("b", "b-1", b.addr).unwrap();
    let mut client = Client::connect(proxy.addr).await;
    assert_eq!(
        client.get("A.Example:8080", "/whoami").await,
        (StatusCode::OK, "a".into())
    );
    assert_eq!(
        client.get("b.example", "/whoami").await,
        (StatusCode::OK, "b".into())
    );
    assert_eq!(
        client.get("WWW.B.EXAMPLE", "/whoami").await,
        (StatusCode::OK, "b".into())
    );
    // Absolute-form target wins over Host.
    let raw = raw(
        proxy.addr,
        b"GET http://b.example/whoami HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 200") && raw.ends_with("\r\n\r\nb"),
        "{raw}"
    );
}

#[tokio::test]
async fn unknown_host_gets_a_short_404_page() {
    let (proxy, _backend) = one_app(ProxyConfig::default()).await;
    let (status, body) = get(proxy.addr, "nope.example", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("nope.example") && body.contains("<h1>404 Not Found</h1>"),
        "{body}"
    );
    assert!(body.len() < 1024);
}

#[tokio::test]
async fn bad_or_missing_host_gets_400() {
    let (proxy, backend) = one_app(ProxyConfig::default()).await;
    let missing = raw(proxy.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 400"), "{missing}");
    let bad = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let two = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn malformed_request_gets_400_and_other_connections_carry_on() {
    let (proxy, _backend) = one_app(ProxyConfig::default()).await;
    let mut good = Client::connect(proxy.addr).await;
    assert_eq!(good.get("a.example", "/whoami").await.0, StatusCode::OK);
    let reply = raw(proxy.addr, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply:?}");
    let reply = raw(proxy.addr, b"GET /\x01 HTTP/1.1\r\nHost: a.example\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply:?}");
    // The keep-alive connection opened before is unharmed.
    assert_eq!(
        good.get("a.example", "/whoami").await,
        (StatusCode::OK, "a".into())
    );
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let config = ProxyConfig {
        max_header_size: 8 * 1024,
        ..ProxyConfig::default()
    };
    let (proxy, backend) = one_app(config).await;
    let big = "x".repeat(16 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: a.example\r\nX-Big: {big}\r\n\r\n");
    let reply = raw(proxy.addr, request.as_bytes()).await;
    assert!(
        reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(100)]
    );
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // Headers within the limit pass.
    let ok = format!(
        "GET /whoami HTTP/1.1\r\nHost: a.example\r\nX-Small: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(1000)
    );
    assert!(
        raw(proxy.addr, ok.as_bytes())
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let config = ProxyConfig {
        max_body_size: 1000,
        ..ProxyConfig::default()
    };
    let (proxy, backend) = one_app(config).await;
    // Declared too large: refused before any instance is contacted.
    let declared = raw(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5000\r\n\r\n",
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // Chunked and too large: cut off while streaming.
    let mut client = Client::connect(proxy.addr).await;
    let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = (0..4)
        .map(|_| Ok(Frame::data(Bytes::from(vec![b'z'; 400]))))
        .collect();
    let body = StreamBody::new(futures_stream(chunks)).boxed();
    let req = Request::post("/echo")
        .header("host", "a.example")
        .body(body)
        .unwrap();
    let status = client.send(req).await.status();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Within the limit: echoed whole.
    let (status, body) = {
        let req = Request::post("/echo")
            .header("host", "a.example")
            .body(
                http_body_util::Full::new(Bytes::from(vec![b'k'; 900]))
                    .map_err(|n| match n {})
                    .boxed(),
            )
            .unwrap();
        let resp = Client::connect(proxy.addr).await.send(req).await;
        (resp.status(), body_string(resp).await)
    };
    assert_eq!((status, body.len()), (StatusCode::OK, 900));
}

fn futures_stream<T: Send + 'static>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Send {
    let (tx, rx) = mpsc::unbounded_channel();
    for item in items {
        tx.send(item).ok().unwrap();
    }
    Unbounded(rx)
}

struct Unbounded<T>(mpsc::UnboundedReceiver<T>);

impl<T> futures_core::Stream for Unbounded<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn chunked_upload_and_download_stream_without_buffering() {
    let (proxy, backend) = one_app(ProxyConfig::default()).await;
    // Upload: each chunk comes back through the proxy before the next is sent.
    let (tx, rx) = mpsc::unbounded_channel::<Result<Frame<Bytes>, std::io::Error>>();
    let req = Request::post("/echo")
        .header("host", "a.example")
        .body(StreamBody::new(Unbounded(rx)).boxed())
        .unwrap();
    let mut client = Client::connect(proxy.addr).await;
    tx.send(Ok(Frame::data(Bytes::from_static(b"one"))))
        .unwrap();
    let resp = client.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"one");
    tx.send(Ok(Frame::data(Bytes::from_static(b"two"))))
        .unwrap();
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&second[..], b"two");
    drop(tx);
    assert!(body.frame().await.is_none());

    // Download: the first chunk arrives while the app still holds the second.
    let resp = Client::connect(proxy.addr)
        .await
        .send(get_request("a.example", "/stream"))
        .await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first");
    backend.release(1);
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&second[..], b"second");
}

#[tokio::test]
async fn upgrade_is_tunnelled_both_ways_and_counted() {
    let (proxy, _backend) = one_app(ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    let req = Request::get("/ws")
        .header("host", "a.example")
        .header("connection", "Upgrade")
        .header("upgrade", "echo")
        .body(empty())
        .unwrap();
    let resp = client.send(req).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()["upgrade"], "echo");
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    for msg in [&b"hello"[..], b"world"] {
        io.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, msg);
    }
    let snapshot = proxy.router.instances("a").unwrap();
    assert_eq!((snapshot[0].upgraded, snapshot[0].in_flight), (1, 0));
    drop(io);
    wait_until("the tunnel to close", || {
        proxy.router.instances("a").unwrap()[0].upgraded == 0
    })
    .await;
}

#[tokio::test]
async fn forwarded_headers_set_and_hop_by_hop_removed() {
    // The client is a trusted front proxy: its X-Forwarded-For gets the hop appended.
    // (Untrusted clients: tests/forwarding.rs.)
    let config = ProxyConfig {
        trusted_proxies: "127.0.0.1".parse().unwrap(),
        ..ProxyConfig::default()
    };
    let (proxy, _backend) = one_app(config).await;
    let request =
        b"GET /headers HTTP/1.1\r\nHost: A.example:8080\r\nX-Forwarded-For: 203.0.113.9\r\n\
Connection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-App: kept\r\n\r\n";
    let reply = raw(proxy.addr, request).await;
    let seen = reply.split("\r\n\r\n").nth(1).unwrap().to_owned();
    assert!(
        seen.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-host: A.example:8080\n"),
        "{seen}"
    );
    assert!(seen.contains("x-app: kept\n"), "{seen}");
    assert!(
        !seen.contains("x-hop") && !seen.contains("keep-alive"),
        "{seen}"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let (mut proxy, backend) = one_app(ProxyConfig::default()).await;
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move { get(addr, "a.example", "/hold").await });
    backend.wait_held(1).await;
    proxy.shutdown();
    wait_until("the listener to close", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(!proxy.served.is_finished());
    backend.release(1);
    assert_eq!(in_flight.await.unwrap(), (StatusCode::OK, "a".into()));
    tokio::time::timeout(Duration::from_secs(5), &mut proxy.served)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let config = ProxyConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let (proxy, _backend) = one_app(config).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "kept open while idle for the timeout"
    );
}

#[tokio::test]
async fn slow_request_head_is_cut_off() {
    let config = ProxyConfig {
        header_read_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    };
    let (proxy, backend) = one_app(config).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: a.exa")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The proxy closes the connection (a reset is fine too); the timeout guards against it never doing so.
    let _closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .expect("connection closed in time");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn head_requests_get_headers_only_and_keep_the_connection_usable() {
    let (proxy, backend) = one_app(ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    for _ in 0..3 {
        let req = Request::head("/whoami")
            .header("host", "a.example")
            .body(empty())
            .unwrap();
        let resp = client.send(req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-length"], "1");
        assert_eq!(body_string(resp).await, "");
        assert_eq!(
            client.get("a.example", "/whoami").await,
            (StatusCode::OK, "a".into())
        );
    }
    assert_eq!(
        backend
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(proxy.router.instances("a").unwrap()[0].in_flight, 0);
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let (proxy, backend) = one_app(ProxyConfig::default()).await;
    let mut request = String::from("GET / HTTP/1.1\r\nHost: a.example\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let reply = raw(proxy.addr, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert_eq!(
        backend.requests.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}
