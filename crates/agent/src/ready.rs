//! Readiness: an instance is ready when its port accepts connections. Detected promptly by
//! polling connect with a short, growing interval (a refused connect costs microseconds),
//! while watching that the container has not exited meanwhile.
//!
//! Each attempt is bounded ([`ATTEMPT`]): a SYN sent before the instance's side of the
//! network is up (its port on the bridge not yet forwarding, its address not yet answering
//! ARP) is dropped, and the kernel sends it again only after TCP's first retransmission
//! timeout, a second later. Unbounded, such a connect held the start for that second: the
//! ~1 s tail of cold starts the density experiment measured, most of them under CPU
//! contention. A fresh attempt sends a fresh SYN.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hako_runtime::{Container, ExitStatus};

/// The longest one connect attempt may wait for an answer to its SYN (loopback-like: a
/// listening port answers in well under a millisecond).
pub const ATTEMPT: Duration = Duration::from_millis(20);

/// Why an instance never became ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The container's process ended first.
    Exited(ExitStatus),
    /// Nothing accepted connections within the start timeout.
    Timeout(Duration),
}

/// Waits until `addr` accepts a TCP connection, the container exits, or `timeout` passes.
pub async fn wait_ready(
    container: &Container,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        match tokio::time::timeout(ATTEMPT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(start.elapsed()),
            Ok(Err(_)) | Err(_) => {
                if let Ok(Some(status)) = container.try_wait() {
                    return Err(NotReady::Exited(status));
                }
                if start.elapsed() >= timeout {
                    return Err(NotReady::Timeout(timeout));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 3 / 2).min(Duration::from_millis(5));
            }
        }
    }
}
