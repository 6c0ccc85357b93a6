//! Conversions between hako-store's types and etcd-client's, and etcd errors
//! mapped to [`StoreError`].

use etcd_client as ec;

use crate::key::prefix_end;
use crate::{
    Compare, CompareOp, CompareTarget, KeyValue, StoreError, TxnOp, TxnOpResponse, WatchEvent,
};

/// Maps an etcd error; `lease` names the lease a call used, if any.
pub(crate) fn error(e: ec::Error, lease: Option<i64>) -> StoreError {
    let text = e.to_string();
    if text.contains("lease not found") {
        return StoreError::LeaseNotFound(lease.unwrap_or(0));
    }
    let unavailable = match &e {
        // gRPC codes 1 (cancelled), 4 (deadline exceeded), 14 (unavailable).
        ec::Error::GRpcStatus(status) => matches!(status.code() as i32, 1 | 4 | 14),
        ec::Error::TransportError(_) => true,
        _ => false,
    } || unavailable_text(&text);
    if unavailable {
        return StoreError::Unavailable(text);
    }
    if full_text(&text) {
        return StoreError::Full {
            location: "the etcd cluster's space quota".into(),
        };
    }
    if text.contains("future revision") {
        return StoreError::InvalidRevision {
            revision: 0,
            reason: "it is in the future; compact at most up to the current revision",
        };
    }
    StoreError::Backend(format!("etcd: {text}"))
}

/// Messages of a call that did not get an answer: no leader, a timeout, or the member's
/// connection lost mid-call (a member killed: gRPC reports it as code Unknown, "transport
/// error"). The cluster may be fine a moment later, through another member.
fn unavailable_text(text: &str) -> bool {
    text.contains("timed out") || text.contains("no leader") || text.contains("transport error")
}

/// etcd's space quota is exhausted (its NOSPACE alarm): writes fail until an operator
/// compacts, defragments and disarms it; reads go on.
fn full_text(text: &str) -> bool {
    text.contains("database space exceeded")
}

/// Converts a key-value read from etcd.
pub(crate) fn kv(kv: &ec::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: key_of(kv)?,
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    })
}

fn key_of(kv: &ec::KeyValue) -> Result<String, StoreError> {
    String::from_utf8(kv.key().to_vec()).map_err(|_| {
        StoreError::Backend("etcd holds a key that is not UTF-8 under hako's keys".into())
    })
}

/// Converts a watch event.
pub(crate) fn event(e: &ec::Event) -> Result<WatchEvent, StoreError> {
    let Some(raw) = e.kv() else {
        return Err(StoreError::Backend(
            "etcd sent a watch event without a key".into(),
        ));
    };
    Ok(match e.event_type() {
        ec::EventType::Put => WatchEvent::Put(kv(raw)?),
        ec::EventType::Delete => WatchEvent::Delete {
            key: key_of(raw)?,
            mod_revision: raw.mod_revision(),
        },
    })
}

fn op(op: CompareOp) -> ec::CompareOp {
    match op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Less => ec::CompareOp::Less,
        CompareOp::Greater => ec::CompareOp::Greater,
    }
}

/// Converts a compare.
pub(crate) fn compare(c: &Compare) -> ec::Compare {
    let key = c.key.as_bytes().to_vec();
    match &c.target {
        CompareTarget::Version(v) => ec::Compare::version(key, op(c.op), *v),
        CompareTarget::CreateRevision(r) => ec::Compare::create_revision(key, op(c.op), *r),
        CompareTarget::ModRevision(r) => ec::Compare::mod_revision(key, op(c.op), *r),
        CompareTarget::Value(v) => ec::Compare::value(key, op(c.op), v.clone()),
    }
}

/// Options selecting every key under `prefix`.
pub(crate) fn prefix_get(prefix: &str) -> ec::GetOptions {
    ec::GetOptions::new().with_range(prefix_end(prefix))
}

/// Converts a transaction operation.
pub(crate) fn txn_op(o: &TxnOp) -> ec::TxnOp {
    match o {
        TxnOp::Put { key, value, lease } => ec::TxnOp::put(
            key.as_bytes(),
            value.clone(),
            Some(ec::PutOptions::new().with_lease(lease.unwrap_or(0))),
        ),
        TxnOp::Delete { key } => ec::TxnOp::delete(key.as_bytes(), None),
        TxnOp::DeletePrefix { prefix } => ec::TxnOp::delete(
            prefix.as_bytes(),
            Some(ec::DeleteOptions::new().with_range(prefix_end(prefix))),
        ),
        TxnOp::Get { key } => ec::TxnOp::get(key.as_bytes(), None),
        TxnOp::Range { prefix } => ec::TxnOp::get(prefix.as_bytes(), Some(prefix_get(prefix))),
    }
}

/// Converts the response to `o`.
pub(crate) fn txn_op_response(
    o: &TxnOp,
    r: &ec::TxnOpResponse,
) -> Result<TxnOpResponse, StoreError> {
    let kvs = |g: &ec::GetResponse| g.kvs().iter().map(kv).collect::<Result<Vec<_>, _>>();
    Ok(match (o, r) {
        (TxnOp::Put { .. }, ec::TxnOpResponse::Put(_)) => TxnOpResponse::Put,
        (TxnOp::Delete { .. } | TxnOp::DeletePrefix { .. }, ec::TxnOpResponse::Delete(d)) => {
            TxnOpResponse::Delete(u64::try_from(d.deleted()).unwrap_or(0))
        }
        (TxnOp::Get { .. }, ec::TxnOpResponse::Get(g)) => {
            TxnOpResponse::Get(kvs(g)?.into_iter().next())
        }
        (TxnOp::Range { .. }, ec::TxnOpResponse::Get(g)) => TxnOpResponse::Range(kvs(g)?),
        _ => {
            return Err(StoreError::Backend(
                "etcd answered a transaction with mismatched responses".into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_member_is_unavailable_and_a_full_quota_is_full() {
        // What a put got when its member was killed with -9 (cargo xtask bench chaos).
        let reset = "grpc request error: code: 'Unknown error', message: \"transport error\", source: tonic::transport::Error(Transport, hyper::Error(Io, Kind(ConnectionReset)))";
        assert!(unavailable_text(reset));
        assert!(unavailable_text("etcdserver: request timed out"));
        assert!(unavailable_text("etcdserver: no leader"));
        assert!(!unavailable_text(
            "etcdserver: mvcc: database space exceeded"
        ));
        assert!(full_text("etcdserver: mvcc: database space exceeded"));
        assert!(!full_text("etcdserver: key not found"));
    }
}
