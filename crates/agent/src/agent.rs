//! The agent: turns an app into running instances on this node and back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hako_image::{Image, ImageStore, Rootfs};
use hako_model::{App, AppNetwork, InstanceInfo, InstanceState, StartFailure};
use hako_runtime::{
    BindMount, Container, ContainerSpec, ExitStatus, LogSpec, NetworkMode, RootfsSpec, Runtime,
    RuntimeConfig, Stats, User,
};
use tokio::sync::mpsc;

use crate::ready::{NotReady, wait_ready};
use crate::releases::Releases;
use crate::storage::{DataUsage, StorageLimits};

mod pool;

/// How an agent is set up.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's name (recorded on instances).
    pub node: String,
    /// hako's data dir: images, releases, app data and logs live below it.
    pub data_dir: PathBuf,
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
}

impl AgentConfig {
    pub fn new(data_dir: impl Into<PathBuf>, runtime: RuntimeConfig) -> AgentConfig {
        AgentConfig {
            node: hostname(),
            data_dir: data_dir.into(),
            runtime,
            log_max_bytes: 1 << 20,
            logs_kept: 20,
            database_socket_dir: None,
            pool_refill_delay: Duration::from_millis(100),
            storage: StorageLimits::default(),
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
    stop_signal: i32,
    container: Container,
    log: PathBuf,
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
    data_usage: DataUsage,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
    exits: mpsc::UnboundedSender<Exit>,
    counter: AtomicU64,
    /// Parked containers ready for the next cold start, per app.
    pools: pool::Pools,
}

impl Agent {
    /// Starts the agent: the runtime (which removes what a previous run left), the image and
    /// release stores. Returns the channel on which unexpected exits are reported.
    pub fn new(
        config: AgentConfig,
    ) -> Result<(Arc<Agent>, mpsc::UnboundedReceiver<Exit>), AgentError> {
        let runtime = Runtime::new(config.runtime.clone())?;
        let images = ImageStore::open(config.data_dir.join("images"))?;
        let releases = Releases::open(config.data_dir.join("releases"), &config.storage)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let agent = Agent {
            config,
            runtime,
            images,
            releases,
            data_usage: DataUsage::default(),
            instances: Mutex::new(HashMap::new()),
            exits: tx,
            // Unique across restarts of the daemon: instance ids appear in events and logs.
            counter: AtomicU64::new(hako_model::now_unix_ms() % 1_000_000_000),
            pools: pool::Pools::default(),
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

    /// What the app keeps on this node, by its [`App::storage_key`].
    fn app_dir(&self, key: &str) -> PathBuf {
        self.config.data_dir.join("apps").join(key)
    }

    /// The persistent data directory (mounted read-write at /data) of the app with this
    /// [`App::storage_key`].
    pub fn data_path(&self, key: &str) -> PathBuf {
        self.app_dir(key).join("data")
    }

    fn logs_dir(&self, key: &str) -> PathBuf {
        self.app_dir(key).join("logs")
    }

    /// Starts an instance of `app` and returns once its port accepts connections.
    ///
    /// A container of the app's warm pool is used when one was made from this very version
    /// of the app (and of its image); otherwise one is made now. Either way the pool is
    /// refilled in the background, [`AgentConfig::pool_refill_delay`] later.
    pub async fn launch(self: &Arc<Self>, app: &App) -> Result<InstanceInfo, LaunchError> {
        self.launch_with(app, |_| {}).await
    }

    /// [`Agent::launch`], calling `created` with the instance (state `Starting`) as soon as its
    /// container exists and its command runs, before it listens: whoever tracks instances can
    /// show and count it from then on.
    pub async fn launch_with(
        self: &Arc<Self>,
        app: &App,
        created: impl FnOnce(&InstanceInfo),
    ) -> Result<InstanceInfo, LaunchError> {
        let started = Instant::now();
        let started_ms = hako_model::now_unix_ms();
        let spec = &app.spec;
        let (prepared, from_pool) = match self.take_pooled(app).await {
            Some(p) => (p, true),
            None => {
                let (agent, app) = (self.clone(), app.clone());
                let p = tokio::task::spawn_blocking(move || {
                    let p = agent.prepare(&app)?;
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
                (p, false)
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
            from_pool,
        };
        created(&info);
        let timeout = spec.start_timeout.0.saturating_sub(started.elapsed());
        let ready = match wait_ready(&container, addr, timeout).await {
            Ok(_) => match &spec.health_path {
                // Health checks stop just before the start timeout, so the caller hears why.
                Some(path) => {
                    let host = spec.hosts.first().cloned().unwrap_or_default();
                    let deadline = tokio::time::Instant::from_std(started) + spec.start_timeout.0;
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
            stop_signal: spec.stop_signal.number(),
            container,
            log,
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
        let spec = &app.spec;
        let image = self.resolve_image(app)?;
        let stamp = ImageStamp::of(&image);
        let rootfs = match image.rootfs() {
            Rootfs::Layers(l) => RootfsSpec::Layers(l),
            Rootfs::Host { skeleton, binds } => RootfsSpec::Host {
                skeleton,
                binds: binds.into_iter().map(|b| (b.source, b.target)).collect(),
            },
        };
        let user: User = match &spec.user {
            Some(u) => u
                .parse()
                .map_err(|e: hako_runtime::SpecError| LaunchError::spec(e.to_string()))?,
            None => User::default(),
        };
        let creds = hako_runtime::resolve_user(&user, &rootfs)
            .map_err(|e| LaunchError::spec(e.to_string()))?;
        let key = app.storage_key();
        let code = match app.release {
            Some(n) => self.releases.path(&key, n).ok_or_else(|| {
                LaunchError::spec(format!(
                    "release {n} of {} is missing on this node",
                    spec.name
                ))
            })?,
            None => self.empty_dir(&key)?,
        };
        let data = self.data_dir_for(&key, creds.uid, creds.gid)?;
        let (port, network) = match spec.network {
            AppNetwork::Isolated => (spec.port, NetworkMode::Isolated),
            AppNetwork::Host => (
                free_port().map_err(|e| LaunchError::node(format!("no free port: {e}")))?,
                NetworkMode::Host,
            ),
        };
        let argv = spec
            .command(port)
            .map_err(|e| LaunchError::spec(e.to_string()))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:x}", spec.name);
        let logs = self.logs_dir(&key);
        std::fs::create_dir_all(&logs)
            .map_err(|e| LaunchError::node(format!("cannot create {}: {e}", logs.display())))?;
        let log = logs.join(format!("{id}.log"));

        let mut data = BindMount::data(data);
        data.read_only = self
            .data_usage
            .over_quota(&key, &data.source, &self.config.storage);
        let mut mounts = vec![BindMount::app_code(code), data];
        if spec.database {
            let (Some(_), Some(socket_dir)) =
                (&app.database_grant, &self.config.database_socket_dir)
            else {
                return Err(LaunchError::spec(if app.database_grant.is_none() {
                    "the app asks for a database but none was made for it: update it with --database again".to_string()
                } else {
                    "the app uses a database but this node has no database service: set [database] in hako serve's config".to_string()
                }));
            };
            if !socket_dir.is_dir() {
                return Err(LaunchError::node(format!(
                    "the database server's socket directory {} does not exist: is MariaDB running?",
                    socket_dir.display()
                )));
            }
            mounts.push(BindMount {
                source: socket_dir.clone(),
                target: hako_model::database::SOCKET_DIR_IN_CONTAINER.into(),
                read_only: true,
            });
        }

        let mut cs = ContainerSpec::new(rootfs, argv[0].clone());
        cs.args = argv[1..].to_vec();
        cs.env = app.environment(port);
        cs.env.insert("HAKO_APP".into(), spec.name.clone());
        cs.env.insert("HAKO_INSTANCE".into(), id.clone());
        // Which image version runs: caches kept on /data (compiled PHP) key on it.
        cs.env.insert(
            "HAKO_IMAGE".into(),
            format!("{}:{}", image.name, image.version),
        );
        cs.workdir = spec.workdir.clone().into();
        cs.user = user;
        cs.hostname = spec.name.clone();
        cs.limits = crate::limits::container_limits(spec);
        cs.network = network;
        cs.seccomp = match spec.seccomp {
            hako_model::SeccompProfile::Default => hako_runtime::Seccomp::Default,
            hako_model::SeccompProfile::Unconfined => hako_runtime::Seccomp::Unconfined,
        };
        cs.mounts = mounts;
        cs.log = LogSpec::File {
            path: log.clone(),
            max_bytes: self.config.log_max_bytes,
        };

        let container = self.runtime.create(&cs).map_err(|e| LaunchError {
            kind: StartFailure::Node,
            reason: format!("cannot start the container: {e}"),
            log_tail: crate::logs::tail(&log, 4096),
        })?;
        let ip = match network {
            NetworkMode::Host => std::net::Ipv4Addr::LOCALHOST,
            _ => container.address().unwrap_or(std::net::Ipv4Addr::LOCALHOST),
        };
        Ok(Prepared {
            id,
            key,
            container,
            addr: SocketAddr::from((ip, port)),
            port,
            log,
            image: stamp,
            fingerprint: app.fingerprint(),
        })
    }

    /// The image version an instance of `app` gets now (the latest one when the app names
    /// no version).
    fn resolve_image(&self, app: &App) -> Result<Image, LaunchError> {
        let image = &app.spec.image;
        self.images
            .get(&image.name, image.version)
            .map_err(|e| LaunchError::new(StartFailure::Image, e.to_string()))
    }

    /// Reports the instance's exit unless the agent stopped it on purpose.
    fn watch_exit(self: &Arc<Self>, instance: Arc<Instance>) {
        let agent = Arc::downgrade(self);
        tokio::spawn(async move {
            let status = match instance.container.wait().await {
                Ok(s) => s,
                Err(e) => {
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
        let status = instance
            .container
            .stop_with(instance.stop_signal, grace)
            .await
            .ok();
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
            .map(|i| i.info.clone())
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

    /// Removes the warm pool and files on this node (releases, data and logs) of the app with
    /// this [`App::storage_key`]: the app was deleted. Another app of the same name (another
    /// key) keeps everything it has.
    pub async fn forget_app(&self, key: &str) {
        self.remove_pool(key).await;
        if let Err(e) = self.releases.remove_app(key) {
            tracing::warn!(key, error = %e, "cannot remove releases");
        }
        let _ = std::fs::remove_dir_all(self.app_dir(key));
        self.data_usage.forget(key);
    }

    /// Removes every warm pool, stops every instance and removes everything the runtime made.
    pub async fn shutdown(&self, grace: Duration) {
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
