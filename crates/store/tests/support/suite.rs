//! The conformance suite every store backend must pass, written against
//! `Arc<dyn Store>` only. Each case gets a fresh, empty store.
//! A backend's test file instantiates it with `conformance_suite!(make)`
//! where `make` is an `async fn() -> (Arc<dyn Store>, Guard)`; the guard
//! (temp dir, server process) is dropped, cleaning up, when the case ends.

#![allow(dead_code)]

use std::time::Duration;

use hako_store::{Watch, WatchBatch};

/// Whatever a backend must keep alive for one case (dropped at its end).
pub type Guard = Box<dyn std::any::Any + Send>;

/// How long a test waits for an expected watch batch before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// The next batch of a watch, failing the test if none arrives in time.
pub async fn next(watch: &mut Watch) -> WatchBatch {
    match tokio::time::timeout(WAIT, watch.recv()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(other) => panic!("watch ended or failed: {other:?}"),
        Err(_) => panic!("no watch batch within {WAIT:?}"),
    }
}

/// Asserts no batch is ready right after the writes the caller awaited.
pub async fn assert_quiet(watch: &mut Watch) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), watch.recv()).await {
        panic!("unexpected watch item: {got:?}");
    }
}

fn keys_of(batch: &WatchBatch) -> Vec<String> {
    batch.events.iter().map(|e| e.key().to_owned()).collect()
}

#[path = "suite/kv.rs"]
mod kv;
#[path = "suite/lease.rs"]
mod lease;
#[path = "suite/model.rs"]
mod model;
#[path = "suite/watch.rs"]
mod watch;

pub use kv::*;
pub use lease::*;
pub use model::*;
pub use watch::*;

/// Instantiates every case as a `#[tokio::test]` using `$make().await` for a fresh store.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            put_get_and_revisions, delete_semantics, range_and_prefix_delete, txn_semantics,
            bad_input_is_refused_clearly, watch_live_events, watch_replays_history_then_follows,
            compaction_refuses_old_revisions, leases_expire_and_revoke,
            concurrent_writers_and_watchers, slow_watcher_misses_nothing, typed_helpers,
            random_writes_match_a_model, replay_joins_live_under_writes);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $make().await;
                suite::$case(store.clone()).await;
                drop(store);
                drop(guard);
            }
        )*
    };
}
