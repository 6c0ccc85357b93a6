//! The one error type every store backend returns.
//!
//! Backends map their own failures (SQLite, gRPC) into these variants so callers
//! can match on what happened without knowing which backend is behind the trait.

use std::time::Duration;

/// What went wrong in a store call. Messages are lowercase and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key or prefix is not a valid store key.
    #[error("invalid key {key:?}: {reason}; keys are non-empty UTF-8 starting with '/'")]
    InvalidKey {
        /// The offending key, as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A value is larger than the store accepts.
    #[error(
        "value for {key:?} is {size} bytes, over the limit of {limit} bytes; store large data in files and keep only a reference in the store"
    )]
    ValueTooLarge {
        /// The key being written.
        key: String,
        /// Size of the refused value.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A revision argument is out of range.
    #[error("invalid revision {revision}: {reason}")]
    InvalidRevision {
        /// The revision given.
        revision: i64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A transaction is malformed (for example two writes to the same key).
    #[error("invalid transaction: {0}")]
    InvalidTxn(String),
    /// The history needed for a watch replay was compacted away.
    #[error(
        "revision {requested} is compacted (history starts at {compact_revision}); list the current state with range and watch from its revision"
    )]
    Compacted {
        /// The revision the caller asked for.
        requested: i64,
        /// The oldest revision still in the history.
        compact_revision: i64,
    },
    /// The lease does not exist (never granted, revoked or expired).
    #[error("lease {0} not found (expired or revoked); grant a new lease")]
    LeaseNotFound(i64),
    /// A lease TTL is out of range.
    #[error("invalid lease ttl {0:?}: use between 1s and 1 year")]
    InvalidTtl(Duration),
    /// `create_json` found the key already present.
    #[error("{key} already exists; pick another name or update it instead")]
    AlreadyExists {
        /// The key that exists.
        key: String,
    },
    /// An update or typed read found no value at the key.
    #[error("{key} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A compare-and-swap update lost the race too many times.
    #[error(
        "{key} is changing too fast: gave up after {attempts} conflicting updates; retry later"
    )]
    Conflict {
        /// The contended key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A stored value could not be encoded or decoded as JSON.
    #[error("value at {key} is not the expected JSON: {message}")]
    Json {
        /// The key whose value failed.
        key: String,
        /// The serde_json message.
        message: String,
    },
    /// The backend's storage failed (disk, SQLite, etcd server).
    #[error(
        "store backend failed: {0}; check the data dir's disk and permissions or the etcd cluster"
    )]
    Backend(String),
    /// The disk (or the quota) that holds the store is full: ENOSPC or EDQUOT under the
    /// embedded store's file, or etcd's space quota ("database space exceeded"). Nothing of
    /// the failed call was written; what was stored before stays readable, and the same call
    /// works once there is room again.
    #[error(
        "no space left for the store ({location}): the disk or its quota is full, nothing was written; free space there (or raise the quota) and retry"
    )]
    Full {
        /// Where: the database file, or the etcd cluster.
        location: String,
    },
    /// Another process has the database file open.
    #[error("{path} is in use by another hako process; stop it or use another --data-dir")]
    InUse {
        /// The database file.
        path: String,
    },
    /// The store cannot answer now: etcd has no quorum or cannot be reached. Nothing was
    /// written; the same call may work once the cluster is back.
    #[error(
        "the cluster store is unavailable ({0}); etcd has no quorum or cannot be reached — retry when it is back"
    )]
    Unavailable(String),
    /// The store was closed or its worker stopped.
    #[error("store is closed; restart the daemon")]
    Closed,
}

impl StoreError {
    /// True for failures that may go away when the same call is retried.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Backend(_)
                | StoreError::Conflict { .. }
                | StoreError::Unavailable(_)
                | StoreError::Full { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_key() {
        let e = StoreError::AlreadyExists {
            key: "/apps/blog".into(),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("/apps/blog already exists"), "{msg}");
        let e = StoreError::Compacted {
            requested: 3,
            compact_revision: 10,
        };
        assert!(e.to_string().contains("history starts at 10"));
        assert!(StoreError::Backend("disk full".into()).is_transient());
        assert!(!StoreError::Closed.is_transient());
        let full = StoreError::Full {
            location: "/var/lib/hako/hako.db".into(),
        };
        assert!(full.is_transient(), "room may come back");
        let msg = full.to_string();
        assert!(
            msg.starts_with("no space left for the store (/var/lib/hako/hako.db)")
                && msg.contains("nothing was written")
                && msg.contains("free space"),
            "{msg}"
        );
    }
}
