//! What the keep-alive policy needs to know about one instance.

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// A snapshot of one instance of an app, as the daemon (or simulator) sees it at decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    /// When the instance's start began.
    pub started_at: Time,
    /// When it became ready to serve; `None` while starting.
    pub ready_at: Option<Time>,
    /// The latest start or end of a request (or upgraded connection) on this instance; the
    /// policy treats `ready_at` as activity too, so a fresh instance is not idle since its start.
    pub last_active: Time,
    /// Requests being served right now.
    pub in_flight: u32,
    /// Upgraded (e.g. WebSocket) connections open right now.
    pub upgraded: u32,
    /// When routing to it stopped because it is draining; `None` when it takes requests.
    pub draining_since: Option<Time>,
    /// It was made from an older version of its app (code, image or settings): it gives way
    /// to the current version (see [`crate::KeepAlive::decide`]).
    #[serde(default)]
    pub outdated: bool,
}

impl InstanceView {
    /// A ready, idle, non-draining instance (convenient in tests and simulations).
    pub fn ready(started_at: Time, ready_at: Time) -> InstanceView {
        InstanceView {
            started_at,
            ready_at: Some(ready_at),
            last_active: ready_at,
            in_flight: 0,
            upgraded: 0,
            draining_since: None,
            outdated: false,
        }
    }

    /// An instance still starting.
    pub fn starting(started_at: Time) -> InstanceView {
        InstanceView {
            started_at,
            ready_at: None,
            last_active: started_at,
            in_flight: 0,
            upgraded: 0,
            draining_since: None,
            outdated: false,
        }
    }

    /// A request or upgraded connection is open on it.
    pub fn is_busy(&self) -> bool {
        self.in_flight > 0 || self.upgraded > 0
    }

    /// The moment its current idle period began: its last activity, or its readiness if later.
    pub fn idle_since(&self) -> Time {
        match self.ready_at {
            Some(r) => r.max(self.last_active),
            None => self.last_active,
        }
    }
}
