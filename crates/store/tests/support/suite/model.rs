//! A model check: a long pseudo-random sequence of writes runs against the
//! store and against a tiny in-memory model of etcd's rules; every result,
//! the revision after each step, the listings, and the state rebuilt from the
//! watch stream must agree with the model.

use std::collections::BTreeMap;
use std::sync::Arc;

use hako_store::{Compare, CompareOp, KeyValue, Store, Txn, TxnOp, WatchEvent};

use super::next;

/// Deterministic xorshift, so a failure replays the same sequence.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const KEYS: [&str; 8] = [
    "/m/a", "/m/a/1", "/m/a/2", "/m/ab", "/m/b/1", "/m/b/2", "/m/c", "/m/d/e/f",
];
const PREFIXES: [&str; 4] = ["/m/a", "/m/a/", "/m/b/", "/m/d/"];

#[derive(Default)]
struct Model {
    kvs: BTreeMap<String, KeyValue>,
    revision: i64,
}

impl Model {
    fn put(&mut self, rev: i64, key: &str, value: Vec<u8>) {
        let prev = self.kvs.get(key);
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.map_or(1, |p| p.version + 1),
            lease: None,
        };
        self.kvs.insert(key.to_owned(), kv);
    }

    fn under(&self, prefix: &str) -> Vec<KeyValue> {
        self.kvs
            .values()
            .filter(|kv| kv.key.starts_with(prefix))
            .cloned()
            .collect()
    }
}

pub async fn random_writes_match_a_model(store: Arc<dyn Store>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut model = Model {
        revision: store.revision().await.unwrap(),
        ..Model::default()
    };
    let mut watch = store.watch("/m/", None).await.unwrap();
    let start = model.revision;
    for step in 0..300 {
        let key = KEYS[rng.below(KEYS.len())];
        let value = format!("{step}").into_bytes();
        match rng.below(5) {
            0 | 1 => {
                let rev = store.put(key, value.clone()).await.unwrap();
                model.revision += 1;
                assert_eq!(rev, model.revision, "step {step}: put revision");
                model.put(rev, key, value);
            }
            2 => {
                let existed = model.kvs.remove(key).is_some();
                assert_eq!(
                    store.delete(key).await.unwrap(),
                    existed,
                    "step {step}: delete {key}"
                );
                if existed {
                    model.revision += 1;
                }
            }
            3 => {
                let prefix = PREFIXES[rng.below(PREFIXES.len())];
                let doomed: Vec<String> =
                    model.under(prefix).into_iter().map(|kv| kv.key).collect();
                for k in &doomed {
                    model.kvs.remove(k);
                }
                let n = store.delete_prefix(prefix).await.unwrap();
                assert_eq!(
                    n,
                    doomed.len() as u64,
                    "step {step}: delete_prefix {prefix}"
                );
                if n > 0 {
                    model.revision += 1;
                }
            }
            _ => {
                // Compare-and-swap with the right or a wrong mod revision.
                let current = model.kvs.get(key).map_or(0, |kv| kv.mod_revision);
                let expected = if rng.below(2) == 0 {
                    current
                } else {
                    current + 1
                };
                let other = KEYS[rng.below(KEYS.len())];
                let mut txn = Txn::new()
                    .when(Compare::mod_revision(key, CompareOp::Equal, expected))
                    .and_then(TxnOp::put(key, value.clone()));
                if other != key {
                    txn = txn.and_then(TxnOp::delete(other));
                }
                let response = store.txn(txn).await.unwrap();
                assert_eq!(response.succeeded, expected == current, "step {step}: cas");
                if response.succeeded {
                    model.revision += 1;
                    model.put(model.revision, key, value);
                    if other != key {
                        model.kvs.remove(other);
                    }
                }
                assert_eq!(
                    response.revision, model.revision,
                    "step {step}: txn revision"
                );
            }
        }
        assert_eq!(
            store.revision().await.unwrap(),
            model.revision,
            "step {step}: revision"
        );
        if step % 10 == 0 {
            let prefix = PREFIXES[rng.below(PREFIXES.len())];
            assert_eq!(
                store.range(prefix).await.unwrap(),
                model.under(prefix),
                "step {step}: range {prefix}"
            );
        }
    }
    assert_eq!(store.range("/m/").await.unwrap(), model.under("/m/"));
    // Replaying the watch stream rebuilds exactly the final state.
    let mut rebuilt: BTreeMap<String, KeyValue> = BTreeMap::new();
    let mut last = start;
    while last < model.revision {
        let batch = next(&mut watch).await;
        assert_eq!(batch.revision, last + 1, "watch revisions are contiguous");
        last = batch.revision;
        for event in batch.events {
            match event {
                WatchEvent::Put(kv) => {
                    rebuilt.insert(kv.key.clone(), kv);
                }
                WatchEvent::Delete { key, .. } => {
                    rebuilt.remove(&key);
                }
            }
        }
    }
    assert_eq!(rebuilt, model.kvs);
}
