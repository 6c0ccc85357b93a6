//! Events the proxy reports to the daemon: starts, failed starts, unreachable instances.

use std::net::SocketAddr;
use std::time::Duration;

/// Something the daemon should record (as an event with its reason) or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyEvent {
    /// The launcher started an instance on behalf of waiting requests and it is now routed to.
    InstanceStarted {
        /// App the instance belongs to.
        app: String,
        /// Id the launcher gave the instance.
        instance_id: String,
        /// Where the instance listens.
        addr: SocketAddr,
        /// Time from asking the launcher to the instance accepting connections.
        took: Duration,
        /// True when the start finished after the start timeout had already failed its waiters.
        late: bool,
    },
    /// The launcher reported that a start failed; waiting requests got 503.
    StartFailed {
        /// App that failed to start.
        app: String,
        /// Whose move it is.
        kind: hako_model::StartFailure,
        /// Why, as the launcher put it.
        reason: String,
        /// The last lines of the app's log, as the launcher returned them.
        log_tail: String,
    },
    /// The launcher did not answer within the app's start timeout; waiting requests got 503.
    StartTimedOut {
        /// App that did not start in time.
        app: String,
        /// The start timeout that passed.
        after: Duration,
    },
    /// A request could not reach an instance (connect refused or reset before anything was
    /// sent); the instance was removed from routing and the request tried elsewhere.
    InstanceUnreachable {
        /// App the instance belongs to.
        app: String,
        /// Id of the unreachable instance.
        instance_id: String,
        /// Its address.
        addr: SocketAddr,
        /// The connect or send error.
        error: String,
    },
}

/// Receives [`ProxyEvent`]s. Called on the request path: must not block.
pub trait EventHook: Send + Sync + 'static {
    /// Handle one event.
    fn on_event(&self, event: ProxyEvent);
}

impl EventHook for tokio::sync::mpsc::UnboundedSender<ProxyEvent> {
    fn on_event(&self, event: ProxyEvent) {
        // A closed receiver means nobody records events any more; nothing to do then.
        let _ = self.send(event);
    }
}

/// An [`EventHook`] that only logs events with `tracing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogEvents;

impl EventHook for LogEvents {
    fn on_event(&self, event: ProxyEvent) {
        tracing::info!(?event, "proxy event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_hook_delivers_events_and_tolerates_closed_receiver() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let event = ProxyEvent::StartTimedOut {
            app: "blog".into(),
            after: Duration::from_secs(3),
        };
        tx.on_event(event.clone());
        assert_eq!(rx.try_recv().ok(), Some(event.clone()));
        drop(rx);
        tx.on_event(event);
    }
}
