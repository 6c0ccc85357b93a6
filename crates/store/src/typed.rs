//! Typed JSON helpers on top of any [`Store`], so callers never hand-roll
//! serialization or compare-and-swap loops.
//!
//! ```no_run
//! # use hako_store::{EmbeddedStore, Store, StoreExt, keys};
//! # async fn demo() -> Result<(), hako_store::StoreError> {
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct App { image: String, max: u32 }
//! let store = std::sync::Arc::new(EmbeddedStore::open_in_data_dir("/var/lib/hako").await?);
//! store.create_json(&keys::app("blog"), &App { image: "php".into(), max: 1 }).await?;
//! store.update_json(&keys::app("blog"), |app: &mut App| app.max = 4).await?;
//! let app: Option<App> = store.get_json(&keys::app("blog")).await?;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Compare, CompareOp, KeyValue, Store, StoreError, Txn, TxnOp, TxnOpResponse};

/// How many times a compare-and-swap update is retried before giving up.
pub const UPDATE_ATTEMPTS: u32 = 64;

/// A decoded value with the revisions of the key holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The decoded value.
    pub value: T,
    /// Revision that created the key.
    pub create_revision: i64,
    /// Revision of the key's last write (use it for compare-and-swap).
    pub mod_revision: i64,
    /// Writes since creation.
    pub version: i64,
}

/// A consistent listing of a prefix and the revision it was read at: watch
/// from `revision + 1` to follow changes after it without a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The key-values, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The store revision of the listing.
    pub revision: i64,
}

/// Decodes a JSON value read from `key`.
pub fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Json {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// Encodes a value as JSON for `key`.
pub fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Json {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

fn versioned<T: DeserializeOwned>(kv: &KeyValue) -> Result<Versioned<T>, StoreError> {
    Ok(Versioned {
        value: decode(&kv.key, &kv.value)?,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
    })
}

/// Typed helpers, available on every [`Store`] (including `Arc<dyn Store>`).
#[async_trait::async_trait]
pub trait StoreExt: Store {
    /// Reads and decodes a key.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        Ok(self.get_json_versioned(key).await?.map(|v| v.value))
    }

    /// Reads and decodes a key, with its revisions.
    async fn get_json_versioned<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        self.get(key).await?.as_ref().map(versioned).transpose()
    }

    /// Reads and decodes every key under `prefix`, sorted by key.
    async fn range_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.range(prefix)
            .await?
            .into_iter()
            .map(|kv| Ok((kv.key.clone(), decode(&kv.key, &kv.value)?)))
            .collect()
    }

    /// Lists a prefix together with the revision it was read at, atomically.
    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let response = self
            .txn(Txn::new().and_then(TxnOp::Range {
                prefix: prefix.to_owned(),
            }))
            .await?;
        match response.responses.into_iter().next() {
            Some(TxnOpResponse::Range(kvs)) => Ok(Listing {
                kvs,
                revision: response.revision,
            }),
            _ => Err(StoreError::Backend(
                "a range transaction returned no range".into(),
            )),
        }
    }

    /// Encodes and writes a value; returns the new revision.
    async fn put_json<T: Serialize + Sync + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<i64, StoreError> {
        self.put(key, encode(key, value)?).await
    }

    /// Encodes and writes a value attached to a lease.
    async fn put_json_with_lease<T: Serialize + Sync + ?Sized>(
        &self,
        key: &str,
        value: &T,
        lease: i64,
    ) -> Result<i64, StoreError> {
        self.put_with_lease(key, encode(key, value)?, lease).await
    }

    /// Writes a value only if the key is absent; [`StoreError::AlreadyExists`] otherwise.
    async fn create_json<T: Serialize + Sync + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<i64, StoreError> {
        let txn = Txn::new()
            .when(Compare::absent(key))
            .and_then(TxnOp::put(key, encode(key, value)?));
        let response = self.txn(txn).await?;
        if response.succeeded {
            Ok(response.revision)
        } else {
            Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            })
        }
    }

    /// Reads, changes with `f` and writes back a value, retrying if another
    /// writer changed it in between. [`StoreError::NotFound`] if absent.
    async fn update_json<T, F>(&self, key: &str, mut f: F) -> Result<Versioned<T>, StoreError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(&mut T) + Send,
    {
        let result = self
            .try_update_json(key, |v: &mut T| -> Result<(), Infallible> {
                f(v);
                Ok(())
            })
            .await?;
        match result {
            Ok(v) => Ok(v),
            Err(never) => match never {},
        }
    }

    /// Like [`StoreExt::update_json`], but `f` may refuse the change: its
    /// error is returned as the inner `Err` and nothing is written. An
    /// unchanged value is not written either (no new revision).
    async fn try_update_json<T, E, F>(
        &self,
        key: &str,
        mut f: F,
    ) -> Result<Result<Versioned<T>, E>, StoreError>
    where
        T: Serialize + DeserializeOwned + Send,
        E: Send,
        F: FnMut(&mut T) -> Result<(), E> + Send,
    {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(kv) = self.get(key).await? else {
                return Err(StoreError::NotFound {
                    key: key.to_owned(),
                });
            };
            let mut current: Versioned<T> = versioned(&kv)?;
            if let Err(e) = f(&mut current.value) {
                return Ok(Err(e));
            }
            let bytes = encode(key, &current.value)?;
            if bytes == kv.value {
                return Ok(Ok(current));
            }
            let txn = Txn::new()
                .when(Compare::mod_revision(
                    key,
                    CompareOp::Equal,
                    kv.mod_revision,
                ))
                .and_then(TxnOp::put(key, bytes));
            let response = self.txn(txn).await?;
            if response.succeeded {
                current.mod_revision = response.revision;
                current.version += 1;
                return Ok(Ok(current));
            }
        }
        Err(StoreError::Conflict {
            key: key.to_owned(),
            attempts: UPDATE_ATTEMPTS,
        })
    }

    /// Appends a value under `prefix` (which should end with `/`) at a new
    /// key that sorts after every earlier append (a zero-padded microsecond
    /// timestamp, bumped on collision); returns the key. For append-only
    /// logs such as `/events/<app>/`.
    async fn append_json<T: Serialize + Sync + ?Sized>(
        &self,
        prefix: &str,
        value: &T,
    ) -> Result<String, StoreError> {
        let bytes = encode(prefix, value)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let last = self
            .range(prefix)
            .await?
            .pop()
            .and_then(|kv| kv.key[prefix.len()..].parse::<u64>().ok());
        let first = last.map_or(now, |l| now.max(l + 1));
        for seq in (first..).take(UPDATE_ATTEMPTS as usize) {
            let key = format!("{prefix}{seq:020}");
            let txn = Txn::new()
                .when(Compare::absent(&key))
                .and_then(TxnOp::put(&key, bytes.clone()));
            if self.txn(txn).await?.succeeded {
                return Ok(key);
            }
        }
        Err(StoreError::Conflict {
            key: prefix.to_owned(),
            attempts: UPDATE_ATTEMPTS,
        })
    }

    /// Deletes the oldest keys under `prefix` so that at most `keep` remain
    /// (in one revision); returns how many were deleted. The retention half of
    /// [`StoreExt::append_json`].
    async fn trim(&self, prefix: &str, keep: usize) -> Result<u64, StoreError> {
        let kvs = self.range(prefix).await?;
        let excess = kvs.len().saturating_sub(keep);
        if excess == 0 {
            return Ok(0);
        }
        let mut txn = Txn::new();
        for kv in kvs.into_iter().take(excess) {
            txn = txn.and_then(TxnOp::delete(kv.key));
        }
        let response = self.txn(txn).await?;
        Ok(response
            .responses
            .iter()
            .map(|r| match r {
                TxnOpResponse::Delete(n) => *n,
                _ => 0,
            })
            .sum())
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_key() {
        let err = decode::<u32>("/apps/x", b"{not json").unwrap_err();
        assert!(
            matches!(&err, StoreError::Json { key, .. } if key == "/apps/x"),
            "{err}"
        );
        assert_eq!(encode("/k", &vec![1, 2]).unwrap(), b"[1,2]");
        let kv = KeyValue {
            key: "/k".into(),
            value: b"7".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            lease: None,
        };
        let v: Versioned<u32> = versioned(&kv).unwrap();
        assert_eq!(
            (v.value, v.create_revision, v.mod_revision, v.version),
            (7, 2, 5, 3)
        );
    }
}
