//! Conformance case for leases: expiry, keep-alive, revoke.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hako_store::{Store, StoreError, WatchEvent};

use super::{keys_of, next};

pub async fn leases_expire_and_revoke(store: Arc<dyn Store>) {
    let mut watch = store.watch("/l/", None).await.unwrap();
    let short = store.grant_lease(Duration::from_secs(1)).await.unwrap();
    let long = store.grant_lease(Duration::from_secs(60)).await.unwrap();
    assert_ne!(short, long);
    let put_rev = store
        .put_with_lease("/l/node", b"up".to_vec(), short)
        .await
        .unwrap();
    store
        .put_with_lease("/l/a", b"1".to_vec(), long)
        .await
        .unwrap();
    store
        .put_with_lease("/l/b", b"2".to_vec(), long)
        .await
        .unwrap();
    store
        .put_with_lease("/l/detached", b"3".to_vec(), long)
        .await
        .unwrap();
    store.put("/l/detached", b"3".to_vec()).await.unwrap();
    assert_eq!(
        store.get("/l/node").await.unwrap().unwrap().lease,
        Some(short)
    );
    assert_eq!(
        store.get("/l/detached").await.unwrap().unwrap().lease,
        None,
        "a put without lease detaches"
    );
    store.keep_alive(short).await.unwrap();
    for _ in 0..5 {
        assert_eq!(next(&mut watch).await.events.len(), 1);
    }
    // The short lease ends by itself: its key is deleted in a new revision.
    let b = next(&mut watch).await;
    assert!(b.revision > put_rev);
    assert_eq!(
        b.events,
        vec![WatchEvent::Delete {
            key: "/l/node".into(),
            mod_revision: b.revision
        }]
    );
    assert_eq!(store.get("/l/node").await.unwrap(), None);
    assert!(matches!(
        store.keep_alive(short).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.put_with_lease("/l/late", b"x".to_vec(), short).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    // Revoking deletes every key of the lease at once.
    store.revoke(long).await.unwrap();
    let b = next(&mut watch).await;
    let deleted: BTreeSet<String> = keys_of(&b).into_iter().collect();
    assert_eq!(
        deleted,
        BTreeSet::from(["/l/a".to_owned(), "/l/b".to_owned()])
    );
    assert_eq!(
        store.range("/l/").await.unwrap().len(),
        1,
        "only the detached key is left"
    );
}
