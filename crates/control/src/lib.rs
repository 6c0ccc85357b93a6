//! `hako serve`: the daemon that runs everything on one host.
//!
//! The API writes desired state (apps, releases) to the store; the daemon follows the store
//! and keeps the proxy's routes in step; the proxy's activator asks the daemon's launcher for
//! an instance when a request finds none ready; the keep-alive loop applies the pure policy
//! of `hako_policy` to stop idle instances, recycle old ones and keep minimums; every
//! decision is recorded as an event with its reason.
#![forbid(unsafe_code)]

mod backend;
mod daemon;
mod events;
mod keepalive;
mod launcher;
mod reconcile;
mod slo;

pub use daemon::{Bound, DatabaseConfig, ServeConfig, ServeError, serve};
pub use events::EVENTS_KEPT;
pub use keepalive::DRAIN_TIMEOUT;
