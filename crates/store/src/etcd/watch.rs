//! The etcd backend's watch stream: etcd watch responses regrouped into one
//! batch per revision, with compaction reported as [`StoreError::Compacted`]
//! and a broken stream resumed from the next revision.

use etcd_client as ec;

use super::convert;
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
    match client
        .kv_client()
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
    client: ec::WatchClient,
    prefix: String,
    /// Kept alive: dropping it ends the server-side watch.
    watcher: Option<ec::Watcher>,
    stream: Option<ec::WatchStream>,
    pending: std::collections::VecDeque<WatchBatch>,
    next_revision: i64,
    done: bool,
}

/// Opens an etcd watch from `from` (0 = now) and wraps it as a [`Watch`].
/// A start revision that is already compacted fails here, as in the
/// embedded store, rather than on the stream.
pub(crate) async fn open(
    client: &ec::Client,
    prefix: &str,
    from: Option<i64>,
) -> Result<Watch, StoreError> {
    let compacted = match from {
        Some(rev) => is_compacted(client, prefix, rev).await?,
        None => false,
    };
    let mut state = State {
        client: client
            .watch_client()
            .max_decoding_message_size(super::MAX_RESPONSE),
        prefix: prefix.to_owned(),
        watcher: None,
        stream: None,
        pending: Default::default(),
        next_revision: from.unwrap_or(0),
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

impl State {
    async fn connect(&mut self) -> Result<(), StoreError> {
        let options = ec::WatchOptions::new()
            .with_range(prefix_end(&self.prefix))
            .with_start_revision(self.next_revision);
        let (watcher, stream) = self
            .client
            .watch(self.prefix.as_bytes(), Some(options))
            .await
            .map_err(|e| convert::error(e, None))?;
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
                Some(stream) => stream.message().await,
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
                    if self.next_revision == 0 {
                        return Some(Err(StoreError::Backend(
                            "etcd watch stream ended before any event; watch again".into(),
                        )));
                    }
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
