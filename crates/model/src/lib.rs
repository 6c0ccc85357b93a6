//! hako's shared vocabulary, in the words of DESIGN.md: an **app** (a hosted site), its code
//! **releases**, its **instances** (running containers on a **node**) and the **events** that
//! record every decision; plus the human units used on the wire ("256MiB", "30s") and the
//! command-line splitting that lets `--cmd 'php -S 0.0.0.0:$PORT'` work without a shell.
#![forbid(unsafe_code)]

pub mod app;
pub mod command;
pub mod database;
pub mod event;
pub mod instance;
pub mod release;
pub mod restore;
pub mod units;

pub use app::{
    App, AppError, AppNetwork, AppSpec, MAX_WARM_POOL, StopSignal, parse_image_ref, valid_host,
    valid_name,
};
pub use command::CommandError;
pub use database::DatabaseGrant;
pub use event::{Event, EventKind};
pub use instance::{InstanceInfo, InstanceState};
pub use release::Release;
pub use restore::{RestoreMode, StartPath};
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
