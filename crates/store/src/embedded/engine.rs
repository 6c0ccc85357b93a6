//! The embedded store's engine: one SQLite connection plus the in-memory
//! counters, applying one operation at a time on the worker thread.
//!
//! The engine does not begin or commit transactions itself; the worker wraps
//! a batch of operations in one transaction (see `worker.rs`). After a failed
//! commit the worker calls [`Engine::reload`] so memory matches the disk again.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::leases::Leases;
use super::sql;
use super::watchers::Watchers;
use super::{Durability, EmbeddedConfig};
use crate::{KeyValue, StoreError, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchEvent};

/// The store state owned by the worker thread.
pub(crate) struct Engine {
    pub(crate) conn: Connection,
    pub(crate) revision: i64,
    pub(crate) compact_revision: i64,
    next_lease: i64,
    pub(crate) leases: Leases,
    pub(crate) watchers: Watchers,
    config: EmbeddedConfig,
    last_age_check: Option<Instant>,
}

/// Memory state to restore when one operation of a batch fails.
#[derive(Clone, Copy)]
pub(crate) struct Counters {
    revision: i64,
    compact_revision: i64,
    next_lease: i64,
}

impl Engine {
    /// Opens (creating if needed) the database described by `config`.
    pub(crate) fn open(config: EmbeddedConfig) -> Result<Self, StoreError> {
        let conn = match &config.path {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                Connection::open(path).map_err(|e| explain(Some(path), sql::backend(e)))?
            }
            None => Connection::open_in_memory().map_err(sql::backend)?,
        };
        let synchronous = match config.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        // EXCLUSIVE locking: one process owns the database, so two daemons on
        // one data dir cannot both count revisions.
        let setup = conn
            .busy_timeout(Duration::from_millis(500))
            .and_then(|()| {
                conn.execute_batch(&format!(
                    "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"
                ))
            })
            .map_err(sql::backend)
            .and_then(|()| sql::init_schema(&conn));
        setup.map_err(|e| match (&e, &config.path) {
            (StoreError::Backend(m), Some(path)) if m.contains("locked") || m.contains("busy") => {
                StoreError::InUse {
                    path: path.display().to_string(),
                }
            }
            _ => explain(config.path.as_deref(), e),
        })?;
        if let Some(path) = &config.path {
            restrict_permissions(path);
        }
        let mut engine = Engine {
            conn,
            revision: 0,
            compact_revision: 0,
            next_lease: 1,
            leases: Leases::default(),
            watchers: Watchers::default(),
            config,
            last_age_check: None,
        };
        engine.reload().map_err(|e| engine.explain(e))?;
        Ok(engine)
    }

    /// Completes an error for the caller: names the file in [`StoreError::Full`], and
    /// recognises a write that failed for want of room although SQLite saw only an I/O error
    /// (it reports ENOSPC as full, but EDQUOT as an I/O error).
    pub(crate) fn explain(&self, e: StoreError) -> StoreError {
        explain(self.config.path.as_deref(), e)
    }

    /// Re-reads counters and leases from the database.
    pub(crate) fn reload(&mut self) -> Result<(), StoreError> {
        self.revision = sql::meta(&self.conn, "revision")?;
        self.compact_revision = sql::meta(&self.conn, "compact_revision")?;
        self.next_lease = sql::meta(&self.conn, "next_lease")?;
        let stored: Vec<(i64, Duration)> = sql::leases(&self.conn)?
            .into_iter()
            .map(|(id, ms)| (id, Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
            .collect();
        self.leases.reload(&stored, Instant::now());
        Ok(())
    }

    /// The counters, to restore with [`Engine::restore`] if an operation fails.
    pub(crate) fn counters(&self) -> Counters {
        Counters {
            revision: self.revision,
            compact_revision: self.compact_revision,
            next_lease: self.next_lease,
        }
    }

    /// Restores counters saved before a failed operation.
    pub(crate) fn restore(&mut self, c: Counters) {
        self.revision = c.revision;
        self.compact_revision = c.compact_revision;
        self.next_lease = c.next_lease;
    }

    /// Runs a transaction; returns its response and the events it caused.
    pub(crate) fn txn(&mut self, txn: &Txn) -> Result<(TxnResponse, Vec<WatchEvent>), StoreError> {
        txn.validate()?;
        let mut succeeded = true;
        for compare in &txn.compares {
            if !compare.evaluate(sql::get(&self.conn, &compare.key)?.as_ref()) {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        for op in ops {
            if let TxnOp::Put {
                lease: Some(id), ..
            } = op
                && !self.leases.contains(*id)
            {
                return Err(StoreError::LeaseNotFound(*id));
            }
        }
        let rev = self.revision + 1;
        let mut events = Vec::new();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op {
                TxnOp::Put { key, value, lease } => {
                    let prev = sql::get(&self.conn, key)?;
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        lease: *lease,
                    };
                    sql::upsert(&self.conn, &kv)?;
                    events.push(WatchEvent::Put(kv));
                    TxnOpResponse::Put
                }
                TxnOp::Delete { key } => TxnOpResponse::Delete(self.remove_keys(
                    std::iter::once(key.clone()),
                    rev,
                    &mut events,
                )?),
                TxnOp::DeletePrefix { prefix } => {
                    let keys: Vec<String> = sql::range(&self.conn, prefix)?
                        .into_iter()
                        .map(|kv| kv.key)
                        .collect();
                    TxnOpResponse::Delete(self.remove_keys(keys, rev, &mut events)?)
                }
                TxnOp::Get { key } => TxnOpResponse::Get(sql::get(&self.conn, key)?),
                TxnOp::Range { prefix } => TxnOpResponse::Range(sql::range(&self.conn, prefix)?),
            };
            responses.push(response);
        }
        self.record(rev, &events)?;
        Ok((
            TxnResponse {
                succeeded,
                revision: self.revision,
                responses,
            },
            events,
        ))
    }

    fn remove_keys(
        &mut self,
        keys: impl IntoIterator<Item = String>,
        rev: i64,
        events: &mut Vec<WatchEvent>,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for key in keys {
            if sql::remove(&self.conn, &key)? {
                n += 1;
                events.push(WatchEvent::Delete {
                    key,
                    mod_revision: rev,
                });
            }
        }
        Ok(n)
    }

    /// Makes `rev` the current revision if `events` changed anything.
    fn record(&mut self, rev: i64, events: &[WatchEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        sql::append_events(&self.conn, events)?;
        sql::set_meta(&self.conn, "revision", rev)?;
        self.revision = rev;
        Ok(())
    }

    /// Grants a lease.
    pub(crate) fn grant(&mut self, ttl: Duration) -> Result<i64, StoreError> {
        crate::store::validate_ttl(ttl)?;
        let id = self.next_lease;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        sql::insert_lease(&self.conn, id, ttl_ms)?;
        sql::set_meta(&self.conn, "next_lease", id + 1)?;
        self.next_lease = id + 1;
        self.leases.insert(id, ttl, Instant::now());
        Ok(id)
    }

    /// Renews a lease.
    pub(crate) fn keep_alive(&mut self, id: i64) -> Result<(), StoreError> {
        if self.leases.renew(id, Instant::now()) {
            Ok(())
        } else {
            Err(StoreError::LeaseNotFound(id))
        }
    }

    /// Ends a lease, deleting its keys in one revision; returns the events.
    pub(crate) fn revoke(&mut self, id: i64) -> Result<Vec<WatchEvent>, StoreError> {
        if !self.leases.contains(id) {
            return Err(StoreError::LeaseNotFound(id));
        }
        let rev = self.revision + 1;
        let keys = sql::keys_of_lease(&self.conn, id)?;
        let mut events = Vec::new();
        self.remove_keys(keys, rev, &mut events)?;
        sql::delete_lease(&self.conn, id)?;
        self.record(rev, &events)?;
        self.leases.remove(id);
        Ok(events)
    }

    /// Discards history before `revision`.
    pub(crate) fn compact(&mut self, revision: i64) -> Result<(), StoreError> {
        if revision > self.revision {
            return Err(StoreError::InvalidRevision {
                revision,
                reason: "it is in the future; compact at most up to the current revision",
            });
        }
        if revision <= self.compact_revision {
            return Ok(());
        }
        sql::compact(&self.conn, revision)?;
        self.compact_revision = revision;
        Ok(())
    }

    /// The compaction point the retention settings ask for now, if it moved.
    pub(crate) fn retention_target(&mut self) -> Result<Option<i64>, StoreError> {
        let mut target = self.compact_revision;
        if let Some(keep) = self.config.retention.revisions {
            let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
            let by_count = self.revision - keep + 1;
            // Compact in steps, not on every write.
            if by_count - self.compact_revision >= (keep / 16).max(1) {
                target = target.max(by_count);
            }
        }
        if let Some(window) = self.config.retention.max_age {
            let due = self
                .last_age_check
                .is_none_or(|t| t.elapsed() >= (window / 10).min(Duration::from_secs(1)));
            if due {
                self.last_age_check = Some(Instant::now());
                let cutoff = sql::now_ms() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let first_kept =
                    sql::first_revision_after(&self.conn, cutoff)?.unwrap_or(self.revision);
                target = target.max(first_kept);
            }
        }
        let target = target.min(self.revision);
        Ok((target > self.compact_revision).then_some(target))
    }
}

/// Makes the database file readable by its owner only (it may hold tokens).
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot make the store file private");
    }
}

/// See [`Engine::explain`]: `path` is the database file (`None`: in memory).
fn explain(path: Option<&Path>, e: StoreError) -> StoreError {
    let location = || path.map_or("the in-memory store".into(), |p| p.display().to_string());
    match e {
        StoreError::Full { location: l } if l.is_empty() => StoreError::Full {
            location: location(),
        },
        StoreError::Backend(m) if m.starts_with(sql::IO_ERROR) => {
            match path.and_then(Path::parent) {
                Some(dir) if out_of_room(dir) => StoreError::Full {
                    location: location(),
                },
                _ => StoreError::Backend(m),
            }
        }
        e => e,
    }
}

/// Bytes of the probe that tells a full disk or quota from another I/O failure.
const PROBE_BYTES: usize = 64 * 1024;

/// Whether writing a small file in `dir` fails with ENOSPC or EDQUOT (the probe is removed).
fn out_of_room(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join(format!(".hako-space-probe-{}", std::process::id()));
    let result = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    matches!(
        result.map_err(|e| e.raw_os_error()),
        Err(Some(28 | 122)) // ENOSPC, EDQUOT
    )
}
