//! Events: every decision hako takes about an app (start, stop, scale, deploy, failure) with
//! its reason, kept per app.

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AppCreated,
    AppUpdated,
    AppDeleted,
    Deployed,
    Rollout,
    Start,
    Ready,
    StartFailed,
    Drain,
    Stop,
    Exited,
    Unreachable,
    /// The autoscaler changed the number of instances (its decision, with the reason).
    Scale,
    /// An instance's limits changed live (or a lowered memory limit was kept off it).
    Resize,
    /// A run of one of the app's schedules.
    Scheduled,
    /// A certificate was uploaded, issued by ACME (a first one or a renewal), or removed.
    Certificate,
    /// An attempt to obtain a certificate from ACME failed (the reason says why and when the
    /// next attempt is).
    CertificateFailed,
    /// A checkpoint of the app's current version was made (or could not be).
    Checkpoint,
    CheckpointFailed,
    /// Checkpoints of the app were removed (an older version, the disk bound).
    CheckpointRemoved,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub time_unix_ms: u64,
    pub app: String,
    pub kind: EventKind,
    #[serde(default)]
    pub instance: Option<String>,
    /// Why, in words ("idle for 5m", "cold start: a request found no ready instance").
    pub reason: String,
    /// For failures: the end of the app's log.
    #[serde(default)]
    pub log_tail: Option<String>,
}

impl Event {
    pub fn new(app: &str, kind: EventKind, reason: impl Into<String>) -> Event {
        Event {
            time_unix_ms: crate::now_unix_ms(),
            app: app.to_string(),
            kind,
            instance: None,
            reason: reason.into(),
            log_tail: None,
        }
    }

    pub fn instance(mut self, id: &str) -> Event {
        self.instance = Some(id.to_string());
        self
    }

    pub fn log_tail(mut self, tail: String) -> Event {
        if !tail.is_empty() {
            self.log_tail = Some(tail);
        }
        self
    }
}
