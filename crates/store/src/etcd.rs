//! The etcd backend: the same [`Store`] over an etcd v3 cluster (Debian's
//! `etcd-server`), for multi-host hako. The mapping is one to one: keys,
//! revisions, transactions, watches and leases are etcd's own. Lease TTLs are
//! rounded up to whole seconds (and etcd may raise very short ones). With several
//! members, the store fails over from a member that is gone or cut off to a healthy
//! one ([`members`]).

mod convert;
mod members;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use etcd_client as ec;

use crate::key::{self, prefix_end};
use crate::{KeyValue, Store, StoreError, Txn, TxnOp, TxnOpResponse, TxnResponse, Watch};
use members::{Members, Retry};

/// The largest response the store reads from etcd (listings of every app, every instance):
/// 256 MiB, room for hundreds of thousands of apps.
pub(crate) const MAX_RESPONSE: usize = 256 << 20;

/// `client`'s KV client, taking responses up to [`MAX_RESPONSE`] (tonic's default is 4 MiB: a
/// listing of ~10,000 apps is more).
pub(crate) fn kv(client: &ec::Client) -> ec::KvClient {
    client.kv_client().max_decoding_message_size(MAX_RESPONSE)
}

/// A store backed by an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    members: Arc<Members>,
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
            .with_connect_timeout(Duration::from_secs(2))
            // A call without an answer in 5 s means no quorum: say so rather than hang.
            .with_timeout(Duration::from_secs(5))
            // A connection to a member that went silent (a cut cable) ends within seconds…
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            // …and a watch on a member that lost its leader is cancelled, not left hanging.
            .with_require_leader(true);
        let members = Members::connect(endpoints, options).await?;
        let store = EtcdStore { members };
        store.revision().await.map_err(|e| match e {
            StoreError::Unavailable(why) => StoreError::Unavailable(format!(
                "cannot reach etcd at {endpoints:?}: {why}; check the endpoints and that etcd runs"
            )),
            e => e,
        })?;
        Ok(store)
    }

    /// Runs `f` on the current member, failing over as `retry` allows (see [`members`]).
    async fn call<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, StoreError>
    where
        F: Fn(ec::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        self.members.call(retry, f).await
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
            .call(Retry::Unreached, |c| {
                let request = request.clone();
                async move {
                    kv(&c)
                        .txn(request)
                        .await
                        .map_err(|e| convert::error(e, lease))
                }
            })
            .await?;
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
            .call(Retry::Always, |c| async move {
                kv(&c)
                    .get(key.as_bytes(), None)
                    .await
                    .map_err(|e| convert::error(e, None))
            })
            .await?;
        response.kvs().first().map(convert::kv).transpose()
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        key::validate_prefix(prefix)?;
        let response = self
            .call(Retry::Always, |c| async move {
                kv(&c)
                    .get(prefix.as_bytes(), Some(convert::prefix_get(prefix)))
                    .await
                    .map_err(|e| convert::error(e, None))
            })
            .await?;
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
        watch::open(self.members.clone(), prefix, from_revision).await
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let response = self
            .call(Retry::Always, |c| async move {
                let options = ec::GetOptions::new().with_count_only();
                kv(&c)
                    .get("/", Some(options.with_range(prefix_end("/"))))
                    .await
                    .map_err(|e| convert::error(e, None))
            })
            .await?;
        Ok(response.header().map_or(0, ec::ResponseHeader::revision))
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        // Compacting again to the same revision changes nothing: safe to repeat.
        self.call(Retry::Always, |c| async move {
            match kv(&c).compact(revision, None).await {
                Ok(_) => Ok(()),
                Err(e) if e.to_string().contains("has been compacted") => Ok(()),
                Err(e) => Err(match convert::error(e, None) {
                    StoreError::InvalidRevision { reason, .. } => {
                        StoreError::InvalidRevision { revision, reason }
                    }
                    other => other,
                }),
            }
        })
        .await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<i64, StoreError> {
        crate::store::validate_ttl(ttl)?;
        let secs =
            i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        let response = self
            .call(Retry::Unreached, |c| async move {
                c.lease_client()
                    .grant(secs, None)
                    .await
                    .map_err(|e| convert::error(e, None))
            })
            .await?;
        Ok(response.id())
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError> {
        // A renewal is safe to send to every member: the first to renew answers.
        self.members
            .first_ok(|c| async move {
                let (mut keeper, mut stream) = c
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
            })
            .await
    }

    async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        self.call(Retry::Unreached, |c| async move {
            c.lease_client()
                .revoke(lease)
                .await
                .map(|_| ())
                .map_err(|e| convert::error(e, Some(lease)))
        })
        .await
    }
}
