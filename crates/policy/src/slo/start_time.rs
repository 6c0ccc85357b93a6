//! How long an instance takes from "start" to "ready": a constant or measured samples.

use std::time::Duration;

use serde::Serialize;

use super::SloError;

/// The start-time distribution of an app (measured by hako, or assumed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StartTime {
    /// Every start takes this long.
    Constant {
        /// Seconds.
        seconds: f64,
    },
    /// Empirical: each start takes one of these (sorted, seconds), equally likely.
    Samples {
        /// Sorted, finite, non-negative seconds.
        seconds: Vec<f64>,
    },
}

impl StartTime {
    /// Every start takes `d`.
    pub fn constant(d: Duration) -> StartTime {
        StartTime::Constant {
            seconds: d.as_secs_f64(),
        }
    }

    /// An empirical distribution from measured start times.
    pub fn samples<I: IntoIterator<Item = Duration>>(samples: I) -> Result<StartTime, SloError> {
        Self::samples_secs(samples.into_iter().map(|d| d.as_secs_f64()))
    }

    /// An empirical distribution from measured start times in seconds.
    pub fn samples_secs<I: IntoIterator<Item = f64>>(samples: I) -> Result<StartTime, SloError> {
        let mut seconds: Vec<f64> = samples.into_iter().collect();
        if seconds.is_empty() {
            return Err(SloError::NoStartSamples);
        }
        if let Some(bad) = seconds.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(SloError::BadStartSample(*bad));
        }
        seconds.sort_by(f64::total_cmp);
        Ok(StartTime::Samples { seconds })
    }

    /// E\[S\] in seconds.
    pub fn mean(&self) -> f64 {
        match self {
            StartTime::Constant { seconds } => *seconds,
            StartTime::Samples { seconds } => seconds.iter().sum::<f64>() / seconds.len() as f64,
        }
    }

    /// E\[S²\] in seconds².
    pub fn second_moment(&self) -> f64 {
        match self {
            StartTime::Constant { seconds } => seconds * seconds,
            StartTime::Samples { seconds } => {
                seconds.iter().map(|s| s * s).sum::<f64>() / seconds.len() as f64
            }
        }
    }

    /// P(S > w).
    pub fn tail(&self, w: f64) -> f64 {
        match self {
            StartTime::Constant { seconds } => f64::from(u8::from(*seconds > w)),
            StartTime::Samples { seconds } => {
                let at_most = seconds.partition_point(|s| *s <= w);
                (seconds.len() - at_most) as f64 / seconds.len() as f64
            }
        }
    }

    /// E[(S − w)⁺]: the expected part of a start still to come `w` after it began.
    pub fn excess(&self, w: f64) -> f64 {
        self.values().map(|s| (s - w).max(0.0)).sum::<f64>() / self.len() as f64
    }

    /// The largest possible start time, seconds.
    pub fn max(&self) -> f64 {
        match self {
            StartTime::Constant { seconds } => *seconds,
            StartTime::Samples { seconds } => *seconds.last().unwrap_or(&0.0),
        }
    }

    /// The start time at uniform variate `u` ∈ [0, 1): inverse-CDF sampling for simulators.
    pub fn sample(&self, u: f64) -> Duration {
        let secs = match self {
            StartTime::Constant { seconds } => *seconds,
            StartTime::Samples { seconds } => {
                let i =
                    ((u.clamp(0.0, 1.0) * seconds.len() as f64) as usize).min(seconds.len() - 1);
                seconds[i]
            }
        };
        Duration::from_secs_f64(secs)
    }

    /// Every possible value, each with weight 1 / `len()`.
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let slice: &[f64] = match self {
            StartTime::Constant { seconds } => std::slice::from_ref(seconds),
            StartTime::Samples { seconds } => seconds,
        };
        slice.iter().copied()
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            StartTime::Constant { .. } => 1,
            StartTime::Samples { seconds } => seconds.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_tails_of_samples() {
        let s = StartTime::samples_secs([0.3, 0.1, 0.2, 0.4]).unwrap();
        assert!((s.mean() - 0.25).abs() < 1e-12);
        assert!((s.second_moment() - 0.075).abs() < 1e-12);
        assert_eq!(s.tail(0.2), 0.5);
        assert_eq!(s.tail(0.0), 1.0);
        assert_eq!(s.tail(0.4), 0.0);
        assert!((s.excess(0.2) - (0.1 + 0.2) / 4.0).abs() < 1e-12);
        assert_eq!(s.max(), 0.4);
        assert_eq!(s.sample(0.0), Duration::from_secs_f64(0.1));
        assert_eq!(s.sample(0.99), Duration::from_secs_f64(0.4));
    }

    #[test]
    fn constant_behaves_like_a_single_sample() {
        let c = StartTime::constant(Duration::from_millis(500));
        assert_eq!(c.tail(0.499), 1.0);
        assert_eq!(c.tail(0.5), 0.0);
        assert!((c.excess(0.2) - 0.3).abs() < 1e-12);
        assert_eq!(c.sample(0.7), Duration::from_millis(500));
    }

    #[test]
    fn rejects_empty_and_bad_samples() {
        assert!(matches!(
            StartTime::samples_secs([]),
            Err(SloError::NoStartSamples)
        ));
        assert!(matches!(
            StartTime::samples_secs([0.1, -1.0]),
            Err(SloError::BadStartSample(v)) if v == -1.0
        ));
        assert!(StartTime::samples_secs([f64::NAN]).is_err());
    }
}
