//! Checkpoint/restore of hako's own containers with CRIU.
//!
//! [`Runtime::checkpoint`](crate::Runtime::checkpoint) dumps a running container (its whole process tree, from the
//! app's init, pid 1 of its pid namespace) into an image directory; [`Runtime::restore`](crate::Runtime::restore)
//! makes a *new* container from such an image: a new cgroup with the new spec's limits, a new
//! network namespace with its own address on the bridge, a fresh scratch tmpfs and overlay
//! root over the same image layers, the same bind mounts as the new spec gives (`/app`,
//! `/data`, the image's host directories, the database socket), and a new log pipe. Restored
//! containers are [`Container`](crate::Container)s like any other: wait, stop, stats, remove.
//!
//! What CRIU is told, and why:
//! - the network namespace is external: dumped by reference, restored into the one hako made
//!   for the new container (so several restores of one image run at once, each with its own
//!   address); established TCP connections are not dumped (`--tcp-close`: the restored app
//!   finds them closed and must reconnect), listening sockets are;
//! - every bind mount from the host is external, keyed by its place in the container
//!   (`/app`, `/data`, `/usr`…), and bound from the new spec's source at restore;
//! - `/dev`, `/dev/shm`, `/tmp`, `/run` are external too: hako copies their content itself
//!   (see `fsstate.rs`) instead of CRIU's tar and gzip at every restore;
//! - stdin and the log pipe are external: the restored processes write to the new
//!   container's log;
//! - cgroups are left alone (`--manage-cgroups=ignore`): CRIU joins the new container's
//!   cgroup before it forks the restored processes, so their memory is charged there;
//! - the restored init is a child of hako (`--restore-sibling`), reaped and signalled through
//!   a pidfd like any container's init, and dies with the runtime.
//!
//! What a restored app sees: the memory, threads, open files and environment it had when it
//! was dumped (so `HAKO_INSTANCE` in its environment names the dumped instance; the file
//! `/run/hako/instance` names the one it is now), the current content of `/data` (a live
//! bind, not a copy), its hostname, a new address, a clock that jumped. Files it had
//! written to its root filesystem outside `/tmp`, `/run` and `/dev/shm` are not carried.

mod dump;
mod fsstate;
pub(crate) mod netns;
mod restore;
mod scratch;
mod worker;

use std::path::PathBuf;

pub use dump::Checkpointed;
pub(crate) use worker::Worker;

use crate::error::RuntimeError;

/// The file inside a restored container (and in every container of an agent that writes it)
/// that names the instance it is now.
pub const INSTANCE_FILE: &str = "/run/hako/instance";

/// Why a checkpoint or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Criu(#[from] hako_criu::CriuError),
    #[error("this container cannot be checkpointed: {0}")]
    Unsupported(String),
    #[error("CRIU could not dump the container: {reason}")]
    Dump { reason: String, log: PathBuf },
    #[error("CRIU could not restore the checkpoint: {reason}")]
    Restore { reason: String, log: PathBuf },
    #[error("the checkpoint does not fit this container: {0}")]
    Mismatch(String),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl CheckpointError {
    pub(crate) fn io(what: &str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let (what, path) = (what.to_string(), path.into());
        move |source| CheckpointError::Io { what, path, source }
    }
}

/// What hako records beside CRIU's images, to restore them: `manifest.json` in the image
/// directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The CRIU version that dumped it (a restore needs the same).
    pub criu: String,
    /// Where host directories were bound in the dumped container (`/app`, `/data`, `/usr`…):
    /// the restored container must bind each from the new spec.
    pub binds: Vec<String>,
    /// CRIU's names of the dumped stdin, stdout, stderr (`pipe:[…]`, `file[…]`), if any.
    pub stdio: [Option<String>; 3],
    /// Bytes of CRIU's images (memory pages mostly).
    pub image_bytes: u64,
    /// Bytes of the carried `/tmp`, `/run`, `/dev/shm` content.
    pub fs_bytes: u64,
}

/// The scratch mounts hako carries itself: (place in the container, CRIU cookie, directory
/// under the scratch tmpfs and under the image's `fs/`).
pub(crate) const SCRATCH: [(&str, &str); 4] = [
    ("/dev", "dev"),
    ("/dev/shm", "shm"),
    ("/tmp", "tmp"),
    ("/run", "run"),
];

/// The CRIU cookie of the network namespace.
pub(crate) const NET_KEY: &str = "hakonet";
