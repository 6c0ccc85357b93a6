//! `hako serve`: the daemon that runs everything on one host.
//!
//! The API writes desired state (apps, releases) to the store; the store watch
//! ([`reconcile`]) keeps the apps table and the proxy's routes in step; one owner,
//! [`lifecycle`], starts (on every path: a request's cold start, a minimum, a replacement),
//! replaces, retires and buries instances; the proxy's [`launcher`] asks it for cold starts,
//! the [`keepalive`] loop applies the pure policy of `hako_policy`; every decision is recorded
//! as an event with its reason ([`event_log`]).
//!
//! `GET /metrics` reads the daemon's live figures at each scrape ([`metrics`]); the dashboard's
//! charts read the last hour per minute ([`minutes`]).
//!
//! HTTPS: [`certs`] follows the stored certificates into the proxy's SNI resolver, and the
//! [`acme`] loop obtains and renews certificates for apps with `acme`.
//!
//! Checkpoints of app versions are made in the background and decide each start's path
//! ([`checkpoint`]); the keep-alive loop runs the predictive keep-alive and pre-start
//! ([`predict`]). The [`autoscale`] loop adds and drains instances under load, and the
//! [`scheduler`] wakes apps for their schedules; both read the same policy views ([`views`]).
//!
//! Files import downward only: `config`, `error`, `event_log`, `metrics`, `apps`, `node`,
//! `traffic`, `certs` → `checkpoint` → `lifecycle`, `acme` → `views`, `launcher`, `predict` →
//! `keepalive`, `autoscale`, `scheduler`, `reconcile`, `proxy_events`, `minutes` → `backend` →
//! `daemon` (the wiring), `listeners` → `cluster` (a front) → `serve`.
#![forbid(unsafe_code)]

mod acme;
mod apps;
mod autoscale;
mod backend;
mod certs;
mod checkpoint;
mod cluster;
mod config;
mod daemon;
mod error;
mod event_log;
mod keepalive;
mod launcher;
mod lifecycle;
mod listeners;
mod metrics;
mod minutes;
mod node;
mod ops;
mod predict;
mod proxy_events;
mod reconcile;
mod scheduler;
mod serve;
mod slo;
#[cfg(test)]
mod testbed;
mod traffic;
mod views;

pub use config::{DatabaseConfig, ServeConfig};
pub use error::ServeError;
pub use event_log::EVENTS_KEPT;
pub use lifecycle::{DELETE_DRAIN_TIMEOUT, DRAIN_TIMEOUT};
pub use listeners::Bound;
pub use serve::serve;
