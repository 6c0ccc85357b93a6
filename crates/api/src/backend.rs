//! The seam between the API and the daemon: what the API needs from the node (image checks,
//! what a node can give, unpacking code releases, live instances, metrics, logs and following
//! them, the Prometheus exposition, per-minute series for the dashboard). The daemon
//! implements [`Backend`]; tests use a small fake.

use std::path::PathBuf;

use hako_model::{
    App, DatabaseGrant, ImageRef, InstanceInfo, NodeCapacity, Release, ResizeOutcome,
};

use crate::caller::Scope;
use crate::series::Series;

/// Where a new code release comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseSource {
    /// An uploaded tar or tar.gz archive (the bytes, as sent).
    Archive(bytes::Bytes),
    /// A directory on the API's host (local CLI deploys send a path, not the files).
    Dir(PathBuf),
}

impl ReleaseSource {
    /// Short words for events and [`Release::source`]: "upload (N bytes)" or "dir /srv/site".
    pub fn describe(&self) -> String {
        match self {
            ReleaseSource::Archive(b) => format!("upload ({} bytes)", b.len()),
            ReleaseSource::Dir(d) => format!("dir {}", d.display()),
        }
    }
}

/// One piece of a followed log, in the order the app wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPiece {
    /// What follows comes from this instance's log (sent before its first text, and whenever
    /// the text switches to another instance, e.g. a new instance after a restart).
    Instance(String),
    /// Text the instance wrote (whole lines where it wrote whole lines; lossy UTF-8).
    Text(String),
}

/// A followed log: pieces as the app's instances write them. It ends when the daemon shuts
/// down; dropping it stops the following.
pub type LogFollow = tokio::sync::mpsc::Receiver<LogPiece>;

/// A backend failure, by what happened; [`crate::ApiError`] maps each to its HTTP status.
/// Every message is lowercase and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The request carried something unusable: a hostile or broken archive, a directory
    /// that is not there, a name the node cannot use (400).
    #[error("{0}")]
    BadInput(String),
    /// Something the request names does not exist on the node (404).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what the node has (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is larger than the node takes, e.g. a release over its quota (413).
    #[error("{0}")]
    TooLarge(String),
    /// The node's storage is full (507).
    #[error("{0}")]
    OutOfSpace(String),
    /// A service the node needs is down or absent for now; trying later may work (503).
    #[error("{0}")]
    Unavailable(String),
    /// The node failed: disk full, permission, a task that died (500).
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    /// Shorthand for [`BackendError::BadInput`]: the client sent something unusable.
    pub fn user(message: impl Into<String>) -> BackendError {
        BackendError::BadInput(message.into())
    }

    /// Shorthand for [`BackendError::Internal`]: the node failed.
    pub fn internal(message: impl Into<String>) -> BackendError {
        BackendError::Internal(message.into())
    }

    /// Shorthand for [`BackendError::TooLarge`]: more than the node's bounds allow.
    pub fn too_large(message: impl Into<String>) -> BackendError {
        BackendError::TooLarge(message.into())
    }

    /// Shorthand for [`BackendError::OutOfSpace`]: the node has no room left.
    pub fn out_of_space(message: impl Into<String>) -> BackendError {
        BackendError::OutOfSpace(message.into())
    }
}

/// What the daemon provides to the API. Every method must be safe to call for any app name
/// (valid, but possibly unknown to the node).
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Does this image (its latest version, or the version named) exist? Checked when an app
    /// is created or its image changes.
    async fn image_exists(&self, image: &ImageRef) -> bool;

    /// What one instance can get at most: the node's (later: the largest node's) CPUs,
    /// memory and pids. An app whose limits exceed it could never start, so it is refused
    /// when created or updated.
    fn capacity(&self) -> NodeCapacity;

    /// True when this daemon is part of a cluster (its nodes can be cordoned and drained).
    fn cluster(&self) -> bool {
        false
    }

    /// Makes code release `number` of the app whose [`hako_model::App::storage_key`] is `app`
    /// from `source`: unpack or copy it into a new read-only release (hostile archives
    /// refused with [`BackendError::BadInput`]) and return
    /// its metadata. The API then records it and points the app at it. A number is never
    /// handed out twice while the app exists; files of a failed attempt may be overwritten.
    /// `max_bytes` (the owning tenant's quota) bounds the release's file data below the
    /// node's own bound; over either: [`BackendError::TooLarge`], and nothing of it stays.
    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
        max_bytes: Option<u64>,
    ) -> Result<Release, BackendError>;

    /// Instances running now, of one app or of all.
    async fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo>;

    /// Request metrics of an app (cold/warm counts, wait and upstream percentiles), if any.
    async fn metrics(&self, app: &str) -> Option<serde_json::Value>;

    /// The last `max_bytes` of the logs of an app's recent instances.
    async fn logs(&self, app: &str, max_bytes: usize) -> String;

    /// Follows the logs of `app`'s instances: first the last `tail_bytes` of its recent logs,
    /// then what its instances write from now on — across restarts, new instances included —
    /// until the receiver is dropped or the daemon shuts down. Default: this node cannot.
    async fn follow_logs(&self, app: &App, tail_bytes: usize) -> Result<LogFollow, BackendError> {
        let _ = (app, tail_bytes);
        Err(BackendError::Unavailable(
            "this hako cannot follow logs: read them with 'hako app logs' without --follow".into(),
        ))
    }

    /// The Prometheus text exposition (format 0.0.4) of what `scope` may see: its apps'
    /// figures, and the node's when `scope.node`. Default: nothing measured.
    async fn prometheus(&self, scope: &Scope) -> String {
        let _ = scope;
        String::new()
    }

    /// The last hour of an app's requests and starts, per minute (for the dashboard's
    /// charts), if the node measures it.
    async fn series(&self, app: &str) -> Option<Series> {
        let _ = app;
        None
    }

    /// What the service-level model needs of an app (arrival gaps, start times, its keep-alive
    /// policy), if the node routes it. A backend that measures nothing keeps the default.
    async fn history(&self, app: &str) -> Option<crate::slo::History> {
        let _ = app;
        None
    }

    /// `app`'s limits changed: give them to its running instances live (no restart) and say
    /// what happened to each. An instance using more memory than a lowered limit keeps its
    /// old one. Default: the node runs no instances.
    async fn resize(&self, app: &App) -> Vec<ResizeOutcome> {
        let _ = app;
        Vec::new()
    }

    /// Whether the app's starts restore a checkpoint and why, its checkpoint and the node's
    /// checkpoint disk use (JSON, as `GET /v1/apps/NAME/checkpoint` answers). Default: none.
    async fn checkpoint_status(&self, app: &str) -> Option<serde_json::Value> {
        let _ = app;
        None
    }

    /// Makes `app`'s own database and account on the shared database service (or takes over
    /// the ones a deleted app of the same name kept). Returns the grant and whether the
    /// database existed before. Default: there is no database service.
    async fn provision_database(&self, app: &str) -> Result<(DatabaseGrant, bool), BackendError> {
        let _ = app;
        Err(no_database_service())
    }

    /// Does `app`'s database exist on the shared database service (kept by a deleted app of
    /// the same name)? Asked before one is made, so a kept database is taken over only by an
    /// app of its owner. Default: there is no database service, so none exists.
    async fn database_exists(&self, app: &str) -> Result<bool, BackendError> {
        let _ = app;
        Ok(false)
    }

    /// Drops a grant's database and account (idempotent). Default: no database service.
    async fn drop_database(&self, grant: &DatabaseGrant) -> Result<(), BackendError> {
        let _ = grant;
        Err(no_database_service())
    }
}

fn no_database_service() -> BackendError {
    BackendError::BadInput(
        "this hako has no database service: install MariaDB and set [database] in hako serve's config"
            .into(),
    )
}
