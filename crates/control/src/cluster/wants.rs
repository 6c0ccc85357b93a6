//! Cold starts in a cluster. A front's proxy that finds no ready instance writes a want for the
//! app (`/wants/<app>`, only if none is there, on the front's lease), so a burst reaching three
//! fronts makes one start; it waits for a `ready` record of the app, or for the want to say the
//! start failed. The leader serves wants through the lifecycle, exactly like a request's start
//! on one host.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hako_model::{InstanceInfo, InstanceState, StartFailure, Want, WantFailure, now_unix_ms};
use hako_proxy::{LaunchError, Launched, Launcher};
use hako_store::keys::{self, Key};
use hako_store::{Compare, Store, StoreError, StoreExt, Txn, TxnOp, WatchEvent};

use super::front::Front;
use crate::apps::Apps;
use crate::lifecycle::{Cause, Lifecycle};
use crate::reconcile::Lead;

/// The proxy's launcher in a cluster.
pub(crate) struct WantLauncher {
    pub(crate) front: Arc<Front>,
    pub(crate) apps: Arc<Apps>,
    /// The leader's lifecycle while this front leads: its own cold starts go straight to it
    /// (one etcd write and one watch less); wants from other fronts join them there.
    pub(crate) lead: Arc<Lead>,
}

fn fail(kind: StartFailure, reason: impl Into<String>) -> LaunchError {
    LaunchError {
        kind,
        reason: reason.into(),
        log_tail: String::new(),
    }
}

fn unavailable(e: StoreError) -> LaunchError {
    fail(
        StartFailure::Node,
        format!("the cluster store is unavailable ({e}); cold starts resume when it is back"),
    )
}

/// A ready instance's address, for the proxy.
fn launched(info: &InstanceInfo) -> Option<Launched> {
    (info.state == InstanceState::Ready).then_some(())?;
    Some(Launched {
        instance_id: info.id.clone(),
        addr: info.addr.parse().ok()?,
    })
}

#[async_trait::async_trait]
impl Launcher for WantLauncher {
    async fn launch(&self, app: &str) -> Result<Launched, LaunchError> {
        if let Some(lifecycle) = self.lead.get() {
            let app = self
                .apps
                .get(app)
                .ok_or_else(|| fail(StartFailure::Gone, format!("app {app} no longer exists")))?;
            let info = lifecycle
                .start(&app, Cause::Request)
                .await
                .map_err(|e| LaunchError {
                    kind: e.kind,
                    reason: e.reason,
                    log_tail: e.log_tail,
                })?;
            return launched(&info).ok_or_else(|| {
                fail(
                    StartFailure::Node,
                    format!("instance {} has no usable address ({})", info.id, info.addr),
                )
            });
        }
        let store = self.front.store().clone();
        let uid = self
            .apps
            .get(app)
            .map(|a| a.uid)
            .ok_or_else(|| fail(StartFailure::Gone, format!("app {app} no longer exists")))?;
        let listing = store
            .list(&keys::instances(app))
            .await
            .map_err(unavailable)?;
        for kv in &listing.kvs {
            if let Some(l) = serde_json::from_slice::<InstanceInfo>(&kv.value)
                .ok()
                .as_ref()
                .and_then(launched)
            {
                return Ok(l); // ready meanwhile; this front's routes are a moment behind
            }
        }
        let from = Some(listing.revision + 1);
        let mut instances = store
            .watch(&keys::instances(app), from)
            .await
            .map_err(unavailable)?;
        let mut wants = store
            .watch(&keys::want(app), from)
            .await
            .map_err(unavailable)?;
        let want = Want {
            app: app.to_string(),
            uid,
            front: self.front.name.clone(),
            since_unix_ms: now_unix_ms(),
            failed: None,
        };
        let key = keys::want(app);
        let value = serde_json::to_vec(&want).expect("a want serializes");
        let txn = Txn::new().when(Compare::absent(&key)).and_then(TxnOp::Put {
            key: key.clone(),
            value,
            lease: Some(self.front.lease()),
        });
        store.txn(txn).await.map_err(unavailable)?;
        loop {
            tokio::select! {
                b = instances.recv() => {
                    let Some(b) = b else { return Err(fail(StartFailure::Node, "lost the watch of the app's instances")) };
                    for ev in b.map_err(unavailable)?.events {
                        if let WatchEvent::Put(kv) = ev
                            && let Some(l) = serde_json::from_slice::<InstanceInfo>(&kv.value).ok().as_ref().and_then(launched)
                        {
                            return Ok(l);
                        }
                    }
                }
                b = wants.recv() => {
                    let Some(b) = b else { return Err(fail(StartFailure::Node, "lost the watch of the app's start")) };
                    for ev in b.map_err(unavailable)?.events {
                        if let WatchEvent::Put(kv) = ev
                            && let Ok(w) = serde_json::from_slice::<Want>(&kv.value)
                            && let Some(f) = w.failed
                        {
                            return Err(fail(f.failure, f.reason));
                        }
                    }
                }
            }
        }
    }
}

/// The leader's side: starts what each want asks for, one start per app at a time.
pub(crate) async fn serve_wants(store: Arc<dyn Store>, lifecycle: Arc<Lifecycle>, apps: Arc<Apps>) {
    let serving: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        if let Err(e) = serve_once(&store, &lifecycle, &apps, &serving).await {
            tracing::warn!(error = %e, "lost the watch of cold starts; following again");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn serve_once(
    store: &Arc<dyn Store>,
    lifecycle: &Arc<Lifecycle>,
    apps: &Arc<Apps>,
    serving: &Arc<Mutex<HashSet<String>>>,
) -> Result<(), StoreError> {
    let listing = store.list(keys::WANTS).await?;
    for kv in &listing.kvs {
        serve_one(store, lifecycle, apps, serving, kv);
    }
    let mut watch = store.watch(keys::WANTS, Some(listing.revision + 1)).await?;
    while let Some(batch) = watch.recv().await {
        for ev in batch?.events {
            if let WatchEvent::Put(kv) = ev {
                serve_one(store, lifecycle, apps, serving, &kv);
            }
        }
    }
    Ok(())
}

fn serve_one(
    store: &Arc<dyn Store>,
    lifecycle: &Arc<Lifecycle>,
    apps: &Arc<Apps>,
    serving: &Arc<Mutex<HashSet<String>>>,
    kv: &hako_store::KeyValue,
) {
    let Some(Key::Want { app: name }) = keys::parse(&kv.key) else {
        return;
    };
    let Ok(want) = serde_json::from_slice::<Want>(&kv.value) else {
        return;
    };
    if want.failed.is_some()
        || !serving
            .lock()
            .expect("serving lock")
            .insert(name.to_string())
    {
        return;
    }
    let (store, lifecycle, apps, serving) = (
        store.clone(),
        lifecycle.clone(),
        apps.clone(),
        serving.clone(),
    );
    let (key, lease) = (kv.key.clone(), kv.lease);
    let name = name.to_string();
    tokio::spawn(async move {
        let result = match apps.get(&name).filter(|a| a.uid == want.uid) {
            None => Err((StartFailure::Gone, format!("app {name} no longer exists"))),
            Some(app) => lifecycle
                .start(&app, Cause::Request)
                .await
                .map_err(|e| (e.kind, e.reason)),
        };
        match result {
            Ok(_) => {
                let _ = store.delete(&key).await;
            }
            Err((failure, reason)) => {
                let failed = Want {
                    failed: Some(WantFailure { failure, reason }),
                    ..want
                };
                if let Ok(v) = serde_json::to_vec(&failed) {
                    let _ = match lease {
                        Some(l) => store.put_with_lease(&key, v, l).await,
                        None => store.put(&key, v).await,
                    };
                }
                // The waiters have seen it; the next request asks anew.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = store.delete(&key).await;
            }
        }
        serving.lock().expect("serving lock").remove(&name);
    });
}
