//! The daemon's store, counted: every call that fails adds one to its operation's count
//! (`hako_store_errors_total{op}`), whatever part of the daemon made it — the API's engine, the
//! lifecycle, the event log, the store watch. A transaction whose comparison does not hold is
//! not a failure (it answers `succeeded: false`); only errors are counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hako_store::{KeyValue, Store, StoreError, Txn, TxnResponse, Watch};

/// The store operations whose failures are counted, in a stable order.
pub(crate) const STORE_OPS: [&str; 7] = ["get", "range", "put", "delete", "txn", "watch", "lease"];

/// Failures per store operation.
#[derive(Debug, Default)]
pub(crate) struct StoreErrors([AtomicU64; STORE_OPS.len()]);

impl StoreErrors {
    fn count(&self, op: &str) {
        if let Some(i) = STORE_OPS.iter().position(|o| *o == op) {
            self.0[i].fetch_add(1, Relaxed);
        }
    }

    /// `(operation, failures)` for every operation, zeros included.
    pub(crate) fn read(&self) -> Vec<(&'static str, u64)> {
        STORE_OPS
            .iter()
            .zip(&self.0)
            .map(|(op, n)| (*op, n.load(Relaxed)))
            .collect()
    }
}

/// A store that counts its failures in [`StoreErrors`].
pub(crate) struct CountedStore {
    inner: Arc<dyn Store>,
    errors: Arc<StoreErrors>,
}

impl CountedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, errors: Arc<StoreErrors>) -> CountedStore {
        CountedStore { inner, errors }
    }

    fn counted<T>(&self, op: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.errors.count(op);
        }
        r
    }
}

#[async_trait::async_trait]
impl Store for CountedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.counted("get", self.inner.get(key).await)
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.counted("range", self.inner.range(prefix).await)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        self.counted("put", self.inner.put(key, value).await)
    }

    async fn put_with_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<i64, StoreError> {
        self.counted("put", self.inner.put_with_lease(key, value, lease).await)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.counted("delete", self.inner.delete(key).await)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.counted("delete", self.inner.delete_prefix(prefix).await)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.counted("txn", self.inner.txn(txn).await)
    }

    async fn watch(&self, prefix: &str, from_revision: Option<i64>) -> Result<Watch, StoreError> {
        self.counted("watch", self.inner.watch(prefix, from_revision).await)
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        self.counted("get", self.inner.revision().await)
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.counted("delete", self.inner.compact(revision).await)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<i64, StoreError> {
        self.counted("lease", self.inner.grant_lease(ttl).await)
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError> {
        self.counted("lease", self.inner.keep_alive(lease).await)
    }

    async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        self.counted("lease", self.inner.revoke(lease).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_are_counted_by_operation_and_successes_not() {
        let inner: Arc<dyn Store> =
            Arc::new(hako_store::EmbeddedStore::open_in_memory().await.unwrap());
        let errors = Arc::new(StoreErrors::default());
        let store = CountedStore::new(inner, errors.clone());
        store.put("/a", b"1".to_vec()).await.unwrap();
        assert_eq!(store.get("/a").await.unwrap().unwrap().value, b"1");
        // Keys must start with '/': the store refuses these.
        assert!(store.get("no-slash").await.is_err());
        assert!(store.put("no-slash", Vec::new()).await.is_err());
        assert!(store.put("no-slash", Vec::new()).await.is_err());
        let read = errors.read();
        let get = |op| read.iter().find(|(o, _)| *o == op).unwrap().1;
        assert_eq!((get("get"), get("put"), get("range")), (1, 2, 0));
    }
}
