//! An instance: one running container of an app, on one node.

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Starting,
    Ready,
    Draining,
}

/// What hako records about a running instance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub app: String,
    pub node: String,
    /// Where the proxy reaches it, e.g. "10.88.0.7:8080".
    pub addr: String,
    pub state: InstanceState,
    pub started_unix_ms: u64,
    /// From start to ready, when ready.
    #[serde(default)]
    pub ready_ms: Option<f64>,
    /// Of `ready_ms`, the wait for the app itself: from its command running to its port
    /// accepting connections (and its health path answering, if it has one). The rest is
    /// hako's (making or releasing the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_ms: Option<f64>,
    #[serde(default)]
    pub release: Option<u64>,
    /// Image and version it runs, e.g. "php:3".
    pub image: String,
    #[serde(default)]
    pub generation: u64,
    /// Its container came from the app's warm pool: it was prepared before the start, which
    /// only released it (`ready_ms` counts from that release).
    #[serde(default)]
    pub from_pool: bool,
    /// How it started: cold, from the warm pool, or restored from a checkpoint.
    #[serde(default)]
    pub start_path: crate::StartPath,
    /// Why a start that could have been a restore was not (CRIU missing or failing, the
    /// checkpoint unusable): it started cold instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_error: Option<String>,
    /// In a cluster: the assignment it runs for (`/assign/<node>/<slot>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Its cgroup limits now: the app's when it started, changed by live resizes (an
    /// instance that uses more memory than a lowered limit keeps its old one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::InstanceLimits>,
}

/// What a live resize did to one running instance (the answer of an update that changed
/// limits, and its event).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResizeOutcome {
    /// The instance.
    pub instance: String,
    /// Every new limit is in force on it.
    pub applied: bool,
    /// The limits it has now.
    pub limits: crate::InstanceLimits,
    /// Why not everything applied (e.g. it uses more memory than the new limit), or why the
    /// resize failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
