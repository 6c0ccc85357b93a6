//! hako's node agent: the instances of apps on one host.
//!
//! [`Agent::launch`] turns an app (image, code release, command, limits, network) into a
//! running container and returns once its port accepts connections; [`Agent::stop`] stops
//! one gracefully and removes it; unexpected exits are reported on a channel. Each app gets a
//! persistent data dir (`/data`), its code release read-only at `/app`, and capped logs.
//! With a warm pool ([`Agent::fill_pool`]) the agent keeps containers of an app prepared and
//! parked before exec, and a launch only has to release one. With CRIU, [`Agent::checkpoint`]
//! files a checkpoint of an app version, and launches of that version restore it
//! ([`hako_model::StartPath`] says how an instance started).

mod agent;
mod checkpoints;
pub mod logs;
mod ready;
mod releases;

pub use agent::{
    Agent, AgentConfig, AgentError, CheckpointError, Exit, Instance, LaunchError, StartMode,
};
pub use checkpoints::CheckpointInfo;
pub use ready::{NotReady, wait_ready};
pub use releases::Releases;
