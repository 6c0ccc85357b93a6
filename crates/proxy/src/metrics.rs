//! Per-app request metrics: cold and warm counts, status classes, and latency
//! histograms for the wait for a start and for the upstream answer.
//!
//! Everything is atomics: recording a request takes no lock.

mod histogram;
mod prometheus;

pub use histogram::{Histogram, HistogramSnapshot};
pub use prometheus::prometheus;

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Live counters of one app, shared by all requests to it.
#[derive(Debug, Default)]
pub struct AppMetrics {
    cold: AtomicU64,
    warm: AtomicU64,
    status: [AtomicU64; 5],
    retries: AtomicU64,
    rejected: AtomicU64,
    abandoned: AtomicU64,
    wait: Histogram,
    upstream: Histogram,
}

impl AppMetrics {
    /// A request that found no ready instance and waited `waited` for a start.
    pub fn record_cold(&self, waited: Duration) {
        self.cold.fetch_add(1, Relaxed);
        self.wait.record(waited);
    }

    /// A request that found a ready instance.
    pub fn record_warm(&self) {
        self.warm.fetch_add(1, Relaxed);
    }

    /// The status code the client got (from the app or from the proxy).
    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.status[class].fetch_add(1, Relaxed);
    }

    /// Time from sending the request to an instance until its response head.
    pub fn record_upstream(&self, took: Duration) {
        self.upstream.record(took);
    }

    /// A request tried again on another instance because it never reached the first.
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// A request turned away because the wait queue was full.
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// A request whose client went away before it got a response.
    pub fn record_abandoned(&self) {
        self.abandoned.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy for the API (counters are read one by one).
    pub fn snapshot(&self) -> AppMetricsSnapshot {
        let s = |i: usize| self.status[i].load(Relaxed);
        AppMetricsSnapshot {
            cold: self.cold.load(Relaxed),
            warm: self.warm.load(Relaxed),
            status_1xx: s(0),
            status_2xx: s(1),
            status_3xx: s(2),
            status_4xx: s(3),
            status_5xx: s(4),
            retries: self.retries.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            wait: self.wait.snapshot(),
            upstream: self.upstream.snapshot(),
        }
    }
}

/// A copy of one app's request metrics, ready to serialize as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppMetricsSnapshot {
    /// Requests that waited for an instance to start.
    pub cold: u64,
    /// Requests that found a ready instance.
    pub warm: u64,
    /// Responses with status 1xx.
    pub status_1xx: u64,
    /// Responses with status 2xx.
    pub status_2xx: u64,
    /// Responses with status 3xx.
    pub status_3xx: u64,
    /// Responses with status 4xx.
    pub status_4xx: u64,
    /// Responses with status 5xx.
    pub status_5xx: u64,
    /// Requests retried on another instance.
    pub retries: u64,
    /// Requests turned away because the wait queue was full.
    pub rejected: u64,
    /// Requests whose client went away before getting a response (no status counted).
    pub abandoned: u64,
    /// Time cold requests waited for a start.
    pub wait: HistogramSnapshot,
    /// Time from sending to an instance until its response head.
    pub upstream: HistogramSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cold_warm_and_status_classes() {
        let m = AppMetrics::default();
        m.record_cold(Duration::from_millis(40));
        m.record_warm();
        m.record_warm();
        for status in [101, 200, 204, 301, 404, 503, 502] {
            m.record_status(status);
        }
        let s = m.snapshot();
        assert_eq!((s.cold, s.warm), (1, 2));
        assert_eq!(
            [
                s.status_1xx,
                s.status_2xx,
                s.status_3xx,
                s.status_4xx,
                s.status_5xx
            ],
            [1, 2, 1, 1, 2]
        );
        assert_eq!(s.wait.count, 1);
        let json = serde_json::to_value(&s).expect("serializes");
        assert_eq!(json["cold"], 1);
        assert!(json["wait"]["p99_ms"].as_f64().expect("number") > 30.0);
    }
}
