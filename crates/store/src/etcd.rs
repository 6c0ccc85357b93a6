//! The etcd backend: the same [`Store`] over an etcd v3 cluster (Debian's
//! `etcd-server`), for multi-host hako. The mapping is one to one: keys,
//! revisions, transactions, watches and leases are etcd's own. Lease TTLs are
//! rounded up to whole seconds (and etcd may raise very short ones).

mod convert;
mod watch;

use std::time::Duration;

use etcd_client as ec;

use crate::key::{self, prefix_end};
use crate::{KeyValue, Store, StoreError, Txn, TxnOp, TxnOpResponse, TxnResponse, Watch};

/// A store backed by an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: ec::Client,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (e.g. `["http://10.0.0.1:2379"]`).
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        let options = ec::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // A call without an answer in 5 s means no quorum: say so rather than hang.
            .with_timeout(Duration::from_secs(5));
        let client = ec::Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| StoreError::Backend(format!("cannot reach etcd at {endpoints:?}: {e}; check the endpoints and that etcd runs")))?;
        let store = EtcdStore { client };
        store.revision().await?;
        Ok(store)
    }

    async fn run(&self, txn: &Txn) -> Result<TxnResponse, StoreError> {
        txn.validate()?;
        let lease = [&txn.success, &txn.failure]
            .into_iter()
            .flatten()
            .find_map(|o| match o {
                TxnOp::Put { lease, .. } => *lease,
                _ => None,
            });
        let request = ec::Txn::new()
            .when(
                txn.compares
                    .iter()
                    .map(convert::compare)
                    .collect::<Vec<_>>(),
            )
            .and_then(txn.success.iter().map(convert::txn_op).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(convert::txn_op).collect::<Vec<_>>());
        let response = self
            .client
            .kv_client()
            .txn(request)
            .await
            .map_err(|e| convert::error(e, lease))?;
        let ops = if response.succeeded() {
            &txn.success
        } else {
            &txn.failure
        };
        let raw = response.op_responses();
        if raw.len() != ops.len() {
            return Err(StoreError::Backend(
                "etcd answered a transaction with the wrong number of responses".into(),
            ));
        }
        let responses = ops
            .iter()
            .zip(&raw)
            .map(|(o, r)| convert::txn_op_response(o, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TxnResponse {
            succeeded: response.succeeded(),
            revision: response.header().map_or(0, ec::ResponseHeader::revision),
            responses,
        })
    }

    async fn write(&self, op: TxnOp) -> Result<TxnResponse, StoreError> {
        self.run(&Txn::new().and_then(op)).await
    }
}

fn deleted(response: &TxnResponse) -> u64 {
    match response.responses.first() {
        Some(TxnOpResponse::Delete(n)) => *n,
        _ => 0,
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        key::validate_key(key)?;
        let response = self
            .client
            .kv_client()
            .get(key.as_bytes(), None)
            .await
            .map_err(|e| convert::error(e, None))?;
        response.kvs().first().map(convert::kv).transpose()
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        key::validate_prefix(prefix)?;
        let response = self
            .client
            .kv_client()
            .get(prefix.as_bytes(), Some(convert::prefix_get(prefix)))
            .await
            .map_err(|e| convert::error(e, None))?;
        response.kvs().iter().map(convert::kv).collect()
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        Ok(self.write(TxnOp::put(key, value)).await?.revision)
    }

    async fn put_with_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<i64, StoreError> {
        let op = TxnOp::Put {
            key: key.to_owned(),
            value,
            lease: Some(lease),
        };
        Ok(self.write(op).await?.revision)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(deleted(&self.write(TxnOp::delete(key)).await?) > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let op = TxnOp::DeletePrefix {
            prefix: prefix.to_owned(),
        };
        Ok(deleted(&self.write(op).await?))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.run(&txn).await
    }

    async fn watch(&self, prefix: &str, from_revision: Option<i64>) -> Result<Watch, StoreError> {
        key::validate_prefix(prefix)?;
        if let Some(rev) = from_revision.filter(|r| *r < 1) {
            return Err(StoreError::InvalidRevision {
                revision: rev,
                reason: "watch revisions start at 1",
            });
        }
        watch::open(&self.client, prefix, from_revision).await
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let options = ec::GetOptions::new().with_count_only();
        let response = self
            .client
            .kv_client()
            .get("/", Some(options.with_range(prefix_end("/"))))
            .await
            .map_err(|e| convert::error(e, None))?;
        Ok(response.header().map_or(0, ec::ResponseHeader::revision))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("has been compacted") => Ok(()),
            Err(e) => Err(match convert::error(e, None) {
                StoreError::InvalidRevision { reason, .. } => {
                    StoreError::InvalidRevision { revision, reason }
                }
                other => other,
            }),
        }
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<i64, StoreError> {
        crate::store::validate_ttl(ttl)?;
        let secs =
            i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        let response = self
            .client
            .lease_client()
            .grant(secs, None)
            .await
            .map_err(|e| convert::error(e, None))?;
        Ok(response.id())
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError> {
        let (mut keeper, mut stream) = self
            .client
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|e| convert::error(e, Some(lease)))?;
        keeper
            .keep_alive()
            .await
            .map_err(|e| convert::error(e, Some(lease)))?;
        match stream
            .message()
            .await
            .map_err(|e| convert::error(e, Some(lease)))?
        {
            Some(response) if response.ttl() > 0 => Ok(()),
            _ => Err(StoreError::LeaseNotFound(lease)),
        }
    }

    async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        self.client
            .lease_client()
            .revoke(lease)
            .await
            .map(|_| ())
            .map_err(|e| convert::error(e, Some(lease)))
    }
}
