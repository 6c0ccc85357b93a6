//! What the API needs from this node: image checks, code releases, instances, metrics, logs,
//! the database service.

use std::sync::Arc;

use hako_agent::Agent;
use hako_api::{Backend, BackendError, ReleaseSource};
use hako_model::{App, DatabaseGrant, ImageRef, InstanceInfo, NodeCapacity, Release, ResizeOutcome};
use hako_proxy::Router;

use crate::apps::Apps;
use crate::lifecycle::Lifecycle;

/// The daemon as the API's backend.
pub(crate) struct DaemonBackend {
    pub(crate) agent: Arc<Agent>,
    pub(crate) apps: Arc<Apps>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) router: Router,
    pub(crate) database: hako_database::MariaDb,
    /// Runs of each app's schedules.
    pub(crate) schedule_stats: crate::scheduler::RunStats,
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
        self.agent.images().get(&image.name, image.version).is_ok()
    }

    fn capacity(&self) -> NodeCapacity {
        hako_agent::node_capacity()
    }

    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
    ) -> Result<Release, BackendError> {
        let describe = source.describe();
        let agent = self.agent.clone();
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
                    let tmp = tempfile::NamedTempFile::new().map_err(|e| {
                        BackendError::internal(format!("cannot store the upload: {e}"))
                    })?;
                    std::fs::write(tmp.path(), &bytes).map_err(|e| {
                        BackendError::internal(format!("cannot store the upload: {e}"))
                    })?;
                    (tmp.path().to_path_buf(), Some(tmp))
                }
            };
            agent
                .releases()
                .create(&app, number, &path, &describe)
                .map_err(|e| release_error(e.is_over_limit(), e.is_out_of_space(), e))
        })
        .await
        .map_err(|e| BackendError::internal(format!("release task failed: {e}")))?
    }

    async fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        self.lifecycle.instances(app)
    }

    async fn resize(&self, app: &App) -> Vec<ResizeOutcome> {
        self.lifecycle.resize_app(app).await
    }

    async fn metrics(&self, app: &str) -> Option<serde_json::Value> {
        let m = self.router.metrics(app).ok()?;
        let mut v = serde_json::to_value(m).ok()?;
        // Containers of the app's warm pool parked for the next cold start, right now.
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "warm_pool_parked".into(),
                self.agent.pooled(&self.storage_key(app)).len().into(),
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
        }
        Some(v)
    }

    async fn logs(&self, app: &str, max_bytes: usize) -> String {
        self.agent.logs(&self.storage_key(app), max_bytes)
    }

    async fn history(&self, app: &str) -> Option<hako_api::slo::History> {
        let spec = self.apps.get(app)?;
        let h = self.router.history(app).ok()?;
        Some(crate::slo::history(&h, crate::keepalive::policy_of(&spec)))
    }

    async fn provision_database(&self, app: &str) -> Result<(DatabaseGrant, bool), BackendError> {
        let server = self.database.clone();
        let app = app.to_string();
        tokio::task::spawn_blocking(move || server.provision(&app))
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

/// A name the user chose is their fault; a server that is down or refuses is ours.
fn database_error(e: hako_database::DatabaseError) -> BackendError {
    match e {
        hako_database::DatabaseError::Name(_) => BackendError::user(e.to_string()),
        e => BackendError::internal(e.to_string()),
    }
}
