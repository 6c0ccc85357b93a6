//! The conformance suite against the embedded SQLite store (on disk, in a temp dir).

#[path = "support/suite.rs"]
mod suite;

use std::sync::Arc;

use hako_store::{Durability, EmbeddedConfig, EmbeddedStore, Store};

/// A fresh on-disk store in a temp dir removed when the guard drops.
async fn make() -> (Arc<dyn Store>, suite::Guard) {
    let dir = tempfile::Builder::new()
        .prefix("hako-store-test")
        .tempdir()
        .unwrap();
    let config = EmbeddedConfig {
        durability: Durability::Normal,
        ..EmbeddedConfig::in_data_dir(dir.path())
    };
    let store = EmbeddedStore::open(config).await.unwrap();
    (Arc::new(store), Box::new(dir))
}

conformance_suite!(make);
