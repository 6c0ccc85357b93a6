//! The seed's prototype as a comparator: FastContainer sampled an app's load every 15 s and
//! decided every 3 minutes from the aggregate. Here: one concurrency sample every 15 s (the
//! first the daemon offers at or after each 15-s mark), and every 3 min the size
//! `⌈mean / target⌉` of the samples since the last decision, up or down.

use std::time::Duration;

use super::{Sample, ScaleDecision, ScaleReason, Scaler, bounds, needed};
use crate::time::Time;

/// The seed's autoscaler of one app.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedPolicy {
    /// Target concurrency per instance.
    pub target: f64,
    /// Time between samples (15 s).
    pub sample_every: Duration,
    /// Time between decisions (3 min).
    pub decide_every: Duration,
    next_sample: Option<Time>,
    next_decision: Option<Time>,
    sum: f64,
    count: u32,
}

impl SeedPolicy {
    /// The seed's cadence at `target` concurrency per instance.
    pub fn new(target: f64) -> SeedPolicy {
        SeedPolicy {
            target: if target.is_finite() && target > 0.0 {
                target
            } else {
                1.0
            },
            sample_every: Duration::from_secs(15),
            decide_every: Duration::from_secs(180),
            next_sample: None,
            next_decision: None,
            sum: 0.0,
            count: 0,
        }
    }
}

impl Scaler for SeedPolicy {
    fn name(&self) -> &'static str {
        "seed"
    }

    fn observe(&mut self, now: Time, sample: Sample) {
        let due = *self.next_sample.get_or_insert(now);
        if now < due {
            return;
        }
        self.sum += sample.concurrency();
        self.count += 1;
        let mut next = due + self.sample_every;
        while next <= now {
            next += self.sample_every;
        }
        self.next_sample = Some(next);
        self.next_decision.get_or_insert(now + self.decide_every);
    }

    fn decide(
        &mut self,
        now: Time,
        current: u32,
        _ready: u32,
        min: u32,
        max: u32,
    ) -> Option<ScaleDecision> {
        if let Some(d) = bounds(current, min, max) {
            return Some(d);
        }
        let due = self.next_decision?;
        if now < due || self.count == 0 {
            return None;
        }
        let mut next = due + self.decide_every;
        while next <= now {
            next += self.decide_every;
        }
        self.next_decision = Some(next);
        let mean = self.sum / f64::from(self.count);
        let samples = self.count;
        self.sum = 0.0;
        self.count = 0;
        let to = needed(mean, self.target).clamp(min.max(1), max.max(min));
        (to != current).then_some(ScaleDecision {
            from: current,
            to,
            reason: ScaleReason::Aggregate {
                mean,
                samples,
                target: self.target,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_every_15_s_and_decides_every_3_min() {
        let mut s = SeedPolicy::new(4.0);
        let mut decisions = Vec::new();
        // 200-ms samples: 3 in flight for 5 minutes, then 12.
        for k in 0..(10 * 60 * 5) {
            let now = Time::from_nanos(k * 200_000_000);
            let v = if now < Time::from_secs(300) { 3 } else { 12 };
            s.observe(now, Sample::new(v, 0));
            let current = decisions
                .last()
                .map_or(1, |d: &(Time, ScaleDecision)| d.1.to);
            if let Some(d) = s.decide(now, current, current, 1, 10) {
                decisions.push((now, d));
            }
        }
        // Decisions at 180 s (no change: not recorded), 360 s (5 of the 12 samples since at
        // 12: mean 6.75 → 2), 540 s (all 12 → 3).
        let when: Vec<u64> = decisions
            .iter()
            .map(|(t, _)| t.as_secs_f64() as u64)
            .collect();
        assert_eq!(when, vec![360, 540]);
        assert_eq!(decisions[0].1.to, 2);
        assert_eq!(decisions[1].1.to, 3);
        assert!(decisions[1].1.to_string().contains("of 12 samples"));
    }
}
