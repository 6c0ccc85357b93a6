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

/// An app was created or changed: route it; instances of an older code release, image or
/// generation are replaced (they drain while new ones start on demand).
async fn apply(daemon: &Arc<Daemon>, app: App) {
    let name = app.spec.name.clone();
    if let Err(e) = daemon.router.set_app(Daemon::route(&app)) {
        tracing::warn!(app = %name, error = %e, "cannot route app");
        return;
    }
    let old = daemon
        .apps
        .write()
        .expect("apps lock")
        .insert(name.clone(), app.clone());
    if let Some(old) = old {
        let changed = old.release != app.release
            || old.generation != app.generation
            || old.spec.image != app.spec.image
            || old.spec.cmd != app.spec.cmd
            || old.spec.env != app.spec.env
            || old.spec.port != app.spec.port
            || old.spec.user != app.spec.user
            || old.spec.network != app.spec.network
            || old.spec.memory != app.spec.memory;
        if changed {
            for i in daemon.agent.instances(Some(&name)) {
                let d = daemon.clone();
                let app_name = name.clone();
                tokio::spawn(async move {
                    d.retire(
                        &app_name,
                        &i.id,
                        "replaced: the app changed (new release, image or settings)".into(),
                        Duration::from_secs(600),
                    )
                    .await;
                });
            }
        }
    }
    daemon.wake.notify_one();
}

/// An app was deleted: stop routing, stop its instances, remove its files.
async fn remove(daemon: &Arc<Daemon>, name: &str) {
    daemon.apps.write().expect("apps lock").remove(name);
    for i in daemon.agent.instances(Some(name)) {
        daemon
            .retire(
                name,
                &i.id,
                "the app was deleted".into(),
                Duration::from_secs(30),
            )
            .await;
    }
    let _ = daemon.router.remove_app(name);
    daemon.agent.forget_app(name);
}
