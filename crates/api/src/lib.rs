//! hako's HTTP API server and its client.
#![forbid(unsafe_code)]
