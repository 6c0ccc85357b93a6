//! An app's idle periods, for the daemon's predictive keep-alive (`hako_policy::predict`): the
//! gaps between consecutive request arrivals of at least [`IDLE_PERIOD_MIN`], each with when
//! it began and ended, on tokio's clock (the keep-alive loop's, paused in its tests).
//!
//! One atomic swap per request; a lock only at the end of an idle period (rare: seconds
//! apart at most). The daemon drains the periods ([`IdlePeriods::take`]) at each pass of its
//! keep-alive loop: feeding the predictor each period's two ends and then the latest arrival
//! is exactly the same as feeding it every arrival, since gaps shorter than its `linger`
//! (≥ [`IDLE_PERIOD_MIN`]) are not idle periods to it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// Shortest gap kept; the predictor's `linger` (2 s by default) must not be shorter.
pub const IDLE_PERIOD_MIN: Duration = Duration::from_secs(1);

/// Periods kept until the daemon takes them (the oldest go first beyond this).
const KEPT: usize = 1024;

/// One app's idle periods since the daemon last took them, and its latest arrival.
#[derive(Debug)]
pub struct IdlePeriods {
    epoch: Instant,
    /// Microseconds since `epoch` of the latest arrival, plus one; 0 before the first.
    last: AtomicU64,
    periods: Mutex<VecDeque<(u64, u64)>>,
}

impl Default for IdlePeriods {
    fn default() -> Self {
        IdlePeriods {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            periods: Mutex::new(VecDeque::new()),
        }
    }
}

/// What [`IdlePeriods::take`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdleSince {
    /// (end of the last visit, arrival that ended the idle period), oldest first.
    pub periods: Vec<(Instant, Instant)>,
    /// The latest arrival.
    pub last_arrival: Option<Instant>,
}

impl IdlePeriods {
    /// A request arrived at `now`.
    pub fn record(&self, now: Instant) {
        let us = u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX - 1)
            + 1;
        let previous = self.last.fetch_max(us, Relaxed);
        if previous != 0 && us.saturating_sub(previous) >= IDLE_PERIOD_MIN.as_micros() as u64 {
            let mut p = self.periods.lock().unwrap_or_else(|e| e.into_inner());
            if p.len() >= KEPT {
                p.pop_front();
            }
            p.push_back((previous, us));
        }
    }

    /// The idle periods recorded since the last call, and the latest arrival.
    pub fn take(&self) -> IdleSince {
        let at = |us: u64| self.epoch + Duration::from_micros(us - 1);
        let periods = std::mem::take(&mut *self.periods.lock().unwrap_or_else(|e| e.into_inner()));
        let last = self.last.load(Relaxed);
        IdleSince {
            periods: periods.into_iter().map(|(a, b)| (at(a), at(b))).collect(),
            last_arrival: (last != 0).then(|| at(last)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keeps_only_gaps_of_at_least_a_second_with_their_ends() {
        let p = IdlePeriods::default();
        let t0 = Instant::now();
        assert_eq!(p.take(), IdleSince::default());
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for ms in [0, 300, 900, 5_900, 6_000, 66_000] {
            p.record(at(ms));
        }
        let s = p.take();
        assert_eq!(s.periods, [(at(900), at(5_900)), (at(6_000), at(66_000))]);
        assert_eq!(s.last_arrival, Some(at(66_000)));
        // Taken once; the latest arrival stays.
        let again = p.take();
        assert!(again.periods.is_empty());
        assert_eq!(again.last_arrival, Some(at(66_000)));
    }
}
