//! hako-policy (placeholder)
#![forbid(unsafe_code)]
