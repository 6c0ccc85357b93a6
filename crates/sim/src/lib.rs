//! hako-sim (placeholder)
#![forbid(unsafe_code)]
