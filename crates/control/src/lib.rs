//! `hako serve`: the daemon that runs everything on one host.
//!
//! The API writes desired state (apps, releases) to the store; the store watch
//! ([`reconcile`]) keeps the apps table and the proxy's routes in step; one owner,
//! [`lifecycle`], starts (on every path: a request's cold start, a minimum, a replacement),
//! replaces, retires and buries instances; the proxy's [`launcher`] asks it for cold starts,
//! the [`keepalive`] loop applies the pure policy of `hako_policy`; every decision is recorded
//! as an event with its reason ([`event_log`]).
//!
//! Files import downward only: `config`, `error`, `event_log`, `apps`, `node`, `traffic` →
//! `lifecycle` → `views` → `launcher`, `keepalive`, `autoscale`, `scheduler`, `reconcile`,
//! `proxy_events`, `backend` → `daemon` (the wiring) → `serve`.
#![forbid(unsafe_code)]

mod apps;
mod autoscale;
mod backend;
mod cluster;
mod config;
mod daemon;
mod error;
mod event_log;
mod keepalive;
mod launcher;
mod lifecycle;
mod node;
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
pub use serve::{Bound, serve};
