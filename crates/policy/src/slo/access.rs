//! An app's access pattern: Poisson arrivals, or an empirical histogram of the gaps between
//! requests (the idle times seen in its own request history).

use serde::Serialize;

use super::SloError;
use crate::time::Time;

/// How requests arrive at an app. Gaps between requests are assumed independent (a renewal
/// process); Poisson is the memoryless special case with closed forms.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    /// Poisson arrivals at `rate` requests per second.
    Poisson {
        /// Requests per second (> 0).
        rate: f64,
    },
    /// Empirical inter-arrival gaps.
    Gaps(GapHistogram),
}

/// Weighted inter-arrival gaps in seconds, with prefix sums for fast partial expectations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapHistogram {
    /// Gap values, sorted ascending (seconds).
    values: Vec<f64>,
    /// cum_weight[i] = total weight of values[..i]; len = values.len() + 1.
    #[serde(skip)]
    cum_weight: Vec<f64>,
    /// cum_mass[i] = Σ weight·value over values[..i].
    #[serde(skip)]
    cum_mass: Vec<f64>,
}

impl Access {
    /// Poisson arrivals at `rate` per second.
    pub fn poisson(rate: f64) -> Result<Access, SloError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(SloError::BadRate(rate));
        }
        Ok(Access::Poisson { rate })
    }

    /// Gaps from an app's request history (arrival times in any order; at least two requests).
    pub fn from_arrivals(arrivals: &[Time]) -> Result<Access, SloError> {
        let mut times = arrivals.to_vec();
        times.sort_unstable();
        Self::gaps(times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
    }

    /// Empirical gaps, each observed once (seconds).
    pub fn gaps<I: IntoIterator<Item = f64>>(gaps: I) -> Result<Access, SloError> {
        Self::histogram(gaps.into_iter().map(|g| (g, 1.0)))
    }

    /// An idle-time histogram: (gap seconds, how often) pairs, e.g. bin midpoints and counts.
    pub fn histogram<I: IntoIterator<Item = (f64, f64)>>(bins: I) -> Result<Access, SloError> {
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        for (g, w) in bins {
            if !g.is_finite() || g < 0.0 || !w.is_finite() || w < 0.0 {
                return Err(SloError::BadGap { gap: g, weight: w });
            }
            if w > 0.0 {
                pairs.push((g, w));
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        let mass: f64 = pairs.iter().map(|p| p.0 * p.1).sum();
        if pairs.is_empty() || mass <= 0.0 {
            return Err(SloError::NoGaps);
        }
        let mut cum_weight = Vec::with_capacity(pairs.len() + 1);
        let mut cum_mass = Vec::with_capacity(pairs.len() + 1);
        let (mut cw, mut cm) = (0.0, 0.0);
        cum_weight.push(0.0);
        cum_mass.push(0.0);
        for (g, w) in &pairs {
            cw += w / total;
            cm += g * w / total;
            cum_weight.push(cw);
            cum_mass.push(cm);
        }
        Ok(Access::Gaps(GapHistogram {
            values: pairs.iter().map(|p| p.0).collect(),
            cum_weight,
            cum_mass,
        }))
    }

    /// Mean gap E\[G\], seconds.
    pub fn mean_gap(&self) -> f64 {
        match self {
            Access::Poisson { rate } => 1.0 / rate,
            Access::Gaps(h) => *h.cum_mass.last().unwrap_or(&0.0),
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        1.0 / self.mean_gap()
    }

    /// P(G ≤ x).
    pub fn cdf(&self, x: f64) -> f64 {
        if x < 0.0 {
            return 0.0;
        }
        match self {
            Access::Poisson { rate } => -(-rate * x).exp_m1(),
            Access::Gaps(h) => h.cum_weight[h.values.partition_point(|v| *v <= x)],
        }
    }

    /// E[G · 1(G ≤ x)]: the partial mean up to `x`.
    pub fn partial_mean(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match self {
            Access::Poisson { rate } => {
                if x.is_infinite() {
                    return 1.0 / rate;
                }
                let lx = rate * x;
                (1.0 - (-lx).exp() * (1.0 + lx)) / rate
            }
            Access::Gaps(h) => h.cum_mass[h.values.partition_point(|v| *v <= x)],
        }
    }

    /// P(a < G ≤ b).
    pub fn prob_between(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            0.0
        } else {
            (self.cdf(b) - self.cdf(a)).max(0.0)
        }
    }

    /// E[G · 1(a < G ≤ b)].
    pub fn mean_between(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            0.0
        } else {
            (self.partial_mean(b) - self.partial_mean(a)).max(0.0)
        }
    }

    /// The gap quantile at `q` ∈ [0, 1] (largest observed gap for Gaps at q = 1).
    pub fn quantile(&self, q: f64) -> f64 {
        let q = q.clamp(0.0, 1.0);
        match self {
            Access::Poisson { rate } => -(-q).ln_1p() / rate,
            Access::Gaps(h) => {
                let i = h.cum_weight[1..].partition_point(|c| *c < q - 1e-12);
                h.values[i.min(h.values.len() - 1)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_partial_moments_match_their_definitions() {
        let a = Access::poisson(0.5).unwrap();
        assert!((a.mean_gap() - 2.0).abs() < 1e-12);
        assert!((a.cdf(2.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        // E[G; G ≤ x] by numeric integration of g·λe^(−λg).
        let x = 3.0;
        let n = 100_000;
        let h = x / n as f64;
        let num: f64 = (0..n)
            .map(|i| {
                let g = (i as f64 + 0.5) * h;
                g * 0.5 * (-0.5 * g).exp() * h
            })
            .sum();
        assert!((a.partial_mean(x) - num).abs() < 1e-6);
        assert!((a.partial_mean(f64::INFINITY) - 2.0).abs() < 1e-12);
        assert!((a.quantile(a.cdf(1.7)) - 1.7).abs() < 1e-9);
    }

    #[test]
    fn histogram_weights_and_partial_means() {
        let a = Access::histogram([(10.0, 1.0), (1.0, 3.0)]).unwrap();
        assert!((a.mean_gap() - (3.0 + 10.0) / 4.0).abs() < 1e-12);
        assert_eq!(a.cdf(0.5), 0.0);
        assert!((a.cdf(1.0) - 0.75).abs() < 1e-12);
        assert!((a.cdf(100.0) - 1.0).abs() < 1e-12);
        assert!((a.partial_mean(5.0) - 0.75).abs() < 1e-12);
        assert!((a.prob_between(1.0, 10.0) - 0.25).abs() < 1e-12);
        assert_eq!(a.quantile(0.5), 1.0);
        assert_eq!(a.quantile(0.9), 10.0);
    }

    #[test]
    fn gaps_from_a_request_history() {
        let a =
            Access::from_arrivals(&[Time::from_secs(10), Time::from_secs(0), Time::from_secs(4)])
                .unwrap();
        assert!((a.mean_gap() - 5.0).abs() < 1e-12);
        assert!((a.cdf(4.0) - 0.5).abs() < 1e-12);
        assert!(matches!(
            Access::from_arrivals(&[Time::ZERO]),
            Err(SloError::NoGaps)
        ));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(Access::poisson(0.0), Err(SloError::BadRate(_))));
        assert!(matches!(Access::gaps([]), Err(SloError::NoGaps)));
        assert!(matches!(Access::gaps([0.0, 0.0]), Err(SloError::NoGaps)));
        assert!(matches!(
            Access::gaps([1.0, -2.0]),
            Err(SloError::BadGap { .. })
        ));
    }
}
