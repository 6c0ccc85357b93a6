//! A Knative-KPA-like comparator (Knative Serving's pod autoscaler, concurrency metric, the
//! defaults of its docs): a 60 s stable window, a 6 s panic window, a decision every 2 s,
//! panic when the panic-window concurrency reaches 200% of what the ready instances are meant
//! to carry. In panic it sizes from the panic window and never scales down until the stable
//! window has passed without the panic condition; otherwise it sizes from the stable window.
//! Scale-down is limited to halving per decision (Knative's max scale-down rate 2). Knative's
//! activator, scale-to-zero grace and target-utilisation percentage are left out: hako's
//! activator and keep-alive play those parts, and the target here is the one hako uses.

use std::time::Duration;

use super::samples::SampleLog;
use super::{Sample, ScaleDecision, ScaleReason, Scaler, bounds, needed};
use crate::time::Time;

/// The Knative-like autoscaler of one app.
#[derive(Debug, Clone, PartialEq)]
pub struct KpaLike {
    /// Target concurrency per instance.
    pub target: f64,
    /// Stable window (60 s).
    pub stable_window: Duration,
    /// Panic window (6 s, 10% of the stable one).
    pub panic_window: Duration,
    /// Time between decisions (2 s).
    pub tick: Duration,
    /// Panic when the panic-window need reaches this multiple of the ready instances (2.0).
    pub panic_threshold: f64,
    samples: SampleLog,
    last_tick: Option<Time>,
    /// Last time the panic condition held, while panicking.
    panic_time: Option<Time>,
    max_panic: u32,
}

impl KpaLike {
    /// Knative's defaults at `target` concurrency per instance.
    pub fn new(target: f64) -> KpaLike {
        KpaLike {
            target: if target.is_finite() && target > 0.0 {
                target
            } else {
                1.0
            },
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            tick: Duration::from_secs(2),
            panic_threshold: 2.0,
            samples: SampleLog::default(),
            last_tick: None,
            panic_time: None,
            max_panic: 0,
        }
    }
}

impl Scaler for KpaLike {
    fn name(&self) -> &'static str {
        "kpa"
    }

    fn observe(&mut self, now: Time, sample: Sample) {
        let keep = self.stable_window;
        self.samples.push(now, sample.concurrency(), keep);
    }

    fn decide(
        &mut self,
        now: Time,
        current: u32,
        ready: u32,
        min: u32,
        max: u32,
    ) -> Option<ScaleDecision> {
        if let Some(d) = bounds(current, min, max) {
            return Some(d);
        }
        if self.last_tick.is_some_and(|t| now < t + self.tick) {
            return None;
        }
        self.last_tick = Some(now);
        let stable = self.samples.mean(now, self.stable_window)?.mean;
        let panic = self.samples.mean(now, self.panic_window)?.mean;
        let want_stable = needed(stable, self.target);
        let want_panic = needed(panic, self.target);
        let ready_f = f64::from(ready.max(1));
        let over = panic / self.target / ready_f >= self.panic_threshold;
        if over {
            self.panic_time = Some(now);
        } else if self
            .panic_time
            .is_some_and(|t| now >= t + self.stable_window)
        {
            self.panic_time = None;
            self.max_panic = 0;
        }
        let (want, reason) = if self.panic_time.is_some() {
            self.max_panic = self.max_panic.max(want_panic).max(current);
            (
                self.max_panic,
                ScaleReason::Panic {
                    average: panic,
                    window: self.panic_window,
                    target: self.target,
                },
            )
        } else {
            // At most halve per decision.
            let floor = ready.div_ceil(2);
            (
                want_stable.max(floor),
                ScaleReason::Stable {
                    average: stable,
                    window: self.stable_window,
                    target: self.target,
                },
            )
        };
        let to = want.clamp(min, max.max(min));
        (to != current).then_some(ScaleDecision {
            from: current,
            to,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(k: &mut KpaLike, from_ms: u64, to_ms: u64, value: f64) {
        let mut t = from_ms;
        while t < to_ms {
            k.observe(
                Time::from_nanos(t * 1_000_000),
                Sample::new(value as u32, 0),
            );
            t += 200;
        }
    }

    #[test]
    fn panics_on_a_surge_and_holds_until_the_stable_window_is_calm() {
        let mut k = KpaLike::new(4.0);
        feed(&mut k, 0, 60_000, 3.0);
        let at = |ms: u64| Time::from_nanos(ms * 1_000_000);
        assert_eq!(k.decide(at(59_800), 1, 1, 1, 10), None);
        // 16 in flight for 4 s: the 6-s mean reaches 11.3 ≥ 2 × 4 × 1 → panic, size from it.
        feed(&mut k, 60_000, 64_000, 16.0);
        let d = k.decide(at(63_800), 1, 1, 1, 10).expect("panic");
        assert!(matches!(d.reason, ScaleReason::Panic { .. }), "{d}");
        assert_eq!(d.to, 3);
        // Not before the next tick.
        assert_eq!(k.decide(at(64_000), 3, 3, 1, 10), None);
        // The load falls back: panic holds the size for the stable window.
        feed(&mut k, 64_000, 100_000, 3.0);
        assert_eq!(k.decide(at(99_800), 3, 3, 1, 10), None);
        feed(&mut k, 100_000, 130_000, 3.0);
        let d = k.decide(at(129_800), 3, 3, 1, 10).expect("calm again");
        assert!(matches!(d.reason, ScaleReason::Stable { .. }), "{d}");
        assert_eq!(d.to, 2, "at most halved per decision");
    }
}
