//! One plain HTTP request through hako's proxy, as a client would send it: HTTP/1.0 (the
//! server closes the connection after its answer, so no keep-alive or chunked parsing is
//! needed), read to the end.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a request may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// `GET path` with `Host: host` to `addr`; returns (status, body). Panics if nothing listens.
#[track_caller]
pub fn get(addr: impl ToSocketAddrs, host: &str, path: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"),
    )
}

/// Sends the bytes of `request` as they are (also malformed ones) and reads the answer to the
/// end; returns (status, body), status 0 when no status line came back. Panics if nothing
/// listens.
#[track_caller]
pub fn raw(addr: impl ToSocketAddrs, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the proxy");
    s.set_read_timeout(Some(TIMEOUT))
        .expect("set a read timeout");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut r = Vec::new();
    // A reset after a complete answer (the proxy closing on a bad request) keeps what came.
    let _ = s.read_to_end(&mut r);
    parse(&String::from_utf8_lossy(&r))
}

/// (status, body) of a whole answer; status 0 when there is no status line.
fn parse(text: &str) -> (u16, String) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn gets_status_and_body() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 512];
            let n = s.read(&mut req).unwrap();
            s.write_all(b"HTTP/1.0 201 Created\r\nX: y\r\n\r\nmade\n")
                .unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        assert_eq!(get(addr, "site.test", "/p"), (201, "made\n".to_string()));
        assert_eq!(
            server.join().unwrap(),
            "GET /p HTTP/1.0\r\nHost: site.test\r\n\r\n"
        );
    }

    #[test]
    fn answers_without_a_status_line_give_0() {
        assert_eq!(parse(""), (0, String::new()));
        assert_eq!(
            parse("HTTP/1.1 404 Not Found\r\n\r\n"),
            (404, String::new())
        );
    }
}
