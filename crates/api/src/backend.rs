//! The seam between the API and the daemon: what the API needs from the node (image checks,
//! unpacking code releases, live instances, metrics, logs). The daemon implements
//! [`Backend`]; tests use a small fake.

use std::path::PathBuf;

use hako_model::{DatabaseGrant, InstanceInfo, Release};

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

/// A backend failure: a message for the client and what kind of failure it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// What went wrong and what to do (lowercase).
    pub message: String,
    /// Whose fault, and so the status it answers with.
    pub kind: BackendErrorKind,
}

/// The kinds of backend failure, each with its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    /// The request was at fault (400).
    User,
    /// The request holds more than the node accepts, e.g. a release over its bounds (413).
    TooLarge,
    /// The node's storage is full (507).
    OutOfSpace,
    /// We were at fault (500).
    Internal,
}

impl BackendError {
    /// The client sent something unusable (a hostile or broken tarball, a missing dir).
    pub fn user(message: impl Into<String>) -> BackendError {
        Self::of(BackendErrorKind::User, message)
    }

    /// The client sent more than the node's bounds allow (a release too large unpacked).
    pub fn too_large(message: impl Into<String>) -> BackendError {
        Self::of(BackendErrorKind::TooLarge, message)
    }

    /// The node has no room left (disk or quota full).
    pub fn out_of_space(message: impl Into<String>) -> BackendError {
        Self::of(BackendErrorKind::OutOfSpace, message)
    }

    /// The node failed (permission, IO).
    pub fn internal(message: impl Into<String>) -> BackendError {
        Self::of(BackendErrorKind::Internal, message)
    }

    fn of(kind: BackendErrorKind, message: impl Into<String>) -> BackendError {
        BackendError {
            message: message.into(),
            kind,
        }
    }
}

/// What the daemon provides to the API. Every method must be safe to call for any app name
/// (valid, but possibly unknown to the node).
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Does this image reference (`NAME` or `NAME:VERSION`) exist? Checked when an app is
    /// created or its image changes.
    async fn image_exists(&self, reference: &str) -> bool;

    /// Makes code release `number` of `app` from `source`: unpack or copy it into a new
    /// read-only release (hostile archives refused with a [`BackendError::user`]) and return
    /// its metadata. The API then records it and points the app at it. A number is never
    /// handed out twice while the app exists; files of a failed attempt may be overwritten.
    async fn create_release(
        &self,
        app: &str,
        number: u64,
        source: ReleaseSource,
    ) -> Result<Release, BackendError>;

    /// Instances running now, of one app or of all.
    async fn instances(&self, app: Option<&str>) -> Vec<InstanceInfo>;

    /// Request metrics of an app (cold/warm counts, wait and upstream percentiles), if any.
    async fn metrics(&self, app: &str) -> Option<serde_json::Value>;

    /// The last `max_bytes` of the logs of an app's recent instances.
    async fn logs(&self, app: &str, max_bytes: usize) -> String;

    /// What the service-level model needs of an app (arrival gaps, start times, its keep-alive
    /// policy), if the node routes it. A backend that measures nothing keeps the default.
    async fn history(&self, app: &str) -> Option<crate::slo::History> {
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

    /// Drops a grant's database and account (idempotent). Default: no database service.
    async fn drop_database(&self, grant: &DatabaseGrant) -> Result<(), BackendError> {
        let _ = grant;
        Err(no_database_service())
    }
}

fn no_database_service() -> BackendError {
    BackendError::user(
        "this hako has no database service: install MariaDB and set [database] in hako serve's config",
    )
}
