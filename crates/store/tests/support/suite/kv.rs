//! Conformance cases for keys, values, revisions, transactions, bad input and the typed helpers.

use std::sync::Arc;
use std::time::Duration;

use hako_store::{Compare, CompareOp, Store, StoreError, StoreExt, Txn, TxnOp, TxnOpResponse};

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
