//! Transactions: compare, then apply one of two lists of operations, atomically.
//!
//! The shape is etcd's, so the etcd backend maps it one to one: every compare
//! looks at one key's `version`, `create_revision`, `mod_revision` or value. A
//! missing key has version, create and mod revision 0 (so "absent" is
//! `version == 0`); a value compare on a missing key is false. If all compares
//! hold, the `success` operations run, otherwise the `failure` ones. All
//! writes of one transaction share one new revision; reads in a transaction
//! see the writes made before them in it. As in etcd, one transaction may not
//! write the same key twice.

use crate::{KeyValue, StoreError, key};

/// How a compare relates the key's current state to the given operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// current == operand
    Equal,
    /// current != operand
    NotEqual,
    /// current < operand
    Less,
    /// current > operand
    Greater,
}

impl CompareOp {
    /// Applies the comparison to two ordered values.
    pub fn holds<T: Ord + ?Sized>(self, current: &T, operand: &T) -> bool {
        match self {
            CompareOp::Equal => current == operand,
            CompareOp::NotEqual => current != operand,
            CompareOp::Less => current < operand,
            CompareOp::Greater => current > operand,
        }
    }
}

/// What a compare looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The key's version (0 if absent).
    Version(i64),
    /// The key's create revision (0 if absent).
    CreateRevision(i64),
    /// The key's mod revision (0 if absent).
    ModRevision(i64),
    /// The key's value (false for any op if the key is absent).
    Value(Vec<u8>),
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key compared.
    pub key: String,
    /// The comparison.
    pub op: CompareOp,
    /// What is compared, with the operand.
    pub target: CompareTarget,
}

impl Compare {
    /// The key does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Self::version(key, CompareOp::Equal, 0)
    }

    /// The key exists.
    pub fn present(key: impl Into<String>) -> Self {
        Self::version(key, CompareOp::Greater, 0)
    }

    /// Compares the key's version.
    pub fn version(key: impl Into<String>, op: CompareOp, version: i64) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::Version(version),
        }
    }

    /// Compares the key's mod revision (`Equal` makes a compare-and-swap).
    pub fn mod_revision(key: impl Into<String>, op: CompareOp, revision: i64) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::ModRevision(revision),
        }
    }

    /// Compares the key's create revision.
    pub fn create_revision(key: impl Into<String>, op: CompareOp, revision: i64) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::CreateRevision(revision),
        }
    }

    /// Compares the key's value.
    pub fn value(key: impl Into<String>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op,
            target: CompareTarget::Value(value.into()),
        }
    }

    /// Evaluates the compare against the key's current state.
    pub fn evaluate(&self, current: Option<&KeyValue>) -> bool {
        match (&self.target, current) {
            (CompareTarget::Value(_), None) => false,
            (CompareTarget::Value(v), Some(kv)) => self.op.holds(kv.value.as_slice(), v.as_slice()),
            (CompareTarget::Version(n), kv) => self.op.holds(&kv.map_or(0, |kv| kv.version), n),
            (CompareTarget::CreateRevision(n), kv) => {
                self.op.holds(&kv.map_or(0, |kv| kv.create_revision), n)
            }
            (CompareTarget::ModRevision(n), kv) => {
                self.op.holds(&kv.map_or(0, |kv| kv.mod_revision), n)
            }
        }
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Sets a key, optionally attached to a lease.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// Lease to attach the key to; `None` detaches it from any lease.
        lease: Option<i64>,
    },
    /// Deletes a key if present.
    Delete {
        /// The key.
        key: String,
    },
    /// Deletes every key under a prefix.
    DeletePrefix {
        /// The prefix.
        prefix: String,
    },
    /// Reads a key.
    Get {
        /// The key.
        key: String,
    },
    /// Reads every key under a prefix, sorted by key.
    Range {
        /// The prefix.
        prefix: String,
    },
}

impl TxnOp {
    /// A put without lease.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        TxnOp::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A delete.
    pub fn delete(key: impl Into<String>) -> Self {
        TxnOp::Delete { key: key.into() }
    }

    /// A get.
    pub fn get(key: impl Into<String>) -> Self {
        TxnOp::Get { key: key.into() }
    }
}

/// The result of one operation, in the order of the operations run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// A put succeeded.
    Put,
    /// A delete or prefix delete removed this many keys.
    Delete(u64),
    /// A get's result.
    Get(Option<KeyValue>),
    /// A range's result.
    Range(Vec<KeyValue>),
}

/// A transaction: `if all(compares) { success } else { failure }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions, all of which must hold.
    pub compares: Vec<Compare>,
    /// Operations run when every compare holds.
    pub success: Vec<TxnOp>,
    /// Operations run otherwise.
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// An empty transaction (no compares: `success` runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a condition.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    /// Adds an operation to run when the conditions hold.
    pub fn and_then(mut self, op: TxnOp) -> Self {
        self.success.push(op);
        self
    }

    /// Adds an operation to run when a condition fails.
    pub fn or_else(mut self, op: TxnOp) -> Self {
        self.failure.push(op);
        self
    }

    /// Checks keys, value sizes and that neither branch writes a key twice.
    pub fn validate(&self) -> Result<(), StoreError> {
        for c in &self.compares {
            key::validate_key(&c.key)?;
        }
        validate_ops(&self.success)?;
        validate_ops(&self.failure)
    }
}

fn validate_ops(ops: &[TxnOp]) -> Result<(), StoreError> {
    let mut written_keys: Vec<&str> = Vec::new();
    let mut deleted_prefixes: Vec<&str> = Vec::new();
    for op in ops {
        match op {
            TxnOp::Put { key, value, .. } => {
                key::validate_key(key)?;
                key::validate_value(key, value)?;
                written_keys.push(key);
            }
            TxnOp::Delete { key } => {
                key::validate_key(key)?;
                written_keys.push(key);
            }
            TxnOp::DeletePrefix { prefix } => {
                key::validate_prefix(prefix)?;
                deleted_prefixes.push(prefix);
            }
            TxnOp::Get { key } => key::validate_key(key)?,
            TxnOp::Range { prefix } => key::validate_prefix(prefix)?,
        }
    }
    let mut sorted = written_keys.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidTxn(format!(
            "key {} is written twice; write each key at most once per transaction",
            w[0]
        )));
    }
    for prefix in &deleted_prefixes {
        if let Some(k) = written_keys.iter().find(|k| k.starts_with(prefix)) {
            return Err(StoreError::InvalidTxn(format!(
                "key {k} is also under deleted prefix {prefix}; write each key at most once per transaction"
            )));
        }
    }
    Ok(())
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// True if every compare held and `success` ran.
    pub succeeded: bool,
    /// The store's revision after the transaction (new if it wrote anything).
    pub revision: i64,
    /// One response per operation of the branch that ran.
    pub responses: Vec<TxnOpResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(version: i64, rev: i64, value: &[u8]) -> KeyValue {
        KeyValue {
            key: "/k".into(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision: rev,
            version,
            lease: None,
        }
    }

    #[test]
    fn compares_follow_etcd_rules_for_absent_keys() {
        assert!(Compare::absent("/k").evaluate(None));
        assert!(!Compare::present("/k").evaluate(None));
        assert!(Compare::mod_revision("/k", CompareOp::Equal, 0).evaluate(None));
        assert!(!Compare::value("/k", CompareOp::NotEqual, b"x".to_vec()).evaluate(None));
        let cur = kv(3, 7, b"abc");
        assert!(Compare::present("/k").evaluate(Some(&cur)));
        assert!(Compare::mod_revision("/k", CompareOp::Equal, 7).evaluate(Some(&cur)));
        assert!(Compare::mod_revision("/k", CompareOp::Less, 8).evaluate(Some(&cur)));
        assert!(!Compare::version("/k", CompareOp::Greater, 3).evaluate(Some(&cur)));
        assert!(Compare::value("/k", CompareOp::Greater, b"abb".to_vec()).evaluate(Some(&cur)));
        assert!(Compare::create_revision("/k", CompareOp::NotEqual, 2).evaluate(Some(&cur)));
    }

    #[test]
    fn refuses_double_writes_and_bad_keys() {
        let twice = Txn::new()
            .and_then(TxnOp::put("/a", "1"))
            .and_then(TxnOp::delete("/a"));
        assert!(matches!(twice.validate(), Err(StoreError::InvalidTxn(m)) if m.contains("/a")));
        let under = Txn::new()
            .or_else(TxnOp::put("/a/b", "1"))
            .or_else(TxnOp::DeletePrefix {
                prefix: "/a/".into(),
            });
        assert!(matches!(under.validate(), Err(StoreError::InvalidTxn(_))));
        let bad = Txn::new().when(Compare::absent("nope"));
        assert!(matches!(bad.validate(), Err(StoreError::InvalidKey { .. })));
        let fine = Txn::new()
            .when(Compare::absent("/a"))
            .and_then(TxnOp::put("/a", "1"))
            .and_then(TxnOp::get("/a"))
            .or_else(TxnOp::get("/a"));
        assert_eq!(fine.validate(), Ok(()));
    }
}
