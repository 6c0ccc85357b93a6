//! The store trait every backend implements, shaped like etcd's KV, watch and
//! lease APIs so the etcd backend is a thin mapping.
//!
//! Use it as `Arc<dyn Store>`; typed JSON helpers are in [`crate::StoreExt`].

use std::time::Duration;

use crate::{KeyValue, StoreError, Txn, TxnResponse, Watch};

/// A revisioned key-value store with prefix watches and leases.
///
/// Every write increases the store's revision by one (writes that change
/// nothing, such as deleting a missing key, do not). Keys are validated with
/// [`crate::key::validate_key`].
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Reads every key starting with `prefix`, sorted by key.
    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError>;

    /// Sets a key (detaching it from any lease); returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError>;

    /// Sets a key attached to `lease`: the key is deleted when the lease ends.
    async fn put_with_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<i64, StoreError>;

    /// Deletes a key; false if it was not there.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Deletes every key starting with `prefix` in one revision; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError>;

    /// Runs a transaction atomically (see [`Txn`]).
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;

    /// Watches changes under `prefix`. With `from_revision`, first replays
    /// history from that revision (inclusive), failing with
    /// [`StoreError::Compacted`] if it is no longer kept; without, starts
    /// with the next write.
    async fn watch(&self, prefix: &str, from_revision: Option<i64>) -> Result<Watch, StoreError>;

    /// The store's current revision.
    async fn revision(&self) -> Result<i64, StoreError>;

    /// Discards history before `revision` (watches from earlier revisions
    /// then fail). Compacting at or below the current compaction point does nothing.
    async fn compact(&self, revision: i64) -> Result<(), StoreError>;

    /// Grants a lease that ends `ttl` after the last keep-alive; returns its id.
    async fn grant_lease(&self, ttl: Duration) -> Result<i64, StoreError>;

    /// Renews a lease for another full TTL.
    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError>;

    /// Ends a lease now, deleting its keys in one revision.
    async fn revoke(&self, lease: i64) -> Result<(), StoreError>;
}

/// Shortest lease TTL accepted.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);
/// Longest lease TTL accepted.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Checks a lease TTL is within [`MIN_LEASE_TTL`]..=[`MAX_LEASE_TTL`].
pub fn validate_ttl(ttl: Duration) -> Result<(), StoreError> {
    if (MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        Ok(())
    } else {
        Err(StoreError::InvalidTtl(ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert!(validate_ttl(Duration::from_secs(1)).is_ok());
        assert!(validate_ttl(Duration::from_millis(999)).is_err());
        assert!(validate_ttl(MAX_LEASE_TTL + Duration::from_secs(1)).is_err());
    }
}
