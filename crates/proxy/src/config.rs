//! Limits and timeouts of the proxy, with defaults close to nginx's.

use std::time::Duration;

use crate::forwarded::TrustedProxies;

/// How the proxy treats clients and upstream instances.
///
/// `Default` gives production values; tests shorten the timeouts.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    pub max_header_size: usize,
    /// Most headers a request may carry; more gets 431. 100 (the default) is fastest.
    pub max_headers: usize,
    /// Largest request body in bytes; larger gets 413.
    pub max_body_size: u64,
    /// Time a client has to send a complete request head. hyper starts this timer
    /// whenever a connection waits for a request head, so it is also the idle
    /// keep-alive timeout of client connections.
    pub header_read_timeout: Duration,
    /// Time to connect to an instance; a refused or timed-out connect is retried elsewhere.
    pub upstream_connect_timeout: Duration,
    /// Time from sending a request to an instance until its response head arrives; then 504.
    pub upstream_response_timeout: Duration,
    /// How many times a request that never reached an app is tried again elsewhere.
    pub max_retries: usize,
    /// Seconds sent in `Retry-After` when a start failed or a queue is full.
    pub retry_after_secs: u32,
    /// Value of `X-Forwarded-Proto` on the plain-HTTP listener (the scheme clients used to
    /// reach the proxy); the TLS listener always says `https`.
    pub forwarded_proto: &'static str,
    /// The port of the HTTPS listener, if there is one: apps with `https_redirect` send plain
    /// HTTP requests there (the port is left out of the URL when it is 443).
    pub https_port: Option<u16>,
    /// HTTP-01 answers of ACME orders in progress, served before routing.
    pub challenges: hako_tls::Challenges,
    /// Front proxies whose X-Forwarded-* / Forwarded headers are believed (none by default:
    /// every client's are replaced). See [`crate::forwarded`].
    pub trusted_proxies: TrustedProxies,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_header_size: 32 * 1024,
            max_headers: 100,
            max_body_size: 64 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_response_timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_after_secs: 5,
            forwarded_proto: "http",
            https_port: None,
            challenges: hako_tls::Challenges::new(),
            trusted_proxies: TrustedProxies::none(),
        }
    }
}
