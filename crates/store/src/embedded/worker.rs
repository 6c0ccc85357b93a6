//! The embedded store's worker thread: the only place SQLite is touched.
//!
//! Async callers send a [`Call`] over a channel and await a oneshot reply, so
//! the tokio runtime never blocks on disk. The worker drains whatever calls
//! are queued (up to [`MAX_BATCH`]) and runs them in ONE SQLite transaction,
//! each inside its own savepoint (a failing call is rolled back alone). After
//! the commit it replies and publishes the new revisions to watchers — group
//! commit: one fsync for many concurrent writers. Watch registrations run
//! between batches, after the previous batch was published, which is what
//! makes replay + live delivery gap-free and duplicate-free. Between calls
//! the worker wakes at the next lease deadline to expire leases.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::engine::Engine;
use super::sql;
use crate::kv::group_by_revision;
use crate::{KeyValue, StoreError, Txn, TxnResponse, WatchBatch, WatchEvent, key};

/// Most calls run in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// An operation for the worker.
pub(crate) enum Op {
    Get(String),
    Range(String),
    Revision,
    Txn(Txn),
    Watch { prefix: String, from: Option<i64> },
    Compact(i64),
    Grant(Duration),
    KeepAlive(i64),
    Revoke(i64),
}

/// A new watcher: history to replay first, then the live channel.
pub(crate) struct Subscription {
    /// Revision of the first batch this subscription can deliver.
    pub(crate) start_revision: i64,
    pub(crate) replay: VecDeque<WatchBatch>,
    pub(crate) live: mpsc::Receiver<WatchBatch>,
}

/// What an operation returns.
pub(crate) enum Output {
    Kv(Option<KeyValue>),
    Kvs(Vec<KeyValue>),
    Revision(i64),
    Txn(TxnResponse),
    Watch(Subscription),
    Lease(i64),
    Unit,
}

pub(crate) type Reply = oneshot::Sender<Result<Output, StoreError>>;

/// One request; `reply` is `None` for the worker's own lease expiries.
pub(crate) struct Call {
    pub(crate) op: Op,
    pub(crate) reply: Option<Reply>,
}

/// A message to the worker.
pub(crate) enum Msg {
    Call(Call),
    /// Stop after the current batch; the ack is sent once the database is closed.
    Shutdown(Option<oneshot::Sender<()>>),
}

/// Runs the worker until shutdown or until every sender is gone.
pub(crate) fn run(mut engine: Engine, rx: Receiver<Msg>) {
    loop {
        expire_leases(&mut engine);
        let first = match engine.leases.next_deadline() {
            Some(deadline) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => return,
            },
        };
        let mut calls = Vec::new();
        let mut shutdown = None;
        match first {
            Msg::Call(call) => calls.push(call),
            Msg::Shutdown(ack) => shutdown = Some(ack),
        }
        while shutdown.is_none() && calls.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Call(call)) => calls.push(call),
                Ok(Msg::Shutdown(ack)) => shutdown = Some(ack),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&mut engine, calls);
        if let Some(ack) = shutdown {
            drop(engine);
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
            return;
        }
    }
}

fn expire_leases(engine: &mut Engine) {
    let now = Instant::now();
    let expired = engine.leases.expired(now);
    if expired.is_empty() {
        return;
    }
    tracing::debug!(leases = ?expired, "leases expired");
    let calls = expired
        .iter()
        .map(|id| Call {
            op: Op::Revoke(*id),
            reply: None,
        })
        .collect();
    run_batch(engine, calls);
    for id in expired {
        if engine.leases.expired(now).contains(&id) {
            tracing::warn!(lease = id, "expiring a lease failed; retrying in 1s");
            engine.leases.postpone(id, now + Duration::from_secs(1));
        }
    }
}

/// Results waiting for the commit of the batch that produced them.
#[derive(Default)]
struct Pending {
    replies: Vec<(Option<Reply>, Result<Output, StoreError>)>,
    events: Vec<WatchEvent>,
    open: bool,
}

fn run_batch(engine: &mut Engine, calls: Vec<Call>) {
    let mut pending = Pending::default();
    for call in calls {
        if let Op::Watch { prefix, from } = call.op {
            finish(engine, &mut pending);
            let result = subscribe(engine, prefix, from).map(Output::Watch);
            if let Some(reply) = call.reply {
                let _ = reply.send(result);
            }
            continue;
        }
        if !pending.open {
            if let Err(e) = engine.conn.execute_batch("BEGIN IMMEDIATE") {
                let err = engine.explain(sql::backend(e));
                if let Some(reply) = call.reply {
                    let _ = reply.send(Err(err));
                }
                continue;
            }
            pending.open = true;
        }
        let saved = engine.counters();
        let result = engine
            .conn
            .execute_batch("SAVEPOINT call")
            .map_err(sql::backend)
            .and_then(|()| apply(engine, call.op));
        let result = match result {
            Ok((output, events)) => match engine.conn.execute_batch("RELEASE call") {
                Ok(()) => {
                    pending.events.extend(events);
                    Ok(output)
                }
                Err(e) => Err(rollback_call(engine, saved, sql::backend(e))),
            },
            Err(e) => Err(rollback_call(engine, saved, e)),
        }
        .map_err(|e| engine.explain(e));
        pending.replies.push((call.reply, result));
    }
    finish(engine, &mut pending);
}

fn rollback_call(
    engine: &mut Engine,
    saved: super::engine::Counters,
    err: StoreError,
) -> StoreError {
    engine.restore(saved);
    if let Err(e) = engine.conn.execute_batch("ROLLBACK TO call; RELEASE call") {
        tracing::warn!(error = %e, "rolling back a failed store call failed");
    }
    err
}

/// Commits the open transaction, then replies and publishes (or, if the
/// commit failed, rolls back and replies with the error).
fn finish(engine: &mut Engine, pending: &mut Pending) {
    if !pending.open {
        return;
    }
    pending.open = false;
    let replies = std::mem::take(&mut pending.replies);
    let events = std::mem::take(&mut pending.events);
    match engine.conn.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, result) in replies {
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            engine.watchers.publish(&group_by_revision(events));
            apply_retention(engine);
        }
        Err(e) => {
            let err = engine.explain(sql::backend(e));
            tracing::error!(error = %err, "store commit failed");
            let _ = engine.conn.execute_batch("ROLLBACK");
            if let Err(e) = engine.reload() {
                tracing::error!(error = %e, "reloading store state failed");
            }
            for (reply, _) in replies {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn apply(engine: &mut Engine, op: Op) -> Result<(Output, Vec<WatchEvent>), StoreError> {
    let quiet = |out: Output| Ok((out, Vec::new()));
    match op {
        Op::Get(k) => quiet(Output::Kv(sql::get(&engine.conn, &k)?)),
        Op::Range(p) => quiet(Output::Kvs(sql::range(&engine.conn, &p)?)),
        Op::Revision => quiet(Output::Revision(engine.revision)),
        Op::Txn(txn) => {
            let (response, events) = engine.txn(&txn)?;
            Ok((Output::Txn(response), events))
        }
        Op::Compact(rev) => quiet(engine.compact(rev).map(|()| Output::Unit)?),
        Op::Grant(ttl) => quiet(Output::Lease(engine.grant(ttl)?)),
        Op::KeepAlive(id) => quiet(engine.keep_alive(id).map(|()| Output::Unit)?),
        Op::Revoke(id) => Ok((Output::Unit, engine.revoke(id)?)),
        Op::Watch { .. } => Err(StoreError::Backend("watch inside a batch".into())),
    }
}

fn subscribe(
    engine: &mut Engine,
    prefix: String,
    from: Option<i64>,
) -> Result<Subscription, StoreError> {
    key::validate_prefix(&prefix)?;
    let start_revision = match from {
        None => engine.revision + 1,
        Some(rev) if rev < 1 => {
            return Err(StoreError::InvalidRevision {
                revision: rev,
                reason: "watch revisions start at 1",
            });
        }
        Some(rev) if rev < engine.compact_revision => {
            return Err(StoreError::Compacted {
                requested: rev,
                compact_revision: engine.compact_revision,
            });
        }
        Some(rev) => rev,
    };
    let replay = if start_revision <= engine.revision {
        group_by_revision(sql::history(&engine.conn, &prefix, start_revision)?).into()
    } else {
        VecDeque::new()
    };
    let live = engine
        .watchers
        .add(prefix, start_revision.max(engine.revision + 1));
    Ok(Subscription {
        start_revision,
        replay,
        live,
    })
}

fn apply_retention(engine: &mut Engine) {
    let target = match engine.retention_target() {
        Ok(Some(target)) => target,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "checking store history retention failed");
            return;
        }
    };
    let saved = engine.counters();
    let result = engine
        .conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(sql::backend)
        .and_then(|()| engine.compact(target))
        .and_then(|()| engine.conn.execute_batch("COMMIT").map_err(sql::backend));
    if let Err(e) = result {
        tracing::warn!(error = %e, "compacting store history failed");
        let _ = engine.conn.execute_batch("ROLLBACK");
        engine.restore(saved);
    }
}
