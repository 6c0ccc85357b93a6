//! The agent: turns an app into running instances on this node and back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hako_image::{Image, ImageStore};
use hako_model::{App, InstanceInfo, InstanceState, StartFailure, StartPath};
use hako_runtime::{Container, ExitStatus, Runtime, RuntimeConfig, Stats};
use tokio::sync::mpsc;

use crate::ready::{NotReady, wait_ready};
use crate::releases::Releases;
use crate::storage::{DataUsage, StorageLimits};

mod checkpoint;
mod command;
mod plan;
mod pool;
mod resize;
mod shared_pool;
mod verify;

pub use checkpoint::{CheckpointError, StartMode};
pub use command::CommandRun;
pub use resize::{ResizeError, Resized};

/// How an agent is set up.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's name (recorded on instances).
    pub node: String,
    /// hako's data dir: images, releases, app data and logs live below it.
    pub data_dir: PathBuf,
    /// Storage every node of a cluster shares (an NFS or CephFS mount; one host directory in
    /// the test bed): images, code releases and apps' `/data` live there instead of in the
    /// data dir, so an instance finds its app's code and data on any node. Logs, checkpoints
    /// and the runtime's state stay local. `None`: everything in the data dir.
    pub shared_dir: Option<PathBuf>,
    pub runtime: RuntimeConfig,
    /// Cap of each instance's log file (it rotates once, so up to twice this on disk).
    pub log_max_bytes: u64,
    /// Log files kept per app after their instances stopped.
    pub logs_kept: usize,
    /// The host directory holding the database server's socket, bound read-only at
    /// `/run/mysqld` into instances of apps that have a database. `None`: no database
    /// service on this node (such apps fail to start, saying so).
    pub database_socket_dir: Option<PathBuf>,
    /// How long after a start its app's warm pool is refilled. Making a container right
    /// away competes with the new instance's first responses (on two cores it took a
    /// pooled cold request from ~4-6 ms to ~8 ms); a moment later it costs them nothing.
    pub pool_refill_delay: Duration,
    /// Bounds on each app's releases and `/data`.
    pub storage: StorageLimits,
    /// Where CRIU is installed (`hako criu install`); `None`: `<data-dir>/criu`.
    pub criu_dir: Option<PathBuf>,
    /// The disk bound of all checkpoints on this node; the least recently used go first.
    pub checkpoint_max_bytes: u64,
    /// Requests sent to an instance before it is checkpointed (0: dump it as soon as it
    /// listens).
    pub checkpoint_warmup: u32,
    /// Slots of the shared warm pool (a cgroup and a network on the bridge each, for any
    /// app; see `shared_pool.rs`); 0: none.
    pub shared_pool: usize,
    /// The disk bound of the node's verified cache of releases and image layers
    /// (`<data-dir>/cache`, used with a [`AgentConfig::shared_dir`] only); the least recently
    /// used entries that no instance uses go first.
    pub blob_cache_max_bytes: u64,
}

impl AgentConfig {
    pub fn new(data_dir: impl Into<PathBuf>, runtime: RuntimeConfig) -> AgentConfig {
        AgentConfig {
            node: hostname(),
            data_dir: data_dir.into(),
            shared_dir: None,
            runtime,
            log_max_bytes: 1 << 20,
            logs_kept: 20,
            database_socket_dir: None,
            pool_refill_delay: Duration::from_millis(100),
            storage: StorageLimits::default(),
            criu_dir: None,
            checkpoint_max_bytes: 4 << 30,
            checkpoint_warmup: 1,
            shared_pool: 0,
            blob_cache_max_bytes: 16 << 30,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "node".into())
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Runtime(#[from] hako_runtime::RuntimeError),
    #[error(transparent)]
    Image(#[from] hako_image::ImageError),
    #[error("cannot open the checkpoint store: {0}")]
    Checkpoints(String),
    #[error("cannot open the node's cache of releases and images at {}: {source}", .path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

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

    /// What the app keeps on this node, by its [`App::storage_key`].
    fn app_dir(&self, key: &str) -> PathBuf {
        self.config.data_dir.join("apps").join(key)
    }

    /// What the app keeps on the shared storage (the data dir when there is none).
    fn shared_app_dir(&self, key: &str) -> PathBuf {
        match &self.config.shared_dir {
            Some(s) => s.join("apps").join(key),
            None => self.app_dir(key),
        }
    }

    /// The persistent data directory (mounted read-write at /data) of the app with this
    /// [`App::storage_key`].
    pub fn data_path(&self, key: &str) -> PathBuf {
        self.shared_app_dir(key).join("data")
    }

    fn logs_dir(&self, key: &str) -> PathBuf {
        self.app_dir(key).join("logs")
    }

    /// Starts an instance of `app` and returns once it is ready: its port accepts connections
    /// and its health path, if it has one, answers 2xx/3xx.
    ///
    /// Unless the app says `restore: never`, a checkpoint of this very version of the app
    /// (and of its image) is restored when there is one (see [`Agent::checkpoint`]); if that
    /// fails, or there is none, a container of the app's warm pool made from this version is
    /// used; otherwise one is made now. Either way the pool is refilled in the background,
    /// [`AgentConfig::pool_refill_delay`] later. [`InstanceInfo::start_path`] says which.
    pub async fn launch(self: &Arc<Self>, app: &App) -> Result<InstanceInfo, LaunchError> {
        self.launch_observed(app, StartMode::of(app), |_| {}).await
    }

    /// Like [`Agent::launch`] with the start paths `mode` allows.
    pub async fn launch_with(
        self: &Arc<Self>,
        app: &App,
        mode: StartMode,
    ) -> Result<InstanceInfo, LaunchError> {
        self.launch_observed(app, mode, |_| {}).await
    }

    /// [`Agent::launch_with`], calling `created` with the instance (state `Starting`) as soon
    /// as its container exists and its command runs, before it is ready: whoever tracks
    /// instances can show and count it from then on.
    pub async fn launch_observed(
        self: &Arc<Self>,
        app: &App,
        mode: StartMode,
        created: impl FnOnce(&InstanceInfo),
    ) -> Result<InstanceInfo, LaunchError> {
        let started = Instant::now();
        let started_ms = hako_model::now_unix_ms();
        let spec = &app.spec;
        let mut restore_error = None;
        let mut restored = None;
        if matches!(mode, StartMode::Auto | StartMode::Restore) {
            match self.restore_for(app).await {
                Ok(r) => restored = r,
                Err(reason) => restore_error = Some(reason),
            }
            if mode == StartMode::Restore && restored.is_none() {
                return Err(LaunchError::node(restore_error.unwrap_or_else(|| {
                    format!(
                        "no checkpoint of this version of {} on this node",
                        spec.name
                    )
                })));
            }
        }
        let pooled = match (&restored, mode) {
            (None, StartMode::Auto | StartMode::NoRestore) => self.take_pooled(app).await,
            _ => None,
        };
        let (prepared, start_path) = match (restored, pooled) {
            (Some(p), _) => (p, StartPath::Restore),
            (None, Some(p)) => (p, StartPath::Pool),
            (None, None) => {
                let slot = match mode {
                    StartMode::Auto | StartMode::NoRestore => self.take_slot(),
                    _ => None,
                };
                let path = if slot.is_some() {
                    StartPath::Shared
                } else {
                    StartPath::Cold
                };
                let (agent, app) = (self.clone(), app.clone());
                let p = tokio::task::spawn_blocking(move || {
                    let p = agent.prepare_with(&app, slot)?;
                    match p.container.start() {
                        Ok(()) => Ok(p),
                        Err(e) => {
                            let log = p.log.clone();
                            drop(p);
                            Err(LaunchError {
                                kind: StartFailure::Node,
                                reason: format!("cannot start the container: {e}"),
                                log_tail: crate::logs::tail(&log, 4096),
                            })
                        }
                    }
                })
                .await
                .map_err(|e| LaunchError::node(format!("start task failed: {e}")))??;
                (p, path)
            }
        };
        let Prepared {
            id,
            key,
            container,
            addr,
            port,
            log,
            image,
            blobs,
            fetched,
            ..
        } = prepared;
        let mut info = InstanceInfo {
            id: id.clone(),
            app: spec.name.clone(),
            node: self.config.node.clone(),
            addr: addr.to_string(),
            state: InstanceState::Starting,
            started_unix_ms: started_ms,
            ready_ms: None,
            release: app.release,
            image: format!("{}:{}", image.name, image.version),
            generation: app.generation,
            from_pool: start_path == StartPath::Pool,
            start_path,
            restore_error,
            slot: None,
            limits: Some(app.limits()),
        };
        created(&info);
        // The app's start timeout runs from when its container could be made: a first use of
        // its code or image on this node (copied and verified into the cache) is the node's.
        let fetched = match start_path {
            StartPath::Pool => Duration::ZERO, // made earlier, in the background
            _ => fetched,
        };
        let app_clock = started + fetched;
        let timeout = spec.start_timeout.0.saturating_sub(app_clock.elapsed());
        let ready = match wait_ready(&container, addr, timeout).await {
            Ok(_) => match &spec.health_path {
                // Health checks stop just before the start timeout, so the caller hears why.
                Some(path) => {
                    let host = spec.hosts.first().cloned().unwrap_or_default();
                    let deadline = tokio::time::Instant::from_std(app_clock) + spec.start_timeout.0;
                    crate::health::wait_healthy(addr, &host, path, deadline)
                        .await
                        .map_err(|e| (StartFailure::Unhealthy, e.to_string()))
                }
                None => Ok(()),
            },
            Err(why) => Err(match why {
                NotReady::Exited(status) => (
                    StartFailure::Crashed,
                    format!("the app {status} before it listened on port {port}"),
                ),
                NotReady::Timeout(_) => (
                    StartFailure::NotListening,
                    format!(
                        "the app did not listen on port {port} within the start timeout ({})",
                        spec.start_timeout
                    ),
                ),
            }),
        };
        match ready {
            Ok(()) => {}
            Err((kind, reason)) => {
                let _ = container
                    .stop_with(spec.stop_signal.number(), Duration::from_millis(100))
                    .await;
                container.logs_flushed().await;
                let log_tail = crate::logs::tail(&log, 4096);
                let _ = tokio::task::spawn_blocking(move || container.remove()).await;
                return Err(LaunchError {
                    kind,
                    reason,
                    log_tail,
                });
            }
        }
        info.state = InstanceState::Ready;
        info.ready_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        let instance = Arc::new(Instance {
            info: info.clone(),
            addr,
            key: key.clone(),
            memory_limit: spec.memory.0,
            stop_signal: spec.stop_signal.number(),
            container,
            log,
            _blobs: blobs,
            limits: Mutex::new(info.limits),
        });
        self.instances
            .lock()
            .expect("instances lock")
            .insert(id.clone(), instance.clone());
        self.watch_exit(instance);
        self.refill_pool_soon(&key);
        Ok(info)
    }

    /// Makes a container of `app` exactly as a start would and leaves it parked before exec.
    /// Blocking (image lookup, directories, [`Runtime::create`]): call it in `spawn_blocking`.
    fn prepare(&self, app: &App) -> Result<Prepared, LaunchError> {
        self.prepare_with(app, None)
    }

    /// [`Agent::prepare`], in a slot of the shared warm pool when one is given.
    fn prepare_with(
        &self,
        app: &App,
        slot: Option<hako_runtime::Slot>,
    ) -> Result<Prepared, LaunchError> {
        let plan = self.plan(app)?;
        let made = match slot {
            Some(slot) => self.runtime.create_in(&plan.spec, slot),
            None => self.runtime.create(&plan.spec),
        };
        let container = made.map_err(|e| {
            self.count_error(crate::RuntimeOp::Create);
            LaunchError {
                kind: StartFailure::Node,
                reason: format!("cannot start the container: {e}"),
                log_tail: crate::logs::tail(&plan.log, 4096),
            }
        })?;
        Ok(plan.with(container))
    }

    /// The image version an instance of `app` gets now (the latest one when the app names
    /// no version).
    /// On a node of a cluster it is the version the leader resolved (the assignment's
    /// [`App::image_record`]).
    fn resolve_image(&self, app: &App) -> Result<Image, LaunchError> {
        let image = &app.spec.image;
        let version = match &app.image_record {
            Some(r) if r.name == image.name => Some(r.version),
            _ => image.version,
        };
        self.images
            .get(&image.name, version)
            .map_err(|e| LaunchError::new(StartFailure::Image, e.to_string()))
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

    /// Removes the warm pool and files on this node (releases, data and logs) of the app with
    /// this [`App::storage_key`]: the app was deleted. Another app of the same name (another
    /// key) keeps everything it has.
    pub async fn forget_app(&self, key: &str) {
        self.remove_pool(key).await;
        self.checkpoints.remove(key, None);
        if let Err(e) = self.releases.remove_app(key) {
            tracing::warn!(key, error = %e, "cannot remove releases");
        }
        let _ = std::fs::remove_dir_all(self.app_dir(key));
        let _ = std::fs::remove_dir_all(self.shared_app_dir(key));
        self.data_usage.forget(key);
    }

    /// Removes what this node alone keeps of the app with this storage key — parked
    /// containers, checkpoints, logs — but not what lies on the shared storage.
    pub async fn forget_local(&self, key: &str) {
        self.remove_pool(key).await;
        self.checkpoints.remove(key, None);
        let _ = std::fs::remove_dir_all(self.app_dir(key));
        self.data_usage.forget(key);
    }

    /// The storage keys of the apps this node keeps files of (logs, local data).
    pub fn local_app_keys(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.config.data_dir.join("apps")) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
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

    fn empty_dir(&self, key: &str) -> Result<PathBuf, LaunchError> {
        let p = self.app_dir(key).join("no-code");
        std::fs::create_dir_all(&p)
            .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", p.display())))?;
        Ok(p)
    }

    fn data_dir_for(&self, key: &str, uid: u32, gid: u32) -> Result<PathBuf, LaunchError> {
        let p = self.data_path(key);
        if !p.exists() {
            std::fs::create_dir_all(&p)
                .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", p.display())))?;
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .map_err(|e| LaunchError::node(format!("cannot chown {}: {e}", p.display())))?;
        }
        Ok(p)
    }
}

/// A free TCP port on the host's loopback (for host-network instances).
fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
