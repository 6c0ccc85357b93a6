//! Why `hako serve` could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store: {0}")]
    Store(#[from] hako_store::StoreError),
    #[error("cannot start the node agent: {0}")]
    Agent(#[from] hako_agent::AgentError),
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
    #[error("cannot open the image or release store: {0}")]
    Image(#[from] hako_image::ImageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot prepare the data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}
