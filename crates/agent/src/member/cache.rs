//! Keeps the node's verified cache to what the cluster still names: now and then (and only
//! while the cache holds anything) the node reads which digests the store names — each app's
//! current release ([`hako_model::App::release_digest`]) and the layers of every recorded
//! image version (`/images/…`) — and drops the cached trees no digest names and nothing on the
//! node uses: a deleted app's releases, an app's superseded releases, removed image versions.
//! (The cache's size bound evicts the least recently used besides; see `crate::blobs`.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hako_model::{App, Digest, ImageRecord};
use hako_store::keys::{self, Key};
use hako_store::{Store, StoreError, StoreExt};

use crate::Agent;

/// Sweeps the cache every `every` until the task is dropped.
pub(super) async fn sweep(agent: Arc<Agent>, store: Arc<dyn Store>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if agent
            .cache_usage()
            .is_none_or(|(entries, _, _)| entries == 0)
        {
            continue;
        }
        match live_digests(store.as_ref()).await {
            Ok(live) => {
                let removed = agent.retain_cached(&live);
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "dropped cached releases and layers the cluster no longer names"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read what the cluster names; the cache stays as it is")
            }
        }
    }
}

/// Every digest the store names: apps' current releases and recorded image versions' layers.
pub async fn live_digests(store: &dyn Store) -> Result<HashSet<Digest>, StoreError> {
    let mut live = HashSet::new();
    // A range over /apps/ holds the apps' release records too: keep the apps.
    for kv in store.range(keys::APPS).await? {
        if !matches!(keys::parse(&kv.key), Some(Key::App { .. })) {
            continue;
        }
        match hako_store::decode::<App>(&kv.key, &kv.value) {
            Ok(app) => live.extend(app.release_digest),
            // An unreadable app must not make the node drop what it may still need: give up.
            Err(e) => return Err(e),
        }
    }
    for (_, record) in store.range_json::<ImageRecord>(keys::IMAGES).await? {
        live.extend(record.layers);
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn apps_current_releases_and_recorded_layers_are_live() {
        let store = hako_store::EmbeddedStore::open_in_memory().await.unwrap();
        let d = |b: u8| Digest::from_bytes([b; 32]);
        let spec: hako_model::AppSpec = serde_json::from_value(serde_json::json!({
            "name": "blog", "hosts": ["blog.example"], "image": "php", "cmd": "x"
        }))
        .unwrap();
        let app = App {
            spec,
            uid: "0123456789ab".into(),
            release: Some(2),
            release_digest: Some(d(2)),
            image_record: None,
            generation: 0,
            created_unix: 0,
            updated_unix: 0,
            database_grant: None,
            tenant: None,
        };
        store.put_json(&keys::app("blog"), &app).await.unwrap();
        let mut other = app.clone();
        other.spec.name = "nocode".into();
        (other.release, other.release_digest) = (None, None);
        store.put_json(&keys::app("nocode"), &other).await.unwrap();
        // A release record (its older release 1) is no app: it names nothing by itself.
        let old = hako_model::Release {
            app: "blog".into(),
            number: 1,
            created_unix: 0,
            size_bytes: 0,
            files: 0,
            source: "upload".into(),
            digest: Some(d(1)),
        };
        store
            .put_json(&keys::release("blog", 1), &old)
            .await
            .unwrap();
        let record = ImageRecord {
            name: "php".into(),
            version: 3,
            created_unix: 1,
            host: false,
            layers: vec![d(7), d(8)],
        };
        store
            .put_json(&keys::image("php", "3"), &record)
            .await
            .unwrap();
        let live = live_digests(&store).await.unwrap();
        assert_eq!(live, HashSet::from([d(2), d(7), d(8)]));
    }
}
