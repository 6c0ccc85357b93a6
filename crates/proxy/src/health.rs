//! Readiness by health path: an instance that listens is asked `GET <path>` until it answers
//! 2xx or 3xx. Probes repeat every 10 ms (the interval of FastContainer's reference code).
//! The daemon's instance lifecycle uses it on every start, whatever asked for the start.

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Time between probes of an instance that is not healthy yet.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Errors of one probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Could not connect or speak HTTP.
    #[error("health check of {addr}{path} failed: {detail}")]
    Failed {
        /// The instance.
        addr: SocketAddr,
        /// The health path.
        path: String,
        /// The connect or HTTP error.
        detail: String,
    },
    /// Answered with a status that is not 2xx or 3xx.
    #[error("health check of {addr}{path} answered {status}; the app must answer 2xx or 3xx there")]
    Unhealthy {
        /// The instance.
        addr: SocketAddr,
        /// The health path.
        path: String,
        /// The status it answered.
        status: u16,
    },
    /// The path is not a valid request target.
    #[error("health path {0:?} is not a valid path; use something like /healthz")]
    BadPath(String),
}

/// One `GET path` with `Host: host` on a fresh connection.
pub async fn probe(addr: SocketAddr, host: &str, path: &str) -> Result<(), ProbeError> {
    let failed = |detail: String| ProbeError::Failed {
        addr,
        path: path.to_owned(),
        detail,
    };
    let request = Request::get(path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, "hako-proxy health check")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ProbeError::BadPath(path.to_owned()))?;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let result = sender.send_request(request).await;
    driver.abort();
    let status = result.map_err(|e| failed(e.to_string()))?.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy {
            addr,
            path: path.to_owned(),
            status: status.as_u16(),
        })
    }
}

/// Probe until healthy; the last error once another probe would end after `deadline`.
pub async fn wait_healthy(
    addr: SocketAddr,
    host: &str,
    path: &str,
    deadline: tokio::time::Instant,
) -> Result<(), ProbeError> {
    loop {
        match probe(addr, host, path).await {
            Ok(()) => return Ok(()),
            Err(error @ ProbeError::BadPath(_)) => return Err(error),
            Err(error) if tokio::time::Instant::now() + PROBE_INTERVAL >= deadline => {
                return Err(error);
            }
            Err(_) => tokio::time::sleep(PROBE_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::service::service_fn;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    fn soon(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    /// An app that answers 503 to its first `unhealthy` health checks, then 200.
    async fn app(unhealthy: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let n = counter.fetch_add(1, SeqCst);
                        let ok = req.uri().path() == "/healthz"
                            && req.headers()[header::HOST] == "blog.example";
                        let status = if ok && n >= unhealthy { 200 } else { 503 };
                        async move {
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Empty::<Bytes>::new())
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn waits_until_the_app_answers_2xx() {
        let (addr, seen) = app(3).await;
        wait_healthy(addr, "blog.example", "/healthz", soon(5000))
            .await
            .unwrap();
        assert_eq!(seen.load(SeqCst), 4);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_status() {
        let (addr, _) = app(usize::MAX).await;
        let err = wait_healthy(addr, "blog.example", "/healthz", soon(100))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProbeError::Unhealthy { status: 503, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn bad_path_fails_at_once() {
        let (addr, seen) = app(0).await;
        let err = wait_healthy(addr, "blog.example", "no spaces allowed", soon(5000))
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::BadPath(_)), "{err}");
        assert_eq!(seen.load(SeqCst), 0);
    }
}
