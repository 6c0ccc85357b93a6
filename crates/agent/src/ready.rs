//! Readiness: an instance is ready when its port accepts connections. Detected promptly by
//! polling connect with a short, growing interval (a refused connect costs microseconds),
//! while watching that the container has not exited meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hako_runtime::{Container, ExitStatus};

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
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(start.elapsed()),
            Err(_) => {
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
