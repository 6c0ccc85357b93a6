//! Readiness probe for the HTTP measures: connect, send `GET / HTTP/1.0`, and retry promptly
//! (every 0.2 ms) until the server answers `200`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::bail;

/// Pause between two connection attempts while nothing listens yet.
const RETRY: Duration = Duration::from_micros(200);

/// Polls `addr` until an HTTP 200 arrives and returns the moment its status line was read.
/// Fails at `deadline`, or at once on an answer other than 200.
pub fn wait_for_200(addr: SocketAddr, deadline: Instant) -> anyhow::Result<Instant> {
    let mut last_error: String;
    loop {
        match try_once(addr, deadline) {
            Ok(Attempt::Ok(at)) => return Ok(at),
            Ok(Attempt::Status(line)) => bail!("{addr} answered {line:?} instead of 200"),
            Ok(Attempt::Closed) => last_error = "connection closed without an answer".into(),
            Err(e) => last_error = e.to_string(),
        }
        if Instant::now() >= deadline {
            bail!("no HTTP 200 from {addr} in time (last: {last_error})");
        }
        // The retry interval of the poll (not a readiness guess): 0.2 ms.
        std::thread::sleep(RETRY);
    }
}

enum Attempt {
    /// A 200 status line, read at this moment.
    Ok(Instant),
    /// Another status line.
    Status(String),
    /// Connected, but the server closed before a status line.
    Closed,
}

fn try_once(addr: SocketAddr, deadline: Instant) -> std::io::Result<Attempt> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let mut s = TcpStream::connect_timeout(&addr, left.min(Duration::from_millis(100)))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(left))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Attempt::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok(if is_200(&line) {
                Attempt::Ok(Instant::now())
            } else {
                Attempt::Status(line)
            });
        }
    }
}

/// Whether an HTTP status line says 200.
fn is_200(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    matches!(parts.next(), Some(v) if v.starts_with("HTTP/")) && parts.next() == Some("200")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering the first request with `answer`.
    fn serve_once(answer: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 512];
            let n = s.read(&mut req).unwrap();
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        (addr, h)
    }

    #[test]
    fn recognises_200_status_lines() {
        assert!(is_200("HTTP/1.0 200 OK"));
        assert!(is_200("HTTP/1.1 200"));
        assert!(!is_200("HTTP/1.1 404 Not Found"));
        assert!(!is_200("200 OK"));
    }

    #[test]
    fn returns_on_200() {
        let (addr, h) = serve_once("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let t0 = Instant::now();
        let at = wait_for_200(addr, t0 + Duration::from_secs(5)).unwrap();
        assert!(at >= t0);
        assert!(h.join().unwrap().starts_with("GET / HTTP/1.0\r\n"));
    }

    #[test]
    fn fails_on_other_status() {
        let (addr, h) = serve_once("HTTP/1.0 404 Not Found\r\n\r\n");
        let err = wait_for_200(addr, Instant::now() + Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn gives_up_at_the_deadline_when_nothing_listens() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let t0 = Instant::now();
        let err = wait_for_200(addr, t0 + Duration::from_millis(30)).unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(err.to_string().contains("in time"), "{err}");
    }
}
