//! What the API needs from this node: image checks, code releases, instances, metrics, logs,
//! the database service.

use std::sync::Arc;

use hako_agent::{Agent, Releases};
use hako_api::{Backend, BackendError, ReleaseSource};
use hako_image::ImageStore;
use hako_model::{
    App, DatabaseGrant, ImageRef, InstanceInfo, NodeCapacity, Release, ResizeOutcome,
};
use hako_proxy::Router;
use hako_store::{Store, StoreExt, keys};

use crate::apps::Apps;
use crate::lifecycle::Lifecycle;

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

    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
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
                    let tmp = tempfile::NamedTempFile::new().map_err(|e| {
                        BackendError::internal(format!("cannot store the upload: {e}"))
                    })?;
                    std::fs::write(tmp.path(), &bytes).map_err(|e| {
                        BackendError::internal(format!("cannot store the upload: {e}"))
                    })?;
                    (tmp.path().to_path_buf(), Some(tmp))
                }
            };
            files
                .releases()
                .create(&app, number, &path, &describe)
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
