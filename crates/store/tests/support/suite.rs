//! The conformance suite every store backend must pass, written against
//! `Arc<dyn Store>` only. Each case gets a fresh, empty store.
//! A backend's test file instantiates it with `conformance_suite!(make)`
//! where `make` is an `async fn() -> (Arc<dyn Store>, Guard)`; the guard
//! (temp dir, server process) is dropped, cleaning up, when the case ends.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hako_store::{
    Compare, CompareOp, Store, StoreError, StoreExt, Txn, TxnOp, TxnOpResponse, Watch, WatchBatch,
    WatchEvent,
};

/// Whatever a backend must keep alive for one case (dropped at its end).
pub type Guard = Box<dyn std::any::Any + Send>;

/// How long a test waits for an expected watch batch before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// The next batch of a watch, failing the test if none arrives in time.
pub async fn next(watch: &mut Watch) -> WatchBatch {
    match tokio::time::timeout(WAIT, watch.recv()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(other) => panic!("watch ended or failed: {other:?}"),
        Err(_) => panic!("no watch batch within {WAIT:?}"),
    }
}

/// Asserts no batch is ready right after the writes the caller awaited.
pub async fn assert_quiet(watch: &mut Watch) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), watch.recv()).await {
        panic!("unexpected watch item: {got:?}");
    }
}

fn keys_of(batch: &WatchBatch) -> Vec<String> {
    batch.events.iter().map(|e| e.key().to_owned()).collect()
}

pub async fn put_get_and_revisions(store: Arc<dyn Store>) {
    let rev0 = store.revision().await.unwrap();
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    let r1 = store.put("/t/a", b"one".to_vec()).await.unwrap();
    assert_eq!(r1, rev0 + 1, "a put increases the revision by one");
    let kv = store
        .get("/t/a")
        .await
        .unwrap()
        .expect("written key is there");
    assert_eq!(
        (kv.key.as_str(), kv.value.as_slice()),
        ("/t/a", &b"one"[..])
    );
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
        (r1, r1, 1, None)
    );
    let r2 = store.put("/t/a", b"two".to_vec()).await.unwrap();
    assert_eq!(r2, r1 + 1);
    let kv = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"two"[..], r1, r2, 2)
    );
    assert_eq!(store.revision().await.unwrap(), r2);
    let empty = store.put("/t/empty", Vec::new()).await.unwrap();
    assert_eq!(
        store.get("/t/empty").await.unwrap().unwrap().value,
        Vec::<u8>::new()
    );
    assert_eq!(empty, r2 + 1);
}

pub async fn delete_semantics(store: Arc<dyn Store>) {
    let r1 = store.put("/t/a", b"1".to_vec()).await.unwrap();
    assert!(!store.delete("/t/missing").await.unwrap());
    assert_eq!(
        store.revision().await.unwrap(),
        r1,
        "deleting nothing is not a revision"
    );
    assert!(store.delete("/t/a").await.unwrap());
    assert_eq!(store.revision().await.unwrap(), r1 + 1);
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    let r3 = store.put("/t/a", b"again".to_vec()).await.unwrap();
    let kv = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.version),
        (r3, 1),
        "a re-created key starts over"
    );
}

pub async fn range_and_prefix_delete(store: Arc<dyn Store>) {
    for k in [
        "/apps/b",
        "/apps/a/releases/0000000001",
        "/apps/a",
        "/appsx",
        "/nodes/n1",
    ] {
        store.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    let keys: Vec<String> = store
        .range("/apps/")
        .await
        .unwrap()
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(keys, ["/apps/a", "/apps/a/releases/0000000001", "/apps/b"]);
    let keys: Vec<String> = store
        .range("/apps")
        .await
        .unwrap()
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(
        keys.len(),
        4,
        "a prefix without '/' matches longer names too: {keys:?}"
    );
    assert_eq!(store.range("/").await.unwrap().len(), 5);
    let before = store.revision().await.unwrap();
    assert_eq!(store.delete_prefix("/apps/").await.unwrap(), 3);
    assert_eq!(
        store.revision().await.unwrap(),
        before + 1,
        "a prefix delete is one revision"
    );
    assert!(store.range("/apps/").await.unwrap().is_empty());
    assert_eq!(store.delete_prefix("/apps/").await.unwrap(), 0);
    assert_eq!(store.revision().await.unwrap(), before + 1);
    let listing = store.list("/").await.unwrap();
    assert_eq!(listing.revision, before + 1);
    assert_eq!(listing.kvs.len(), 2);
}

pub async fn txn_semantics(store: Arc<dyn Store>) {
    let create = |v: &str| {
        Txn::new()
            .when(Compare::absent("/t/k"))
            .and_then(TxnOp::put("/t/k", v.as_bytes().to_vec()))
            .or_else(TxnOp::get("/t/k"))
    };
    let first = store.txn(create("first")).await.unwrap();
    assert!(first.succeeded);
    assert_eq!(first.responses, vec![TxnOpResponse::Put]);
    let second = store.txn(create("second")).await.unwrap();
    assert!(!second.succeeded);
    assert_eq!(
        second.revision, first.revision,
        "a failed txn without writes is no revision"
    );
    match &second.responses[..] {
        [TxnOpResponse::Get(Some(kv))] => assert_eq!(kv.value, b"first"),
        other => panic!("{other:?}"),
    }
    // Compare-and-swap on mod_revision.
    let stale = Txn::new()
        .when(Compare::mod_revision(
            "/t/k",
            CompareOp::Equal,
            first.revision - 1,
        ))
        .and_then(TxnOp::put("/t/k", b"stale".to_vec()));
    assert!(!store.txn(stale).await.unwrap().succeeded);
    let cas = Txn::new()
        .when(Compare::mod_revision(
            "/t/k",
            CompareOp::Equal,
            first.revision,
        ))
        .when(Compare::value("/t/k", CompareOp::Equal, b"first".to_vec()))
        .when(Compare::version("/t/k", CompareOp::Less, 2))
        .and_then(TxnOp::put("/t/k", b"swapped".to_vec()))
        .and_then(TxnOp::put("/t/other", b"x".to_vec()))
        .and_then(TxnOp::delete("/t/none"))
        .and_then(TxnOp::get("/t/k"))
        .and_then(TxnOp::Range {
            prefix: "/t/".into(),
        });
    let r = store.txn(cas).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(
        r.revision,
        first.revision + 1,
        "all writes of a txn share one revision"
    );
    match &r.responses[..] {
        [
            TxnOpResponse::Put,
            TxnOpResponse::Put,
            TxnOpResponse::Delete(0),
            TxnOpResponse::Get(Some(kv)),
            TxnOpResponse::Range(kvs),
        ] => {
            assert_eq!(kv.value, b"swapped", "reads see the txn's own writes");
            assert_eq!(kv.mod_revision, r.revision);
            assert_eq!(kvs.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.get("/t/other").await.unwrap().unwrap().mod_revision,
        r.revision
    );
    // A value compare on a missing key is false.
    let missing = Txn::new()
        .when(Compare::value(
            "/t/missing",
            CompareOp::NotEqual,
            b"x".to_vec(),
        ))
        .and_then(TxnOp::put("/t/missing", b"1".to_vec()));
    assert!(!store.txn(missing).await.unwrap().succeeded);
    let twice = Txn::new()
        .and_then(TxnOp::put("/t/d", b"1".to_vec()))
        .and_then(TxnOp::put("/t/d", b"2".to_vec()));
    assert!(matches!(
        store.txn(twice).await,
        Err(StoreError::InvalidTxn(_))
    ));
    assert_eq!(store.revision().await.unwrap(), r.revision);
}

pub async fn bad_input_is_refused_clearly(store: Arc<dyn Store>) {
    for bad in ["", "apps/x", "/a\0b"] {
        let invalid = |r: Result<(), StoreError>| matches!(r, Err(StoreError::InvalidKey { .. }));
        assert!(invalid(store.get(bad).await.map(|_| ())), "get {bad:?}");
        assert!(
            invalid(store.put(bad, b"v".to_vec()).await.map(|_| ())),
            "put {bad:?}"
        );
        assert!(
            invalid(store.delete(bad).await.map(|_| ())),
            "delete {bad:?}"
        );
        assert!(invalid(store.range(bad).await.map(|_| ())), "range {bad:?}");
        assert!(
            invalid(store.delete_prefix(bad).await.map(|_| ())),
            "delete_prefix {bad:?}"
        );
        assert!(
            invalid(store.watch(bad, None).await.map(|_| ())),
            "watch {bad:?}"
        );
    }
    let err = store.put("", b"v".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("starting with '/'"), "{err}");
    let huge = vec![0u8; hako_store::key::MAX_VALUE_LEN + 1];
    assert!(matches!(
        store.put("/t/huge", huge).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert!(matches!(
        store.put_with_lease("/t/l", b"v".to_vec(), 424242).await,
        Err(StoreError::LeaseNotFound(424242))
    ));
    assert!(matches!(
        store.keep_alive(424242).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.revoke(424242).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.grant_lease(Duration::from_millis(10)).await,
        Err(StoreError::InvalidTtl(_))
    ));
    let rev = store.revision().await.unwrap();
    assert!(matches!(
        store.compact(rev + 100).await,
        Err(StoreError::InvalidRevision { .. })
    ));
    assert!(matches!(
        store.watch("/", Some(0)).await,
        Err(StoreError::InvalidRevision { .. })
    ));
    assert_eq!(
        store.revision().await.unwrap(),
        rev,
        "refused calls write nothing"
    );
    assert!(store.range("/").await.unwrap().is_empty());
}

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
        Ok(mut w) => {
            // etcd reports compaction on the stream instead of the call.
            let got = tokio::time::timeout(WAIT, w.recv())
                .await
                .expect("compaction reported");
            assert!(
                matches!(got, Some(Err(StoreError::Compacted { .. }))),
                "{got:?}"
            );
        }
        Err(other) => panic!("{other:?}"),
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    pub name: String,
    pub n: u64,
}

pub async fn typed_helpers(store: Arc<dyn Store>) {
    let key = "/apps/counter";
    let c = Counter {
        name: "c".into(),
        n: 0,
    };
    store.create_json(key, &c).await.unwrap();
    let err = store.create_json(key, &c).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists { key: key.into() });
    assert_eq!(
        store.get_json::<Counter>(key).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.get_json::<Counter>("/apps/none").await.unwrap(), None);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                store
                    .update_json(key, |c: &mut Counter| c.n += 1)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = store
        .get_json_versioned::<Counter>(key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.value.n, 80, "compare-and-swap loses no increment");
    assert_eq!(v.version, 81);
    let before = store.revision().await.unwrap();
    let same = store.update_json(key, |_: &mut Counter| {}).await.unwrap();
    assert_eq!(
        (same.mod_revision, store.revision().await.unwrap()),
        (v.mod_revision, before),
        "no-op update writes nothing"
    );
    let refused = store
        .try_update_json(key, |_: &mut Counter| Err::<(), _>("no"))
        .await
        .unwrap();
    assert_eq!(refused, Err("no"));
    assert!(matches!(
        store
            .update_json("/apps/none", |c: &mut Counter| c.n = 1)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store.put(key, b"not json".to_vec()).await.unwrap();
    assert!(matches!(
        store.get_json::<Counter>(key).await,
        Err(StoreError::Json { .. })
    ));
    // Append-only logs with retention.
    let mut appended = Vec::new();
    for i in 0..6u64 {
        appended.push(store.append_json("/events/blog/", &i).await.unwrap());
    }
    let mut sorted = appended.clone();
    sorted.sort();
    assert_eq!(sorted, appended, "appended keys sort in append order");
    assert_eq!(store.trim("/events/blog/", 4).await.unwrap(), 2);
    let left: Vec<u64> = store
        .range_json::<u64>("/events/blog/")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(left, vec![2, 3, 4, 5]);
}

/// Instantiates every case as a `#[tokio::test]` using `$make().await` for a fresh store.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            put_get_and_revisions, delete_semantics, range_and_prefix_delete, txn_semantics,
            bad_input_is_refused_clearly, watch_live_events, watch_replays_history_then_follows,
            compaction_refuses_old_revisions, leases_expire_and_revoke,
            concurrent_writers_and_watchers, slow_watcher_misses_nothing, typed_helpers);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $make().await;
                suite::$case(store.clone()).await;
                drop(store);
                drop(guard);
            }
        )*
    };
}
