//! How long an app's instances took from "start" to "ready": a histogram of every start (for
//! percentiles) and the latest [`RECENT_STARTS`] exactly (the start-time distribution the
//! service-level model takes). Starts are rare next to requests; still, recording is two atomic
//! adds and a store, no lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::histogram::{ExposedHistogram, Histogram, HistogramSnapshot};

/// How many of the latest start times are kept exactly.
pub const RECENT_STARTS: usize = 256;

/// Start times of one app's instances.
#[derive(Debug)]
pub struct StartTimes {
    all: Histogram,
    /// Ring of the latest start times in microseconds plus one (0: empty slot).
    recent: Box<[AtomicU64]>,
    next: AtomicU64,
}

impl Default for StartTimes {
    fn default() -> Self {
        StartTimes {
            all: Histogram::default(),
            recent: (0..RECENT_STARTS).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
        }
    }
}

impl StartTimes {
    /// An instance became ready `took` after it was asked for.
    pub fn record(&self, took: Duration) {
        self.all.record(took);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX - 1);
        let slot = self.next.fetch_add(1, Relaxed) as usize % RECENT_STARTS;
        self.recent[slot].store(us + 1, Relaxed);
    }

    /// Count and percentiles of every start.
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.all.snapshot()
    }

    /// Every start, as Prometheus buckets.
    pub fn exposed(&self) -> ExposedHistogram {
        self.all.exposed()
    }

    /// The latest (up to [`RECENT_STARTS`]) start times, in no particular order.
    pub fn recent(&self) -> Vec<Duration> {
        self.recent
            .iter()
            .map(|s| s.load(Relaxed))
            .filter(|us| *us > 0)
            .map(|us| Duration::from_micros(us - 1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_start_in_the_histogram_and_the_latest_exactly() {
        let s = StartTimes::default();
        assert!(s.recent().is_empty());
        s.record(Duration::ZERO);
        s.record(Duration::from_micros(41_234));
        let mut recent = s.recent();
        recent.sort();
        assert_eq!(recent, [Duration::ZERO, Duration::from_micros(41_234)]);
        assert_eq!(s.snapshot().count, 2);

        for i in 0..(RECENT_STARTS as u64 + 10) {
            s.record(Duration::from_millis(100 + i));
        }
        let recent = s.recent();
        assert_eq!(recent.len(), RECENT_STARTS);
        // The oldest (0, 41 ms and the first ten of the loop) were overwritten.
        assert!(
            recent.iter().all(|d| *d >= Duration::from_millis(110)),
            "{recent:?}"
        );
        assert_eq!(s.snapshot().count, RECENT_STARTS as u64 + 12);
    }
}
