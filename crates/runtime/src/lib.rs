//! hako's container runtime: Linux containers made in-process, without an external runtime
//! binary on the hot path (FastContainer ran Haconiwa the same way).
//!
//! A container gets new mount, pid, uts and ipc namespaces (and a network namespace unless it
//! shares the host's network), an overlayfs root over a read-only image with a throw-away
//! upper layer, bind mounts for app code (`/app`, read-only) and data (`/data`), a fresh
//! /proc, a minimal /dev, tmpfs /tmp and /run, a cgroup (v1 or v2) with memory, CPU and pids
//! limits, a reduced capability set, no_new_privs and a system-call filter ([`seccomp`]).
//! With CRIU installed, a running container can be checkpointed and new containers restored
//! from the image ([`checkpoint`]).
//!
//! ```no_run
//! use hako_runtime::{ContainerSpec, Runtime, RuntimeConfig, RootfsSpec};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let mut spec = ContainerSpec::new(RootfsSpec::Layers(vec!["/var/lib/hako/images/base/1/rootfs".into()]), "/bin/true");
//! spec.limits.memory_max = Some(64 << 20);
//! let container = runtime.create(&spec)?; // prepared, parked before exec
//! container.start()?;                     // released: exec
//! let status = container.wait().await?;
//! container.remove()?;
//! # Ok(()) }
//! ```

pub mod checkpoint;
mod child;
pub mod cluster_routes;
mod config;
mod container;
mod error;
mod leftovers;
pub mod log;
mod mounts;
pub mod network;
mod runtime;
pub mod seccomp;
mod spawner;
mod spec;
mod sys;
mod tune;
mod user;

pub use config::RuntimeConfig;
pub use container::{Container, Timings};
pub use error::RuntimeError;
pub use hako_cgroup::{
    CPU_FLOOR, CPU_PERIOD_US, CgroupError, LimitsError, MEMORY_CEILING, PIDS_CEILING, Stats,
    Version as CgroupVersion, host_cores,
};
pub use ipnet::Ipv4Net;
pub use network::{NetworkError, Subnet};
pub use runtime::{Runtime, Slot};
pub use seccomp::{Seccomp, SeccompError};
pub use spec::{
    BindMount, ContainerSpec, Limits, LogSpec, NetworkMode, RootfsSpec, SpecError, User,
};
pub use sys::{ExitStatus, is_root};
pub use user::{Credentials, resolve as resolve_user};
