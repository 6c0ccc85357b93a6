//! Keep-alive connections to one instance: a bounded stack of idle HTTP/1.1
//! senders, and opening new ones.

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;

use crate::body::RequestBody;

/// A connection to an instance, ready to carry one request at a time.
pub(crate) type Sender = SendRequest<RequestBody>;

/// Errors opening a connection to an instance. None of them sent anything.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable).
    #[error("cannot connect to instance at {addr}: {source}; is the app listening on its port?")]
    Io {
        /// The instance address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// TCP connect took longer than the connect timeout.
    #[error("connecting to instance at {addr} took over {after:?}; the instance may be overloaded")]
    Timeout {
        /// The instance address.
        addr: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The HTTP/1 handshake failed.
    #[error("cannot set up HTTP/1.1 with instance at {addr}: {source}")]
    Handshake {
        /// The instance address.
        addr: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
}

/// Pools are split in shards so that per-core serving threads keep to their own
/// connections (whose driver tasks run on their runtime); other runtimes use shard 0.
const SHARDS: usize = 8;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Make this thread use its own shard of every pool (per-core serving).
pub(crate) fn set_thread_shard(index: usize) {
    SHARD.with(|s| s.set(index % SHARDS));
}

/// Idle keep-alive connections to one instance, most recently used first.
#[derive(Debug)]
pub(crate) struct Pool {
    shards: [Mutex<Vec<Sender>>; SHARDS],
    max_idle: usize,
}

impl Pool {
    /// A pool keeping up to `max_idle` idle connections per shard.
    pub(crate) fn new(max_idle: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Vec::new())),
            max_idle,
        }
    }

    fn shard(&self) -> MutexGuard<'_, Vec<Sender>> {
        let index = SHARD.with(Cell::get);
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection that is still open, if any.
    pub(crate) fn take(&self) -> Option<Sender> {
        let mut idle = self.shard();
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Return a connection after its response was fully read.
    pub(crate) fn put(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.shard();
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }

    /// Close all idle connections.
    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.shard().len()
    }
}

/// Open a new HTTP/1.1 connection to `addr`; its driver task runs until the
/// connection closes (and carries upgraded connections after a 101).
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
        Err(_) => {
            return Err(ConnectError::Timeout {
                addr,
                after: timeout,
            });
        }
    };
    // Latency matters more than packet count on this path.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ConnectError::Handshake { addr, source })?;
    tokio::spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connect_is_an_io_error() {
        // Bind then drop to get a port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connect(addr, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ConnectError::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn pool_keeps_open_connections_up_to_the_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(listener.accept().await.unwrap().0);
            }
            held
        });
        let pool = Pool::new(2);
        for _ in 0..3 {
            pool.put(connect(addr, Duration::from_secs(5)).await.unwrap());
        }
        assert_eq!(pool.idle_count(), 2);
        let held = accept.await.unwrap();
        assert!(pool.take().is_some());
        pool.clear();
        assert!(pool.take().is_none());
        drop(held);
    }
}
