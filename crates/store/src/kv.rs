//! The records a store hands out: key-values with their revisions, and watch events.
//!
//! Revisions work as in etcd: the store has one counter that every write
//! (put, delete that removed something, transaction with writes, lease expiry)
//! increases by one. A key remembers the revision that created it, the
//! revision of its last change, and how many times it was written since creation.

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, starting with `/`.
    pub key: String,
    /// The raw value.
    pub value: Vec<u8>,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last write to this key.
    pub mod_revision: i64,
    /// Number of writes since creation: 1 after the first put.
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<i64>,
}

/// One change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or changed; carries the new key-value.
    Put(KeyValue),
    /// The key was deleted (explicitly, by prefix, or by its lease ending).
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deletion.
        mod_revision: i64,
    },
}

impl WatchEvent {
    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision at which the change happened.
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// All events of one revision that a watcher selected, in the order they were
/// applied. A transaction's writes arrive together in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    /// The revision these events belong to.
    pub revision: i64,
    /// The events, never empty.
    pub events: Vec<WatchEvent>,
}

/// Groups events (sorted by revision) into one batch per revision.
pub(crate) fn group_by_revision(events: impl IntoIterator<Item = WatchEvent>) -> Vec<WatchBatch> {
    let mut batches: Vec<WatchBatch> = Vec::new();
    for event in events {
        let revision = event.revision();
        match batches.last_mut() {
            Some(last) if last.revision == revision => last.events.push(event),
            _ => batches.push(WatchBatch {
                revision,
                events: vec![event],
            }),
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, rev: i64) -> WatchEvent {
        WatchEvent::Put(KeyValue {
            key: key.into(),
            value: b"v".to_vec(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            lease: None,
        })
    }

    #[test]
    fn groups_consecutive_revisions() {
        let events = vec![
            put("/a", 2),
            put("/b", 2),
            WatchEvent::Delete {
                key: "/c".into(),
                mod_revision: 3,
            },
            put("/a", 5),
        ];
        let batches = group_by_revision(events);
        let shape: Vec<(i64, usize)> = batches
            .iter()
            .map(|b| (b.revision, b.events.len()))
            .collect();
        assert_eq!(shape, vec![(2, 2), (3, 1), (5, 1)]);
        assert_eq!(batches[1].events[0].key(), "/c");
    }
}
