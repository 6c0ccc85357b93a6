//! The proxy server: accepts client connections, serves HTTP/1.1 on them with hyper
//! (keep-alive, limits, upgrades) — or, on a TLS listener, terminates TLS (rustls, the
//! certificate picked by SNI) and serves HTTP/2 or HTTP/1.1 as ALPN chose — and shuts down
//! gracefully.

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ProxyConfig;
use crate::forward::{Shared, handle};
use crate::forwarded::Peer;
use crate::router::Router;

mod per_core;

pub use per_core::PerCore;

/// The front proxy. Build it once, then [`Proxy::serve`] on a listener (and
/// [`Proxy::serve_tls`] on another, for HTTPS).
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
    http: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Proxy {
    /// A proxy routing with `router` (which the daemon keeps changing) under `config`'s limits.
    pub fn new(router: Router, config: ProxyConfig) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .writev(false)
            .keep_alive(true)
            .header_read_timeout(config.header_read_timeout)
            .max_header_size(config.max_header_size);
        // hyper parses up to 100 headers into a stack array; an explicit bound
        // (even 100) makes it fill a vector per request instead.
        if config.max_headers != 100 {
            http.max_headers(config.max_headers);
        }
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(config.max_header_size as u32)
            // An idle HTTP/2 connection is pinged, and closed when the client is gone.
            .keep_alive_interval(config.header_read_timeout)
            .keep_alive_timeout(Duration::from_secs(20));
        Self {
            shared: Arc::new(Shared { router, config }),
            http,
            h2,
        }
    }

    /// The routing table this proxy uses.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }

    /// Serve plain HTTP/1.1 connections from `listener` until `shutdown` resolves; then stop
    /// accepting, let every connection finish its request in flight (idle
    /// keep-alive connections close at once), and return. Upgraded connections
    /// (WebSockets) are not waited for.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.serve_with(listener, None, shutdown).await
    }

    /// Like [`Proxy::serve`], for HTTPS: each connection's TLS handshake (within the header
    /// read timeout) takes its certificate from `tls` (see `hako_tls::server_config`: by SNI,
    /// none for unknown names), then HTTP/2 when ALPN chose `h2`, else HTTP/1.1 with
    /// upgrades. The app is told `proto=https`.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) {
        self.serve_with(listener, Some(TlsAcceptor::from(tls)), shutdown)
            .await
    }

    pub(crate) async fn serve_with(
        &self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off a little rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            let stop = stop_rx.clone();
            match &tls {
                None => {
                    tokio::spawn(async move {
                        proxy.serve_conn(stream, peer, false, false, stop).await
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        proxy.serve_tls_conn(acceptor, stream, peer, stop).await
                    });
                }
            }
        }
        drop(listener);
        stop_tx.send_replace(true);
        drop(stop_rx);
        stop_tx.closed().await;
    }

    /// The TLS handshake (bounded by the header read timeout, and given up at shutdown),
    /// then HTTP on the decrypted stream.
    async fn serve_tls_conn(
        self,
        acceptor: TlsAcceptor,
        stream: TcpStream,
        peer: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let limit = self.shared.config.header_read_timeout;
        let handshake = tokio::time::timeout(limit, acceptor.accept(stream));
        let tls = tokio::select! {
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    // Unknown SNI, no shared protocol, a client that gave up: it got its alert.
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            _ = async { stop.wait_for(|stop| *stop).await.map(drop) } => return,
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        self.serve_conn(tls, peer, true, h2, stop).await
    }

    /// Serves HTTP on one connection (`tls`: it came through TLS; `h2`: speak HTTP/2) until it
    /// ends, shutting it down gracefully when `stop` turns true.
    async fn serve_conn<I>(
        self,
        io: I,
        peer: SocketAddr,
        tls: bool,
        h2: bool,
        mut stop: watch::Receiver<bool>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.shared.clone();
        let client = Peer::new(peer.ip(), &self.shared.config.trusted_proxies);
        let service = service_fn(move |req| {
            let shared = shared.clone();
            let client = client.clone();
            async move { Ok::<_, Infallible>(handle(&shared, &client, tls, req).await) }
        });
        let io = TokioIo::new(io);
        let result = if h2 {
            let conn = self.h2.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => result,
                _ = async { stop.wait_for(|stop| *stop).await.map(drop) } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        } else {
            let conn = self.http.serve_connection(io, service).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => result,
                _ = async { stop.wait_for(|stop| *stop).await.map(drop) } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "client connection ended with an error");
        }
        drop(stop);
    }
}
