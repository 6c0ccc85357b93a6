//! The agent: turns an app into running instances on this node and back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hako_image::{Image, ImageStore};
use hako_model::{InstanceInfo, StartFailure};
use hako_runtime::{Container, ExitStatus, Runtime, Stats};
use tokio::sync::mpsc;

use crate::releases::Releases;
use crate::storage::DataUsage;

mod checkpoint;
mod command;
mod config;
mod files;
mod launch;
mod plan;
mod pool;
mod resize;
mod shared_pool;
mod verify;

pub use checkpoint::{CheckpointError, StartMode};
pub use command::CommandRun;
pub use config::{AgentConfig, AgentError};
pub use resize::{ResizeError, Resized};

/// Why an instance could not be started: its kind (whose move it is), one line of detail,
/// and the end of its output if it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LaunchError {
    pub kind: StartFailure,
    pub reason: String,
    pub log_tail: String,
}

impl LaunchError {
    pub fn new(kind: StartFailure, reason: impl Into<String>) -> LaunchError {
        LaunchError {
            kind,
            reason: reason.into(),
            log_tail: String::new(),
        }
    }

    /// The node failed us (a directory, a task, the runtime).
    fn node(reason: impl Into<String>) -> LaunchError {
        LaunchError::new(StartFailure::Node, reason)
    }

    /// The app's settings cannot work on this node.
    fn spec(reason: impl Into<String>) -> LaunchError {
        LaunchError::new(StartFailure::Spec, reason)
    }
}

/// An instance's container ended without being asked to.
#[derive(Debug, Clone)]
pub struct Exit {
    pub app: String,
    pub instance: String,
    pub status: ExitStatus,
    pub log_tail: String,
}

/// One running instance on this node.
#[derive(Debug)]
pub struct Instance {
    pub info: InstanceInfo,
    pub addr: SocketAddr,
    /// The [`App::storage_key`] of its app: where its logs and files are.
    key: String,
    /// Its memory limit, in bytes.
    memory_limit: u64,
    stop_signal: i32,
    container: Container,
    log: PathBuf,
    /// The cached copies of the release and image layers it mounts (held while it lives).
    _blobs: Vec<crate::blobs::BlobUse>,
    /// Its cgroup limits now (a live resize changes them; `info.limits` is the start's).
    limits: Mutex<Option<hako_model::InstanceLimits>>,
}

/// A container made from an app and parked just before exec: what a start releases.
#[derive(Debug)]
struct Prepared {
    /// The instance id it will have (also in its `HAKO_INSTANCE` and its log's name).
    id: String,
    /// The [`App::storage_key`] of the app it was made from.
    key: String,
    container: Container,
    /// Where the app will listen.
    addr: SocketAddr,
    port: u16,
    log: PathBuf,
    image: ImageStamp,
    /// [`App::fingerprint`] of the app it was made from.
    fingerprint: u64,
    /// The cgroup limits it was made with (a parked container whose app was resized since
    /// gets the new ones when it is taken).
    limits: hako_runtime::Limits,
    /// The cached copies of the release and image layers it mounts (held while it lives).
    blobs: Vec<crate::blobs::BlobUse>,
    /// How long making it spent copying and verifying those into the node's cache (a first
    /// use on this node): not counted against the app's start timeout.
    fetched: Duration,
}

/// Which image version a container was made from; a version removed and made again under
/// the same number differs by its creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageStamp {
    name: String,
    version: u32,
    created_unix: u64,
}

impl ImageStamp {
    fn of(image: &Image) -> ImageStamp {
        ImageStamp {
            name: image.name.clone(),
            version: image.version,
            created_unix: image.created_unix,
        }
    }
}

/// Instances of apps on one node.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    runtime: Arc<Runtime>,
    images: ImageStore,
    releases: Releases,
    /// The verified cache of releases and image layers: a node with shared storage only.
    blobs: Option<crate::blobs::Blobs>,
    data_usage: DataUsage,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
    exits: mpsc::UnboundedSender<Exit>,
    counter: AtomicU64,
    /// Parked containers ready for the next cold start, per app.
    pools: pool::Pools,
    /// Slots for any app's start (cgroup and network made before).
    shared: shared_pool::SharedPool,
    checkpoints: crate::checkpoints::Checkpoints,
    /// The CRIU in use, or why there is none (found on first use).
    criu: std::sync::OnceLock<Result<hako_criu::Criu, String>>,
    /// Restore failures already logged (app and reason).
    restore_warned: Mutex<std::collections::HashSet<String>>,
    /// Failures of the runtime, by operation (for metrics).
    errors: crate::errors::RuntimeErrors,
}

impl Agent {
    /// Starts the agent: the runtime (which removes what a previous run left), the image and
    /// release stores. Returns the channel on which unexpected exits are reported.
    pub fn new(
        config: AgentConfig,
    ) -> Result<(Arc<Agent>, mpsc::UnboundedReceiver<Exit>), AgentError> {
        let runtime = Runtime::new(config.runtime.clone())?;
        let shared = config.shared_dir.as_ref().unwrap_or(&config.data_dir);
        let images = ImageStore::open(shared.join("images"))?;
        let releases = Releases::open(shared.join("releases"), &config.storage)?;
        let blobs = match &config.shared_dir {
            Some(_) => {
                let path = config.data_dir.join("cache");
                Some(
                    crate::blobs::Blobs::open(&path, config.blob_cache_max_bytes)
                        .map_err(|source| AgentError::Cache { path, source })?,
                )
            }
            None => None,
        };
        let checkpoints = crate::checkpoints::Checkpoints::open(
            config.data_dir.join("checkpoints"),
            config.checkpoint_max_bytes,
        )
        .map_err(|e| AgentError::Checkpoints(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let agent = Agent {
            config,
            runtime,
            images,
            releases,
            blobs,
            data_usage: DataUsage::default(),
            instances: Mutex::new(HashMap::new()),
            exits: tx,
            // Unique across restarts of the daemon: instance ids appear in events and logs.
            counter: AtomicU64::new(hako_model::now_unix_ms() % 1_000_000_000),
            pools: pool::Pools::default(),
            shared: shared_pool::SharedPool::default(),
            checkpoints,
            criu: std::sync::OnceLock::new(),
            restore_warned: Mutex::new(Default::default()),
            errors: Default::default(),
        };
        Ok((Arc::new(agent), rx))
    }

    pub fn node(&self) -> &str {
        &self.config.node
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn releases(&self) -> &Releases {
        &self.releases
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Failures of the container runtime since the agent started, per operation.
    pub fn runtime_errors(&self) -> Vec<(crate::RuntimeOp, u64)> {
        self.errors.read()
    }

    fn count_error(&self, op: crate::RuntimeOp) {
        self.errors.count(op);
    }

    /// The node's verified cache: (entries, bytes, trees fetched since start); `None` on a
    /// node without shared storage (it has none).
    pub fn cache_usage(&self) -> Option<(usize, u64, u64)> {
        let b = self.blobs.as_ref()?;
        let (n, bytes) = b.usage();
        Some((n, bytes, b.fetched()))
    }

    /// Removes the cached releases and image layers that no digest in `live` names and that
    /// nothing on this node uses (the cluster store no longer names them: their app was
    /// deleted, a later release replaced them, their image version was removed). Returns
    /// how many went.
    pub fn retain_cached(&self, live: &std::collections::HashSet<hako_model::Digest>) -> usize {
        self.blobs.as_ref().map_or(0, |b| b.retain(live))
    }

    /// Reports the instance's exit unless the agent stopped it on purpose.
    fn watch_exit(self: &Arc<Self>, instance: Arc<Instance>) {
        let agent = Arc::downgrade(self);
        tokio::spawn(async move {
            let status = match instance.container.wait().await {
                Ok(s) => s,
                Err(e) => {
                    if let Some(agent) = agent.upgrade() {
                        agent.count_error(crate::RuntimeOp::Wait);
                    }
                    tracing::warn!(instance = %instance.info.id, error = %e, "cannot wait for instance");
                    return;
                }
            };
            let Some(agent) = agent.upgrade() else { return };
            let ours = agent
                .instances
                .lock()
                .expect("instances lock")
                .remove(&instance.info.id)
                .is_some();
            if !ours {
                return; // stop() took it: an expected exit
            }
            instance.container.logs_flushed().await;
            let log_tail = crate::logs::tail(&instance.log, 4096);
            agent.dispose(instance.clone()).await;
            let _ = agent.exits.send(Exit {
                app: instance.info.app.clone(),
                instance: instance.info.id.clone(),
                status,
                log_tail,
            });
        });
    }

    async fn dispose(&self, instance: Arc<Instance>) {
        let key = instance.key.clone();
        let r = tokio::task::spawn_blocking(move || instance.container.cleanup()).await;
        if let Ok(Err(e)) = r {
            self.count_error(crate::RuntimeOp::Cleanup);
            tracing::warn!(error = %e, "instance cleanup failed");
        }
        crate::logs::prune(
            &self.logs_dir(&key),
            self.config.logs_kept,
            &self.pools.logs(&key),
        );
    }

    /// Stops an instance gracefully (SIGTERM, `grace`, then kill) and removes it.
    pub async fn stop(&self, id: &str, grace: Duration) -> Option<ExitStatus> {
        let instance = self.instances.lock().expect("instances lock").remove(id)?;
        let status = match instance
            .container
            .stop_with(instance.stop_signal, grace)
            .await
        {
            Ok(s) => Some(s),
            Err(e) => {
                self.count_error(crate::RuntimeOp::Stop);
                tracing::warn!(instance = id, error = %e, "cannot stop the instance's container");
                None
            }
        };
        self.dispose(instance).await;
        status
    }

    /// The instances running on this node, optionally of one app.
    pub fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo> {
        let mut v: Vec<InstanceInfo> = self
            .instances
            .lock()
            .expect("instances lock")
            .values()
            .filter(|i| app.is_none_or(|a| i.info.app == a))
            .map(|i| InstanceInfo {
                limits: *i.limits.lock().expect("limits lock"),
                ..i.info.clone()
            })
            .collect();
        v.sort_by(|a, b| {
            a.started_unix_ms
                .cmp(&b.started_unix_ms)
                .then(a.id.cmp(&b.id))
        });
        v
    }

    /// Memory, CPU and pids of one instance.
    pub fn stats(&self, id: &str) -> Option<Stats> {
        let i = self
            .instances
            .lock()
            .expect("instances lock")
            .get(id)
            .cloned()?;
        i.container.stats().ok()
    }

    /// The end of the recent logs (newest instance last), at most `max` bytes, of the app
    /// with this [`App::storage_key`].
    pub fn logs(&self, key: &str, max: usize) -> String {
        crate::logs::recent(&self.logs_dir(key), max, &self.pools.logs(key))
    }

    /// Starts following the logs of the app with this [`App::storage_key`]: the follower and
    /// the last `tail_bytes` of its recent logs. Poll it with [`Agent::poll_logs`].
    pub fn follow_logs(
        &self,
        key: &str,
        tail_bytes: usize,
    ) -> (crate::follow::LogFollower, Vec<crate::follow::LogPiece>) {
        crate::follow::LogFollower::start(&self.logs_dir(key), tail_bytes, &self.pools.logs(key))
    }

    /// What the instances of the app with this [`App::storage_key`] wrote since the
    /// follower's last poll (the warm pool's parked containers left out).
    pub fn poll_logs(
        &self,
        key: &str,
        follower: &mut crate::follow::LogFollower,
    ) -> Vec<crate::follow::LogPiece> {
        follower.poll(&self.pools.logs(key))
    }

    /// Stops every instance (their grace period applies) but keeps the agent working: a node
    /// fenced off its cluster ends what it ran before it may take new instances.
    pub async fn stop_all(&self, grace: Duration) -> Vec<String> {
        let all: Vec<String> = self
            .instances
            .lock()
            .expect("instances lock")
            .keys()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|id| self.stop(id, grace))).await;
        all
    }

    /// The sum of the memory limits of the instances running here.
    pub fn memory_limits(&self) -> u64 {
        self.instances
            .lock()
            .expect("instances lock")
            .values()
            .map(|i| i.memory_limit)
            .sum()
    }

    /// The config the agent runs with.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Removes every warm pool, stops every instance and removes everything the runtime made.
    pub async fn shutdown(&self, grace: Duration) {
        self.close_shared_pool();
        for app in self.pools.close() {
            self.remove_pool(&app).await;
        }
        let all: Vec<String> = self
            .instances
            .lock()
            .expect("instances lock")
            .keys()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|id| self.stop(id, grace))).await;
        self.runtime.shutdown();
    }
}

/// A free TCP port on the host's loopback (for host-network instances).
fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
