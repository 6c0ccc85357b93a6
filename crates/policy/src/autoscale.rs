//! The autoscaler: how many instances an app needs, from its concurrency (requests in flight
//! plus cold requests waiting), sampled by the daemon every 100–250 ms. The design and its math
//! — false-alarm rates on noisy load, the detection-delay bound, the cost of a false alarm — are
//! in docs/autoscaling.md; in short, with `C = current × target` the live instances' capacity:
//!
//! - **Surge** (fast path): the mean over the last `surge_window` (2 s) exceeds
//!   `surge_factor × C` (2×, Knative's panic threshold, but on a 2-s window instead of 6 s), and
//!   each half of that window exceeds `C` (sustained, not one queue that formed and drained).
//!   A ×4 step from 70% of capacity crosses it in ≈ 1.2 s; the page-load batches and one-second
//!   bursts of steady traffic rarely do.
//! - **Rise** (steady path): the mean over the last `steady_window` (10 s) exceeds `C` by `z`
//!   standard deviations of a 10-s mean, measured on the app's own previous 3 minutes (spread
//!   from successive differences, so a rising trend does not count as noise), each half of the
//!   window above `C`. It catches what grows but never doubles: ramps, moderate steps.
//! - The new size is `⌈level / target⌉`, the level read from the newer half of the window when
//!   that is higher (a step fills it first). One scale-up at a time: none while instances are
//!   still starting.
//! - **Down** (the hysteresis): no sooner than `down_delay` (30 s) after a scale-up, and only to
//!   `⌈peak / target⌉` where `peak` is the highest 10-s mean of the last `down_delay` — a level
//!   the steady path would not scale up from again. Never below `max(min, 1)`: scaling to zero
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
//!     // The proxy's counters every 200 ms: about 3 in flight, then 11 from 60 s on.
//!     let in_flight = if now < Time::from_secs(60) { 2 + k % 3 } else { 10 + k % 3 };
//!     scaler.observe(now, Sample::new(in_flight, 0));
//!     if let Some(d) = scaler.decide(now, 1, 1, 1, 10) {
//!         decided = Some((now, d)); // record d.to_string() as the event, start d.to - d.from
//!         break;
//!     }
//!     now += tick;
//! }
//! let (when, d) = decided.unwrap();
//! assert!(when >= Time::from_secs(60) && when < Time::from_secs(62)); // within 2 s of the step
//! assert_eq!((d.from, d.to), (1, 3));
//! assert!(d.to_string().starts_with("scale 1→3: concurrency 11.0 over 1s, target 4"));
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
/// `{"target_concurrency":10,"surge_window":"2s","surge_factor":2.0,"steady_window":"10s","baseline":"3m","z":3.0,"down_delay":"30s"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoscaleConfig {
    /// Requests in flight per instance to aim for (`--target-concurrency`). Default 10: about
    /// two thirds of the PHP workers a 512 MiB WordPress instance runs; set it near 1 for apps
    /// that serve one request at a time (`php -S`), higher for static and async servers.
    pub target_concurrency: f64,
    /// The fast path's window.
    #[serde(with = "hako_model::units::serde_duration")]
    pub surge_window: Duration,
    /// The fast path scales up when the surge window's mean exceeds this multiple of capacity.
    pub surge_factor: f64,
    /// The steady path's window.
    #[serde(with = "hako_model::units::serde_duration")]
    pub steady_window: Duration,
    /// How much history before the steady window its noise is measured on.
    #[serde(with = "hako_model::units::serde_duration")]
    pub baseline: Duration,
    /// Standard deviations above capacity the steady window's mean must reach.
    pub z: f64,
    /// No scale-down sooner than this after a scale-up, and only to what the highest
    /// steady-window mean of this long a stretch needs.
    #[serde(with = "hako_model::units::serde_duration")]
    pub down_delay: Duration,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        AutoscaleConfig {
            target_concurrency: 10.0,
            surge_window: Duration::from_secs(2),
            surge_factor: 2.0,
            steady_window: Duration::from_secs(10),
            baseline: Duration::from_secs(180),
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

/// Samples per block below which a block is not counted (a gap in sampling).
const MIN_BLOCK_SAMPLES: usize = 2;
/// Baseline blocks needed before the measured noise is trusted.
const MIN_BASELINE_BLOCKS: usize = 5;

/// A window's mean and the means of its older and newer halves.
struct Window {
    mean: samples::Mean,
    older: f64,
    newer: samples::Mean,
}

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
        let c = &self.config;
        (c.steady_window + c.baseline)
            .max(c.down_delay)
            .max(c.surge_window)
            + c.steady_window
    }

    /// The window `w` ending now, if it holds at least 3 samples and each half at least one.
    fn window(&self, now: Time, w: Duration) -> Option<Window> {
        let mean = self.samples.mean(now, w)?;
        let newer = self.samples.mean(now, w / 2)?;
        let older = self.samples.mean(now - w / 2, w / 2)?;
        (mean.count >= 3).then_some(Window {
            mean,
            older: older.mean,
            newer,
        })
    }

    /// The standard deviation of a steady-window mean: measured on the baseline blocks when
    /// there are enough, never below the Poisson floor √(μ/n) of `n` independent samples; twice
    /// that floor for a new app with no baseline yet.
    fn noise(&self, now: Time, window: &Window) -> f64 {
        let w = self.config.steady_window;
        let count = (self.config.baseline.as_nanos() / w.as_nanos().max(1)) as usize;
        let blocks = self
            .samples
            .blocks(now - w, w, count.max(2), MIN_BLOCK_SAMPLES);
        let n = window.mean.count.max(1) as f64;
        match blocks.sigma() {
            Some(sigma) if blocks.means.len() >= MIN_BASELINE_BLOCKS => {
                sigma.max((blocks.mean().max(1.0) / n).sqrt())
            }
            _ => 2.0 * (window.mean.mean.max(1.0) / n).sqrt(),
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
        let capacity = f64::from(current) * target;
        let up = |level: f64, window: Duration, threshold: f64| ScaleDecision {
            from: current,
            to: needed(level, target).clamp(current + 1, max),
            reason: ScaleReason::Surge {
                level,
                window,
                threshold,
                target,
            },
        };
        // Sustained above capacity: the mean over the threshold, each half above capacity.
        let over = |w: &Window, threshold: f64| {
            w.mean.mean > threshold && w.older > capacity && w.newer.mean > capacity
        };
        // The level to size for: the newer half when higher (a step fills it first).
        let level = |w: &Window, len: Duration| {
            if w.newer.count >= 2 && w.newer.mean > w.mean.mean {
                (w.newer.mean, len / 2)
            } else {
                (w.mean.mean, len)
            }
        };
        if current < max {
            let sw = self.config.surge_window;
            if let Some(win) = self.window(now, sw) {
                let threshold = capacity * self.config.surge_factor.max(1.0);
                if over(&win, threshold) {
                    let (l, lw) = level(&win, sw);
                    self.last_up = Some(now);
                    return Some(up(l, lw, threshold));
                }
            }
            let stw = self.config.steady_window;
            if let Some(win) = self.window(now, stw) {
                let threshold = capacity + self.config.z.max(0.0) * self.noise(now, &win);
                if over(&win, threshold) {
                    let (l, lw) = level(&win, stw);
                    self.last_up = Some(now);
                    return Some(up(l, lw, threshold));
                }
            }
        }
        // Down: after a calm `down_delay`, observed in full.
        let delay = self.config.down_delay;
        let floor = min.max(1);
        let calm_since_up = self.last_up.is_none_or(|t| now - t >= delay);
        let observed = self.samples.oldest().is_some_and(|t| now - t >= delay);
        if current <= floor || !calm_since_up || !observed {
            return None;
        }
        let w = self.config.steady_window;
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
