//! Desired state → routes: the daemon follows the store's apps (created, changed, deleted by
//! the API, or by anything else that writes the store) and updates the proxy and instances.

use std::sync::Arc;
use std::time::Duration;

use hako_model::App;
use hako_store::keys::{self, Key};
use hako_store::{StoreExt, WatchEvent};

use crate::daemon::{Daemon, ServeError};

/// Loads every app, then follows changes from exactly the revision it read at.
pub(crate) async fn start(daemon: Arc<Daemon>) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listing = daemon.store.list(keys::APPS).await?;
    for kv in &listing.kvs {
        if let Some(Key::App { .. }) = keys::parse(&kv.key) {
            match serde_json::from_slice::<App>(&kv.value) {
                Ok(app) => apply(&daemon, app).await,
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "skipping unreadable app"),
            }
        }
    }
    let mut watch = daemon
        .store
        .watch(keys::APPS, Some(listing.revision + 1))
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(batch) = watch.recv().await {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "lost the store's watch of apps");
                    return;
                }
            };
            for ev in batch.events {
                match ev {
                    WatchEvent::Put(kv) => {
                        if let Some(Key::App { .. }) = keys::parse(&kv.key) {
                            match serde_json::from_slice::<App>(&kv.value) {
                                Ok(app) => apply(&daemon, app).await,
                                Err(e) => {
                                    tracing::warn!(key = %kv.key, error = %e, "skipping unreadable app")
                                }
                            }
                        }
                    }
                    WatchEvent::Delete { key, .. } => {
                        if let Some(Key::App { name }) = keys::parse(&key) {
                            remove(&daemon, name).await;
                        }
                    }
                }
            }
        }
    }))
}

/// An app was created or changed: route it and wake the keep-alive loop, which replaces
/// instances of an older code release, image or settings.
async fn apply(daemon: &Arc<Daemon>, app: App) {
    let name = app.spec.name.clone();
    if let Err(e) = daemon.router.set_app(Daemon::route(&app)) {
        tracing::warn!(app = %name, error = %e, "cannot route app");
        return;
    }
    // Instances of an older version are replaced by the keep-alive loop (level-triggered:
    // it also catches instances whose start was under way while the app changed).
    daemon
        .apps
        .write()
        .expect("apps lock")
        .insert(name, app.clone());
    daemon.wake.notify_one();
    // Parked containers of an older version go, and the warm pool fills up (in the
    // background) from this one; the agent refills it itself after each start.
    daemon.agent.fill_pool(&app);
}

/// An app was deleted: new requests get 404 at once, open requests finish (bounded), then
/// its instances stop and its warm pool and files go.
async fn remove(daemon: &Arc<Daemon>, name: &str) {
    daemon.apps.write().expect("apps lock").remove(name);
    let instances = daemon.agent.instances(Some(name));
    let drains: Vec<_> = instances
        .iter()
        .map(|i| (i.id.clone(), daemon.router.drain(name, &i.id).ok()))
        .collect();
    let _ = daemon.router.remove_app(name);
    for (id, drain) in drains {
        if let Some(d) = drain {
            let _ = tokio::time::timeout(Duration::from_secs(30), d.wait()).await;
        }
        daemon
            .retire(name, &id, "the app was deleted".into(), Duration::ZERO)
            .await;
    }
    daemon.agent.forget_app(name).await;
}
