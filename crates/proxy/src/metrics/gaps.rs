//! The gaps between an app's request arrivals: its idle-time histogram, what the service-level
//! model (`hako_policy::slo`, `hako slo APP`) reads as the app's access pattern.
//!
//! One `fetch_max` and a histogram record per request: no lock, no allocation. Gaps fall into
//! the log-linear buckets of [`Histogram`] (8 per power of two, so a gap is known to within
//! about 6%; from 1 µs up to about 38 hours, longer gaps are counted in the last bucket).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::histogram::{Bin, Histogram};

/// Arrival times and inter-arrival gaps of one app's requests.
#[derive(Debug)]
pub struct ArrivalGaps {
    epoch: Instant,
    /// Microseconds since `epoch` of the first arrival, plus one; 0 before it.
    first: AtomicU64,
    /// Microseconds since `epoch` of the latest arrival, plus one; 0 before the first.
    last: AtomicU64,
    arrivals: AtomicU64,
    gaps: Histogram,
}

impl Default for ArrivalGaps {
    fn default() -> Self {
        ArrivalGaps::new(Instant::now())
    }
}

impl ArrivalGaps {
    /// Counts arrivals from `epoch` on (earlier ones count as at `epoch`).
    pub fn new(epoch: Instant) -> ArrivalGaps {
        ArrivalGaps {
            epoch,
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
            gaps: Histogram::default(),
        }
    }

    /// A request arrived at `now`. Concurrent callers may pass times slightly out of order: the
    /// later one of two near-simultaneous arrivals then sees a gap of 0, and the gaps still add
    /// up to the time from the first arrival to the latest.
    pub fn record(&self, now: Instant) {
        let us = u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX - 1)
            + 1;
        let previous = self.last.fetch_max(us, Relaxed);
        self.arrivals.fetch_add(1, Relaxed);
        if previous == 0 {
            let _ = self.first.compare_exchange(0, us, Relaxed, Relaxed);
        } else {
            self.gaps
                .record(Duration::from_micros(us.saturating_sub(previous)));
        }
    }

    /// What has been recorded so far.
    pub fn snapshot(&self) -> GapsSnapshot {
        let (first, last) = (self.first.load(Relaxed), self.last.load(Relaxed));
        GapsSnapshot {
            arrivals: self.arrivals.load(Relaxed),
            span: Duration::from_micros(last.saturating_sub(first)),
            gaps: self.gaps.bins(),
        }
    }
}

/// A copy of an app's arrival history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GapsSnapshot {
    /// Requests that arrived.
    pub arrivals: u64,
    /// Time from the first arrival to the latest.
    pub span: Duration,
    /// The gaps between consecutive arrivals (one fewer than the arrivals), by bucket.
    pub gaps: Vec<Bin>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(s: &GapsSnapshot) -> u64 {
        s.gaps.iter().map(|b| b.count).sum()
    }

    /// The bin holding a gap of `us` microseconds.
    fn bin_of(s: &GapsSnapshot, us: u64) -> Bin {
        *s.gaps
            .iter()
            .find(|b| b.low_us <= us && us <= b.high_us)
            .unwrap_or_else(|| panic!("no bin holds {us} µs: {:?}", s.gaps))
    }

    #[test]
    fn each_arrival_after_the_first_adds_its_gap_to_the_right_bucket() {
        let t0 = Instant::now();
        let g = ArrivalGaps::new(t0);
        assert_eq!(g.snapshot(), GapsSnapshot::default());
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        g.record(at(5));
        assert_eq!((g.snapshot().arrivals, total(&g.snapshot())), (1, 0));
        // Gaps: 20 ms, 20 ms, 1.5 s, 20 ms, 10 min.
        for ms in [25, 45, 1545, 1565, 601_565] {
            g.record(at(ms));
        }
        let s = g.snapshot();
        assert_eq!(s.arrivals, 6);
        assert_eq!(total(&s), 5);
        assert_eq!(s.span, Duration::from_millis(601_560));
        assert_eq!(bin_of(&s, 20_000).count, 3);
        assert_eq!(bin_of(&s, 1_500_000).count, 1);
        assert_eq!(bin_of(&s, 600_000_000).count, 1);
        for b in &s.gaps {
            // Log-linear: each bucket is within about 1/8 of its values.
            assert!(b.high_us - b.low_us <= b.low_us / 8 + 1, "{b:?}");
        }
    }

    #[test]
    fn out_of_order_arrivals_count_as_simultaneous() {
        let t0 = Instant::now();
        let g = ArrivalGaps::new(t0);
        g.record(t0 + Duration::from_millis(100));
        g.record(t0 + Duration::from_millis(300));
        // A request that arrived at 299 ms but got here after the one at 300 ms.
        g.record(t0 + Duration::from_millis(299));
        g.record(t0 + Duration::from_millis(400));
        let s = g.snapshot();
        assert_eq!(s.arrivals, 4);
        assert_eq!(bin_of(&s, 0).count, 1, "{:?}", s.gaps);
        assert_eq!(bin_of(&s, 200_000).count, 1);
        assert_eq!(bin_of(&s, 100_000).count, 1);
        assert_eq!(s.span, Duration::from_millis(300));
    }

    #[test]
    fn concurrent_recorders_lose_no_arrival() {
        let g = std::sync::Arc::new(ArrivalGaps::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        g.record(Instant::now());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = g.snapshot();
        assert_eq!(s.arrivals, 4000);
        assert_eq!(total(&s), 3999);
    }

    #[test]
    fn arrivals_before_the_epoch_count_as_at_it() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let g = ArrivalGaps::new(t0);
        g.record(Instant::now());
        g.record(t0 + Duration::from_millis(2));
        let s = g.snapshot();
        assert_eq!(bin_of(&s, 2000).count, 1);
    }
}
