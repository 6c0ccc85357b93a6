//! What the API needs from this node: image checks, code releases, instances, metrics, logs
//! (and following them), the Prometheus exposition, the dashboard's per-minute series, the
//! database service.

use std::sync::Arc;

use hako_agent::{Agent, Releases};
use hako_api::{Backend, BackendError, LogFollow, LogPiece, ReleaseSource, Scope};
use hako_image::ImageStore;
use hako_model::{
    App, DatabaseGrant, ImageRef, InstanceInfo, NodeCapacity, Release, ResizeOutcome,
};
use hako_proxy::Router;
use hako_store::{Store, StoreExt, keys};

use crate::apps::Apps;
use crate::checkpoint::Checkpointer;
use crate::lifecycle::Lifecycle;
use crate::ops::Ops;

/// How often a followed log is read for new text.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);
use crate::predict::Predictors;

/// Where images, code releases and logs are: this host's agent, or — on a front that runs no
/// instances — the image and release stores themselves (on the cluster's shared storage).
pub(crate) enum Files {
    Agent(Arc<Agent>),
    Stores {
        images: ImageStore,
        releases: Arc<Releases>,
    },
}

impl Files {
    fn images(&self) -> &ImageStore {
        match self {
            Files::Agent(a) => a.images(),
            Files::Stores { images, .. } => images,
        }
    }

    fn releases(&self) -> &Releases {
        match self {
            Files::Agent(a) => a.releases(),
            Files::Stores { releases, .. } => releases,
        }
    }
}

/// Where the instances are known: the lifecycle of this daemon (one host), or the records in
/// the store (a cluster, whichever front leads).
pub(crate) enum Instances {
    Lifecycle(Arc<Lifecycle>),
    Store(Arc<dyn Store>),
}

/// What one instance may get at most: this host's, or the largest node's of a cluster (kept
/// up to date by the front).
pub(crate) enum Capacity {
    Host,
    Largest(Arc<std::sync::Mutex<NodeCapacity>>),
}

/// The daemon as the API's backend.
pub(crate) struct DaemonBackend {
    pub(crate) files: Arc<Files>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) instances: Instances,
    pub(crate) capacity: Capacity,
    pub(crate) router: Router,
    pub(crate) database: hako_database::MariaDb,
    /// Runs of each app's schedules.
    pub(crate) schedule_stats: crate::scheduler::RunStats,
    /// Counters, per-minute series, and the end of followed logs at shutdown.
    pub(crate) ops: Arc<Ops>,
    /// This daemon's checkpoints and predictors, where its own lifecycle runs (one host);
    /// `None` on a cluster front (the leader has them).
    pub(crate) checkpoints: Option<Arc<Checkpointer>>,
    pub(crate) predictors: Option<Arc<Predictors>>,
}

impl DaemonBackend {
    /// Where the named app keeps its files on this node (its name alone if it is unknown).
    fn storage_key(&self, app: &str) -> String {
        self.apps
            .get(app)
            .map(|a| a.storage_key())
            .unwrap_or_else(|| app.to_string())
    }
}

#[async_trait::async_trait]
impl Backend for DaemonBackend {
    async fn image_exists(&self, image: &ImageRef) -> bool {
        self.files.images().get(&image.name, image.version).is_ok()
    }

    fn capacity(&self) -> NodeCapacity {
        match &self.capacity {
            Capacity::Host => hako_agent::node_capacity(),
            Capacity::Largest(c) => *c.lock().expect("capacity lock"),
        }
    }

    fn cluster(&self) -> bool {
        matches!(self.capacity, Capacity::Largest(_))
    }

    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
        max_bytes: Option<u64>,
    ) -> Result<Release, BackendError> {
        let describe = source.describe();
        let files = self.files.clone();
        let app = app.to_string();
        tokio::task::spawn_blocking(move || {
            let (path, _tmp) = match source {
                ReleaseSource::Dir(d) => {
                    if !d.is_absolute() || !d.is_dir() {
                        return Err(BackendError::user(format!(
                            "{} is not a directory on the server",
                            d.display()
                        )));
                    }
                    (d, None)
                }
                ReleaseSource::Archive(bytes) => {
                    let tmp = tempfile::NamedTempFile::new().map_err(upload_error)?;
                    std::fs::write(tmp.path(), &bytes).map_err(upload_error)?;
                    (tmp.path().to_path_buf(), Some(tmp))
                }
            };
            files
                .releases()
                .create_within(&app, number, &path, &describe, max_bytes)
                .map_err(|e| release_error(e.is_over_limit(), e.is_out_of_space(), e))
        })
        .await
        .map_err(|e| BackendError::internal(format!("release task failed: {e}")))?
    }

    async fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        match &self.instances {
            Instances::Lifecycle(l) => l.instances(app),
            Instances::Store(store) => {
                let prefix = app.map_or(keys::INSTANCES.to_string(), keys::instances);
                let mut v: Vec<InstanceInfo> = store
                    .range_json::<InstanceInfo>(&prefix)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, i)| i)
                    .collect();
                v.sort_by(|a, b| {
                    a.started_unix_ms
                        .cmp(&b.started_unix_ms)
                        .then(a.id.cmp(&b.id))
                });
                v
            }
        }
    }

    async fn resize(&self, app: &App) -> Vec<ResizeOutcome> {
        match &self.instances {
            Instances::Lifecycle(l) => l.resize_app(app).await,
            // A cluster's leader resizes when it sees the change (its resize events say how).
            Instances::Store(_) => Vec::new(),
        }
    }

    async fn metrics(&self, app: &str) -> Option<serde_json::Value> {
        let m = self.router.metrics(app).ok()?;
        let mut v = serde_json::to_value(m).ok()?;
        // Containers of the app's warm pool parked for the next cold start, right now.
        if let (Some(o), Files::Agent(agent)) = (v.as_object_mut(), self.files.as_ref()) {
            o.insert(
                "warm_pool_parked".into(),
                agent.pooled(&self.storage_key(app)).len().into(),
            );
            // Runs of its schedules (their requests are also in `scheduled`, apart from
            // visitors).
            let runs = self
                .schedule_stats
                .lock()
                .expect("run stats lock")
                .get(app)
                .cloned()
                .unwrap_or_default();
            o.insert(
                "scheduled_runs".into(),
                serde_json::to_value(runs).unwrap_or_default(),
            );
            // Slots of the node's shared warm pool (for any app) parked right now.
            o.insert(
                "shared_pool_parked".into(),
                agent.shared_pool_parked().into(),
            );
        }
        Some(v)
    }

    async fn logs(&self, app: &str, max_bytes: usize) -> String {
        match self.files.as_ref() {
            Files::Agent(agent) => agent.logs(&self.storage_key(app), max_bytes),
            // A front without a node has no instance logs; each node keeps its own.
            Files::Stores { .. } => {
                let _ = app;
                String::new()
            }
        }
    }

    async fn follow_logs(&self, app: &App, tail_bytes: usize) -> Result<LogFollow, BackendError> {
        let key = app.storage_key();
        let Files::Agent(agent) = self.files.as_ref() else {
            // A front without a node has no instance logs; each node keeps its own.
            return Err(BackendError::Unavailable(
                "this hako serve runs no instances (a cluster front): follow the logs on a node's API".into(),
            ));
        };
        let agent = agent.clone();
        let (mut follower, first) = {
            let (agent, key) = (agent.clone(), key.clone());
            tokio::task::spawn_blocking(move || agent.follow_logs(&key, tail_bytes))
                .await
                .map_err(|e| BackendError::internal(format!("log task failed: {e}")))?
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let mut closing = self.ops.closing();
        let counted = self.ops.telemetry.follower();
        tokio::spawn(async move {
            let _counted = counted;
            let mut pieces = first;
            loop {
                for p in pieces.drain(..) {
                    if tx.send(piece(p)).await.is_err() {
                        return; // the client went away
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = tx.closed() => return,
                    _ = closing.wait_for(|c| *c) => return,
                }
                let (agent, key, mut f) = (agent.clone(), key.clone(), follower);
                match tokio::task::spawn_blocking(move || {
                    let p = agent.poll_logs(&key, &mut f);
                    (f, p)
                })
                .await
                {
                    Ok((f, p)) => {
                        follower = f;
                        pieces = p;
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(rx)
    }

    async fn prometheus(&self, scope: &Scope) -> String {
        let scrape = {
            let keys = scope
                .apps
                .iter()
                .filter_map(|name| Some((name.clone(), self.apps.get(name)?.storage_key())))
                .collect();
            crate::metrics::gather(crate::metrics::Sources {
                scope,
                router: &self.router,
                instances: self.instances(None).await,
                agent: match self.files.as_ref() {
                    Files::Agent(a) => Some(a),
                    Files::Stores { .. } => None,
                },
                capacity: self.capacity(),
                keys,
                telemetry: &self.ops.telemetry,
                schedule_runs: self
                    .schedule_stats
                    .lock()
                    .expect("run stats lock")
                    .iter()
                    .map(|(app, r)| (app.clone(), (r.ok, r.failed)))
                    .collect(),
            })
        };
        crate::metrics::encode(scrape)
    }

    async fn series(&self, app: &str) -> Option<hako_api::series::Series> {
        let m = self.router.metrics(app).ok()?;
        let totals = crate::minutes::Totals::of(&m);
        Some(
            self.ops
                .minutes
                .series(app, hako_model::now_unix(), &totals),
        )
    }

    async fn history(&self, app: &str) -> Option<hako_api::slo::History> {
        let spec = self.apps.get(app)?;
        let h = self.router.history(app).ok()?;
        let mut history = crate::slo::history(&h, crate::keepalive::policy_of(&spec));
        history.keep_alive_mode = spec.spec.keep_alive;
        history.predictor = self
            .predictors
            .as_ref()
            .and_then(|p| p.state(app))
            .map(|p| hako_api::slo::PredictorReport {
                window: p.window,
                idle_periods: p.idle_periods,
                pre_warm_starts: p.pre_warm_starts,
            });
        Some(history)
    }

    async fn checkpoint_status(&self, app: &str) -> Option<serde_json::Value> {
        let app = self.apps.get(app)?;
        Some(self.checkpoints.as_ref()?.status(&app))
    }

    async fn provision_database(&self, app: &str) -> Result<(DatabaseGrant, bool), BackendError> {
        let server = self.database.clone();
        let app = app.to_string();
        tokio::task::spawn_blocking(move || server.provision(&app))
            .await
            .map_err(|e| BackendError::internal(format!("database task failed: {e}")))?
            .map_err(database_error)
    }

    async fn database_exists(&self, app: &str) -> Result<bool, BackendError> {
        let server = self.database.clone();
        let app = app.to_string();
        tokio::task::spawn_blocking(move || server.exists(&server.name_for(&app)?))
            .await
            .map_err(|e| BackendError::internal(format!("database task failed: {e}")))?
            .map_err(database_error)
    }

    async fn drop_database(&self, grant: &DatabaseGrant) -> Result<(), BackendError> {
        let server = self.database.clone();
        let grant = grant.clone();
        tokio::task::spawn_blocking(move || server.drop_database(&grant))
            .await
            .map_err(|e| BackendError::internal(format!("database task failed: {e}")))?
            .map_err(database_error)
    }
}

fn piece(p: hako_agent::follow::LogPiece) -> LogPiece {
    match p {
        hako_agent::follow::LogPiece::Instance(i) => LogPiece::Instance(i),
        hako_agent::follow::LogPiece::Text(t) => LogPiece::Text(t),
    }
}

/// A release over the node's bounds is 413, a full disk 507, anything else the upload's fault.
fn release_error(over_limit: bool, out_of_space: bool, e: impl std::fmt::Display) -> BackendError {
    if over_limit {
        BackendError::too_large(format!(
            "cannot make a release: {e} (hako serve's release_max_size and release_max_files bound each release)"
        ))
    } else if out_of_space {
        BackendError::out_of_space(format!(
            "cannot make a release: {e}: the server's disk is full; free space there and retry"
        ))
    } else {
        BackendError::user(format!("cannot make a release: {e}"))
    }
}

/// Storing an upload failed: 507 when the disk (or a quota) is full, else 500. The temp file
/// goes when its guard drops, so nothing of it stays.
fn upload_error(e: std::io::Error) -> BackendError {
    if matches!(e.raw_os_error(), Some(28 | 122)) {
        // ENOSPC, EDQUOT
        BackendError::out_of_space(format!(
            "cannot store the upload: {e}: the server's disk is full; free space there and retry"
        ))
    } else {
        BackendError::internal(format!("cannot store the upload: {e}"))
    }
}

/// A name the user chose is their fault; a server that is down or refuses is ours.
fn database_error(e: hako_database::DatabaseError) -> BackendError {
    match e {
        hako_database::DatabaseError::Name(_) => BackendError::user(e.to_string()),
        e => BackendError::internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_not_the_uploads_fault() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        assert!(
            matches!(upload_error(full), BackendError::OutOfSpace(m) if m.contains("free space"))
        );
        let quota = std::io::Error::from_raw_os_error(122); // EDQUOT
        assert!(matches!(upload_error(quota), BackendError::OutOfSpace(_)));
        let other = std::io::Error::from_raw_os_error(13); // EACCES
        assert!(matches!(upload_error(other), BackendError::Internal(_)));
        assert!(matches!(
            release_error(false, true, "no space left on device"),
            BackendError::OutOfSpace(_)
        ));
        assert!(matches!(
            release_error(true, false, "too large"),
            BackendError::TooLarge(_)
        ));
    }
}
