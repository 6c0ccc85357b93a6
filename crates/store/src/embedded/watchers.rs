//! The embedded store's live watchers and how committed revisions reach them.
//!
//! The worker thread publishes each committed revision to every watcher whose
//! prefix it touches, through a bounded channel. A watcher that falls a whole
//! channel behind is dropped; its [`crate::Watch`] then resubscribes from the
//! revision after the last one it received, replaying from history, so the
//! consumer still sees every revision exactly once (or `Compacted`).

use tokio::sync::mpsc;

use crate::{WatchBatch, key};

/// Batches a watcher may have queued before it counts as lagging.
pub(crate) const WATCH_QUEUE: usize = 1024;

struct Watcher {
    prefix: String,
    min_revision: i64,
    tx: mpsc::Sender<WatchBatch>,
}

/// Every registered watcher.
#[derive(Default)]
pub(crate) struct Watchers {
    list: Vec<Watcher>,
}

impl Watchers {
    /// Registers a watcher for revisions from `min_revision` on; returns its receiver.
    pub(crate) fn add(&mut self, prefix: String, min_revision: i64) -> mpsc::Receiver<WatchBatch> {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        self.list.push(Watcher {
            prefix,
            min_revision,
            tx,
        });
        rx
    }

    /// Number of registered watchers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Sends committed batches (in revision order) to the watchers they
    /// concern; drops watchers that are gone or lagging.
    pub(crate) fn publish(&mut self, batches: &[WatchBatch]) {
        if batches.is_empty() {
            return;
        }
        self.list.retain(|w| {
            for batch in batches {
                if batch.revision < w.min_revision {
                    continue;
                }
                let events: Vec<_> = batch
                    .events
                    .iter()
                    .filter(|e| key::matches(&w.prefix, e.key()))
                    .cloned()
                    .collect();
                if events.is_empty() {
                    continue;
                }
                let out = WatchBatch {
                    revision: batch.revision,
                    events,
                };
                if let Err(e) = w.tx.try_send(out) {
                    if let mpsc::error::TrySendError::Full(_) = e {
                        tracing::debug!(prefix = %w.prefix, "watcher lagging; it will resubscribe from history");
                    }
                    return false;
                }
            }
            !w.tx.is_closed()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WatchEvent;

    fn batch(revision: i64, keys: &[&str]) -> WatchBatch {
        WatchBatch {
            revision,
            events: keys
                .iter()
                .map(|k| WatchEvent::Delete {
                    key: (*k).to_owned(),
                    mod_revision: revision,
                })
                .collect(),
        }
    }

    #[test]
    fn filters_by_prefix_and_start_revision() {
        let mut w = Watchers::default();
        let mut apps = w.add("/apps/".into(), 0);
        let mut late = w.add("/".into(), 3);
        w.publish(&[batch(2, &["/apps/a", "/nodes/n"]), batch(3, &["/nodes/n"])]);
        let got = apps.try_recv().unwrap();
        assert_eq!((got.revision, got.events.len()), (2, 1));
        assert!(apps.try_recv().is_err());
        assert_eq!(late.try_recv().unwrap().revision, 3);
        assert!(late.try_recv().is_err());
    }

    #[test]
    fn drops_closed_and_lagging_watchers() {
        let mut w = Watchers::default();
        let gone = w.add("/".into(), 0);
        drop(gone);
        let mut slow = w.add("/".into(), 0);
        w.publish(&[batch(2, &["/a"])]);
        assert_eq!(w.len(), 1);
        let many: Vec<WatchBatch> = (3..3 + WATCH_QUEUE as i64)
            .map(|r| batch(r, &["/a"]))
            .collect();
        w.publish(&many);
        assert_eq!(w.len(), 0, "a watcher a whole queue behind is dropped");
        let mut seen = 0;
        while slow.try_recv().is_ok() {
            seen += 1;
        }
        assert_eq!(seen, WATCH_QUEUE);
    }
}
