//! hako's front proxy: the door every request to a hosted site comes through.
//!
//! - [`Proxy`] serves HTTP/1.1 (keep-alive, chunked bodies streamed both ways,
//!   upgrades passed through) with limits on header size, body size and time,
//!   on the caller's runtime ([`Proxy::serve`]) or thread-per-core ([`PerCore`],
//!   the faster choice: a request and its upstream connection stay on one thread).
//! - [`Router`] is the live routing table the daemon changes: host → app
//!   ([`AppRoute`]), each app's instances, draining, snapshots and metrics.
//! - The activator starts an instance through the daemon's [`Launcher`] when a
//!   request finds none ready; concurrent requests share that one start. The launcher
//!   answers once the instance is ready (health checks included).
//! - Requests go to the ready instance with the fewest outstanding requests over
//!   pooled keep-alive connections; a request that never reached an app is retried
//!   on another instance, anything else is not.
//! - The app gets the Host the request was routed by and forwarding headers set under one
//!   trust rule (see [`forwarded`]): a client's own X-Forwarded-* count only from
//!   [`TrustedProxies`].
//! - [`ProxyEvent`]s (starts, failed starts, unreachable instances) go to an [`EventHook`].
//!
//! ```no_run
//! # async fn demo(launcher: std::sync::Arc<dyn hako_proxy::Launcher>) {
//! use hako_proxy::{AppRoute, Proxy, ProxyConfig, Router};
//! let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let router = Router::new(launcher, std::sync::Arc::new(events));
//! router.set_app(AppRoute::new("blog", ["blog.example"])).unwrap();
//! let proxy = Proxy::new(router.clone(), ProxyConfig::default());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
//! tokio::spawn(async move { while let Some(event) = rx.recv().await { println!("{event:?}") } });
//! proxy.serve(listener, std::future::pending()).await;
//! # }
//! ```
#![forbid(unsafe_code)]

mod activator;
mod app;
mod balance;
mod body;
mod config;
mod error;
mod events;
mod forward;
pub mod forwarded;
pub mod headers;
mod instance;
mod launcher;
pub mod metrics;
mod pages;
mod pool;
mod router;
mod server;

pub use app::AppRoute;
pub use body::{BodyError, ProxyBody};
pub use config::ProxyConfig;
pub use error::{ErrorSource, ProxyError};
pub use events::{EventHook, LogEvents, ProxyEvent};
pub use forwarded::{TrustedProxies, TrustedProxyError};
pub use instance::{Drain, InstanceSnapshot, InstanceState};
pub use launcher::{LaunchError, Launched, Launcher, NoLauncher};
pub use metrics::{AppMetricsSnapshot, HistogramSnapshot, ServiceHistory};
pub use pool::ConnectError;
pub use router::{AppStatus, Router, RouterError, SCHEDULE_HEADER};
pub use server::{PerCore, Proxy};
