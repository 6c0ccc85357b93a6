//! The etcd backend's watch stream: etcd watch responses regrouped into one
//! batch per revision, with compaction reported as [`StoreError::Compacted`]
//! and a broken stream resumed from the next revision — also when the store
//! moves to another member ([`super::members`]), there.

use std::sync::Arc;

use etcd_client as ec;

use super::convert;
use super::members::{Members, Retry};
use crate::kv::group_by_revision;
use crate::{StoreError, Watch, WatchBatch, key::prefix_end};

/// How long to wait for etcd to report a compacted start revision.
const COMPACTION_REPORT: std::time::Duration = std::time::Duration::from_secs(5);

/// True if reading at `revision` fails because history before it was compacted.
async fn is_compacted(
    client: &ec::Client,
    prefix: &str,
    revision: i64,
) -> Result<bool, StoreError> {
    let options = ec::GetOptions::new()
        .with_count_only()
        .with_revision(revision)
        .with_range(prefix_end(prefix));
    match super::kv(client)
        .get(prefix.as_bytes(), Some(options))
        .await
    {
        Ok(_) => Ok(false),
        Err(e) if e.to_string().contains("compacted") => Ok(true),
        Err(e) if e.to_string().contains("future revision") => Ok(false),
        Err(e) => Err(convert::error(e, None)),
    }
}

struct State {
    members: Arc<Members>,
    /// Changes when the store moves to another member: the watch moves with it.
    switches: tokio::sync::watch::Receiver<u64>,
    prefix: String,
    /// Kept alive: dropping it ends the server-side watch.
    watcher: Option<ec::Watcher>,
    stream: Option<ec::WatchStream>,
    pending: std::collections::VecDeque<WatchBatch>,
    next_revision: i64,
    done: bool,
}

/// Opens an etcd watch from `from` (`None`: from the next write) and wraps it as a
/// [`Watch`]. A start revision that is already compacted fails here, as in the
/// embedded store, rather than on the stream.
pub(crate) async fn open(
    members: Arc<Members>,
    prefix: &str,
    from: Option<i64>,
) -> Result<Watch, StoreError> {
    let (compacted, next_revision) = match from {
        Some(rev) => {
            let compacted = members
                .call(Retry::Always, |c| async move {
                    is_compacted(&c, prefix, rev).await
                })
                .await?;
            (compacted, rev)
        }
        // From the revision after the current one: a watch that must resume (on another
        // member) knows where, even before its first event.
        None => (false, current_revision(&members).await? + 1),
    };
    let mut state = State {
        switches: members.switches(),
        members,
        prefix: prefix.to_owned(),
        watcher: None,
        stream: None,
        pending: Default::default(),
        next_revision,
        done: false,
    };
    state.connect().await?;
    if compacted {
        // etcd reports the compaction point on the stream; read it from there.
        let requested = state.next_revision;
        return Err(
            match tokio::time::timeout(COMPACTION_REPORT, state.next()).await {
                Ok(Some(Err(e @ StoreError::Compacted { .. }))) => e,
                _ => StoreError::Compacted {
                    requested,
                    compact_revision: 0,
                },
            },
        );
    }
    Ok(Watch::from_stream(futures::stream::unfold(
        state,
        |mut st| async move {
            let item = st.next().await?;
            if item.is_err() {
                st.done = true;
            }
            Some((item, st))
        },
    )))
}

/// The store's current revision.
async fn current_revision(members: &Members) -> Result<i64, StoreError> {
    members
        .call(Retry::Always, |c| async move {
            let options = ec::GetOptions::new()
                .with_count_only()
                .with_range(prefix_end("/"));
            super::kv(&c)
                .get("/", Some(options))
                .await
                .map(|r| r.header().map_or(0, ec::ResponseHeader::revision))
                .map_err(|e| convert::error(e, None))
        })
        .await
}

impl State {
    async fn connect(&mut self) -> Result<(), StoreError> {
        // What the stream sees from here on is this member's.
        self.switches.borrow_and_update();
        let (prefix, next_revision) = (self.prefix.as_str(), self.next_revision);
        let (watcher, stream) = self
            .members
            .call(Retry::Always, |c| async move {
                let options = ec::WatchOptions::new()
                    .with_range(prefix_end(prefix))
                    .with_start_revision(next_revision);
                c.watch_client()
                    .max_decoding_message_size(super::MAX_RESPONSE)
                    .watch(prefix.as_bytes(), Some(options))
                    .await
                    .map_err(|e| convert::error(e, None))
            })
            .await?;
        self.watcher = Some(watcher);
        self.stream = Some(stream);
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<WatchBatch, StoreError>> {
        let mut resumed = false;
        loop {
            if self.done {
                return None;
            }
            if let Some(batch) = self.pending.pop_front() {
                self.next_revision = batch.revision + 1;
                return Some(Ok(batch));
            }
            let message = match self.stream.as_mut() {
                Some(stream) => tokio::select! {
                    m = stream.message() => m,
                    Ok(()) = self.switches.changed() => {
                        // The store moved to another member: go on there.
                        self.stream = None;
                        self.watcher = None;
                        if let Err(e) = self.connect().await {
                            return Some(Err(e));
                        }
                        continue;
                    }
                },
                None => Ok(None),
            };
            match message {
                Ok(Some(resp)) => {
                    if resp.canceled() {
                        return Some(Err(self.canceled(&resp)));
                    }
                    let events: Result<Vec<_>, _> =
                        resp.events().iter().map(convert::event).collect();
                    match events {
                        Ok(events) => self.pending.extend(group_by_revision(events)),
                        Err(e) => return Some(Err(e)),
                    }
                }
                Ok(None) | Err(_) if !resumed => {
                    // The stream broke (server restart, network): resume once
                    // from the revision after the last one delivered.
                    resumed = true;
                    self.stream = None;
                    self.watcher = None;
                    if let Err(e) = self.connect().await {
                        return Some(Err(e));
                    }
                }
                Ok(None) => return Some(Err(StoreError::Closed)),
                Err(e) => return Some(Err(convert::error(e, None))),
            }
        }
    }

    fn canceled(&self, resp: &ec::WatchResponse) -> StoreError {
        if resp.compact_revision() > 0 {
            StoreError::Compacted {
                requested: self.next_revision,
                compact_revision: resp.compact_revision(),
            }
        } else {
            StoreError::Backend(format!("etcd canceled the watch: {}", resp.cancel_reason()))
        }
    }
}
