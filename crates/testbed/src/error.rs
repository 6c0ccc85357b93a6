//! Why a test bed (or one of its parts) could not be brought up, changed or taken down.

use std::path::PathBuf;
use std::time::Duration;

/// Errors of the test bed; test bodies unwrap them, `cargo xtask testbed` prints them.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A setting that cannot work.
    #[error("bad test bed setting: {0}")]
    Config(String),
    /// A program the bed needs is not installed.
    #[error("cannot run {program}: {source}; install the Debian package {package}")]
    Missing {
        program: String,
        package: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A command (`ip`, `nft`, `hako …`) failed.
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A bed of this name is up (or half up).
    #[error(
        "a test bed named {name:?} is running (state in {}): take it down first (cargo xtask testbed down --name {name})",
        state.display()
    )]
    Running { name: String, state: PathBuf },
    /// A process ended before it was ready.
    #[error("{name} exited before it was ready ({status}); the end of its log {}:\n{tail}", log.display())]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// Something did not happen in time.
    #[error("{what} did not happen within {limit:?}{}", log.as_ref().map(|l| format!("; see {}", l.display())).unwrap_or_default())]
    Timeout {
        what: String,
        limit: Duration,
        log: Option<PathBuf>,
    },
    /// An etcd request failed (the member is down, or the cluster has no quorum).
    #[error("etcd at {endpoint}: {reason}")]
    Etcd { endpoint: String, reason: String },
    /// Taking the bed down left something behind.
    #[error("the test bed {name:?} left things behind: {}", left.join("; "))]
    Leftovers { name: String, left: Vec<String> },
}

impl TestbedError {
    /// A mapper for `map_err` saying what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestbedError {
        let what = what.into();
        move |source| TestbedError::Io { what, source }
    }
}

/// Results of the test bed.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;
