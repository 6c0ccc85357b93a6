//! The proxy server: accepts client connections, serves HTTP/1.1 on them with
//! hyper (keep-alive, limits, upgrades), and shuts down gracefully.

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ProxyConfig;
use crate::forward::{Shared, handle};
use crate::forwarded::Peer;
use crate::router::Router;

mod per_core;

pub use per_core::PerCore;

/// The front proxy. Build it once, then [`Proxy::serve`] on a listener.
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
    http: http1::Builder,
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
        Self {
            shared: Arc::new(Shared { router, config }),
            http,
        }
    }

    /// The routing table this proxy uses.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }

    /// Serve connections from `listener` until `shutdown` resolves; then stop
    /// accepting, let every connection finish its request in flight (idle
    /// keep-alive connections close at once), and return. Upgraded connections
    /// (WebSockets) are not waited for.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
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
            let shared = self.shared.clone();
            let client = Peer::new(peer.ip(), &self.shared.config.trusted_proxies);
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let client = client.clone();
                async move { Ok::<_, Infallible>(handle(&shared, &client, req).await) }
            });
            let conn = self
                .http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                tokio::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    _ = async { stop.wait_for(|stop| *stop).await.map(drop) } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                drop(stop);
            });
        }
        drop(listener);
        stop_tx.send_replace(true);
        drop(stop_rx);
        stop_tx.closed().await;
    }
}
