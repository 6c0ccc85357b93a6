//! HTTPS for hako's sites, as one library the proxy and the daemon only wire:
//!
//! - [`cert`]: a site's certificate from PEM — chain and private key parsed, the key checked
//!   against the certificate, and the checks an upload must pass (not expired, covers every
//!   host of the app), each refusal with a message that says what to send instead;
//! - [`record`]: what the store keeps under `/certs/<app>` ([`StoredCert`]: PEM, source,
//!   issuer, names, validity) and what the API shows of it ([`CertInfo`], never the key);
//! - [`resolver`]: [`SiteCerts`], the SNI resolver over the routed hosts' certificates, and
//!   the rustls server configuration (ALPN `h2` and `http/1.1`). A name with no certificate
//!   (or no SNI at all) gets no default certificate: the handshake ends with a TLS alert;
//! - [`challenges`]: the HTTP-01 answers the proxy serves under
//!   `/.well-known/acme-challenge/TOKEN` while an order runs;
//! - [`acme`]: the ACME flow (account, order, HTTP-01, finalize) with `instant-acme`;
//! - [`schedule`]: when to order or renew (at 2/3 of a certificate's lifetime) and how long to
//!   wait after a failure (doubling, jittered), as pure functions of time.
//!
//! One crypto provider everywhere: rustls with *ring*, chosen explicitly.
#![forbid(unsafe_code)]

pub mod acme;
pub mod cert;
pub mod challenges;
pub mod record;
pub mod resolver;
pub mod schedule;

pub use acme::{AcmeClient, AcmeConfig, AcmeError, Issued};
pub use cert::{CertError, ParsedCert, covers};
pub use challenges::Challenges;
pub use record::{CertInfo, CertSource, StoredCert};
pub use resolver::{SiteCerts, server_config};

/// The crypto provider of every TLS object hako makes (rustls with *ring*). rustls marks it
/// deprecated for lacking post-quantum key exchange, which only aws-lc-rs offers; aws-lc-rs
/// needs a C toolchain build of AWS-LC that hako's two-core machines pay for on every clean
/// build, so hako stays on *ring* until rustls offers post-quantum key exchange there.
#[allow(deprecated)]
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
