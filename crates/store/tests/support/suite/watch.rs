//! Conformance cases for watches: live events, replay, compaction, concurrency, slow consumers.

use std::collections::BTreeSet;
use std::sync::Arc;

use hako_store::{Store, StoreError, Txn, TxnOp, WatchEvent};

use super::{assert_quiet, keys_of, next};

pub async fn watch_live_events(store: Arc<dyn Store>) {
    let mut watch = store.watch("/w/", None).await.unwrap();
    let r1 = store.put("/w/a", b"1".to_vec()).await.unwrap();
    store.put("/other", b"x".to_vec()).await.unwrap();
    let r3 = store
        .txn(
            Txn::new()
                .and_then(TxnOp::put("/w/b", b"2".to_vec()))
                .and_then(TxnOp::put("/w/c", b"3".to_vec()))
                .and_then(TxnOp::put("/elsewhere", b"4".to_vec())),
        )
        .await
        .unwrap()
        .revision;
    assert!(store.delete("/w/a").await.unwrap());
    let r4 = store.revision().await.unwrap();
    store.delete_prefix("/w/").await.unwrap();
    let r5 = store.revision().await.unwrap();

    let b = next(&mut watch).await;
    assert_eq!(b.revision, r1);
    match &b.events[..] {
        [WatchEvent::Put(kv)] => assert_eq!(
            (kv.key.as_str(), kv.value.as_slice(), kv.version),
            ("/w/a", &b"1"[..], 1)
        ),
        other => panic!("{other:?}"),
    }
    let b = next(&mut watch).await;
    assert_eq!(
        (b.revision, keys_of(&b)),
        (r3, vec!["/w/b".to_owned(), "/w/c".to_owned()]),
        "a txn arrives as one batch"
    );
    let b = next(&mut watch).await;
    assert_eq!(
        b.events,
        vec![WatchEvent::Delete {
            key: "/w/a".into(),
            mod_revision: r4
        }]
    );
    let b = next(&mut watch).await;
    assert_eq!(b.revision, r5);
    let deleted: BTreeSet<String> = keys_of(&b).into_iter().collect();
    assert_eq!(
        deleted,
        BTreeSet::from(["/w/b".to_owned(), "/w/c".to_owned()])
    );
    assert!(
        b.events
            .iter()
            .all(|e| matches!(e, WatchEvent::Delete { .. }))
    );
    assert_quiet(&mut watch).await;
}

pub async fn watch_replays_history_then_follows(store: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(store.put(&format!("/h/{i}"), vec![i]).await.unwrap());
    }
    let mut watch = store.watch("/h/", Some(revs[2])).await.unwrap();
    let live = store.put("/h/live", b"l".to_vec()).await.unwrap();
    for want in [revs[2], revs[3], revs[4], live] {
        assert_eq!(next(&mut watch).await.revision, want);
    }
    assert_quiet(&mut watch).await;
    // A watch from a future revision waits for it.
    let now = store.revision().await.unwrap();
    let mut future = store.watch("/h/", Some(now + 2)).await.unwrap();
    store.put("/h/x", b"skip".to_vec()).await.unwrap();
    let wanted = store.put("/h/y", b"take".to_vec()).await.unwrap();
    assert_eq!(next(&mut future).await.revision, wanted);
}

pub async fn compaction_refuses_old_revisions(store: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..4 {
        revs.push(store.put("/c/k", vec![i]).await.unwrap());
    }
    store.compact(revs[2]).await.unwrap();
    match store.watch("/c/", Some(revs[1])).await {
        Err(StoreError::Compacted {
            requested,
            compact_revision,
        }) => {
            assert_eq!((requested, compact_revision), (revs[1], revs[2]));
        }
        other => panic!("watching a compacted revision: {other:?}"),
    }
    let mut w = store.watch("/c/", Some(revs[2])).await.unwrap();
    assert_eq!(next(&mut w).await.revision, revs[2]);
    assert_eq!(next(&mut w).await.revision, revs[3]);
    store
        .compact(revs[1])
        .await
        .expect("compacting below the compaction point is a no-op");
    assert_eq!(
        store.get("/c/k").await.unwrap().unwrap().value,
        vec![3],
        "compaction keeps current values"
    );
}

pub async fn concurrent_writers_and_watchers(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const PUTS: usize = 40;
    let start = store.revision().await.unwrap();
    let mut watchers = Vec::new();
    for _ in 0..3 {
        watchers.push(store.watch("/cc/", None).await.unwrap());
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..PUTS {
                let key = format!("/cc/{t}/{}", i % 5);
                revs.push(
                    store
                        .put(&key, format!("{t}-{i}").into_bytes())
                        .await
                        .unwrap(),
                );
            }
            revs
        }));
    }
    let mut written = BTreeSet::new();
    for task in tasks {
        for rev in task.await.unwrap() {
            assert!(written.insert(rev), "revision {rev} handed out twice");
        }
    }
    let total = (TASKS * PUTS) as i64;
    assert_eq!(written.len() as i64, total);
    assert_eq!(store.revision().await.unwrap(), start + total);
    assert_eq!(
        written.iter().copied().collect::<Vec<_>>(),
        (start + 1..=start + total).collect::<Vec<_>>()
    );
    for mut watch in watchers {
        for want in start + 1..=start + total {
            let b = next(&mut watch).await;
            assert_eq!(b.revision, want, "every revision once, in order");
            assert_eq!(b.events.len(), 1);
        }
        assert_quiet(&mut watch).await;
    }
}

pub async fn slow_watcher_misses_nothing(store: Arc<dyn Store>) {
    let start = store.revision().await.unwrap();
    let mut watch = store.watch("/slow/", None).await.unwrap();
    const N: i64 = 1500; // more than any backend's per-watcher queue
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..N {
                store
                    .put("/slow/k", i.to_string().into_bytes())
                    .await
                    .unwrap();
            }
        })
    };
    writer.await.unwrap();
    for want in start + 1..=start + N {
        assert_eq!(next(&mut watch).await.revision, want);
    }
    assert_quiet(&mut watch).await;
}

pub async fn replay_joins_live_under_writes(store: Arc<dyn Store>) {
    const N: i64 = 600;
    let start = store.revision().await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..N {
                store
                    .put(&format!("/j/{}", i % 7), i.to_string().into_bytes())
                    .await
                    .unwrap();
            }
        })
    };
    // Open watches from recent revisions while the writer runs: each must
    // hand over from history to live delivery without a gap or duplicate.
    let mut watches = Vec::new();
    while watches.len() < 4 {
        let now = store.revision().await.unwrap();
        if now >= start + 10 * (watches.len() as i64 + 1) {
            let from = now - 5;
            watches.push((from, store.watch("/j/", Some(from)).await.unwrap()));
        } else if writer.is_finished() {
            break;
        } else {
            tokio::task::yield_now().await;
        }
    }
    writer.await.unwrap();
    assert_eq!(
        watches.len(),
        4,
        "the writer finished before the watches opened"
    );
    for (from, mut watch) in watches {
        for want in from..=start + N {
            assert_eq!(next(&mut watch).await.revision, want);
        }
        assert_quiet(&mut watch).await;
    }
}
