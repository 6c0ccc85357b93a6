//! hako's image store: versioned read-only root filesystems.
#![forbid(unsafe_code)]
