//! Thread-per-core serving: one single-threaded tokio runtime per thread, each
//! accepting on its own `SO_REUSEPORT` listener for the same address, so the
//! kernel spreads connections and a request and its upstream connection stay
//! on one thread (no cross-thread wake-ups, per-thread connection pools). With
//! [`PerCore::with_tls`] every thread terminates TLS itself (handshakes spread over the cores
//! like requests).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use super::Proxy;
use crate::pool::set_thread_shard;

/// Listeners bound for [`Proxy::bind_per_core`]; [`PerCore::run`] serves on them.
#[derive(Debug)]
pub struct PerCore {
    proxy: Proxy,
    listeners: Vec<std::net::TcpListener>,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Proxy {
    /// Bind `threads` listeners to `addr` (port 0 picks one port for all).
    /// Call from outside any tokio runtime (a plain thread), as [`PerCore::run`] blocks.
    pub fn bind_per_core(&self, addr: SocketAddr, threads: usize) -> io::Result<PerCore> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (listeners, addr) = rt.block_on(async {
            let mut listeners = Vec::with_capacity(threads.max(1));
            let mut addr = addr;
            for _ in 0..threads.max(1) {
                let listener = reuseport_listener(addr)?;
                addr = listener.local_addr()?;
                listeners.push(listener.into_std()?);
            }
            io::Result::Ok((listeners, addr))
        })?;
        Ok(PerCore {
            proxy: self.clone(),
            listeners,
            addr,
            tls: None,
        })
    }
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl PerCore {
    /// Serve HTTPS on these listeners (see [`Proxy::serve_tls`]) instead of plain HTTP.
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address all threads listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve on every listener, one thread each, until `shutdown` becomes true;
    /// each thread then shuts down gracefully like [`Proxy::serve`]. Blocks.
    pub fn run(self, shutdown: watch::Receiver<bool>) -> io::Result<()> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = self
                .listeners
                .into_iter()
                .enumerate()
                .map(|(index, listener)| {
                    let proxy = self.proxy.clone();
                    let tls = self.tls.clone().map(tokio_rustls::TlsAcceptor::from);
                    let mut stop = shutdown.clone();
                    std::thread::Builder::new()
                        .name(format!("hako-proxy-{index}"))
                        .spawn_scoped(scope, move || {
                            set_thread_shard(index);
                            let rt = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()?;
                            rt.block_on(async move {
                                let listener = TcpListener::from_std(listener)?;
                                let stopped = async move {
                                    let _ = stop.wait_for(|stop| *stop).await;
                                };
                                proxy.serve_with(listener, tls, stopped).await;
                                io::Result::Ok(())
                            })
                        })
                })
                .collect::<io::Result<_>>()?;
            for thread in threads {
                thread
                    .join()
                    .map_err(|_| io::Error::other("a proxy thread panicked"))??;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogEvents, NoLauncher, ProxyConfig, Router};
    use std::io::{Read, Write};
    use std::sync::Arc;

    #[test]
    fn threads_share_one_port_and_stop_on_shutdown() {
        let router = Router::new(Arc::new(NoLauncher), Arc::new(LogEvents));
        let proxy = Proxy::new(router, ProxyConfig::default());
        let server = proxy
            .bind_per_core("127.0.0.1:0".parse().unwrap(), 2)
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = watch::channel(false);
        let running = std::thread::spawn(move || server.run(stopped));
        for _ in 0..4 {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: nobody.example\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        }
        stop.send_replace(true);
        running.join().unwrap().unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "listeners closed"
        );
    }
}
