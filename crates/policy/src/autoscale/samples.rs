//! The concurrency samples of one app over the last minute, and the window statistics the
//! scalers read from them.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// One observation of an app's load, taken by the daemon every 100–250 ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Requests in flight at the app's instances, as the proxy counts them (its instantaneous
    /// count, or its time-average over the sampling interval where it keeps one).
    pub in_flight: f64,
    /// Requests waiting for an instance: cold requests the activator holds.
    pub queued: f64,
}

impl Sample {
    /// A sample from the proxy's counters.
    pub fn new(in_flight: u32, queued: u32) -> Sample {
        Sample {
            in_flight: f64::from(in_flight),
            queued: f64::from(queued),
        }
    }

    /// The app's concurrency: requests in flight plus requests waiting (negative or NaN
    /// counts read as 0).
    pub fn concurrency(&self) -> f64 {
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        clean(self.in_flight) + clean(self.queued)
    }
}

/// Time-stamped concurrencies, oldest first, kept for `keep` (and at most [`MAX_SAMPLES`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SampleLog {
    samples: VecDeque<(Time, f64)>,
}

/// The most samples kept per app (a minute at 10 ms; the daemon samples every 100–250 ms).
pub(crate) const MAX_SAMPLES: usize = 6000;

/// Count and mean of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mean {
    pub count: usize,
    pub mean: f64,
}

/// Means of consecutive blocks of one length, newest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocks {
    pub means: Vec<f64>,
}

impl Blocks {
    /// The mean of the block means.
    pub fn mean(&self) -> f64 {
        self.means.iter().sum::<f64>() / self.means.len().max(1) as f64
    }

    /// Standard deviation of one block mean, from successive differences (von Neumann's mean
    /// square successive difference: σ² ≈ Σ(bᵢ₊₁ − bᵢ)² / 2(k−1)), so a slow trend in the load
    /// does not pass for noise. `None` with fewer than two blocks.
    pub fn sigma(&self) -> Option<f64> {
        let k = self.means.len();
        if k < 2 {
            return None;
        }
        let ss: f64 = self.means.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum();
        Some((ss / (2.0 * (k - 1) as f64)).sqrt())
    }

    /// The largest block mean.
    pub fn max(&self) -> Option<f64> {
        self.means.iter().copied().reduce(f64::max)
    }
}

impl SampleLog {
    /// Add a sample at `now`, forgetting those older than `keep`; out-of-order samples (older
    /// than the newest) are ignored.
    pub fn push(&mut self, now: Time, value: f64, keep: Duration) {
        if self.samples.back().is_some_and(|(t, _)| *t > now) {
            return;
        }
        self.samples.push_back((now, value));
        let horizon = now - keep;
        while self.samples.len() > MAX_SAMPLES
            || self.samples.front().is_some_and(|(t, _)| *t < horizon)
        {
            self.samples.pop_front();
        }
    }

    /// When the oldest kept sample was taken.
    pub fn oldest(&self) -> Option<Time> {
        self.samples.front().map(|(t, _)| *t)
    }

    /// Samples taken in `(now − window, now]`.
    pub fn mean(&self, now: Time, window: Duration) -> Option<Mean> {
        let from = now.as_nanos().checked_sub(window.as_nanos() as u64);
        let (mut n, mut sum) = (0usize, 0.0);
        for (t, v) in self.samples.iter().rev() {
            if *t > now {
                continue;
            }
            if from.is_some_and(|f| t.as_nanos() <= f) {
                break;
            }
            n += 1;
            sum += v;
        }
        (n > 0).then(|| Mean {
            count: n,
            mean: sum / n as f64,
        })
    }

    /// Means of the blocks `(end − (j+1)·len, end − j·len]` for j = 0 … count−1 that hold at
    /// least `min_samples` samples, newest first.
    pub fn blocks(&self, end: Time, len: Duration, count: usize, min_samples: usize) -> Blocks {
        let len_ns = len.as_nanos().max(1) as u64;
        let mut sums = vec![(0usize, 0.0f64); count];
        for (t, v) in self.samples.iter().rev() {
            if *t > end {
                continue;
            }
            // t ∈ (end − (j+1)·len, end − j·len]  ⟺  j = ⌊(end − t) / len⌋.
            let j = ((end.as_nanos() - t.as_nanos()) / len_ns) as usize;
            if j >= count {
                break;
            }
            sums[j].0 += 1;
            sums[j].1 += v;
        }
        Blocks {
            means: sums
                .into_iter()
                .filter(|(n, _)| *n >= min_samples.max(1))
                .map(|(n, s)| s / n as f64)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Time {
        Time::from_nanos(v * 1_000_000)
    }

    #[test]
    fn windows_and_blocks_pick_the_right_samples() {
        let mut log = SampleLog::default();
        let keep = Duration::from_secs(60);
        for k in 1..=20u64 {
            log.push(ms(k * 100), k as f64, keep);
        }
        let m = log.mean(ms(2000), Duration::from_millis(500)).unwrap();
        assert_eq!(m.count, 5); // 1600..=2000
        assert!((m.mean - 18.0).abs() < 1e-12);
        let b = log.blocks(ms(2000), Duration::from_millis(1000), 3, 1);
        assert_eq!(b.means, vec![15.5, 5.5]); // (1000, 2000], (0, 1000]; the third is empty
        assert!((b.mean() - 10.5).abs() < 1e-12);
        assert_eq!(b.max(), Some(15.5));
        // Successive difference 10 over 1 pair: σ² = 100 / 2.
        assert!((b.sigma().unwrap() - 50f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            log.blocks(ms(2000), Duration::from_secs(1), 3, 11)
                .means
                .len(),
            0
        );
    }

    #[test]
    fn old_and_out_of_order_samples_are_dropped() {
        let mut log = SampleLog::default();
        let keep = Duration::from_secs(1);
        log.push(ms(0), 1.0, keep);
        log.push(ms(900), 2.0, keep);
        log.push(ms(800), 99.0, keep);
        log.push(ms(1500), 3.0, keep);
        assert_eq!(log.oldest(), Some(ms(900)));
        assert_eq!(log.mean(ms(1500), keep).unwrap().count, 2);
        assert_eq!(Sample::new(3, 2).concurrency(), 5.0);
        let bad = Sample {
            in_flight: f64::NAN,
            queued: -1.0,
        };
        assert_eq!(bad.concurrency(), 0.0);
    }

    #[test]
    fn a_trend_is_not_noise_but_alternation_is() {
        let ramp = Blocks {
            means: (0..30).map(|k| k as f64).collect(),
        };
        let zigzag = Blocks {
            means: (0..30).map(|k| (k % 2) as f64 * 2.0).collect(),
        };
        assert!(ramp.sigma().unwrap() < 0.75);
        assert!(zigzag.sigma().unwrap() > 1.4);
    }
}
