//! hako's state store.
#![forbid(unsafe_code)]
