//! The SQLite schema of the embedded store and the row-level statements on it.
//!
//! Tables: `kv` (current keys), `events` (history for watch replay, one row per
//! changed key, ordered by revision then `seq`), `leases` (id and TTL; deadlines
//! live in memory and restart at a full TTL when the store is reopened, as in
//! etcd) and `meta` (revision, compaction point, next lease id). Keys are
//! stored as BLOBs so that prefix ranges are plain byte ranges.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::key::prefix_end;
use crate::{KeyValue, StoreError, WatchEvent};

/// Schema version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB,
    create_revision INTEGER,
    version INTEGER,
    lease INTEGER,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_at ON events(at_ms);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compact_revision', 0), ('next_lease', 1);
";

/// What [`backend`] starts the message of an I/O failure with; the engine looks closer at
/// those (see `Engine::explain`): a full quota (EDQUOT) reaches SQLite as an I/O error.
pub(crate) const IO_ERROR: &str = "sqlite: I/O error: ";

/// Maps a SQLite failure into the store's error: SQLITE_FULL (ENOSPC under the file) is
/// [`StoreError::Full`] (its location is filled in by the engine, which knows the file).
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full {
            location: String::new(),
        },
        Some(rusqlite::ErrorCode::SystemIoFailure) => StoreError::Backend(format!("{IO_ERROR}{e}")),
        _ => StoreError::Backend(format!("sqlite: {e}")),
    }
}

/// Creates the tables if needed and checks the schema version.
pub(crate) fn init_schema(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the database has schema version {version}, newer than this hako understands ({SCHEMA_VERSION}); run a newer hako"
        )));
    }
    conn.execute_batch(SCHEMA).map_err(backend)?;
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(backend)
}

/// Reads a `meta` counter.
pub(crate) fn meta(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
        .map_err(backend)
}

/// Writes a `meta` counter.
pub(crate) fn set_meta(conn: &Connection, name: &str, value: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")
        .and_then(|mut s| s.execute(params![name, value]))
        .map(|_| ())
        .map_err(backend)
}

fn decode_key(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| {
        StoreError::Backend("a stored key is not UTF-8; the database is damaged".into())
    })
}

type RawKv = (Vec<u8>, Vec<u8>, i64, i64, i64, Option<i64>);

fn raw_kv(r: &Row<'_>) -> rusqlite::Result<RawKv> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_kv(
    (key, value, create_revision, mod_revision, version, lease): RawKv,
) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: decode_key(key)?,
        value,
        create_revision,
        mod_revision,
        version,
        lease,
    })
}

/// Reads one key.
pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let raw = conn
        .prepare_cached(
            "SELECT key, value, create_revision, mod_revision, version, lease FROM kv WHERE key = ?1",
        )
        .and_then(|mut s| s.query_row([key.as_bytes()], raw_kv).optional())
        .map_err(backend)?;
    raw.map(to_kv).transpose()
}

/// Reads every key under `prefix`, sorted by key.
pub(crate) fn range(conn: &Connection, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, value, create_revision, mod_revision, version, lease FROM kv
             WHERE key >= ?1 AND key < ?2 ORDER BY key",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![prefix.as_bytes(), prefix_end(prefix)], raw_kv)
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(to_kv)).collect()
}

/// Keys attached to a lease.
pub(crate) fn keys_of_lease(conn: &Connection, lease: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT key FROM kv WHERE lease = ?1 ORDER BY key")
        .map_err(backend)?;
    let rows = stmt
        .query_map([lease], |r| r.get::<_, Vec<u8>>(0))
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend).and_then(decode_key))
        .collect()
}

/// Inserts or replaces a key's row.
pub(crate) fn upsert(conn: &Connection, kv: &KeyValue) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO kv (key, value, create_revision, mod_revision, version, lease)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            kv.key.as_bytes(),
            kv.value,
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease
        ])
    })
    .map(|_| ())
    .map_err(backend)
}

/// Deletes a key's row; true if it existed.
pub(crate) fn remove(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM kv WHERE key = ?1")
        .and_then(|mut s| s.execute([key.as_bytes()]))
        .map(|n| n > 0)
        .map_err(backend)
}

/// Milliseconds since the Unix epoch, for the history's time window.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends one revision's events to the history.
pub(crate) fn append_events(conn: &Connection, events: &[WatchEvent]) -> Result<(), StoreError> {
    let at = now_ms();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (revision, seq, key, value, create_revision, version, lease, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(backend)?;
    for (seq, event) in events.iter().enumerate() {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let res = match event {
            WatchEvent::Put(kv) => stmt.execute(params![
                kv.mod_revision,
                seq,
                kv.key.as_bytes(),
                kv.value,
                kv.create_revision,
                kv.version,
                kv.lease,
                at
            ]),
            WatchEvent::Delete { key, mod_revision } => stmt.execute(params![
                mod_revision,
                seq,
                key.as_bytes(),
                None::<Vec<u8>>,
                None::<i64>,
                None::<i64>,
                None::<i64>,
                at
            ]),
        };
        res.map_err(backend)?;
    }
    Ok(())
}

/// The history under `prefix` from `from_revision` on, in revision order.
pub(crate) fn history(
    conn: &Connection,
    prefix: &str,
    from_revision: i64,
) -> Result<Vec<WatchEvent>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT revision, key, value, create_revision, version, lease FROM events
             WHERE revision >= ?1 AND key >= ?2 AND key < ?3 ORDER BY revision, seq",
        )
        .map_err(backend)?;
    type RawEvent = (
        i64,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows = stmt
        .query_map(
            params![from_revision, prefix.as_bytes(), prefix_end(prefix)],
            |r| -> rusqlite::Result<RawEvent> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .map_err(backend)?;
    rows.map(|row| {
        let (revision, key, value, create_revision, version, lease) = row.map_err(backend)?;
        let key = decode_key(key)?;
        Ok(match value {
            Some(value) => WatchEvent::Put(KeyValue {
                key,
                value,
                create_revision: create_revision.unwrap_or(revision),
                mod_revision: revision,
                version: version.unwrap_or(1),
                lease,
            }),
            None => WatchEvent::Delete {
                key,
                mod_revision: revision,
            },
        })
    })
    .collect()
}

/// Deletes history before `revision` and records it as the compaction point.
pub(crate) fn compact(conn: &Connection, revision: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM events WHERE revision < ?1")
        .and_then(|mut s| s.execute([revision]))
        .map_err(backend)?;
    set_meta(conn, "compact_revision", revision)
}

/// The first revision written after `at_ms`, if any.
pub(crate) fn first_revision_after(
    conn: &Connection,
    at_ms: i64,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT MIN(revision) FROM events WHERE at_ms > ?1")
        .and_then(|mut s| s.query_row([at_ms], |r| r.get(0)))
        .map_err(backend)
}

/// All leases with their TTL in milliseconds.
pub(crate) fn leases(conn: &Connection) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, ttl_ms FROM leases")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend)).collect()
}

/// Records a lease.
pub(crate) fn insert_lease(conn: &Connection, id: i64, ttl_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO leases (id, ttl_ms) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![id, ttl_ms]))
        .map(|_| ())
        .map_err(backend)
}

/// Forgets a lease.
pub(crate) fn delete_lease(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM leases WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map(|_| ())
        .map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: format!("v{rev}").into_bytes(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            lease: None,
        }
    }

    #[test]
    fn schema_rows_and_history_round_trip() {
        let conn = Connection::open_in_memory().unwrap();
        init_schema(&conn).unwrap();
        init_schema(&conn).unwrap(); // idempotent
        assert_eq!(meta(&conn, "revision").unwrap(), 1);
        for (k, rev) in [
            ("/apps/b", 2),
            ("/apps/a", 3),
            ("/appsx", 4),
            ("/nodes/n", 5),
        ] {
            upsert(&conn, &kv(k, rev)).unwrap();
            append_events(&conn, &[WatchEvent::Put(kv(k, rev))]).unwrap();
        }
        let keys: Vec<String> = range(&conn, "/apps/")
            .unwrap()
            .into_iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(keys, ["/apps/a", "/apps/b"]);
        assert_eq!(get(&conn, "/apps/a").unwrap(), Some(kv("/apps/a", 3)));
        assert!(remove(&conn, "/apps/a").unwrap());
        assert!(!remove(&conn, "/apps/a").unwrap());
        let revs: Vec<i64> = history(&conn, "/apps", 3)
            .unwrap()
            .iter()
            .map(WatchEvent::revision)
            .collect();
        assert_eq!(revs, [3, 4]);
        compact(&conn, 4).unwrap();
        assert_eq!(history(&conn, "/", 0).unwrap().len(), 2);
        assert_eq!(meta(&conn, "compact_revision").unwrap(), 4);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        let err = init_schema(&conn).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
