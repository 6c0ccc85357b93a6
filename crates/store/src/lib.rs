//! hako's state store: apps, images, code releases, instances, nodes and
//! events live behind one etcd-shaped trait, [`Store`].
//!
//! - [`EmbeddedStore`]: the default, one SQLite file in the data dir, no server.
//! - Keys, revisions, transactions, watches and leases follow etcd's model so
//!   an etcd backend is a thin mapping (see [`Store`]).
//! - [`StoreExt`] adds typed JSON helpers; [`keys`] documents the key layout.
#![forbid(unsafe_code)]

pub mod embedded;
mod error;
pub mod key;
pub mod keys;
mod kv;
mod store;
mod txn;
mod typed;
mod watch;

pub use embedded::{Durability, EmbeddedConfig, EmbeddedStore, Retention};
pub use error::StoreError;
pub use kv::{KeyValue, WatchBatch, WatchEvent};
pub use store::{MAX_LEASE_TTL, MIN_LEASE_TTL, Store, validate_ttl};
pub use txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResponse, TxnResponse};
pub use typed::{Listing, StoreExt, UPDATE_ATTEMPTS, Versioned, decode, encode};
pub use watch::Watch;
