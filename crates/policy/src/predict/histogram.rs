//! An app's idle-time histogram: how long the gaps between its visits were.
//!
//! Bins are log-spaced, 32 per octave (each ≈ 2.2% wide) from 1 s to 2^17 s ≈ 36 h, so a
//! 10-second uptime check and a daily cron job are both resolved to about 2% of their period
//! with 545 small counters (≈ 1 KiB per app). Shahrad et al. used 240 one-minute bins over 4 h:
//! right for function start times of seconds, too coarse for hako's 5–140 ms starts, where a
//! pre-warm only needs to land a few percent before the request. Gaps beyond the range are
//! counted apart ("out of range"). Counts are halved when the history reaches its cap, so old
//! behaviour fades and the counters stay small.

use std::sync::LazyLock;

use serde::Serialize;

/// Bins per doubling of the idle time.
pub const BINS_PER_OCTAVE: usize = 32;
/// Octaves above 1 s covered by the bins (up to 2^17 s ≈ 36.4 h).
pub const OCTAVES: usize = 17;
/// Number of bins: bin 0 is everything below 2^(1/32) s, the last ends at 2^17 s.
pub const BINS: usize = OCTAVES * BINS_PER_OCTAVE;
/// The longest idle time the bins hold, seconds.
pub const RANGE_SECS: f64 = (1u64 << OCTAVES) as f64;

/// Idle periods of one app, binned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdleHistogram {
    #[serde(skip)]
    counts: Vec<u16>,
    /// Idle periods recorded in the bins.
    in_range: u32,
    /// Idle periods longer than [`RANGE_SECS`].
    out_of_range: u32,
}

impl Default for IdleHistogram {
    fn default() -> Self {
        IdleHistogram {
            counts: vec![0; BINS],
            in_range: 0,
            out_of_range: 0,
        }
    }
}

/// The bin holding an idle time of `secs`, or `None` beyond the range.
pub fn bin_of(secs: f64) -> Option<usize> {
    if secs.is_nan() || secs >= RANGE_SECS {
        return None;
    }
    if secs < 1.0 {
        return Some(0);
    }
    Some(((secs.log2() * BINS_PER_OCTAVE as f64) as usize).min(BINS - 1))
}

/// Lower edge of bin `i`, seconds (bin 0 starts at 0).
pub fn lower_edge(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        (i as f64 / BINS_PER_OCTAVE as f64).exp2()
    }
}

/// Upper edge of bin `i`, seconds.
pub fn upper_edge(i: usize) -> f64 {
    ((i + 1) as f64 / BINS_PER_OCTAVE as f64).exp2()
}

/// A representative idle time of bin `i` (its geometric middle), seconds.
pub fn middle(i: usize) -> f64 {
    static MIDDLES: LazyLock<Vec<f64>> = LazyLock::new(|| {
        (0..BINS)
            .map(|i| ((i as f64 + 0.5) / BINS_PER_OCTAVE as f64).exp2())
            .collect()
    });
    MIDDLES
        .get(i)
        .copied()
        .unwrap_or_else(|| ((i as f64 + 0.5) / BINS_PER_OCTAVE as f64).exp2())
}

impl IdleHistogram {
    /// Record one idle period of `secs`; when the history holds `cap` periods, halve it first.
    pub fn record(&mut self, secs: f64, cap: u32) {
        if self.total() >= cap.max(2) {
            self.halve();
        }
        match bin_of(secs) {
            Some(i) => {
                self.counts[i] = self.counts[i].saturating_add(1);
                self.in_range += 1;
            }
            None => self.out_of_range += 1,
        }
    }

    /// Halve every count (rounding up, so a bin seen once is not forgotten at once).
    fn halve(&mut self) {
        let mut total = 0u32;
        for c in &mut self.counts {
            *c = c.div_ceil(2);
            total += u32::from(*c);
        }
        self.in_range = total;
        self.out_of_range = self.out_of_range.div_ceil(2);
    }

    /// Idle periods recorded (in and out of range).
    pub fn total(&self) -> u32 {
        self.in_range + self.out_of_range
    }

    /// Idle periods longer than the bins' range.
    pub fn out_of_range(&self) -> u32 {
        self.out_of_range
    }

    /// The bin holding the `q`-quantile (0 < q ≤ 1) of all idle periods, out-of-range ones
    /// counting as longest; `None` when it falls out of range or nothing is recorded.
    pub fn quantile_bin(&self, q: f64) -> Option<usize> {
        let total = f64::from(self.total());
        if total == 0.0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total).ceil().max(1.0);
        let mut seen = 0.0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += f64::from(*c);
            if seen >= want {
                return Some(i);
            }
        }
        None
    }

    /// Coefficient of variation (standard deviation / mean) of the in-range idle periods'
    /// excess over `offset` seconds: 1 for memoryless (exponential) gaps whatever their rate,
    /// near 0 for periodic ones. `None` without two in-range periods or with a zero mean.
    pub fn excess_cv(&self, offset: f64) -> Option<f64> {
        if self.in_range < 2 {
            return None;
        }
        let (mut n, mut sum, mut sq) = (0.0, 0.0, 0.0);
        for (i, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let w = f64::from(*c);
            let x = (middle(i) - offset).max(0.0);
            n += w;
            sum += w * x;
            sq += w * x * x;
        }
        let mean = sum / n;
        if mean <= 0.0 {
            return None;
        }
        let var = (sq / n - mean * mean).max(0.0) * n / (n - 1.0);
        Some(var.sqrt() / mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_log_spaced_and_cover_one_second_to_a_day_and_a_half() {
        assert_eq!(bin_of(0.3), Some(0));
        assert_eq!(bin_of(1.0), Some(0));
        assert_eq!(bin_of(2.0), Some(32));
        assert_eq!(bin_of(RANGE_SECS - 1.0), Some(BINS - 1));
        assert_eq!(bin_of(RANGE_SECS), None);
        assert_eq!(bin_of(f64::NAN), None);
        for secs in [1.5, 10.0, 60.0, 900.0, 3600.0, 86_400.0] {
            let i = bin_of(secs).unwrap();
            assert!(
                lower_edge(i) <= secs && secs < upper_edge(i),
                "{secs} in bin {i}"
            );
            assert!(
                upper_edge(i) / lower_edge(i) < 1.022,
                "bins are ≈ 2.2% wide"
            );
        }
    }

    #[test]
    fn quantiles_count_out_of_range_periods_as_longest() {
        let mut h = IdleHistogram::default();
        for _ in 0..95 {
            h.record(60.0, 1000);
        }
        for _ in 0..5 {
            h.record(1e9, 1000);
        }
        let b60 = bin_of(60.0);
        assert_eq!(h.quantile_bin(0.05), b60);
        assert_eq!(h.quantile_bin(0.95), b60);
        assert_eq!(
            h.quantile_bin(0.99),
            None,
            "the 99th percentile is out of range"
        );
        assert_eq!(h.total(), 100);
        assert_eq!(h.out_of_range(), 5);
    }

    #[test]
    fn the_history_is_halved_at_its_cap() {
        let mut h = IdleHistogram::default();
        for _ in 0..10 {
            h.record(5.0, 10);
        }
        assert_eq!(h.total(), 10);
        h.record(7.0, 10);
        assert_eq!(h.total(), 6, "halved to 5, then one more");
    }

    #[test]
    fn excess_cv_tells_periodic_from_memoryless() {
        let mut periodic = IdleHistogram::default();
        let mut memoryless = IdleHistogram::default();
        // Exponential quantiles at evenly spaced probabilities: an exact memoryless sample.
        let n = 2000;
        for k in 0..n {
            periodic.record(900.0 + (k % 7) as f64, 100_000);
            let u = (k as f64 + 0.5) / n as f64;
            memoryless.record(2.0 - 300.0 * (1.0 - u).ln(), 100_000);
        }
        let p = periodic.excess_cv(2.0).unwrap();
        let m = memoryless.excess_cv(2.0).unwrap();
        assert!(p < 0.05, "periodic cv {p}");
        assert!((m - 1.0).abs() < 0.05, "memoryless cv {m}");
        assert_eq!(IdleHistogram::default().excess_cv(0.0), None);
    }
}
