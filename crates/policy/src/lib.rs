//! hako's pure policies: what to do with an app's instances, given the time and what the
//! instances are doing. No IO, no clock: the caller passes [`Time`], so the daemon, the
//! simulator (`hako-sim`) and the tests run exactly the same code. Durations in their JSON are
//! read and written by `hako_model::units`, the one parser of units.
//!
//! - [`keepalive`]: idle timeout, max lifetime, connection-aware stop, minimum instances.
//! - [`predict`]: the predictive keep-alive (hybrid idle-time histogram, Shahrad et al.).
//! - [`prewarm`]: pre-starting an instance before an expected request.
//! - [`prestart`]: starting an instance's successor before it reaches its max lifetime.
//! - [`autoscale`]: how many instances an app needs under load (and the comparators).
//! - [`schedule`]: cron schedules — parsing and the next fire time.
//! - [`wake`]: which requests keep an app awake (scheduled runs and ignored clients do not).
//! - [`slo`]: the service-level model (cold-start probability, added wait, memory-time) and
//!   its inverse (the cheapest keep-alive for a target).
#![forbid(unsafe_code)]

pub mod autoscale;
pub mod keepalive;
pub mod predict;
pub mod prestart;
pub mod prewarm;
pub mod schedule;
pub mod slo;
pub mod time;
pub mod wake;

pub use keepalive::{Action, Decision, InstanceView, KeepAlive, Reason};
pub use time::Time;
