//! The engine acts on [`Action`]s: it reads and writes desired state in the store (apps,
//! releases' records, events of API actions) and asks the [`Backend`] for what needs the node.
//! The daemon watches the store and does the rest.

mod apps;
mod certs;
mod nodes;
mod observe;
mod releases;
mod slo;
mod visible;

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
                let (app, resize) = self.update_app(&name, &patch).await?;
                Ok(Reply::Updated(app, resize))
            }
            Action::DeleteApp { name, database } => {
                self.delete_app(&name, database).await?;
                Ok(Reply::Deleted)
            }
            Action::Deploy { name, source } => {
                Ok(Reply::Release(self.deploy(&name, source).await?))
            }
            Action::ListReleases(name) => Ok(Reply::Releases(self.releases(&name).await?)),
            Action::Rollout(name) => Ok(Reply::App(self.rollout(&name).await?)),
            Action::Events { name, limit } => Ok(Reply::Events(self.events(&name, limit).await?)),
            Action::Metrics(name) => Ok(Reply::Metrics(self.metrics(&name).await?)),
            Action::Checkpoint(name) => Ok(Reply::Metrics(self.checkpoint(&name).await?)),
            Action::Slo { name, target } => {
                Ok(Reply::Slo(Box::new(self.slo(&name, target).await?)))
            }
            Action::Logs { name, max_bytes } => Ok(Reply::Logs(self.logs(&name, max_bytes).await?)),
            Action::Instances { app } => {
                Ok(Reply::Instances(self.instances(app.as_deref()).await?))
            }
            Action::ListNodes => Ok(Reply::Nodes(self.nodes().await?)),
            Action::SetNodeState { name, state } => Ok(Reply::Node(Box::new(
                self.set_node_state(&name, state).await?,
            ))),
            Action::SetCert { name, upload } => {
                Ok(Reply::Cert(self.set_cert(&name, &upload).await?))
            }
            Action::ShowCert(name) => Ok(Reply::Cert(self.cert(&name).await?)),
            Action::RemoveCert(name) => {
                self.remove_cert(&name).await?;
                Ok(Reply::Deleted)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendError, ReleaseSource};
    use hako_model::{ImageRef, InstanceInfo, NodeCapacity, Release};

    /// Knows one image; makes every release.
    struct OneImage;

    #[async_trait::async_trait]
    impl Backend for OneImage {
        async fn image_exists(&self, image: &ImageRef) -> bool {
            image.name == "static"
        }
        fn capacity(&self) -> NodeCapacity {
            NodeCapacity {
                cpus: 2,
                memory_bytes: 4 << 30,
                max_pids: 32768,
            }
        }
        async fn create_release(
            &self,
            app: &str,
            number: u64,
            source: ReleaseSource,
        ) -> Result<Release, BackendError> {
            Ok(Release {
                app: app.into(),
                number,
                created_unix: 0,
                size_bytes: 0,
                files: 0,
                source: source.describe(),
            })
        }
        async fn instances(&self, _: Option<&str>) -> Vec<InstanceInfo> {
            Vec::new()
        }
        async fn metrics(&self, _: &str) -> Option<serde_json::Value> {
            None
        }
        async fn logs(&self, _: &str, _: usize) -> String {
            String::new()
        }
    }

    #[tokio::test]
    async fn actions_without_http() {
        let store: Arc<dyn Store> =
            Arc::new(hako_store::EmbeddedStore::open_in_memory().await.unwrap());
        let engine = Engine::new(store.clone(), Arc::new(OneImage));
        let spec = crate::action::parse_spec(
            br#"{"name": "demo", "hosts": ["demo.localhost"], "image": "static", "cmd": "httpd -f -p $PORT"}"#,
        )
        .unwrap();
        let Reply::Created(app) = engine
            .execute(Action::CreateApp(Box::new(spec)))
            .await
            .unwrap()
        else {
            panic!("not created");
        };
        assert_eq!(app.spec.name, "demo");
        let deploy = Action::Deploy {
            name: "demo".into(),
            source: ReleaseSource::Dir("/srv/demo".into()),
        };
        let Reply::Release(release) = engine.execute(deploy).await.unwrap() else {
            panic!("no release");
        };
        assert_eq!(
            (release.number, release.source.as_str()),
            (1, "dir /srv/demo")
        );
        assert!(release.created_unix > 0, "creation time filled in");
        let stored: App = store.get_json(&keys::app("demo")).await.unwrap().unwrap();
        assert_eq!(stored.release, Some(1));
        let err = engine
            .execute(Action::ShowApp("other".into()))
            .await
            .unwrap_err();
        assert_eq!(err, ApiError::no_app("other"));
        let kinds: Vec<EventKind> = store
            .range_json::<Event>(&keys::events("demo"))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.kind)
            .collect();
        assert_eq!(kinds, [EventKind::AppCreated, EventKind::Deployed]);
    }
}
