//! hako's front proxy.
#![forbid(unsafe_code)]
