//! HTTPS through the real proxy: TLS terminated with the app's certificate picked by SNI,
//! HTTP/2 negotiated by ALPN and HTTP/1.1 still served (with upgrades), `proto=https` told to
//! the app, unknown names refused in the handshake, the HTTP→HTTPS redirect, HSTS, and ACME
//! challenges answered before routing. Real rustls clients, real hyper backends.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hako_proxy::{Proxy, ProxyConfig, Router};
use hako_tls::{ParsedCert, SiteCerts};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use support::{Mode, TestLauncher, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A test CA and a certificate it issued for `names`: (CA PEM, chain PEM, key PEM).
fn issue(names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hako proxy test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// A proxy with a plain and a TLS listener over one router; `secure.example` has a
/// certificate, `plain.example` has none.
struct Https {
    proxy: TestProxy,
    tls_addr: std::net::SocketAddr,
    ca_pem: String,
    challenges: hako_tls::Challenges,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(https_port: Option<u16>) -> Https {
    let (ca_pem, chain, key) = issue(&["secure.example"]);
    let parsed = ParsedCert::parse(&chain, &key).unwrap();
    let certs = SiteCerts::new();
    let tls_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls_listener.local_addr().unwrap();
    let config = ProxyConfig {
        https_port: Some(https_port.unwrap_or(tls_addr.port())),
        ..ProxyConfig::default()
    };
    let challenges = config.challenges.clone();
    let launcher = TestLauncher::new(Mode::Start, Duration::ZERO);
    let proxy = TestProxy::start(launcher, config.clone()).await;
    proxy.app("secure", &["secure.example"]);
    proxy.app("plain", &["plain.example"]);
    certs.set(
        "secure",
        &["secure.example".to_string()],
        &parsed.names,
        parsed.key.clone(),
    );
    // The same router behind a TLS listener, as `hako serve --https` runs it.
    let tls_proxy = Proxy::new(proxy.router.clone(), config);
    let server_config = hako_tls::server_config(certs);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tls_proxy
            .serve_tls(tls_listener, server_config, async {
                let _ = stopped.await;
            })
            .await
    });
    Https {
        proxy,
        tls_addr,
        ca_pem,
        challenges,
        _stop: stop,
    }
}

impl Https {
    /// A TLS connection to the proxy for `sni`, offering `alpn`.
    async fn connect(
        &self,
        sni: &str,
        alpn: &[&[u8]],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(hako_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(self.tls_addr).await?;
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
            .await
    }
}

async fn body(resp: http::Response<hyper::body::Incoming>) -> String {
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

#[tokio::test]
async fn h2_over_alpn_reaches_the_app_with_proto_https() {
    let h = start(None).await;
    let tls = h
        .connect("secure.example", &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Two requests on one HTTP/2 connection, at the same time.
    let get = |path: &str| {
        Request::get(format!("https://secure.example{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let (a, b) = tokio::join!(
        send.send_request(get("/headers")),
        send.clone().send_request(get("/whoami"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.status(), a.version()), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(b.status(), StatusCode::OK);
    assert!(
        a.headers().get("strict-transport-security").is_none(),
        "no HSTS unless asked"
    );
    let headers = body(a).await;
    assert!(headers.contains("x-forwarded-proto: https"), "{headers}");
    assert!(headers.contains("proto=https"), "{headers}");
    assert!(headers.contains("host: secure.example\n"), "{headers}");
    assert!(body(b).await.starts_with("secure-"));
}

#[tokio::test]
async fn http1_over_tls_still_works_with_upgrades() {
    let h = start(None).await;
    let tls = h.connect("secure.example", &[b"http/1.1"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let resp = send
        .send_request(
            Request::get("/whoami")
                .header("host", "secure.example")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        (resp.status(), resp.version()),
        (StatusCode::OK, Version::HTTP_11)
    );
    body(resp).await;
    // A WebSocket-style upgrade through TLS: 101, then bytes echoed both ways.
    let resp = send
        .send_request(
            Request::get("/ws")
                .header("host", "secure.example")
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(b"ping over tls").await.unwrap();
    let mut buf = [0u8; 13];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping over tls");

    // No ALPN at all: HTTP/1.1.
    let tls = h.connect("secure.example", &[]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
}

#[tokio::test]
async fn unknown_or_missing_names_get_a_tls_alert() {
    let h = start(None).await;
    // A routed app without a certificate, and a name nobody routes.
    for sni in ["plain.example", "nobody.example"] {
        let err = h.connect(sni, &[b"h2"]).await.unwrap_err();
        assert!(err.to_string().contains("AccessDenied"), "{sni}: {err}");
    }
    // The proxy goes on serving.
    assert!(h.connect("secure.example", &[b"h2"]).await.is_ok());
}

#[tokio::test]
async fn apps_that_want_https_get_a_redirect_and_hsts() {
    let h = start(Some(8443)).await;
    let mut route = h.proxy.app("secure", &["secure.example"]);
    route.https_redirect = true;
    route.hsts = Some(Duration::from_secs(31_536_000));
    h.proxy.router.set_app(route).unwrap();

    let raw = support::raw(
        h.proxy.addr,
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: Secure.Example:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 308"), "{raw}");
    assert!(
        raw.contains("location: https://secure.example:8443/a/b?c=1\r\n"),
        "{raw}"
    );
    assert!(
        !raw.contains("strict-transport-security"),
        "never over plain HTTP: {raw}"
    );
    // Other apps stay on plain HTTP.
    let (status, _) = support::get(h.proxy.addr, "plain.example", "/whoami").await;
    assert_eq!(status, StatusCode::OK);

    let tls = h.connect("secure.example", &[b"http/1.1"]).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            Request::get("/whoami")
                .header("host", "secure.example")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn acme_challenges_are_answered_before_routing_and_never_redirected() {
    let h = start(None).await;
    let mut route = h.proxy.app("secure", &["secure.example"]);
    route.https_redirect = true;
    h.proxy.router.set_app(route).unwrap();
    h.challenges
        .publish("secure.example", "tok-123", "tok-123.thumbprint");
    let (status, text) = support::get(
        h.proxy.addr,
        "secure.example",
        "/.well-known/acme-challenge/tok-123",
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "tok-123.thumbprint")
    );
    // Another host, or a token not in progress, is the app's business (here: the redirect).
    let (status, _) = support::get(
        h.proxy.addr,
        "secure.example",
        "/.well-known/acme-challenge/other",
    )
    .await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    let (status, _) = support::get(
        h.proxy.addr,
        "plain.example",
        "/.well-known/acme-challenge/tok-123",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the backend's own 404");
    h.challenges.withdraw("tok-123");
    let (status, _) = support::get(
        h.proxy.addr,
        "secure.example",
        "/.well-known/acme-challenge/tok-123",
    )
    .await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
}

#[test]
fn per_core_threads_serve_tls_too() {
    let (ca_pem, chain, key) = issue(&["secure.example"]);
    let parsed = ParsedCert::parse(&chain, &key).unwrap();
    let certs = SiteCerts::new();
    certs.set(
        "secure",
        &["secure.example".into()],
        &parsed.names,
        parsed.key.clone(),
    );
    let router = Router::new(
        Arc::new(hako_proxy::NoLauncher),
        Arc::new(hako_proxy::LogEvents),
    );
    router
        .set_app(hako_proxy::AppRoute::new("secure", ["secure.example"]))
        .unwrap();
    let server = Proxy::new(router, ProxyConfig::default())
        .bind_per_core("127.0.0.1:0".parse().unwrap(), 2)
        .unwrap()
        .with_tls(hako_tls::server_config(certs));
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = std::thread::spawn(move || server.run(stopped));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Https {
            proxy: TestProxy::start(Arc::new(hako_proxy::NoLauncher), ProxyConfig::default()).await,
            tls_addr: addr,
            ca_pem,
            challenges: hako_tls::Challenges::new(),
            _stop: tokio::sync::oneshot::channel().0,
        };
        for _ in 0..4 {
            let tls = h.connect("secure.example", &[b"h2"]).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let resp = send
                .send_request(
                    Request::get("https://secure.example/")
                        .body(Empty::<Bytes>::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            // No launcher: the app cannot start, and the proxy says so over h2.
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
    });
    // The clients' connections close with their runtime (an HTTP/2 shutdown waits for the
    // client to acknowledge it), then the threads stop.
    drop(rt);
    stop.send_replace(true);
    running.join().unwrap().unwrap();
}
