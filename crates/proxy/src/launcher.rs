//! The seam to whatever starts instances (the daemon's agent): the proxy asks,
//! the launcher starts a container and says where it listens.

use async_trait::async_trait;
use hako_model::StartFailure;
use std::net::SocketAddr;

/// An instance the launcher started, accepting connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The daemon's id for the instance (used in snapshots, `drain` and `remove`).
    pub instance_id: String,
    /// Where the instance accepts HTTP/1.1 connections.
    pub addr: SocketAddr,
}

/// Why a start failed, for the 503 page (kind and reason) and the event (and log tail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LaunchError {
    /// Whose move it is (counted per kind in the app's metrics).
    pub kind: StartFailure,
    /// One line: what went wrong.
    pub reason: String,
    /// The last lines of the app's output, for the event the daemon records.
    pub log_tail: String,
}

/// Starts instances of apps. Implemented by the daemon.
///
/// `launch` returns once the instance is ready to take requests — including any health check,
/// which is the launcher's business. The launcher may route the instance itself
/// ([`crate::Router::add_ready`]) before it returns; the activator routes it if not.
/// At most one `launch` per app runs at a time on behalf of waiting requests.
/// If a launch outlives the app's start timeout, the waiting requests get 503,
/// but the launch is *not* cancelled: when it finally succeeds the instance is
/// routed to (and reported with `late: true`).
#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    /// Start one instance of `app` and return once it accepts connections.
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError>;
}

/// A launcher that never starts anything: for proxies whose instances are all
/// registered with [`crate::Router::add_ready`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLauncher;

#[async_trait]
impl Launcher for NoLauncher {
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
        Err(LaunchError {
            kind: StartFailure::Capacity,
            reason: format!("no instance of {app} is running and this proxy cannot start one"),
            log_tail: String::new(),
        })
    }
}
