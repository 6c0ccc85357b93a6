//! The engine acts on [`Action`]s: it reads and writes desired state in the store (apps,
//! releases' records, events of API actions) and asks the [`Backend`] for what needs the node.
//! The daemon watches the store and does the rest.

mod apps;
mod observe;
mod releases;

use std::sync::Arc;

use hako_model::{App, Event, EventKind};
use hako_store::{Store, StoreExt, keys};

use crate::action::{Action, MAX_EVENTS, Reply};
use crate::backend::Backend;
use crate::error::ApiError;

/// Runs actions against the store and the backend. Cheap to share behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    /// Serialises app creates, updates and deletes, so host uniqueness holds.
    app_writes: tokio::sync::Mutex<()>,
    /// Serialises the choice of release numbers.
    deploys: tokio::sync::Mutex<()>,
}

impl Engine {
    /// An engine over a store and the daemon's backend.
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Engine {
        Engine {
            store,
            backend,
            app_writes: tokio::sync::Mutex::new(()),
            deploys: tokio::sync::Mutex::new(()),
        }
    }

    /// Does what the action asks.
    pub async fn execute(&self, action: Action) -> Result<Reply, ApiError> {
        match action {
            Action::ListApps => Ok(Reply::Apps(self.list_apps().await?)),
            Action::CreateApp(spec) => Ok(Reply::Created(self.create_app(*spec).await?)),
            Action::ShowApp(name) => Ok(Reply::App(self.app(&name).await?)),
            Action::UpdateApp { name, patch } => {
                Ok(Reply::App(self.update_app(&name, &patch).await?))
            }
            Action::DeleteApp(name) => {
                self.delete_app(&name).await?;
                Ok(Reply::Deleted)
            }
            Action::Deploy { name, source } => {
                Ok(Reply::Release(self.deploy(&name, source).await?))
            }
            Action::ListReleases(name) => Ok(Reply::Releases(self.releases(&name).await?)),
            Action::Rollout(name) => Ok(Reply::App(self.rollout(&name).await?)),
            Action::Events { name, limit } => Ok(Reply::Events(self.events(&name, limit).await?)),
            Action::Metrics(name) => Ok(Reply::Metrics(self.metrics(&name).await?)),
            Action::Logs { name, max_bytes } => Ok(Reply::Logs(self.logs(&name, max_bytes).await?)),
            Action::Instances { app } => {
                Ok(Reply::Instances(self.instances(app.as_deref()).await?))
            }
        }
    }

    /// Reads an app; 404 if absent.
    async fn app(&self, name: &str) -> Result<App, ApiError> {
        self.store
            .get_json::<App>(&keys::app(name))
            .await?
            .ok_or_else(|| ApiError::no_app(name))
    }

    /// Records an event of an API action and trims the app's log to [`MAX_EVENTS`]. A failure
    /// here is logged, not returned: the action itself is done.
    async fn record(&self, app: &str, kind: EventKind, reason: String) {
        let prefix = keys::events(app);
        let event = Event::new(app, kind, reason);
        tracing::info!(app, kind = ?event.kind, reason = %event.reason, "api action");
        if let Err(e) = self.store.append_json(&prefix, &event).await {
            tracing::warn!(app, error = %e, "could not record event");
            return;
        }
        if let Err(e) = self.store.trim(&prefix, MAX_EVENTS).await {
            tracing::warn!(app, error = %e, "could not trim events");
        }
    }
}
