//! Test support for hako: what integration tests and benchmarks need to drive the real thing,
//! written once (as `linkerd/app/integration` is for linkerd).
//!
//! - [`Serve`]: a real `hako serve` process on loopback with its own data dir, kernel-object
//!   prefix and subnet, the addresses it logs, an API [`Client`](hako_api::Client) and the CLI
//!   pointed at it, stopped with SIGTERM (everything removed) when dropped;
//! - [`wait_until`] and [`retry_until`]: poll a condition with a deadline (never a sleep
//!   standing in for readiness);
//! - [`names`]: unique runtime prefixes and subnets per test run, and the tags in use;
//! - [`require_root`]: fail clearly, never pass silently, when not root;
//! - [`site`]: a static site's code, its app spec, the host image;
//! - [`api_client`]: an API client with a data dir's admin token (for in-process daemons);
//! - [`http`]: one plain HTTP request through the proxy; [`https`]: one HTTPS request (SNI,
//!   HTTP/2 or HTTP/1.1 by ALPN, a given root), and [`pki`]: test certificates;
//! - [`pebble`]: Debian's `pebble` ACME test server on loopback, with its DNS stub;
//! - [`leftovers`]: what a runtime prefix left on the host (cgroups, state, links);
//! - [`tools`]: where the tests find `promtool` and the headless browser.
//!
//! It is a dev-dependency of the crates whose tests start daemons, and a dependency of the
//! benchmarks (`hako-bench`); no production crate depends on it. Functions meant for test
//! bodies panic with a message saying what went wrong; the ones the benchmarks use return
//! [`Error`].
#![forbid(unsafe_code)]

mod cli;
mod error;
pub mod http;
pub mod https;
mod leftovers;
pub mod names;
pub mod pebble;
pub mod pki;
mod root;
mod serve;
pub mod site;
pub mod tools;
mod wait;

pub use cli::{Outcome, hako_command};
pub use error::Error;
pub use leftovers::leftovers;
pub use names::Names;
pub use root::{is_root, require_root};
pub use serve::{Serve, ServeBuilder, api_client};
pub use wait::{TimedOut, retry_until, wait_until};
