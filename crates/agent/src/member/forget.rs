//! A deleted app's files leave every node. Once the leader has stopped the app's instances it
//! writes `/forgotten/<storage-key>` (on a lease of an hour); every node that sees it removes
//! the app's parked containers, checkpoints, logs, releases and data. A node that was away
//! longer than that lease sweeps, when it joins again, what it keeps locally of apps the store
//! no longer has; files on the shared storage are removed by the nodes that saw the record.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hako_model::App;
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt, WatchEvent};

use crate::Agent;

/// Follows `/forgotten/` until the task is dropped; a lost watch is taken up again from a
/// fresh listing.
pub(super) async fn follow(agent: Arc<Agent>, store: Arc<dyn Store>) {
    let mut done = HashSet::new();
    loop {
        if let Err(e) = follow_once(&agent, &*store, &mut done).await {
            tracing::warn!(error = %e, "lost the watch of deleted apps; following again");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn follow_once(
    agent: &Agent,
    store: &dyn Store,
    done: &mut HashSet<String>,
) -> Result<(), StoreError> {
    let listing = store.list(keys::FORGOTTEN).await?;
    for kv in &listing.kvs {
        forget(agent, &kv.key, done).await;
    }
    let mut watch = store
        .watch(keys::FORGOTTEN, Some(listing.revision + 1))
        .await?;
    while let Some(batch) = watch.recv().await {
        for ev in batch?.events {
            if let WatchEvent::Put(kv) = ev {
                forget(agent, &kv.key, done).await;
            }
        }
    }
    Ok(())
}

async fn forget(agent: &Agent, key: &str, done: &mut HashSet<String>) {
    let Some(Key::Forgotten { storage_key }) = keys::parse(key) else {
        return;
    };
    if done.insert(storage_key.to_string()) {
        tracing::info!(storage_key, "removing a deleted app's files from this node");
        agent.forget_app(storage_key).await;
    }
}

/// Removes what this node keeps locally of apps the store no longer has (deleted while the
/// node was away). Runs before the node takes assignments, so no app of the listing can be
/// starting here.
pub(super) async fn sweep(agent: &Agent, store: &dyn Store) -> Result<usize, StoreError> {
    let apps = store.list(keys::APPS).await?;
    let live: HashSet<String> = apps
        .kvs
        .iter()
        .filter(|kv| matches!(keys::parse(&kv.key), Some(Key::App { .. })))
        .filter_map(|kv| hako_store::decode::<App>(&kv.key, &kv.value).ok())
        .map(|app| app.storage_key())
        .collect();
    let mut swept = 0;
    for key in agent.local_app_keys() {
        if !live.contains(&key) {
            tracing::info!(storage_key = %key, "removing files of an app deleted while this node was away");
            agent.forget_local(&key).await;
            swept += 1;
        }
    }
    Ok(swept)
}
