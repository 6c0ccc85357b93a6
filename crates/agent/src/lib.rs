//! hako's node agent: the instances of apps on one host.
//!
//! [`Agent::launch`] turns an app (image, code release, command, limits, network) into a
//! running container and returns once it is ready: its port accepts connections and its
//! health path, if it has one, answers 2xx/3xx; [`Agent::stop`] stops
//! one gracefully and removes it; unexpected exits are reported on a channel. Each app gets a
//! persistent data dir (`/data`), its code release read-only at `/app`, and capped logs.
//! With a warm pool ([`Agent::fill_pool`]) the agent keeps containers of an app prepared and
//! parked before exec, and a launch only has to release one. With CRIU, [`Agent::checkpoint`]
//! files a checkpoint of an app version, and launches of that version restore it
//! ([`hako_model::StartPath`] says how an instance started). In a cluster, [`member`] is the
//! node's part and [`routes`] keeps a host's routes to the other nodes' instances.
#![forbid(unsafe_code)]

mod agent;
mod blobs;
mod capacity;
mod checkpoints;
mod errors;
pub mod follow;
pub mod health;
mod limits;
pub mod logs;
pub mod member;
mod ready;
mod releases;
pub mod routes;
mod storage;

pub use agent::{
    Agent, AgentConfig, AgentError, CheckpointError, CommandRun, Exit, Instance, LaunchError,
    ResizeError, Resized, StartMode,
};
pub use capacity::node_capacity;
pub use checkpoints::CheckpointInfo;
pub use errors::RuntimeOp;
pub use limits::{container_limits, runtime_limits};
pub use ready::{NotReady, wait_ready};
pub use releases::Releases;
pub use storage::StorageLimits;
