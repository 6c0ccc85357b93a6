//! The embedded store: one SQLite file in the data dir, no server.
//!
//! Open it with [`EmbeddedStore::open`] (or [`EmbeddedStore::open_in_memory`]
//! in tests) and share it as `Arc<dyn Store>`. The database runs in WAL mode
//! with `synchronous=FULL` by default, so a write that returned survives
//! `kill -9` and power loss; the file is locked to one process. History for
//! watch replay is kept per [`Retention`].

mod engine;
mod leases;
mod sql;
mod watchers;
mod worker;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use self::worker::{Call, Msg, Op, Output, Subscription};
use crate::{
    KeyValue, Store, StoreError, Txn, TxnOp, TxnOpResponse, TxnResponse, Watch, WatchBatch, key,
};

/// File name of the store inside the data dir.
pub const DB_FILE: &str = "hako.db";

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync on every commit: survives power loss (default).
    #[default]
    Full,
    /// fsync at checkpoints only: survives a killed process, may lose the
    /// last commits on power loss. Faster; fine for tests.
    Normal,
}

/// How much watch history the embedded store keeps. History older than
/// either limit is compacted; `None` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at least this many of the latest revisions (default 10 000).
    pub revisions: Option<u64>,
    /// Keep revisions younger than this (default: no time limit).
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            revisions: Some(10_000),
            max_age: None,
        }
    }
}

/// Settings of the embedded store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// The database file; `None` keeps everything in memory.
    pub path: Option<PathBuf>,
    /// Commit durability.
    pub durability: Durability,
    /// Watch history retention.
    pub retention: Retention,
}

impl EmbeddedConfig {
    /// The default settings for `<data_dir>/hako.db`.
    pub fn in_data_dir(data_dir: impl AsRef<Path>) -> Self {
        EmbeddedConfig {
            path: Some(data_dir.as_ref().join(DB_FILE)),
            ..Self::default()
        }
    }
}

/// The embedded SQLite store. Dropping it stops its worker thread.
#[derive(Debug)]
pub struct EmbeddedStore {
    tx: Sender<Msg>,
    path: Option<PathBuf>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store described by `config`.
    pub async fn open(config: EmbeddedConfig) -> Result<Self, StoreError> {
        let path = config.path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("hako-store".into())
            .spawn(move || match engine::Engine::open(config) {
                Ok(engine) => {
                    let _ = ready_tx.send(Ok(()));
                    worker::run(engine, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the store thread: {e}")))?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(EmbeddedStore { tx, path })
    }

    /// Opens `<data_dir>/hako.db` with default settings.
    pub async fn open_in_data_dir(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(EmbeddedConfig::in_data_dir(data_dir)).await
    }

    /// Opens a fresh store that lives only in memory (for tests).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        Self::open(EmbeddedConfig::default()).await
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Finishes queued calls, closes the database and waits until it is closed.
    /// Later calls fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (ack_tx, ack_rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(Some(ack_tx))).is_ok() {
            let _ = ack_rx.await;
        }
    }

    async fn call(&self, op: Op) -> Result<Output, StoreError> {
        call(&self.tx, op).await
    }

    async fn write(&self, op: TxnOp) -> Result<TxnResponse, StoreError> {
        match self.call(Op::Txn(Txn::new().and_then(op))).await? {
            Output::Txn(response) => Ok(response),
            _ => Err(unexpected()),
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown(None));
    }
}

async fn call(tx: &Sender<Msg>, op: Op) -> Result<Output, StoreError> {
    let (reply_tx, reply_rx) = oneshot::channel();
    tx.send(Msg::Call(Call {
        op,
        reply: Some(reply_tx),
    }))
    .map_err(|_| StoreError::Closed)?;
    reply_rx.await.map_err(|_| StoreError::Closed)?
}

fn unexpected() -> StoreError {
    StoreError::Backend("the store worker answered with the wrong kind of result".into())
}

fn deleted(response: TxnResponse) -> Result<u64, StoreError> {
    match response.responses.first() {
        Some(TxnOpResponse::Delete(n)) => Ok(*n),
        _ => Err(unexpected()),
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        key::validate_key(key)?;
        match self.call(Op::Get(key.to_owned())).await? {
            Output::Kv(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        key::validate_prefix(prefix)?;
        match self.call(Op::Range(prefix.to_owned())).await? {
            Output::Kvs(kvs) => Ok(kvs),
            _ => Err(unexpected()),
        }
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
        Ok(deleted(self.write(TxnOp::delete(key)).await?)? > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let op = TxnOp::DeletePrefix {
            prefix: prefix.to_owned(),
        };
        deleted(self.write(op).await?)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        txn.validate()?;
        match self.call(Op::Txn(txn)).await? {
            Output::Txn(response) => Ok(response),
            _ => Err(unexpected()),
        }
    }

    async fn watch(&self, prefix: &str, from_revision: Option<i64>) -> Result<Watch, StoreError> {
        key::validate_prefix(prefix)?;
        let op = Op::Watch {
            prefix: prefix.to_owned(),
            from: from_revision,
        };
        match self.call(op).await? {
            Output::Watch(sub) => Ok(watch_stream(self.tx.clone(), prefix.to_owned(), sub)),
            _ => Err(unexpected()),
        }
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        match self.call(Op::Revision).await? {
            Output::Revision(rev) => Ok(rev),
            _ => Err(unexpected()),
        }
    }

    async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.call(Op::Compact(revision)).await.map(|_| ())
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<i64, StoreError> {
        crate::store::validate_ttl(ttl)?;
        match self.call(Op::Grant(ttl)).await? {
            Output::Lease(id) => Ok(id),
            _ => Err(unexpected()),
        }
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError> {
        self.call(Op::KeepAlive(lease)).await.map(|_| ())
    }

    async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        self.call(Op::Revoke(lease)).await.map(|_| ())
    }
}

/// The state behind an embedded [`Watch`].
struct WatchState {
    tx: Sender<Msg>,
    prefix: String,
    replay: VecDeque<WatchBatch>,
    live: Option<mpsc::Receiver<WatchBatch>>,
    next_revision: i64,
    failed: bool,
}

/// Builds the watch stream: replay, then live batches; if the worker drops
/// the live channel (lagging watcher), resubscribe from the next revision.
fn watch_stream(tx: Sender<Msg>, prefix: String, sub: Subscription) -> Watch {
    let state = WatchState {
        tx,
        prefix,
        replay: sub.replay,
        live: Some(sub.live),
        next_revision: sub.start_revision,
        failed: false,
    };
    Watch::from_stream(futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.failed {
                return None;
            }
            if let Some(batch) = st.replay.pop_front() {
                st.next_revision = batch.revision + 1;
                return Some((Ok(batch), st));
            }
            if let Some(live) = &mut st.live {
                match live.recv().await {
                    Some(batch) => {
                        st.next_revision = batch.revision + 1;
                        return Some((Ok(batch), st));
                    }
                    None => st.live = None,
                }
            }
            let op = Op::Watch {
                prefix: st.prefix.clone(),
                from: Some(st.next_revision),
            };
            match call(&st.tx, op).await {
                Ok(Output::Watch(sub)) => {
                    st.replay = sub.replay;
                    st.live = Some(sub.live);
                }
                Ok(_) => {
                    st.failed = true;
                    return Some((Err(unexpected()), st));
                }
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests;
