//! Per-app request metrics: cold and warm counts, status classes, and latency
//! histograms for the wait for a start and for the upstream answer; the app's instance starts
//! by path and failures by kind, and its stops by reason; and what the
//! service-level model needs of an app's history ([`ServiceHistory`]): the gaps between its
//! request arrivals and its instances' start times.
//!
//! Everything is atomics: recording a request takes no lock.

mod gaps;
mod histogram;
mod idle;
mod starts;

pub use gaps::{ArrivalGaps, GapsSnapshot};
pub use histogram::{Bin, EXPOSED_BOUNDS_US, ExposedHistogram, Histogram, HistogramSnapshot};
pub use idle::{IDLE_PERIOD_MIN, IdlePeriods, IdleSince};
pub use starts::{RECENT_STARTS, StartTimes};

use hako_model::{StartFailure, StartPath, StopReason};
use serde::Serialize;
use std::collections::BTreeMap;
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
    visitors: AtomicU64,
    scheduled: AtomicU64,
    ignored: AtomicU64,
    abandoned: AtomicU64,
    wait: Histogram,
    upstream: Histogram,
    arrivals: ArrivalGaps,
    /// The idle periods between visits, for the predictive keep-alive.
    pub idle: IdlePeriods,
    starts: StartTimes,
    /// Failed starts, per [`StartFailure`] (indexed like [`StartFailure::ALL`]).
    start_failures: [AtomicU64; StartFailure::ALL.len()],
    /// Instances that became ready, per [`StartPath`] (cold, pool, restore).
    start_paths: [AtomicU64; START_PATHS.len()],
    /// Instances stopped, per [`StopReason`] (indexed like [`StopReason::ALL`]).
    stops: [AtomicU64; StopReason::ALL.len()],
}

/// Every start path, in a stable order (for metrics).
pub const START_PATHS: [StartPath; 3] = [StartPath::Cold, StartPath::Pool, StartPath::Restore];

impl AppMetrics {
    /// A request for the app arrived at `now` (every request, before it is routed further).
    pub fn record_arrival(&self, now: std::time::Instant) {
        self.arrivals.record(now);
    }

    /// An instance of the app became ready `took` after it was asked for.
    pub fn record_start(&self, took: Duration) {
        self.starts.record(took);
    }

    /// A start of an instance of the app failed.
    pub fn record_start_failure(&self, kind: StartFailure) {
        let i = StartFailure::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.start_failures[i].fetch_add(1, Relaxed);
    }

    /// An instance of the app became ready, started by `path`.
    pub fn record_start_path(&self, path: StartPath) {
        let i = START_PATHS.iter().position(|p| *p == path).unwrap_or(0);
        self.start_paths[i].fetch_add(1, Relaxed);
    }

    /// An instance of the app stopped, for `reason`.
    pub fn record_stop(&self, reason: StopReason) {
        self.stops[reason.index()].fetch_add(1, Relaxed);
    }

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

    /// Who sent a request: visitors, the app's scheduled runs, or its ignored clients.
    pub fn record_class(&self, class: hako_policy::wake::RequestClass) {
        use hako_policy::wake::RequestClass;
        match class {
            RequestClass::Visitor => {
                self.visitors.fetch_add(1, Relaxed);
            }
            RequestClass::Scheduled => {
                self.scheduled.fetch_add(1, Relaxed);
            }
            RequestClass::Ignored => {
                self.ignored.fetch_add(1, Relaxed);
            }
        }
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
            visitors: self.visitors.load(Relaxed),
            scheduled: self.scheduled.load(Relaxed),
            ignored: self.ignored.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            wait: self.wait.snapshot(),
            upstream: self.upstream.snapshot(),
            start: self.starts.snapshot(),
            start_failures: StartFailure::ALL
                .iter()
                .zip(&self.start_failures)
                .map(|(k, n)| (k.label().to_string(), n.load(Relaxed)))
                .collect(),
            start_paths: START_PATHS
                .iter()
                .zip(&self.start_paths)
                .map(|(p, n)| (p.to_string(), n.load(Relaxed)))
                .collect(),
            stops: StopReason::ALL
                .iter()
                .zip(&self.stops)
                .map(|(r, n)| (r.label().to_string(), n.load(Relaxed)))
                .collect(),
            exposed_wait: self.wait.exposed(),
            exposed_upstream: self.upstream.exposed(),
            exposed_start: self.starts.exposed(),
        }
    }

    /// What the service-level model needs: arrival gaps, recent start times, request time.
    pub fn history(&self) -> ServiceHistory {
        let upstream = self.upstream.snapshot();
        ServiceHistory {
            arrivals: self.arrivals.snapshot(),
            starts: self.starts.snapshot().count,
            recent_starts: self.starts.recent(),
            cold: self.cold.load(Relaxed),
            warm: self.warm.load(Relaxed),
            service_mean: Duration::from_secs_f64(upstream.mean_ms.max(0.0) / 1e3),
        }
    }
}

/// An app's history as the service-level model reads it (see `hako_policy::slo`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceHistory {
    /// Request arrivals and the gaps between them.
    pub arrivals: GapsSnapshot,
    /// Instance starts measured.
    pub starts: u64,
    /// The latest (up to [`RECENT_STARTS`]) start times.
    pub recent_starts: Vec<Duration>,
    /// Requests that waited for a start.
    pub cold: u64,
    /// Requests that found a ready instance.
    pub warm: u64,
    /// Mean time from sending a request to an instance until its response head.
    pub service_mean: Duration,
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
    /// Requests from visitors: neither scheduled runs nor ignored clients.
    pub visitors: u64,
    /// Requests of the app's scheduled runs (sent by hako; not visitors).
    pub scheduled: u64,
    /// Requests from the app's ignored clients (uptime checkers, bots; not visitors).
    pub ignored: u64,
    /// Requests whose client went away before getting a response (no status counted).
    pub abandoned: u64,
    /// Time cold requests waited for a start.
    pub wait: HistogramSnapshot,
    /// Time from sending to an instance until its response head.
    pub upstream: HistogramSnapshot,
    /// Time from asking for an instance until it was ready.
    pub start: HistogramSnapshot,
    /// Failed starts by kind ("crashed", "not_listening", … — every kind, zeros included).
    pub start_failures: BTreeMap<String, u64>,
    /// Instances that became ready, by start path ("cold", "pool", "restore").
    pub start_paths: BTreeMap<String, u64>,
    /// Instances stopped, by reason ("idle", "lifetime", … — every reason, zeros included).
    pub stops: BTreeMap<String, u64>,
    /// The wait of cold requests as Prometheus buckets.
    #[serde(skip)]
    pub exposed_wait: ExposedHistogram,
    /// The upstream time as Prometheus buckets.
    #[serde(skip)]
    pub exposed_upstream: ExposedHistogram,
    /// The start time as Prometheus buckets.
    #[serde(skip)]
    pub exposed_start: ExposedHistogram,
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
        assert_eq!(s.exposed_wait.count, 1);
        m.record_start_path(StartPath::Pool);
        m.record_stop(StopReason::Idle);
        m.record_stop(StopReason::Idle);
        let s = m.snapshot();
        assert_eq!((s.start_paths["pool"], s.start_paths["cold"]), (1, 0));
        assert_eq!((s.stops["idle"], s.stops.len()), (2, StopReason::ALL.len()));
        let json = serde_json::to_value(&s).expect("serializes");
        assert_eq!(json["cold"], 1);
        assert!(json["wait"]["p99_ms"].as_f64().expect("number") > 30.0);
    }

    #[test]
    fn history_has_the_gaps_starts_and_request_time() {
        let m = AppMetrics::default();
        assert_eq!(m.history().arrivals.arrivals, 0);
        let t0 = std::time::Instant::now();
        for ms in [0, 10, 2010] {
            m.record_arrival(t0 + Duration::from_millis(ms));
        }
        m.record_start(Duration::from_millis(35));
        m.record_cold(Duration::from_millis(36));
        m.record_warm();
        m.record_warm();
        m.record_upstream(Duration::from_millis(2));
        m.record_upstream(Duration::from_millis(4));
        let h = m.history();
        assert_eq!(h.arrivals.arrivals, 3);
        assert_eq!(h.arrivals.gaps.iter().map(|b| b.count).sum::<u64>(), 2);
        assert_eq!(h.arrivals.span, Duration::from_millis(2010));
        assert_eq!((h.starts, h.recent_starts.len()), (1, 1));
        assert_eq!(h.recent_starts[0], Duration::from_millis(35));
        assert_eq!((h.cold, h.warm), (1, 2));
        assert_eq!(h.service_mean, Duration::from_millis(3));
        assert_eq!(m.snapshot().start.count, 1);
    }
}
