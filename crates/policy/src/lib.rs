//! hako's pure policies: what to do with an app's instances, given the time and what the
//! instances are doing. No IO, no clock: the caller passes [`Time`], so the daemon, the
//! simulator (`hako-sim`) and the tests run exactly the same code. Durations in their JSON are
//! read and written by `hako_model::units`, the one parser of units.
//!
//! - [`keepalive`]: idle timeout, max lifetime, connection-aware stop, minimum instances.
//! - [`prewarm`]: pre-starting an instance before an expected request.
//! - [`slo`]: the service-level model (cold-start probability, added wait, memory-time) and
//!   its inverse (the cheapest keep-alive for a target).
#![forbid(unsafe_code)]

pub mod keepalive;
pub mod prewarm;
pub mod slo;
pub mod time;

pub use keepalive::{Action, Decision, InstanceView, KeepAlive, Reason};
pub use time::Time;
