//! The load traces of the autoscaler evaluation: a shape (steady, ×4 step, ramp, spike) over
//! a base request rate, with the noise real sites have — requests arrive in page-load batches,
//! and short bursts come and go — generated once per trace so every policy sees the same
//! requests (common random numbers).

use std::time::Duration;

use serde::Serialize;

use crate::rng::Rng;

/// How the intended load changes over a trace (a factor on the base rate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// The base rate throughout.
    Steady,
    /// The base rate, then `factor` × it from `at` seconds on.
    Step {
        /// When, seconds.
        at: f64,
        /// Multiplier after.
        factor: f64,
    },
    /// From the base rate at `from` linearly to `factor` × it at `to` (seconds), then flat.
    Ramp {
        /// Start, seconds.
        from: f64,
        /// End, seconds.
        to: f64,
        /// Multiplier at the end.
        factor: f64,
    },
    /// `factor` × the base rate for `len` seconds from `at`.
    Spike {
        /// When, seconds.
        at: f64,
        /// How long, seconds.
        len: f64,
        /// Multiplier during.
        factor: f64,
    },
}

impl Shape {
    /// The intended load at `t` seconds, as a multiple of the base rate.
    pub fn factor(&self, t: f64) -> f64 {
        match *self {
            Shape::Steady => 1.0,
            Shape::Step { at, factor } => {
                if t >= at {
                    factor
                } else {
                    1.0
                }
            }
            Shape::Ramp { from, to, factor } => {
                if t <= from {
                    1.0
                } else if t >= to {
                    factor
                } else {
                    1.0 + (factor - 1.0) * (t - from) / (to - from)
                }
            }
            Shape::Spike { at, len, factor } => {
                if t >= at && t < at + len {
                    factor
                } else {
                    1.0
                }
            }
        }
    }

    /// The largest factor over `[a, b]` (the shapes are monotone pieces).
    pub fn max_factor(&self, a: f64, b: f64) -> f64 {
        let mut m = self.factor(a).max(self.factor(b));
        match *self {
            Shape::Spike { at, len, factor } if at < b && at + len > a => m = m.max(factor),
            Shape::Step { at, factor } if at <= b => m = m.max(factor),
            _ => {}
        }
        m
    }
}

/// Noise on top of the intended load: it is not a trend, and scaling for it is needless.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Noise {
    /// Each visit brings 1 to `batch_max` requests at once (uniform): a page and its assets.
    pub batch_max: u32,
    /// Bursts per hour (Poisson).
    pub bursts_per_hour: f64,
    /// Length of a burst.
    #[serde(with = "hako_model::units::serde_duration")]
    pub burst_len: Duration,
    /// The rate during a burst, as a multiple of the intended rate.
    pub burst_factor: f64,
}

impl Default for Noise {
    /// Batches of 1–5 requests; one 1-s burst at twice the rate a minute on average.
    fn default() -> Self {
        Noise {
            batch_max: 5,
            bursts_per_hour: 60.0,
            burst_len: Duration::from_secs(1),
            burst_factor: 2.0,
        }
    }
}

/// One trace of the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTrace {
    /// Its name in reports ("step", "ramp", "spike", "noisy").
    pub name: String,
    /// How long, seconds.
    pub duration: f64,
    /// The intended load.
    pub shape: Shape,
}

/// One request: when it arrives and how long it takes once an instance serves it (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Request {
    pub arrival: f64,
    pub service: f64,
}

/// The requests of `trace` at `base_rate` requests/s with `noise`; service times exponential
/// with mean `service_mean` seconds. Deterministic for `seed`.
pub(crate) fn requests(
    trace: &LoadTrace,
    base_rate: f64,
    service_mean: f64,
    noise: &Noise,
    seed: u64,
) -> Vec<Request> {
    let mut rng = Rng::new(seed, 1);
    let mut service_rng = Rng::new(seed, 2);
    let batch_max = noise.batch_max.max(1);
    let mean_batch = f64::from(batch_max + 1) / 2.0;
    // Burst windows first (a Poisson process of starts).
    let mut bursts = Vec::new();
    let burst_rate = noise.bursts_per_hour.max(0.0) / 3600.0;
    let burst_len = noise.burst_len.as_secs_f64();
    let mut t = rng.exp(burst_rate);
    while t < trace.duration {
        bursts.push((t, t + burst_len));
        t += rng.exp(burst_rate);
    }
    let burst_factor = noise.burst_factor.max(1.0);
    let peak_shape = trace.shape.max_factor(0.0, trace.duration);
    // Visits by thinning against the highest possible visit rate.
    let visit_peak = base_rate * peak_shape * burst_factor / mean_batch;
    let mut out = Vec::with_capacity((base_rate * trace.duration * 1.2) as usize);
    let mut t = 0.0;
    let mut b = 0usize;
    loop {
        t += rng.exp(visit_peak);
        if t >= trace.duration {
            break;
        }
        while b < bursts.len() && bursts[b].1 <= t {
            b += 1;
        }
        let in_burst = b < bursts.len() && bursts[b].0 <= t;
        let rate = base_rate * trace.shape.factor(t) * if in_burst { burst_factor } else { 1.0 };
        if rng.uniform() * visit_peak * mean_batch > rate {
            continue;
        }
        let n = 1 + (rng.uniform() * f64::from(batch_max)) as u32;
        for _ in 0..n.min(batch_max) {
            out.push(Request {
                arrival: t,
                service: service_rng.exp(1.0 / service_mean.max(1e-6)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_give_the_intended_factor() {
        let step = Shape::Step {
            at: 10.0,
            factor: 4.0,
        };
        assert_eq!((step.factor(9.9), step.factor(10.0)), (1.0, 4.0));
        assert_eq!(step.max_factor(0.0, 9.0), 1.0);
        assert_eq!(step.max_factor(0.0, 10.0), 4.0);
        let ramp = Shape::Ramp {
            from: 0.0,
            to: 10.0,
            factor: 3.0,
        };
        assert_eq!(ramp.factor(5.0), 2.0);
        let spike = Shape::Spike {
            at: 5.0,
            len: 1.0,
            factor: 8.0,
        };
        assert_eq!(spike.max_factor(0.0, 5.5), 8.0);
        assert_eq!(spike.max_factor(6.0, 9.0), 1.0);
    }

    #[test]
    fn requests_keep_the_rate_batches_and_service_mean() {
        let trace = LoadTrace {
            name: "steady".into(),
            duration: 2000.0,
            shape: Shape::Step {
                at: 1000.0,
                factor: 4.0,
            },
        };
        let noise = Noise {
            bursts_per_hour: 0.0,
            ..Noise::default()
        };
        let r = requests(&trace, 20.0, 0.1, &noise, 1);
        let before = r.iter().filter(|q| q.arrival < 1000.0).count() as f64 / 1000.0;
        let after = r.iter().filter(|q| q.arrival >= 1000.0).count() as f64 / 1000.0;
        assert!((before / 20.0 - 1.0).abs() < 0.03, "{before}/s");
        assert!((after / 80.0 - 1.0).abs() < 0.03, "{after}/s");
        let mean_service = r.iter().map(|q| q.service).sum::<f64>() / r.len() as f64;
        assert!((mean_service - 0.1).abs() < 0.002);
        assert!(r.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        // Batches: several requests share an arrival time.
        let shared = r
            .windows(2)
            .filter(|w| w[0].arrival == w[1].arrival)
            .count();
        assert!(shared as f64 > 0.5 * r.len() as f64);
        // Bursts add requests.
        let noisy = requests(&trace, 20.0, 0.1, &Noise::default(), 1);
        assert!(noisy.len() > r.len());
    }
}
