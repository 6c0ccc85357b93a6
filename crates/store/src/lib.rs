//! hako's state store: apps, images, code releases, instances, nodes and
//! events live behind one etcd-shaped trait, [`Store`].
//!
//! - [`EmbeddedStore`]: the default, one SQLite file (`<data-dir>/hako.db`),
//!   no server; durable across `kill -9`; locked to one process.
//! - `EtcdStore` (feature `etcd`, on by default): the same trait over an etcd
//!   cluster, for multi-host hako.
//! - Keys, revisions, transactions ([`Txn`]), watches ([`Watch`]) and leases
//!   follow etcd's model, so both backends pass one conformance suite.
//! - [`StoreExt`] adds typed JSON helpers; [`keys`] documents the key layout;
//!   [`open`] picks a backend from a `--store` string ([`StoreSpec`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use hako_store::{Store, StoreExt, StoreSpec, keys};
//!
//! # async fn daemon() -> Result<(), Box<dyn std::error::Error>> {
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct App { image: String }
//!
//! let store: Arc<dyn Store> = hako_store::open(&"/var/lib/hako".parse::<StoreSpec>()?).await?;
//! store.create_json(&keys::app("blog"), &App { image: "php".into() }).await?;
//!
//! // List, then follow every later change without a gap.
//! let listing = store.list(keys::APPS).await?;
//! let mut watch = store.watch(keys::APPS, Some(listing.revision + 1)).await?;
//! while let Some(batch) = watch.recv().await {
//!     for event in batch?.events { println!("{} changed", event.key()); }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod embedded;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod key;
pub mod keys;
mod kv;
mod open;
mod store;
mod txn;
mod typed;
mod watch;

pub use embedded::{Durability, EmbeddedConfig, EmbeddedStore, Retention};
pub use error::StoreError;
#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use kv::{KeyValue, WatchBatch, WatchEvent};
pub use open::{StoreSpec, StoreSpecError, open};
pub use store::{MAX_LEASE_TTL, MIN_LEASE_TTL, Store, validate_ttl};
pub use txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResponse, TxnResponse};
pub use typed::{Listing, StoreExt, UPDATE_ATTEMPTS, Versioned, decode, encode};
pub use watch::Watch;
