//! Why a [`Serve`](crate::Serve) or a CLI call failed, for the callers that handle errors
//! (the benchmarks); test bodies unwrap them.

use std::path::PathBuf;
use std::time::Duration;

/// Errors of the test-support functions that return a `Result`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program could not be started at all.
    #[error("cannot run {program}: {source}; is it built and on this path?")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `hako serve` ended before it said where it serves.
    #[error(
        "hako serve exited before it served ({status}); its last output:\n{output}\nrun it by hand with the same options to see why"
    )]
    Exited { status: String, output: String },
    /// A `hako` CLI call exited with an error.
    #[error("hako {args} failed with exit code {code}: {output}")]
    Cli {
        args: String,
        code: i32,
        output: String,
    },
    /// `hako serve` did not stop within its limit after SIGTERM (it was killed).
    #[error(
        "hako serve did not stop within {0:?} of SIGTERM and was killed: look for instances that ignore their stop signal"
    )]
    Stop(Duration),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The data dir's image store refused.
    #[error("cannot make the image: {0}")]
    Image(#[from] hako_image::ImageError),
    /// A TLS or HTTP exchange failed (a refused handshake, a broken response).
    #[error("{0}")]
    Https(String),
    /// Something did not happen in time.
    #[error(transparent)]
    TimedOut(#[from] crate::TimedOut),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
