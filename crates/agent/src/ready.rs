//! Readiness: an instance is ready when its port accepts connections. Detected promptly by
//! polling connect with a short, growing interval (a refused connect costs microseconds),
//! while watching that the container has not exited meanwhile.
//!
//! The first [`QUICK`] of polling runs on a blocking thread with the thread's own sleep:
//! tokio's timer has a resolution of a millisecond, so an async pause of 100 µs lasts a
//! millisecond or more, and most apps (a static server, `php -S`) listen within a
//! millisecond or two of their exec — that rounding alone was a large part of a start from
//! the warm pool. Apps that take longer are polled from the async loop after that.

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

/// How long readiness is polled with fine pauses before the async loop takes over.
pub const QUICK: Duration = Duration::from_millis(20);

/// First and longest pause between the quick phase's connects.
const QUICK_PAUSES: (Duration, Duration) = (Duration::from_micros(50), Duration::from_micros(500));

/// Connects to `addr` every few tens of microseconds (growing to [`QUICK_PAUSES`]' longest)
/// until one succeeds (true) or `within` has passed (false). Blocking.
fn poll_quickly(addr: SocketAddr, within: Duration) -> bool {
    let start = Instant::now();
    let mut pause = QUICK_PAUSES.0;
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, left).is_ok() {
            return true;
        }
        std::thread::sleep(pause.min(within.saturating_sub(start.elapsed())));
        pause = (pause * 3 / 2).min(QUICK_PAUSES.1);
    }
}

/// Waits until `addr` accepts a TCP connection, the container exits, or `timeout` passes.
pub async fn wait_ready(
    container: &Container,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let quick = QUICK.min(timeout);
    if let Ok(true) = tokio::task::spawn_blocking(move || poll_quickly(addr, quick)).await {
        return Ok(start.elapsed());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_polling_sees_a_listener_that_comes_late() {
        // A free port: bound, noted, closed; then listened on again a little later.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(3));
            std::net::TcpListener::bind(addr).unwrap()
        });
        let start = Instant::now();
        let seen = poll_quickly(addr, Duration::from_secs(5));
        let _listener = late.join().unwrap();
        assert!(seen);
        // Seen within a fine pause of the listen, not a timer tick or a growing backoff later.
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn quick_polling_gives_up_after_its_time() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let start = Instant::now();
        assert!(!poll_quickly(addr, Duration::from_millis(15)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(15), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
