//! The engine acts on [`Action`]s: it reads and writes desired state in the store (apps,
//! releases' records, tenants and tokens, events of API actions) and asks the [`Backend`] for
//! what needs the node. The daemon watches the store and does the rest.
//!
//! Every action runs as a [`Caller`] ([`Engine::execute_as`]): what it reads is limited to
//! what the caller sees (another tenant's app is a 404, word for word as a missing one), what
//! it changes is checked against the owning tenant's quota, and its event says who asked.

mod access;
mod apps;
mod certs;
mod hosts;
mod nodes;
mod observe;
mod releases;
mod slo;
mod tenants;
mod visible;

use std::sync::Arc;

use hako_model::{App, Event, EventKind};
use hako_store::{Store, StoreExt, keys};

use crate::action::{Action, MAX_EVENTS, Reply, Whoami};
use crate::backend::Backend;
use crate::caller::Caller;
use crate::error::ApiError;

/// Runs actions against the store and the backend. Cheap to share behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    /// Serialises app creates, updates and deletes and tenant and token changes, so host
    /// uniqueness, quotas and token names hold.
    app_writes: tokio::sync::Mutex<()>,
    /// Serialises the choice of release numbers.
    deploys: tokio::sync::Mutex<()>,
    /// Which app has each host, for the creates' and updates' host check.
    hosts: hosts::HostIndex,
}

impl Engine {
    /// An engine over a store and the daemon's backend.
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Engine {
        Engine {
            store,
            backend,
            app_writes: tokio::sync::Mutex::new(()),
            deploys: tokio::sync::Mutex::new(()),
            hosts: hosts::HostIndex::default(),
        }
    }

    /// The authenticator for this engine's store: `admin_token`, `metrics_token`, or a tenant
    /// token recorded there. Whatever serves requests (the API, the dashboard, `/metrics`)
    /// resolves callers with it.
    pub fn authenticator(
        &self,
        admin_token: String,
        metrics_token: Option<String>,
    ) -> crate::caller::Authenticator {
        crate::caller::Authenticator::new(admin_token, metrics_token, self.store.clone())
    }

    /// Does what the action asks, as the admin (the daemon's own actions, such as demo apps).
    pub async fn execute(&self, action: Action) -> Result<Reply, ApiError> {
        self.execute_as(&Caller::Admin, action).await
    }

    /// Does what the action asks, as `caller` sees and may change things.
    pub async fn execute_as(&self, caller: &Caller, action: Action) -> Result<Reply, ApiError> {
        match action {
            Action::Whoami => Ok(Reply::Whoami(whoami(caller))),
            Action::ListApps => Ok(Reply::Apps(self.visible_apps(caller).await?)),
            Action::CreateApp { spec, tenant } => Ok(Reply::Created(
                self.create_app(caller, *spec, tenant).await?,
            )),
            Action::ShowApp(name) => Ok(Reply::App(self.visible_app(caller, &name).await?)),
            Action::UpdateApp { name, patch } => {
                let (app, resize) = self.update_app(caller, &name, &patch).await?;
                Ok(Reply::Updated(app, resize))
            }
            Action::DeleteApp { name, database } => {
                self.delete_app(caller, &name, database).await?;
                Ok(Reply::Deleted)
            }
            Action::Deploy { name, source } => {
                Ok(Reply::Release(self.deploy(caller, &name, source).await?))
            }
            Action::ListReleases(name) => Ok(Reply::Releases(self.releases(caller, &name).await?)),
            Action::Rollout(name) => Ok(Reply::App(self.rollout(caller, &name).await?)),
            Action::Events { name, limit } => {
                Ok(Reply::Events(self.events(caller, &name, limit).await?))
            }
            Action::Metrics(name) => Ok(Reply::Metrics(self.metrics(caller, &name).await?)),
            Action::Checkpoint(name) => Ok(Reply::Metrics(self.checkpoint(caller, &name).await?)),
            Action::Slo { name, target } => {
                Ok(Reply::Slo(Box::new(self.slo(caller, &name, target).await?)))
            }
            Action::Logs { name, max_bytes } => {
                Ok(Reply::Logs(self.logs(caller, &name, max_bytes).await?))
            }
            Action::Instances { app } => Ok(Reply::Instances(
                self.instances(caller, app.as_deref()).await?,
            )),
            Action::Tenants(action) => self.tenants(caller, action).await,
            Action::ListNodes => Ok(Reply::Nodes(self.nodes(caller).await?)),
            Action::SetNodeState { name, state } => Ok(Reply::Node(Box::new(
                self.set_node_state(caller, &name, state).await?,
            ))),
            Action::SetCert { name, upload } => {
                Ok(Reply::Cert(self.set_cert(caller, &name, &upload).await?))
            }
            Action::ShowCert(name) => Ok(Reply::Cert(self.cert(caller, &name).await?)),
            Action::RemoveCert(name) => {
                self.remove_cert(caller, &name).await?;
                Ok(Reply::Deleted)
            }
        }
    }

    /// Reads an app, whoever owns it; 404 if absent.
    async fn app(&self, name: &str) -> Result<App, ApiError> {
        self.store
            .get_json::<App>(&keys::app(name))
            .await?
            .ok_or_else(|| ApiError::no_app(name))
    }

    /// Records an event of an API action — who asked (`caller`) and whose app it is
    /// (`owner`) — and trims the app's log to [`MAX_EVENTS`]. A failure here is logged, not
    /// returned: the action itself is done.
    async fn record(
        &self,
        caller: &Caller,
        owner: Option<&str>,
        app: &str,
        kind: EventKind,
        reason: String,
    ) {
        let prefix = keys::events(app);
        let event = Event::new(app, kind, reason)
            .actor(caller.actor())
            .tenant(owner);
        tracing::info!(app, kind = ?event.kind, actor = ?event.actor, reason = %event.reason, "api action");
        if let Err(e) = self.store.append_json(&prefix, &event).await {
            tracing::warn!(app, error = %e, "could not record event");
            return;
        }
        if let Err(e) = self.store.trim(&prefix, MAX_EVENTS).await {
            tracing::warn!(app, error = %e, "could not trim events");
        }
    }
}

fn whoami(caller: &Caller) -> Whoami {
    match caller {
        Caller::Admin | Caller::Metrics => Whoami {
            actor: caller.actor(),
            admin: caller.is_admin(),
            tenant: None,
            token: None,
        },
        Caller::Tenant(t) => Whoami {
            actor: caller.actor(),
            admin: false,
            tenant: Some(t.tenant.clone()),
            token: Some(t.name.clone()),
        },
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
            _: Option<u64>,
        ) -> Result<Release, BackendError> {
            Ok(Release {
                app: app.into(),
                number,
                created_unix: 0,
                size_bytes: 0,
                files: 0,
                source: source.describe(),
                digest: None,
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
            .execute(Action::CreateApp {
                spec: Box::new(spec),
                tenant: None,
            })
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

    fn spec(name: &str, host: &str) -> hako_model::AppSpec {
        crate::action::parse_spec(
            format!(r#"{{"name": "{name}", "hosts": ["{host}"], "image": "static", "cmd": "httpd -f -p $PORT"}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    async fn create(engine: &Engine, name: &str, host: &str) -> Result<Reply, ApiError> {
        engine
            .execute(Action::CreateApp {
                spec: Box::new(spec(name, host)),
                tenant: None,
            })
            .await
    }

    /// The host check reads one app per create, however many there are (it decoded every
    /// app before: 10,000 apps made it most of a create's time).
    #[tokio::test]
    async fn host_checks_cost_the_same_with_many_apps() {
        let store: Arc<dyn Store> =
            Arc::new(hako_store::EmbeddedStore::open_in_memory().await.unwrap());
        let engine = Engine::new(store.clone(), Arc::new(OneImage));
        for i in 0..300 {
            create(&engine, &format!("a{i}"), &format!("a{i}.example"))
                .await
                .unwrap();
        }
        let before = engine.hosts.decoded();
        create(&engine, "last", "last.example").await.unwrap();
        let per_create = engine.hosts.decoded() - before;
        // At most the watch's copies of the last two creates, never one per app.
        assert!(per_create <= 2, "{per_create} apps decoded for one create");

        // And the check still holds: a taken host is refused, naming its app…
        let err = create(&engine, "other", "a7.example").await.unwrap_err();
        assert!(
            matches!(&err, ApiError::Conflict(m) if m.contains("\"a7\"")),
            "{err:?}"
        );
        // …until the app moves off it or goes.
        let patch: hako_model::AppPatch =
            serde_json::from_value(serde_json::json!({"hosts": ["moved.example"]})).unwrap();
        engine
            .execute(Action::UpdateApp {
                name: "a7".into(),
                patch: Box::new(patch),
            })
            .await
            .unwrap();
        create(&engine, "other", "a7.example").await.unwrap();
        assert!(create(&engine, "third", "moved.example").await.is_err());
        engine
            .execute(Action::DeleteApp {
                name: "a7".into(),
                database: None,
            })
            .await
            .unwrap();
        create(&engine, "third", "moved.example").await.unwrap();
        // A write the engine did not make (another front of a cluster) reaches the check
        // through the store's watch.
        let mut foreign: App = store.get_json(&keys::app("a8")).await.unwrap().unwrap();
        foreign.spec.name = "foreign".into();
        foreign.spec.hosts = vec!["foreign.example".into()];
        store
            .put_json(&keys::app("foreign"), &foreign)
            .await
            .unwrap();
        let err = create(&engine, "late", "foreign.example")
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Conflict(_)), "{err:?}");
    }
}
