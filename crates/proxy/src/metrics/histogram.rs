//! A lock-free log-linear latency histogram (microsecond resolution, about 6% error).
//!
//! Values fall into buckets: exact below 16 µs, then 8 buckets per power of two.
//! Percentiles report the middle of the bucket holding the rank. Beside them, each value is
//! also counted exactly against the fixed upper bounds of [`EXPOSED_BOUNDS_US`], the buckets
//! a Prometheus histogram shows (`le="0.005"` …), so those counts are exact, not estimated
//! from the log-linear buckets.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const EXACT: usize = 2 * SUB;
/// Highest power of two tracked (2^36 µs is about 19 hours); larger values are clamped.
const MAX_POW: u32 = 36;
const BUCKETS: usize = EXACT + (MAX_POW as usize - SUB_BITS as usize) * SUB;

/// The upper bounds (µs) of the buckets a Prometheus histogram of durations shows: 1 ms to
/// 60 s, in the usual 1-2.5-5 steps (values above the last are counted only in `+Inf`).
pub const EXPOSED_BOUNDS_US: [u64; 15] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Concurrent histogram of durations.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    /// Values at or below each of [`EXPOSED_BOUNDS_US`] and above the one before (not cumulative).
    exposed: [AtomicU64; EXPOSED_BOUNDS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            exposed: Default::default(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < EXACT as u64 {
        return us as usize;
    }
    let us = us.min((1u64 << (MAX_POW + 1)) - 1);
    let pow = 63 - us.leading_zeros();
    let sub = ((us >> (pow - SUB_BITS)) as usize) & (SUB - 1);
    EXACT + (pow as usize - SUB_BITS as usize - 1) * SUB + sub
}

/// Lowest and highest value (µs) of a bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < EXACT {
        return (index as u64, index as u64);
    }
    let pow = ((index - EXACT) / SUB) as u32 + SUB_BITS + 1;
    let sub = ((index - EXACT) % SUB) as u64;
    let width = 1u64 << (pow - SUB_BITS);
    let low = (1u64 << pow) + sub * width;
    (low, low + width - 1)
}

impl Histogram {
    /// Add one duration.
    pub fn record(&self, value: Duration) {
        let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
        let i = EXPOSED_BOUNDS_US.partition_point(|b| *b < us);
        if let Some(slot) = self.exposed.get(i) {
            slot.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    /// Count, sum (seconds) and the cumulative count at or below each of
    /// [`EXPOSED_BOUNDS_US`] (in seconds): what a Prometheus histogram shows.
    pub fn exposed(&self) -> ExposedHistogram {
        let mut seen = 0;
        let buckets = EXPOSED_BOUNDS_US
            .iter()
            .zip(&self.exposed)
            .map(|(bound, n)| {
                seen += n.load(Relaxed);
                (*bound as f64 / 1e6, seen)
            })
            .collect();
        // Read the count last: it is never below the buckets' sum (they are added first).
        let sum_seconds = self.sum_us.load(Relaxed) as f64 / 1e6;
        let count = self.count.load(Relaxed).max(seen);
        ExposedHistogram {
            count,
            sum_seconds,
            buckets,
        }
    }

    /// The non-empty buckets, lowest first: what the service-level model reads as a
    /// distribution (each value stands for its bucket's range).
    pub fn bins(&self) -> Vec<Bin> {
        self.buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let count = b.load(Relaxed);
                (count > 0).then(|| {
                    let (low_us, high_us) = bucket_range(i);
                    Bin {
                        low_us,
                        high_us,
                        count,
                    }
                })
            })
            .collect()
    }

    /// Count, mean, p50/p95/p99 and max, in milliseconds.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return HistogramSnapshot::default();
        }
        let max_us = self.max_us.load(Relaxed);
        let quantile = |q: f64| {
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    let (low, high) = bucket_range(i);
                    return ms((low + high).div_ceil(2).min(max_us));
                }
            }
            ms(max_us)
        };
        HistogramSnapshot {
            count,
            mean_ms: ms(self.sum_us.load(Relaxed)) / count as f64,
            p50_ms: quantile(0.50),
            p95_ms: quantile(0.95),
            p99_ms: quantile(0.99),
            max_ms: ms(max_us),
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A [`Histogram`] as Prometheus shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExposedHistogram {
    /// Values recorded.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// `(upper bound in seconds, values at or below it)`, cumulative, ascending.
    pub buckets: Vec<(f64, u64)>,
}

/// One non-empty bucket of a [`Histogram`]: `count` values within `low_us..=high_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bin {
    /// Lowest value of the bucket, microseconds.
    pub low_us: u64,
    /// Highest value of the bucket, microseconds (values beyond the last bucket are clamped
    /// into it).
    pub high_us: u64,
    /// Values recorded in it.
    pub count: u64,
}

/// Summary of a [`Histogram`]; times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistogramSnapshot {
    /// Number of recorded values.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_contain_their_values() {
        let mut next = 0;
        for i in 0..BUCKETS {
            let (low, high) = bucket_range(i);
            assert_eq!(low, next, "bucket {i} starts where the previous ended");
            assert_eq!(bucket_of(low), i);
            assert_eq!(bucket_of(high), i);
            next = high + 1;
        }
    }

    #[test]
    fn percentiles_are_within_bucket_error_of_exact_ranks() {
        let h = Histogram::default();
        // 1..=1000 ms: exact p50 = 500 ms, p95 = 950 ms, p99 = 990 ms.
        for v in 1..=1000u64 {
            h.record(Duration::from_millis(v));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 1000);
        for (got, want) in [(s.p50_ms, 500.0), (s.p95_ms, 950.0), (s.p99_ms, 990.0)] {
            assert!((got - want).abs() / want < 0.07, "got {got}, want {want}");
        }
        assert_eq!(s.max_ms, 1000.0);
        assert!((s.mean_ms - 500.5).abs() < 0.01);
    }

    #[test]
    fn bins_list_the_non_empty_buckets_with_their_ranges() {
        let h = Histogram::default();
        for v in [3, 3, 1000, 1001, 250_000] {
            h.record(Duration::from_micros(v));
        }
        let bins = h.bins();
        assert_eq!(bins.len(), 3, "{bins:?}");
        assert_eq!((bins[0].low_us, bins[0].high_us, bins[0].count), (3, 3, 2));
        assert!(bins[1].low_us <= 1000 && bins[1].high_us >= 1001 && bins[1].count == 2);
        assert!(bins[2].low_us <= 250_000 && 250_000 <= bins[2].high_us);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 5);
        assert!(Histogram::default().bins().is_empty());
    }

    #[test]
    fn exposed_buckets_count_exactly_at_their_bounds() {
        let h = Histogram::default();
        // On a bound counts in that bucket; one µs above it in the next.
        for us in [999, 1_000, 1_001, 2_500, 70_000_000] {
            h.record(Duration::from_micros(us));
        }
        let e = h.exposed();
        assert_eq!(e.count, 5);
        assert!((e.sum_seconds - 70.0055).abs() < 1e-9, "{}", e.sum_seconds);
        assert_eq!(e.buckets[0], (0.001, 2));
        assert_eq!(e.buckets[1], (0.0025, 4));
        assert_eq!(e.buckets.last(), Some(&(60.0, 4)), "70 s is only in +Inf");
        assert!(
            e.buckets
                .windows(2)
                .all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0)
        );
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        assert_eq!(
            Histogram::default().snapshot(),
            HistogramSnapshot::default()
        );
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let h = Histogram::default();
        h.record(Duration::from_secs(10 * 24 * 3600));
        assert_eq!(h.snapshot().count, 1);
    }
}
