//! The runtime's error type.

use std::path::PathBuf;

use crate::network::NetworkError;
use crate::spec::SpecError;

/// Everything that can go wrong making or driving a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("hako's runtime needs root: run it as root (or with sudo)")]
    NotRoot,
    #[error("bad runtime configuration: {0}")]
    Config(String),
    #[error("another hako runtime is running with prefix {0}: stop it or choose another prefix")]
    Busy(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cgroup(#[from] hako_cgroup::CgroupError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("container setup failed at {step}: {source}")]
    Setup {
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot execute {command:?} in the container: {source}{}", if log_tail.is_empty() { String::new() } else { format!("\n{log_tail}") })]
    Exec {
        command: String,
        #[source]
        source: std::io::Error,
        log_tail: String,
    },
    #[error("container {0} is not parked: it was already started")]
    NotParked(String),
}

impl RuntimeError {
    /// A mapper for `map_err` on a failed system call.
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
        move |source| RuntimeError::Sys { what, source }
    }
}
