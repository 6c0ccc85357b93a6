//! The benchmarks' measuring client for requests through a proxy: one blocking HTTP/1.1
//! `GET` per connection (`Connection: close`), read to the end of the response
//! (Content-Length, chunked, or EOF), timed from connecting to its last byte.
//!
//! It stays hand-written on purpose: it is the instrument, so it does nothing a client
//! library might add to the time (pools, redirects, decompression) and its parser is shared
//! with the experiment's keep-alive load generator. The API is reached through hako-api's
//! client instead.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One complete response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET path` with `Host: host` and the extra `headers` to `addr` and reads the whole
/// response; returns it with the time from connecting to its last byte.
pub fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(Response, Duration)> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading from {addr}")),
        };
        if n > 0 {
            raw.extend_from_slice(&chunk[..n]);
        }
        if let Some(resp) = parse(&raw, n == 0)? {
            return Ok((resp, t0.elapsed()));
        }
        if n == 0 {
            bail!("{addr} closed the connection before a complete response");
        }
    }
}

/// Like [`get`] over HTTPS: TCP connect, a full TLS handshake with `server_name` as SNI (the
/// `tls` config decides roots, ALPN and resumption), then the same HTTP/1.1 `GET`; the time
/// runs from connecting to the last byte, so it includes the handshake.
pub fn get_tls(
    addr: SocketAddr,
    server_name: &str,
    path: &str,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> anyhow::Result<(Response, Duration)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n");
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .with_context(|| format!("{server_name:?} is not a server name"))?;
    let t0 = Instant::now();
    let s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    let conn = rustls::ClientConnection::new(tls.clone(), name)?;
    let mut tls = rustls::StreamOwned::new(conn, s);
    tls.write_all(req.as_bytes())
        .with_context(|| format!("TLS handshake with {server_name} at {addr}"))?;
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tls.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A peer that closes without close_notify after a complete response is fine.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e).with_context(|| format!("reading from {addr} over TLS")),
        };
        if n > 0 {
            raw.extend_from_slice(&chunk[..n]);
        }
        if let Some(resp) = parse(&raw, n == 0)? {
            return Ok((resp, t0.elapsed()));
        }
        if n == 0 {
            bail!("{addr} closed the TLS connection before a complete response");
        }
    }
}

/// Parses `raw` into a response once it is complete (`eof`: the peer closed); `None` while
/// more bytes are needed.
pub fn parse(raw: &[u8], eof: bool) -> anyhow::Result<Option<Response>> {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP status line: {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().context("bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = &raw[head_end + 4..];
    let done = |body: Vec<u8>| Ok(Some(Response { status, body }));
    if chunked {
        return match dechunk(body)? {
            Some(b) => done(b),
            None => Ok(None),
        };
    }
    match length {
        Some(n) if body.len() >= n => done(body[..n].to_vec()),
        Some(_) => Ok(None),
        None if eof || status == 204 || status == 304 => done(body.to_vec()),
        None => Ok(None),
    }
}

/// The data of a complete chunked body; `None` while its last chunk has not arrived.
fn dechunk(mut b: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return Ok(b.windows(2).any(|w| w == b"\r\n").then_some(out));
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_content_length_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let r = parse(raw, false).unwrap().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(parse(&raw[..raw.len() - 1], false).unwrap(), None);
    }

    #[test]
    fn parses_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        let r = parse(raw, false).unwrap().unwrap();
        assert_eq!(r.text(), "hello");
        assert_eq!(parse(&raw[..raw.len() - 2], false).unwrap(), None);
        assert_eq!(parse(&raw[..60], false).unwrap(), None);
    }

    #[test]
    fn bodies_without_length_end_at_eof() {
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse(raw, false).unwrap(), None);
        let r = parse(raw, true).unwrap().unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "nope"));
        assert!(parse(b"garbage\r\n\r\n", true).is_err());
    }

    #[test]
    fn gets_from_a_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 512];
            let n = s.read(&mut req).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let (r, took) = get(
            addr,
            "site.test",
            "/x",
            &[("Authorization", "Bearer t")],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert!(took > Duration::ZERO);
        let req = h.join().unwrap();
        assert!(
            req.starts_with("GET /x HTTP/1.1\r\nHost: site.test\r\n"),
            "{req}"
        );
        assert!(req.contains("Authorization: Bearer t\r\n"), "{req}");
    }
}
