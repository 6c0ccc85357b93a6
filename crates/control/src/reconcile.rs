//! Desired state → routes: the daemon follows the store's apps (created, changed, deleted by
//! the API, or by anything else that writes the store) and updates the routes, the apps table
//! and the lifecycle.
//!
//! Applying a change never waits on an app's instances: a delete takes the app's hosts out of
//! routing at once and leaves the draining to the lifecycle in the background, so a slow
//! delete holds up no other app — and no new app of the same name.

use std::sync::Arc;

use hako_model::App;
use hako_proxy::{AppRoute, Router};
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};
use tokio::sync::Notify;

use crate::apps::Apps;
use crate::certs::CertTable;
use crate::lifecycle::Lifecycle;

/// The lifecycle that acts on instances, when this daemon has one: always on one host; in a
/// cluster only while this front is the leader.
#[derive(Default)]
pub(crate) struct Lead(std::sync::RwLock<Option<Arc<Lifecycle>>>);

impl Lead {
    pub(crate) fn set(&self, lifecycle: Option<Arc<Lifecycle>>) {
        *self.0.write().expect("lead lock") = lifecycle;
    }

    pub(crate) fn get(&self) -> Option<Arc<Lifecycle>> {
        self.0.read().expect("lead lock").clone()
    }
}

/// What a change of the apps touches.
pub(crate) struct Reconciler {
    pub(crate) apps: Arc<Apps>,
    pub(crate) router: Router,
    pub(crate) lead: Arc<Lead>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) certs: Arc<CertTable>,
}

/// The route the proxy uses for an app.
pub(crate) fn route(app: &App) -> AppRoute {
    let mut r = AppRoute::new(app.spec.name.clone(), app.spec.hosts.clone());
    r.start_timeout = app.spec.start_timeout.0;
    r.ignored = app.spec.ignored_clients.clone();
    r.https_redirect = app.spec.https_redirect;
    r.hsts = app.spec.hsts.map(|d| d.0);
    r
}

/// The app stored under `key`, if it is an app's record and readable.
fn read(key: &str, value: &[u8]) -> Option<App> {
    if !matches!(keys::parse(key), Some(Key::App { .. })) {
        return None;
    }
    serde_json::from_slice::<App>(value)
        .inspect_err(|e| tracing::warn!(key, error = %e, "skipping unreadable app"))
        .ok()
}

impl Reconciler {
    /// Loads every app, then follows changes from exactly the revision it read at.
    pub(crate) async fn start(
        self,
        store: Arc<dyn Store>,
    ) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        let mut watch = self.load(&store).await?;
        Ok(tokio::spawn(async move {
            loop {
                while let Some(batch) = watch.recv().await {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the store's watch of apps; the apps stay as they were until it is back");
                            break;
                        }
                    };
                    self.apply_events(batch.events);
                }
                // Follow again from a fresh listing (the store may have been out of reach).
                watch = loop {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    match self.load(&store).await {
                        Ok(w) => break w,
                        Err(e) => tracing::debug!(error = %e, "the store is still out of reach"),
                    }
                };
            }
        }))
    }

    /// Applies every app as listed (and the removal of apps no longer listed), then watches
    /// from exactly the revision it read at.
    async fn load(&self, store: &Arc<dyn Store>) -> Result<hako_store::Watch, StoreError> {
        let listing = store.list(keys::APPS).await?;
        let mut listed = std::collections::HashSet::new();
        let mut apps = Vec::with_capacity(listing.kvs.len());
        for kv in &listing.kvs {
            if let Some(Key::App { name }) = keys::parse(&kv.key) {
                listed.insert(name.to_string());
            }
            apps.extend(read(&kv.key, &kv.value));
        }
        self.apply_all(apps);
        for app in self.apps.all() {
            if !listed.contains(&app.spec.name) {
                self.remove(&app.spec.name);
            }
        }
        store.watch(keys::APPS, Some(listing.revision + 1)).await
    }

    /// Applies a batch of the store's events in order: each run of puts at once (one
    /// routing-table rebuild for the run, however many apps it holds), deletes between them.
    fn apply_events(&self, events: Vec<WatchEvent>) {
        let mut run = Vec::new();
        for ev in events {
            match ev {
                WatchEvent::Put(kv) => run.extend(read(&kv.key, &kv.value)),
                WatchEvent::Delete { key, .. } => {
                    if let Some(Key::App { name }) = keys::parse(&key) {
                        self.apply_all(std::mem::take(&mut run));
                        self.remove(name);
                    }
                }
            }
        }
        self.apply_all(run);
    }

    /// Apps were created or changed: route them (one rebuild of the routing table for all)
    /// and wake the keep-alive loop, which replaces instances of an older code release,
    /// image or settings.
    fn apply_all(&self, apps: Vec<App>) {
        if apps.is_empty() {
            return;
        }
        for app in &apps {
            if let Some(old) = self
                .apps
                .get(&app.spec.name)
                .filter(|old| old.uid != app.uid)
            {
                // Another app of the same name (its delete was missed or raced): the old one goes.
                self.remove_app(&old);
            }
        }
        let refused: std::collections::HashMap<String, hako_proxy::RouterError> =
            self.router.set_apps(apps.iter().map(route)).into_iter().collect();
        for app in apps {
            if let Some(e) = refused.get(&app.spec.name) {
                tracing::warn!(app = %app.spec.name, error = %e, "cannot route app");
                continue;
            }
            self.applied(app);
        }
        self.wake.notify_one();
    }

    /// What follows once an app is routed: the apps table, live limits, certificates, the
    /// warm pool.
    fn applied(&self, app: App) {
        let name = app.spec.name.clone();
        let previous = self.apps.insert(app.clone());
        // New limits reach running instances live (the API asked already when it made the
        // change; this covers every other writer of the store, and is idempotent).
        if previous.is_some_and(|p| p.uid == app.uid && p.limits() != app.limits())
            && let Some(lifecycle) = self.lead.get()
        {
            let (apps, name) = (self.apps.clone(), name.clone());
            tokio::spawn(async move {
                if let Some(current) = apps.get(&name) {
                    lifecycle.resize_app(&current).await;
                }
            });
        }
        self.certs.app_routed(&app);
        // Parked containers of an older version go, and the warm pool fills up (in the
        // background) from this one; the agent refills it itself after each start.
        if let Some(lifecycle) = self.lead.get() {
            lifecycle.prepare(&app);
        }
    }

    /// An app was deleted: new requests get 404 at once, its instances drain and stop in the
    /// background, then its files go.
    fn remove(&self, name: &str) {
        if let Some(app) = self.apps.get(name) {
            self.remove_app(&app);
        }
    }

    fn remove_app(&self, app: &App) {
        if self.apps.is_current(app) {
            self.apps.remove(&app.spec.name);
            self.certs.app_removed(&app.spec.name);
        }
        match self.lead.get() {
            Some(lifecycle) => lifecycle.retire_app(app),
            // Not the leader: this front's proxy stops routing the app; the leader retires
            // its instances.
            None => {
                let _ = self.router.remove_app(&app.spec.name);
            }
        }
    }
}
