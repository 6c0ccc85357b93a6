//! Recording events: every decision (start, stop, replace, failure) with its reason, in the
//! store under the app's name, and in the daemon's log.

use std::sync::Arc;

use hako_model::Event;
use hako_store::{Store, StoreExt, keys};

/// Events kept per app.
pub const EVENTS_KEPT: usize = 1000;

/// Appends events to the store (and the daemon's log).
pub(crate) struct EventLog {
    store: Arc<dyn Store>,
}

impl EventLog {
    pub(crate) fn new(store: Arc<dyn Store>) -> EventLog {
        EventLog { store }
    }

    pub(crate) async fn record(&self, event: Event) {
        tracing::info!(app = %event.app, kind = ?event.kind, instance = ?event.instance, reason = %event.reason, "event");
        let prefix = keys::events(&event.app);
        if let Err(e) = self.store.append_json(&prefix, &event).await {
            tracing::warn!(error = %e, "cannot record event");
            return;
        }
        let _ = self.store.trim(&prefix, EVENTS_KEPT).await;
    }
}
