//! How an agent is set up, and why it could not start.

use std::path::PathBuf;
use std::time::Duration;

use hako_runtime::RuntimeConfig;

use crate::storage::StorageLimits;

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
