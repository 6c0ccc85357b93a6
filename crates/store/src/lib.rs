//! hako's state store: apps, images, code releases, instances, nodes and
//! events live behind one etcd-shaped trait, [`Store`].
//!
//! - [`EmbeddedStore`]: the default, one SQLite file in the data dir, no server.
//! - `EtcdStore` (feature `etcd`, on by default): the same trait over an etcd
//!   cluster, for multi-host hako.
//! - Keys, revisions, transactions, watches and leases follow etcd's model so
//!   an etcd backend is a thin mapping (see [`Store`]).
//! - [`StoreExt`] adds typed JSON helpers; [`keys`] documents the key layout.
#![forbid(unsafe_code)]

pub mod embedded;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod key;
pub mod keys;
mod kv;
mod store;
mod txn;
mod typed;
mod watch;

pub use embedded::{Durability, EmbeddedConfig, EmbeddedStore, Retention};
pub use error::StoreError;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use kv::{KeyValue, WatchBatch, WatchEvent};
pub use store::{MAX_LEASE_TTL, MIN_LEASE_TTL, Store, validate_ttl};
pub use txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResponse, TxnResponse};
pub use typed::{Listing, StoreExt, UPDATE_ATTEMPTS, Versioned, decode, encode};
pub use watch::Watch;
