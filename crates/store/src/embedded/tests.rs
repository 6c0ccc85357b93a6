//! Tests of behaviour only the embedded store has: retention, shutdown,
//! batches mixing failing and succeeding calls, reopening.

use std::sync::Arc;
use std::time::Duration;

use super::{EmbeddedConfig, EmbeddedStore, Retention};
use crate::{Store, StoreError};

async fn store_with(retention: Retention) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedConfig {
        retention,
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn retention_by_revisions_compacts_old_history() {
    let store = store_with(Retention {
        revisions: Some(16),
        max_age: None,
    })
    .await;
    let first = store.put("/k", b"0".to_vec()).await.unwrap();
    for i in 1..100 {
        store.put("/k", i.to_string().into_bytes()).await.unwrap();
    }
    let last = store.revision().await.unwrap();
    let err = store.watch("/", Some(first)).await.unwrap_err();
    let StoreError::Compacted {
        compact_revision, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(
        compact_revision > first && compact_revision <= last - 15,
        "{compact_revision}"
    );
    let mut w = store.watch("/", Some(last - 15)).await.unwrap();
    for want in last - 15..=last {
        assert_eq!(w.recv().await.unwrap().unwrap().revision, want);
    }
}

#[tokio::test]
async fn retention_by_age_keeps_only_recent_history() {
    let store = store_with(Retention {
        revisions: None,
        max_age: Some(Duration::ZERO),
    })
    .await;
    let first = store.put("/a", b"1".to_vec()).await.unwrap();
    let second = store.put("/a", b"2".to_vec()).await.unwrap();
    assert!(matches!(
        store.watch("/", Some(first)).await,
        Err(StoreError::Compacted { .. })
    ));
    assert!(store.watch("/", Some(second)).await.is_ok());
    assert_eq!(store.get("/a").await.unwrap().unwrap().value, b"2");
}

#[tokio::test]
async fn closing_ends_watches_and_calls() {
    let store = EmbeddedStore::open_in_memory().await.unwrap();
    let mut watch = store.watch("/", None).await.unwrap();
    store.close().await;
    assert_eq!(watch.recv().await, Some(Err(StoreError::Closed)));
    assert_eq!(watch.recv().await, None);
    assert_eq!(store.put("/k", vec![]).await, Err(StoreError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_do_not_spoil_their_batch() {
    let store = Arc::new(EmbeddedStore::open_in_memory().await.unwrap());
    let start = store.revision().await.unwrap();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("/batch/{i}");
                if i % 2 == 0 {
                    store.put(&key, b"ok".to_vec()).await.map(|_| ())
                } else {
                    store
                        .put_with_lease(&key, b"no".to_vec(), 999)
                        .await
                        .map(|_| ())
                }
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let result = call.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(result, Ok(()));
        } else {
            assert_eq!(result, Err(StoreError::LeaseNotFound(999)));
        }
    }
    assert_eq!(store.revision().await.unwrap(), start + 32);
    let kvs = store.range("/batch/").await.unwrap();
    assert_eq!(kvs.len(), 32);
    assert!(kvs.iter().all(|kv| kv.value == b"ok"));
}

#[tokio::test]
async fn leases_survive_a_reopen_with_a_fresh_ttl() {
    let dir = tempfile::Builder::new()
        .prefix("hako-store-lease")
        .tempdir()
        .unwrap();
    let store = EmbeddedStore::open_in_data_dir(dir.path()).await.unwrap();
    let lease = store.grant_lease(Duration::from_secs(60)).await.unwrap();
    store
        .put_with_lease("/nodes/n1", b"up".to_vec(), lease)
        .await
        .unwrap();
    store.close().await;
    let store = EmbeddedStore::open_in_data_dir(dir.path()).await.unwrap();
    store.keep_alive(lease).await.unwrap();
    let next = store.grant_lease(Duration::from_secs(60)).await.unwrap();
    assert_ne!(next, lease, "lease ids are never reused");
    store.revoke(lease).await.unwrap();
    assert_eq!(store.get("/nodes/n1").await.unwrap(), None);
    store.close().await;
}
