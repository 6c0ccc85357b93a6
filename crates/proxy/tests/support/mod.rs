//! Shared pieces of the proxy's integration tests: real hyper backends on
//! ephemeral ports, a launcher that starts them, a proxy in front, and a client.
//! (`support/mod.rs` rather than `support.rs` so cargo does not take it for a test.)

#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use hako_proxy::{
    AppRoute, LaunchError, Launched, Launcher, Proxy, ProxyConfig, ProxyEvent, Router,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

pub type TestBody = BoxBody<Bytes, std::io::Error>;

/// A real HTTP/1.1 server that answers:
/// - `/whoami`: its name; `/close`: its name, then it closes the connection;
/// - `/headers`: the request headers, one `name: value` per line;
/// - `/echo`: the request body, streamed back as it comes;
/// - `/hold`: waits until the test calls `release`, then its name;
/// - `/stream`: chunk "first", then (after `release`) chunk "second";
/// - `/ws`: 101 to `Upgrade: echo`, then echoes bytes.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub requests: AtomicUsize,
    pub connections: AtomicUsize,
    held: watch::Sender<usize>,
    gate: Semaphore,
}

impl Backend {
    pub async fn start(name: &str) -> Arc<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = Arc::new(Backend {
            name: name.to_owned(),
            addr: listener.local_addr().unwrap(),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            held: watch::channel(0).0,
            gate: Semaphore::new(0),
        });
        let b = backend.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                b.connections.fetch_add(1, SeqCst);
                let b = b.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let b = b.clone();
                        async move { Ok::<_, Infallible>(b.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        backend
    }

    /// Let `n` held requests (or stream halves) go on.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Resolves once `n` requests are being held.
    pub async fn wait_held(&self, n: usize) {
        let mut rx = self.held.subscribe();
        rx.wait_for(|held| *held >= n).await.unwrap();
    }

    async fn pass_gate(&self) {
        self.held.send_modify(|h| *h += 1);
        self.gate.acquire().await.unwrap().forget();
        self.held.send_modify(|h| *h -= 1);
    }

    async fn answer(self: Arc<Self>, mut req: Request<Incoming>) -> Response<TestBody> {
        self.requests.fetch_add(1, SeqCst);
        match req.uri().path() {
            "/whoami" => text(&self.name),
            "/close" => {
                let mut resp = text(&self.name);
                resp.headers_mut()
                    .insert("connection", http::HeaderValue::from_static("close"));
                resp
            }
            "/headers" => {
                let mut out = String::new();
                for (name, value) in req.headers() {
                    out.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
                }
                text(&out)
            }
            "/echo" => {
                let body = req.into_body().map_err(std::io::Error::other).boxed();
                Response::new(body)
            }
            "/hold" => {
                self.pass_gate().await;
                text(&self.name)
            }
            "/stream" => {
                let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(2);
                let me = self.clone();
                tokio::spawn(async move {
                    tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
                        .await
                        .unwrap();
                    me.pass_gate().await;
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from_static(b"second"))))
                        .await;
                });
                let stream = tokio_stream_from(rx);
                Response::new(StreamBody::new(stream).boxed())
            }
            "/ws" => {
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let Ok(upgraded) = upgrade.await else { return };
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    loop {
                        match io.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if io.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
                Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header("connection", "upgrade")
                    .header("upgrade", "echo")
                    .body(empty())
                    .unwrap()
            }
            _ => Response::builder().status(404).body(empty()).unwrap(),
        }
    }
}

/// A `Stream` over an mpsc receiver (without pulling in tokio-stream).
fn tokio_stream_from<T>(rx: mpsc::Receiver<T>) -> impl futures_core::Stream<Item = T> {
    struct S<T>(mpsc::Receiver<T>);
    impl<T> futures_core::Stream for S<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
    S(rx)
}

pub fn text(s: &str) -> Response<TestBody> {
    Response::new(
        Full::new(Bytes::from(s.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    )
}

pub fn empty() -> TestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// What the test launcher does when asked for an instance.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Start a backend after the delay.
    Start,
    /// Fail after the delay.
    Fail,
    /// Never answer.
    Hang,
}

/// Starts real backends (after a delay that models a container's start time)
/// and counts launches.
pub struct TestLauncher {
    pub launches: AtomicUsize,
    pub delay: Duration,
    pub mode: Mode,
    pub started: std::sync::Mutex<Vec<Arc<Backend>>>,
}

impl TestLauncher {
    pub fn new(mode: Mode, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            launches: AtomicUsize::new(0),
            delay,
            mode,
            started: std::sync::Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Launcher for TestLauncher {
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
        let n = self.launches.fetch_add(1, SeqCst);
        tokio::time::sleep(self.delay).await;
        match self.mode {
            Mode::Start => {
                let backend = Backend::start(&format!("{app}-{n}")).await;
                let addr = backend.addr;
                self.started.lock().unwrap().push(backend);
                Ok(Launched {
                    instance_id: format!("{app}-{n}"),
                    addr,
                })
            }
            Mode::Fail => Err(LaunchError {
                kind: hako_model::StartFailure::Crashed,
                reason: "app exited with status 3 before listening".into(),
                log_tail: "php: cannot open /app/index.php".into(),
            }),
            Mode::Hang => std::future::pending().await,
        }
    }
}

/// A proxy on an ephemeral port with its event channel and a shutdown switch.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub router: Router,
    pub events: mpsc::UnboundedReceiver<ProxyEvent>,
    shutdown: Option<oneshot::Sender<()>>,
    pub served: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    pub async fn start(launcher: Arc<dyn Launcher>, config: ProxyConfig) -> TestProxy {
        let (tx, events) = mpsc::unbounded_channel();
        let router = Router::new(launcher, Arc::new(tx));
        let proxy = Proxy::new(router.clone(), config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            proxy
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestProxy {
            addr,
            router,
            events,
            shutdown: Some(stop),
            served,
        }
    }

    pub fn app(&self, name: &str, hosts: &[&str]) -> AppRoute {
        let route = AppRoute::new(name, hosts.iter().copied());
        self.router.set_app(route.clone()).unwrap();
        route
    }

    pub fn shutdown(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// A keep-alive client connection to the proxy.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { sender }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.sender.ready().await.unwrap();
        self.sender.send_request(req).await.unwrap()
    }

    /// GET `path` with `Host: host`; status and whole body.
    pub async fn get(&mut self, host: &str, path: &str) -> (StatusCode, String) {
        let resp = self.send(get_request(host, path)).await;
        let status = resp.status();
        (status, body_string(resp).await)
    }
}

pub fn get_request(host: &str, path: &str) -> Request<TestBody> {
    Request::get(path)
        .header("host", host)
        .body(empty())
        .unwrap()
}

pub async fn body_string(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One GET on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> (StatusCode, String) {
    Client::connect(addr).await.get(host, path).await
}

/// Send raw bytes on a fresh connection and read until the server closes it
/// or `limit` bytes arrived.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A port nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Poll `check` until true (conditions that have no notification to await).
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
