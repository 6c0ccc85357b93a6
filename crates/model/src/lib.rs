//! hako's shared vocabulary, in the words of DESIGN.md: an **app** (a hosted site), its code
//! **releases**, its **instances** (running containers on a **node**) and the **events** that
//! record every decision; plus the one vocabulary of values a user types, with one parser
//! each: human units ([`units`]: "256MiB", "100MB", "30s", "0.5" cores), image references
//! ([`ImageRef`]), a change of an app's settings ([`AppPatch`]), what a node can give
//! ([`NodeCapacity`]), an app's manifest in its code ([`Manifest`], `hako.toml`), and the command-line splitting that lets
//! `--cmd 'php -S 0.0.0.0:$PORT'` work without a shell; and the site owners' accounts
//! ([`tenant`]: tenants, their quotas and tokens' records).
#![forbid(unsafe_code)]

pub mod app;
pub mod capacity;
pub mod cluster;
pub mod command;
pub mod database;
pub mod digest;
pub mod event;
pub mod failure;
pub mod ignored_clients;
pub mod image_name;
pub mod image_record;
pub mod image_ref;
pub mod instance;
pub mod keep_alive;
pub mod manifest;
pub mod node;
pub mod release;
pub mod restore;
pub mod schedule;
pub mod seccomp;
pub mod stop;
pub mod tenant;
pub mod units;

pub use app::{
    APP_UID_LEN, App, AppError, AppNetwork, AppPatch, AppSpec, InstanceLimits, MAX_SCHEDULES,
    MAX_WARM_POOL, StopSignal, valid_host, valid_name,
};
pub use capacity::{LimitError, NodeCapacity};
pub use cluster::{
    Assignment, AssignmentOutcome, AssignmentPhase, DrainAck, FrontActivity, FrontRecord,
    InstanceActivity, LeaderRecord, Want, WantFailure,
};
pub use command::CommandError;
pub use database::{DatabaseGrant, KeptDatabase};
pub use digest::{DIGEST_PREFIX, Digest, DigestError};
pub use event::{Event, EventKind};
pub use failure::StartFailure;
pub use ignored_clients::{IgnoredClients, IgnoredClientsError};
pub use image_name::{ImageNameError, validate_image_name};
pub use image_record::ImageRecord;
pub use image_ref::{ImageRef, ImageRefError};
pub use instance::{InstanceInfo, InstanceState, ResizeOutcome};
pub use keep_alive::KeepAliveMode;
pub use manifest::{MANIFEST_FILE, Manifest, ManifestError};
pub use node::{NodeInfo, NodeRecord, NodeState, NodeUsage};
pub use release::Release;
pub use restore::{RestoreMode, StartPath};
pub use schedule::{ScheduleAction, ScheduleEntry, ScheduleError};
pub use seccomp::{MAX_SECCOMP_REASON, SeccompProfile};
pub use stop::StopReason;
pub use tenant::{
    ADMIN_ACTOR, Quota, QuotaError, QuotaPatch, Tenant, TenantNameError, TokenRecord, Usage,
    validate_tenant_name, validate_token_name,
};
pub use units::{ByteSize, HumanDuration, UnitError};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
