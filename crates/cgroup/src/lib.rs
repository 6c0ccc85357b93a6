//! cgroup v1 and v2 behind one manager trait, for hako's container runtime.
//!
//! [`detect`] reads /proc/self/mountinfo and returns the manager for what the host mounts:
//! [`V1Manager`] when the memory controller sits on a v1 hierarchy (also on "hybrid" hosts
//! with an empty cgroup2 beside it), else [`V2Manager`] on the cgroup2 mount. A manager
//! creates one [`Cgroup`] per container under a scope directory (e.g. `hako`), which sets
//! limits, reports stats, freezes, and kills and removes everything on `destroy`.
//!
//! ```no_run
//! use hako_cgroup::{Limits, detect};
//! let manager = detect("hako")?;
//! let cg = manager.create("web-1", &Limits { memory_max: Some(64 << 20), cpu_cores: Some(0.5), pids_max: Some(64) })?;
//! cg.add_pid(1234)?; // or clone3(CLONE_INTO_CGROUP) with cg.clone_into_fd() on v2
//! println!("{:?}", cg.stats()?);
//! cg.destroy()?;
//! # Ok::<(), hako_cgroup::CgroupError>(())
//! ```
#![forbid(unsafe_code)]

mod detect;
mod error;
mod fsio;
mod limits;
mod manager;
pub mod mountinfo;
mod signal;
mod stats;
mod v1;
mod v2;

pub use detect::{Layout, detect, layout};
pub use error::CgroupError;
pub use limits::{
    CPU_FLOOR, CPU_PERIOD_US, Limits, LimitsError, MEMORY_CEILING, MEMORY_FLOOR, PIDS_CEILING,
    host_cores,
};
pub use manager::{Cgroup, CgroupManager, DEFAULT_TIMEOUT, Version};
pub use stats::Stats;
pub use v1::{V1Cgroup, V1Manager, V1Mounts};
pub use v2::{V2Cgroup, V2Manager};
