//! Events: every decision hako takes about an app (start, stop, scale, deploy, failure) with
//! its reason, kept per app; and every change to a tenant or its tokens, kept per tenant.

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
    /// A tenant's own events (its `app` is empty, its `tenant` names it).
    TenantCreated,
    TenantUpdated,
    TenantDeleted,
    TokenCreated,
    TokenRevoked,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub time_unix_ms: u64,
    /// The app; empty on a tenant's own events (tenant and token changes).
    pub app: String,
    pub kind: EventKind,
    #[serde(default)]
    pub instance: Option<String>,
    /// Why, in words ("idle for 5m", "cold start: a request found no ready instance").
    pub reason: String,
    /// For failures: the end of the app's log.
    #[serde(default)]
    pub log_tail: Option<String>,
    /// Who asked for a change made through the API: `admin` (the admin token) or
    /// `TENANT/TOKEN` (a tenant's token, by name). `None` for hako's own decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The tenant owning the app, on events of changes made through the API (`None`: an app
    /// of the admin's, or a decision of hako's, which does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
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
            actor: None,
            tenant: None,
        }
    }

    pub fn instance(mut self, id: &str) -> Event {
        self.instance = Some(id.to_string());
        self
    }

    /// Who asked for it (see [`Event::actor`]).
    pub fn actor(mut self, actor: impl Into<String>) -> Event {
        self.actor = Some(actor.into());
        self
    }

    /// The tenant owning the app (see [`Event::tenant`]).
    pub fn tenant(mut self, tenant: Option<&str>) -> Event {
        self.tenant = tenant.map(str::to_string);
        self
    }

    pub fn log_tail(mut self, tail: String) -> Event {
        if !tail.is_empty() {
            self.log_tail = Some(tail);
        }
        self
    }
}
