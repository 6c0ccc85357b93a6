//! One HTTPS request as a browser would make it: TCP, a TLS handshake with SNI against a given
//! root, ALPN offering `h2` (HTTP/2) or only `http/1.1`, then `GET`. Blocking for the caller
//! (a small runtime of its own inside).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::Error;

/// Which HTTP the client offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `h2` first (and `http/1.1`); the answer must come over HTTP/2.
    H2,
    /// `http/1.1` only.
    Http1,
}

/// An answer over HTTPS.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// What ALPN chose: `h2` or `http/1.1`.
    pub alpn: String,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// `GET https://{name}{path}` from `addr` with SNI `name`, trusting only `root_pem`.
pub fn get(
    addr: SocketAddr,
    name: &str,
    path: &str,
    root_pem: &str,
    protocol: Protocol,
) -> Result<Reply, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("cannot make a runtime"))?;
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            fetch(addr, name, path, root_pem, protocol),
        )
        .await
    })
    .map_err(|_| Error::Https(format!("GET https://{name}{path} took over 60 s")))?
}

/// A rustls client trusting `root_pem` (one or more PEM certificates) and offering `alpn`.
pub fn client_config(root_pem: &str, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::Https(format!("bad root PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Https(format!("bad root: {e}")))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(hako_tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Https(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

async fn fetch(
    addr: SocketAddr,
    name: &str,
    path: &str,
    root_pem: &str,
    protocol: Protocol,
) -> Result<Reply, Error> {
    let alpn: &[&[u8]] = match protocol {
        Protocol::H2 => &[b"h2", b"http/1.1"],
        Protocol::Http1 => &[b"http/1.1"],
    };
    let config = client_config(root_pem, alpn)?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(Error::io(format!("cannot connect to {addr}")))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| Error::Https(format!("{name:?} is not a server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| Error::Https(format!("TLS handshake with {name} at {addr} failed: {e}")))?;
    let alpn = tls
        .get_ref()
        .1
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let io = TokioIo::new(tls);
    let fail = |e: hyper::Error| Error::Https(format!("GET https://{name}{path}: {e}"));
    let response = if alpn == "h2" {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(fail)?;
        tokio::spawn(conn);
        let req = http::Request::get(format!("https://{name}{path}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Https(e.to_string()))?;
        send.send_request(req).await.map_err(fail)?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(fail)?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header("host", name)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Https(e.to_string()))?;
        send.send_request(req).await.map_err(fail)?
    };
    let status = response.status().as_u16();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(fail)?
        .to_bytes();
    Ok(Reply {
        status,
        alpn,
        version,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
