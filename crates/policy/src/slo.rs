//! The service-level model (issue 4, point 1): from an app's start-time distribution, access
//! pattern and keep-alive policy to its cold-start probability, added wait and memory-time —
//! and back: the cheapest keep-alive that meets a target. Derivations are in docs/slo.md.
//!
//! ```
//! use std::time::Duration;
//! use hako_policy::slo::{evaluate, recommend, Access, Scenario, StartTime, Target};
//! use hako_policy::{KeepAlive, prewarm::Prewarm};
//!
//! let scenario = Scenario {
//!     access: Access::poisson(1.0 / 60.0).unwrap(),          // one request a minute
//!     start: StartTime::constant(Duration::from_millis(300)),
//!     service_time: Duration::from_millis(20),
//!     keep_alive: KeepAlive::idle(Duration::from_secs(300)),
//!     prewarm: Prewarm::None,
//! };
//! let e = evaluate(&scenario).unwrap();
//! assert!((e.cold_probability - (-5.0f64).exp()).abs() < 1e-3);
//! let r = recommend(&scenario, Target::ColdProbability(0.01)).unwrap();
//! assert!(r.estimate.cold_probability <= 0.01);
//! ```

mod access;
mod model;
mod recommend;
mod start_time;

pub use access::{Access, GapHistogram};
pub use model::{Estimate, Method, Scenario, evaluate};
pub use recommend::{Candidates, Recommendation, Target, recommend, recommend_among};
pub use start_time::StartTime;

/// Errors of the service-level model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SloError {
    /// The Poisson rate is not a positive number.
    #[error("request rate must be a positive number of requests per second, got {0}")]
    BadRate(f64),
    /// No start-time samples.
    #[error("no start-time samples: measure at least one start or give a constant start time")]
    NoStartSamples,
    /// A start-time sample is negative or not finite.
    #[error("start-time sample {0} is not a finite non-negative number of seconds")]
    BadStartSample(f64),
    /// No usable gap in the histogram.
    #[error("the idle-time histogram is empty (or all gaps are 0): record some requests first")]
    NoGaps,
    /// A gap or weight is negative or not finite.
    #[error("histogram entry (gap {gap}, weight {weight}) must be finite and non-negative")]
    BadGap {
        /// The gap, seconds.
        gap: f64,
        /// Its weight.
        weight: f64,
    },
    /// The target is out of range.
    #[error("target out of range: {0}")]
    BadTarget(String),
    /// A combination the model does not cover.
    #[error("the model does not cover {0}: use the simulator (hako sim) for it")]
    Unsupported(&'static str),
}

#[cfg(test)]
mod tests;
