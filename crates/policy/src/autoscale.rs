//! The autoscaler: how many instances an app needs, from its concurrency (requests in flight
//! plus cold requests waiting), sampled by the daemon every 100–250 ms. The design and its math
//! — false-alarm rate on Poisson load, detection-delay bound, the cost of a false alarm — are in
//! docs/autoscaling.md; in short:
//!
//! - **Up** (fast): the mean concurrency over the last `up_window` (2 s) is compared with the
//!   live instances' capacity `current × target`. It scales up only when it exceeds it by `z`
//!   standard deviations of a 2-s mean, measured on the app's own previous minute (30 blocks of
//!   2 s, spread from successive differences so a rising trend does not count as noise). Batched
//!   page loads and short bursts widen the margin by themselves; a 4× step crosses it in about
//!   a second. The new size is `⌈level / target⌉` with the level read from the newer half of the
//!   window when that is higher (a step fills it first). One scale-up at a time: none while
//!   instances are still starting.
//! - **Down** (slow, the hysteresis): only after `down_delay` (30 s) without a scale-up, to
//!   `⌈peak / target⌉` where `peak` is the highest 2-s mean of the whole delay — so the level
//!   that would scale up again was not seen for 30 s. Never below `max(min, 1)`: scaling to zero
//!   is the keep-alive's idle timeout, not the autoscaler's.
//! - `min`/`max` are enforced first, with their own reasons.
//!
//! How the daemon uses it (one app; it keeps the [`Autoscaler`] as the app's state):
//! ```
//! use std::time::Duration;
//! use hako_policy::autoscale::{AutoscaleConfig, Autoscaler, Sample};
//! use hako_policy::Time;
//!
//! let mut scaler = Autoscaler::new(AutoscaleConfig { target_concurrency: 4.0, ..AutoscaleConfig::default() });
//! let tick = Duration::from_millis(200);
//! let mut now = Time::ZERO;
//! let mut decided = None;
//! for k in 0..400u32 {
//!     // The proxy's counters every 200 ms: about 3 in flight, then 12 from 60 s on.
//!     let in_flight = if now < Time::from_secs(60) { 2 + k % 3 } else { 11 + k % 3 };
//!     scaler.observe(now, Sample::new(in_flight, 0));
//!     if let Some(d) = scaler.decide(now, 1, 1, 1, 10) {
//!         decided = Some((now, d)); // record d.to_string() as the event, start d.to - d.from
//!         break;
//!     }
//!     now += tick;
//! }
//! let (when, d) = decided.unwrap();
//! assert!(when >= Time::from_secs(60) && when < Time::from_secs(62)); // within 2 s of the step
//! assert_eq!(d.from, 1);
//! assert!(d.to >= 2 && d.to <= 3);
//! assert!(d.to_string().starts_with("scale 1→"));
//! ```
//! Which instances to drain on a scale-down is the daemon's choice: [`pick_drain`] makes it.
//! [`KpaLike`] and [`SeedPolicy`] are the comparators evaluated beside it (`hako-sim`).

mod decision;
mod drain;
mod kpa;
mod samples;
mod seed;

pub use decision::{ScaleDecision, ScaleReason};
pub use drain::pick_drain;
pub use kpa::KpaLike;
pub use samples::Sample;
pub use seed::SeedPolicy;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Time;
use samples::SampleLog;

/// A scaling policy: fed samples, asked for decisions. Implemented by hako's [`Autoscaler`] and
/// the comparators, so the simulator runs them all through the same loop.
pub trait Scaler {
    /// A short name for reports ("hako", "kpa", "seed").
    fn name(&self) -> &'static str;
    /// One sample of the app's load at `now` (call every 100–250 ms).
    fn observe(&mut self, now: Time, sample: Sample);
    /// Whether to change the number of live instances. `current` counts live instances (ready
    /// or starting, not draining), `ready` the ready ones among them; `min`/`max` are the app's
    /// bounds. A returned decision is taken as applied (the scaler remembers when it scaled).
    fn decide(
        &mut self,
        now: Time,
        current: u32,
        ready: u32,
        min: u32,
        max: u32,
    ) -> Option<ScaleDecision>;
}

/// Settings of hako's autoscaler. In JSON, durations are human strings:
/// `{"target_concurrency":10,"up_window":"2s","baseline":"60s","z":3.0,"down_delay":"30s"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoscaleConfig {
    /// Requests in flight per instance to aim for (`--target-concurrency`). Default 10: about
    /// two thirds of the PHP workers a 512 MiB WordPress instance runs; set it near 1 for apps
    /// that serve one request at a time (`php -S`), higher for static and async servers.
    pub target_concurrency: f64,
    /// The window whose mean is compared with the capacity to scale up.
    #[serde(with = "crate::duration::human")]
    pub up_window: Duration,
    /// How much history before the up window the noise is measured on.
    #[serde(with = "crate::duration::human")]
    pub baseline: Duration,
    /// Standard deviations above the capacity the up-window mean must reach.
    pub z: f64,
    /// No scale-down sooner than this after a scale-up, and only to what the highest up-window
    /// mean of this long a stretch needs.
    #[serde(with = "crate::duration::human")]
    pub down_delay: Duration,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        AutoscaleConfig {
            target_concurrency: 10.0,
            up_window: Duration::from_secs(2),
            baseline: Duration::from_secs(60),
            z: 3.0,
            down_delay: Duration::from_secs(30),
        }
    }
}

/// hako's autoscaler for one app: its settings and the app's recent samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaler {
    /// The settings.
    pub config: AutoscaleConfig,
    samples: SampleLog,
    last_up: Option<Time>,
}

/// Samples per 2-s block below which a block is not counted (a gap in sampling).
const MIN_BLOCK_SAMPLES: usize = 2;
/// Baseline blocks needed before the measured noise is trusted.
const MIN_BASELINE_BLOCKS: usize = 5;

impl Autoscaler {
    /// An autoscaler with no history.
    pub fn new(config: AutoscaleConfig) -> Autoscaler {
        Autoscaler {
            config,
            samples: SampleLog::default(),
            last_up: None,
        }
    }

    fn target(&self) -> f64 {
        let t = self.config.target_concurrency;
        if t.is_finite() && t > 0.0 { t } else { 1.0 }
    }

    fn keep(&self) -> Duration {
        (self.config.up_window + self.config.baseline).max(self.config.down_delay)
            + self.config.up_window
    }

    /// The standard deviation of an up-window mean: measured on the baseline blocks when there
    /// are enough, never below the Poisson floor √(μ/n) of `n` independent samples; twice that
    /// floor for a new app with no baseline yet.
    fn noise(&self, now: Time, n_up: usize, m_up: f64) -> f64 {
        let w = self.config.up_window;
        let count = (self.config.baseline.as_nanos() / w.as_nanos().max(1)) as usize;
        let blocks = self
            .samples
            .blocks(now - w, w, count.max(2), MIN_BLOCK_SAMPLES);
        let n = n_up.max(1) as f64;
        match blocks.sigma() {
            Some(sigma) if blocks.means.len() >= MIN_BASELINE_BLOCKS => {
                sigma.max((blocks.mean().max(1.0) / n).sqrt())
            }
            _ => 2.0 * (m_up.max(1.0) / n).sqrt(),
        }
    }
}

/// Clamp to the bounds first; `None` when `current` is within them.
pub(crate) fn bounds(current: u32, min: u32, max: u32) -> Option<ScaleDecision> {
    let max = max.max(min);
    if current < min {
        Some(ScaleDecision {
            from: current,
            to: min,
            reason: ScaleReason::BelowMinimum { min },
        })
    } else if current > max {
        Some(ScaleDecision {
            from: current,
            to: max,
            reason: ScaleReason::AboveMaximum { max },
        })
    } else {
        None
    }
}

/// Instances needed for `level` at `target` each (`level/target` rounded up).
pub(crate) fn needed(level: f64, target: f64) -> u32 {
    let x = (level / target).ceil();
    if x.is_finite() && x > 0.0 {
        x.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

impl Autoscaler {
    /// One sample of the app's load at `now` (call every 100–250 ms; older-than-latest samples
    /// are ignored).
    pub fn observe(&mut self, now: Time, sample: Sample) {
        let keep = self.keep();
        self.samples.push(now, sample.concurrency(), keep);
    }

    /// Whether to change the number of live instances: see [`Scaler::decide`] for the
    /// arguments, and the module documentation for the rules.
    pub fn decide(
        &mut self,
        now: Time,
        current: u32,
        ready: u32,
        min: u32,
        max: u32,
    ) -> Option<ScaleDecision> {
        if let Some(d) = bounds(current, min, max) {
            if d.is_up() {
                self.last_up = Some(now);
            }
            return Some(d);
        }
        let max = max.max(min);
        // No instance: the activator starts the first one on demand.
        // Instances still starting: their capacity is coming; decide again once they are ready.
        if current == 0 || ready < current {
            return None;
        }
        let target = self.target();
        let w = self.config.up_window;
        let up = self.samples.mean(now, w)?;
        if up.count < 3 {
            return None;
        }
        let half = self.samples.mean(now, w / 2).unwrap_or(up);
        let sigma = self.noise(now, up.count, up.mean);
        let threshold = f64::from(current) * target + self.config.z.max(0.0) * sigma;
        if current < max && up.mean > threshold {
            let (level, window) = if half.count >= 2 && half.mean > up.mean {
                (half.mean, w / 2)
            } else {
                (up.mean, w)
            };
            let to = needed(level, target).clamp(current + 1, max);
            self.last_up = Some(now);
            return Some(ScaleDecision {
                from: current,
                to,
                reason: ScaleReason::Surge {
                    level,
                    window,
                    threshold,
                    target,
                },
            });
        }
        // Down: after a calm `down_delay`, observed in full.
        let delay = self.config.down_delay;
        let floor = min.max(1);
        let calm_since_up = self.last_up.is_none_or(|t| now - t >= delay);
        let observed = self.samples.oldest().is_some_and(|t| now - t >= delay);
        if current <= floor || !calm_since_up || !observed {
            return None;
        }
        let count = (delay.as_nanos() / w.as_nanos().max(1)) as usize;
        let peak = self
            .samples
            .blocks(now, w, count.max(1), MIN_BLOCK_SAMPLES)
            .max()?;
        let to = needed(peak, target).max(floor);
        (to < current).then_some(ScaleDecision {
            from: current,
            to,
            reason: ScaleReason::Calm {
                peak,
                window: delay,
                target,
            },
        })
    }
}

impl Scaler for Autoscaler {
    fn name(&self) -> &'static str {
        "hako"
    }

    fn observe(&mut self, now: Time, sample: Sample) {
        Autoscaler::observe(self, now, sample);
    }

    fn decide(
        &mut self,
        now: Time,
        current: u32,
        ready: u32,
        min: u32,
        max: u32,
    ) -> Option<ScaleDecision> {
        Autoscaler::decide(self, now, current, ready, min, max)
    }
}

#[cfg(test)]
mod tests;
