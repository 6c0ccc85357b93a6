//! The seam between the control plane and where instances run. One host: [`LocalNode`], the
//! node agent in this process. The instance lifecycle ([`crate::lifecycle`]) only talks to a
//! node through [`Node`], so timing logic is tested against a node that runs nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hako_agent::{
    Agent, CheckpointError, CheckpointInfo, CommandRun, LaunchError, ResizeError, Resized,
    StartMode,
};
use hako_model::{App, InstanceInfo, InstanceLimits};

/// Called once with the instance (state `Starting`) when its container exists.
pub(crate) type Created = Box<dyn FnOnce(&InstanceInfo) + Send>;

/// An instance that ended without being asked to: its process exited, or its node was lost.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub app: String,
    pub instance: String,
    /// Why, in words: "the app exited with code 1 on its own", "its node n2 was lost".
    pub why: String,
    pub log_tail: String,
}

impl From<hako_agent::Exit> for Ended {
    fn from(e: hako_agent::Exit) -> Ended {
        Ended {
            app: e.app,
            instance: e.instance,
            why: format!("the app {} on its own", e.status),
            log_tail: e.log_tail,
        }
    }
}

/// Runs instances.
#[async_trait]
pub(crate) trait Node: Send + Sync + 'static {
    /// Starts an instance of `app` by the start paths `mode` allows; returns once its port
    /// accepts connections.
    async fn launch(
        &self,
        app: &App,
        mode: StartMode,
        created: Created,
    ) -> Result<InstanceInfo, LaunchError>;

    /// Stops an instance (its stop signal, `grace`, then kill) and removes what it had; the
    /// exit status in words, if it was running.
    async fn stop(&self, id: &str, grace: Duration) -> Option<String>;

    /// `app` is current: prepare for its starts (its warm pool), dropping what older
    /// versions left. Returns at once.
    fn prepare(&self, app: &App);

    /// The app with this storage key is gone: remove its files and warm pool.
    async fn forget(&self, storage_key: &str);

    /// Stops every instance and removes what the node made.
    async fn shutdown(&self, grace: Duration);

    /// Gives a running instance new cgroup limits, live (no restart). A memory limit below
    /// what it uses now is kept off it ([`Resized::MemoryKept`]).
    async fn resize(&self, id: &str, limits: InstanceLimits) -> Result<Resized, ResizeError>;

    /// Runs `command` in a fresh container of `app` (never routed) until it ends or
    /// `timeout` passes: a scheduled job.
    async fn run_command(
        &self,
        app: &App,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandRun, LaunchError>;

    /// Makes a checkpoint of the current version of `app` on this node (a private instance,
    /// started, warmed, dumped, tried; see `hako_agent::Agent::checkpoint`), or returns the
    /// one it has. Takes about a cold start. Default: this node cannot.
    async fn checkpoint(&self, app: &App) -> Result<CheckpointInfo, CheckpointError> {
        let _ = app;
        Err(CheckpointError::Unsupported(
            "this node does not make checkpoints".into(),
        ))
    }

    /// The node's checkpoint of the current version of `app`, if it has one.
    fn checkpoint_of(&self, app: &App) -> Option<CheckpointInfo> {
        let _ = app;
        None
    }

    /// `app` is current: remove its checkpoints of every other version (all of them when its
    /// restore setting is `never`); the number removed.
    fn forget_old_checkpoints(&self, app: &App) -> usize {
        let _ = app;
        0
    }

    /// Checkpoints the node's disk bound removed since the last call.
    fn evicted_checkpoints(&self) -> Vec<CheckpointInfo> {
        Vec::new()
    }

    /// Disk used by the node's checkpoints and its bound, in bytes.
    fn checkpoint_disk(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// The node agent of this host.
pub(crate) struct LocalNode(pub(crate) Arc<Agent>);

#[async_trait]
impl Node for LocalNode {
    async fn launch(
        &self,
        app: &App,
        mode: StartMode,
        created: Created,
    ) -> Result<InstanceInfo, LaunchError> {
        self.0.launch_observed(app, mode, created).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Option<String> {
        self.0.stop(id, grace).await.map(|s| s.to_string())
    }

    fn prepare(&self, app: &App) {
        self.0.fill_pool(app);
    }

    async fn forget(&self, storage_key: &str) {
        self.0.forget_app(storage_key).await;
    }

    async fn shutdown(&self, grace: Duration) {
        self.0.shutdown(grace).await;
    }

    async fn resize(&self, id: &str, limits: InstanceLimits) -> Result<Resized, ResizeError> {
        self.0.resize(id, limits).await
    }

    async fn run_command(
        &self,
        app: &App,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandRun, LaunchError> {
        self.0.run_command(app, command, timeout).await
    }

    async fn checkpoint(&self, app: &App) -> Result<CheckpointInfo, CheckpointError> {
        self.0.checkpoint(app).await
    }

    fn checkpoint_of(&self, app: &App) -> Option<CheckpointInfo> {
        self.0.checkpoint_of(app)
    }

    fn forget_old_checkpoints(&self, app: &App) -> usize {
        self.0.forget_old_checkpoints(app)
    }

    fn evicted_checkpoints(&self) -> Vec<CheckpointInfo> {
        self.0.take_evicted_checkpoints()
    }

    fn checkpoint_disk(&self) -> (u64, u64) {
        self.0.checkpoint_disk()
    }
}
