//! One site's request arrivals, generated lazily in time order.
//!
//! Synthetic traffic is a non-homogeneous Poisson process: the diurnal rate is sampled by
//! thinning (candidates at the peak rate, each kept with probability rate(t) / peak), and bursts
//! add a second Poisson stream that is active only inside burst windows. A trace is replayed.

use std::f64::consts::TAU;

use crate::config::{Bursts, Diurnal};
use crate::rng::Rng;

const DAY: f64 = 86_400.0;

/// A time-ordered stream of arrival times (seconds).
#[derive(Debug)]
pub(crate) enum Arrivals<'a> {
    /// Generated.
    Synthetic(SyntheticArrivals),
    /// Replayed.
    Trace {
        /// Sorted arrival times.
        times: &'a [f64],
        /// Next index.
        pos: usize,
    },
}

impl Arrivals<'_> {
    /// The next arrival time, or infinity.
    pub(crate) fn peek(&self) -> f64 {
        match self {
            Arrivals::Synthetic(s) => s.base_next.min(s.burst_next),
            Arrivals::Trace { times, pos } => times.get(*pos).copied().unwrap_or(f64::INFINITY),
        }
    }

    /// Move past the arrival returned by [`peek`](Self::peek).
    pub(crate) fn advance(&mut self, rng: &mut Rng) {
        match self {
            Arrivals::Synthetic(s) => s.advance(rng),
            Arrivals::Trace { pos, .. } => *pos += 1,
        }
    }
}

/// Base (diurnal) stream merged with the burst stream.
#[derive(Debug)]
pub(crate) struct SyntheticArrivals {
    rate: f64,
    diurnal: Option<Diurnal>,
    horizon: f64,
    base_next: f64,
    // Bursts: the rate of burst starts (per second), their length, the extra rate inside.
    burst_start_rate: f64,
    burst_len: f64,
    burst_extra: f64,
    next_burst_start: f64,
    burst_end: f64,
    burst_next: f64,
}

impl SyntheticArrivals {
    /// Arrivals at mean `rate` until `horizon` seconds.
    pub(crate) fn new(
        rate: f64,
        diurnal: Option<Diurnal>,
        bursts: Option<Bursts>,
        horizon: f64,
        rng: &mut Rng,
    ) -> SyntheticArrivals {
        let (start_rate, len, extra) = match bursts {
            Some(b) if b.per_day > 0.0 && b.rate_multiplier > 0.0 && rate > 0.0 => (
                b.per_day / DAY,
                b.duration.as_secs_f64(),
                rate * b.rate_multiplier,
            ),
            _ => (0.0, 0.0, 0.0),
        };
        let mut s = SyntheticArrivals {
            rate,
            diurnal: diurnal.filter(|d| d.amplitude > 0.0),
            horizon,
            base_next: 0.0,
            burst_start_rate: start_rate,
            burst_len: len,
            burst_extra: extra,
            next_burst_start: rng.exp(start_rate),
            burst_end: 0.0,
            burst_next: f64::INFINITY,
        };
        s.next_base(rng);
        s.next_burst_arrival(0.0, rng);
        s
    }

    fn advance(&mut self, rng: &mut Rng) {
        if self.base_next <= self.burst_next {
            self.next_base(rng);
        } else {
            self.next_burst_arrival(self.burst_next, rng);
        }
    }

    fn next_base(&mut self, rng: &mut Rng) {
        let Some(d) = self.diurnal else {
            self.base_next += rng.exp(self.rate);
            return;
        };
        let peak = self.rate * (1.0 + d.amplitude);
        let mut t = self.base_next;
        loop {
            t += rng.exp(peak);
            if t >= self.horizon {
                break;
            }
            let level = 1.0 + d.amplitude * (TAU * (t / DAY - d.peak_hour / 24.0)).cos();
            if rng.uniform() * (1.0 + d.amplitude) <= level {
                break;
            }
        }
        self.base_next = t;
    }

    fn next_burst_arrival(&mut self, from: f64, rng: &mut Rng) {
        let mut t = from;
        loop {
            if t < self.burst_end {
                let c = t + rng.exp(self.burst_extra);
                if c < self.burst_end {
                    self.burst_next = c;
                    return;
                }
            }
            let s = self.next_burst_start;
            if !s.is_finite() || s >= self.horizon {
                self.burst_next = f64::INFINITY;
                return;
            }
            self.next_burst_start = s + rng.exp(self.burst_start_rate);
            self.burst_end = s + self.burst_len;
            // Overlapping bursts: continue from the later of the two, keeping time order.
            t = s.max(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn count(a: &mut Arrivals<'_>, rng: &mut Rng, until: f64) -> (usize, Vec<f64>) {
        let mut n = 0;
        let mut times = Vec::new();
        let mut last = 0.0;
        while a.peek() < until {
            let t = a.peek();
            assert!(t >= last, "out of order: {t} after {last}");
            last = t;
            times.push(t);
            n += 1;
            a.advance(rng);
        }
        (n, times)
    }

    #[test]
    fn poisson_rate_is_kept() {
        let mut rng = Rng::new(3, 0);
        let mut a = Arrivals::Synthetic(SyntheticArrivals::new(2.0, None, None, 1e9, &mut rng));
        let (n, _) = count(&mut a, &mut rng, 50_000.0);
        assert!((n as f64 / 100_000.0 - 1.0).abs() < 0.02, "{n}");
    }

    #[test]
    fn diurnal_modulation_shapes_the_day() {
        let mut rng = Rng::new(4, 0);
        let d = Diurnal {
            amplitude: 0.8,
            peak_hour: 12.0,
        };
        let mut a = Arrivals::Synthetic(SyntheticArrivals::new(
            1.0,
            Some(d),
            None,
            10.0 * DAY,
            &mut rng,
        ));
        let (n, times) = count(&mut a, &mut rng, 10.0 * DAY);
        // Mean rate kept; noon busier than midnight by (1 + 0.8) / (1 − 0.8) = 9 in theory.
        assert!((n as f64 / (10.0 * DAY) - 1.0).abs() < 0.02);
        let hour = |h: f64| {
            let near = |t: f64| {
                let d = ((t % DAY) / 3600.0 - h).abs();
                d.min(24.0 - d) < 0.5
            };
            times.iter().filter(|t| near(**t)).count() as f64
        };
        let ratio = hour(12.0) / hour(0.0);
        assert!(ratio > 7.0 && ratio < 11.0, "noon/midnight {ratio}");
    }

    #[test]
    fn bursts_add_their_expected_requests() {
        let mut rng = Rng::new(5, 0);
        let b = Bursts {
            per_day: 24.0,
            duration: Duration::from_secs(60),
            rate_multiplier: 10.0,
        };
        let horizon = 100.0 * DAY;
        let mut a = Arrivals::Synthetic(SyntheticArrivals::new(
            0.01,
            None,
            Some(b),
            horizon,
            &mut rng,
        ));
        let (n, _) = count(&mut a, &mut rng, horizon);
        // Base 0.01/s plus 24 bursts/day × 60 s × 0.1/s.
        let expected = horizon * 0.01 + 100.0 * 24.0 * 60.0 * 0.1;
        assert!(
            (n as f64 / expected - 1.0).abs() < 0.03,
            "{n} vs {expected}"
        );
    }

    #[test]
    fn trace_replays_in_order_and_zero_rate_never_arrives() {
        let times = [1.0, 2.0, 2.0, 7.5];
        let mut rng = Rng::new(0, 0);
        let mut a = Arrivals::Trace {
            times: &times,
            pos: 0,
        };
        assert_eq!(count(&mut a, &mut rng, 100.0).1, times.to_vec());
        let b = Bursts {
            per_day: 10.0,
            duration: Duration::from_secs(60),
            rate_multiplier: 10.0,
        };
        let a = Arrivals::Synthetic(SyntheticArrivals::new(0.0, None, Some(b), DAY, &mut rng));
        assert_eq!(a.peek(), f64::INFINITY);
    }
}
