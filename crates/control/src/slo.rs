//! The proxy's measurements of an app, in the form the API's service-level report takes.

use hako_api::slo::{GapBin, History};
use hako_policy::KeepAlive;
use hako_proxy::ServiceHistory;

/// `h` with the keep-alive policy the daemon applies to the app.
pub(crate) fn history(h: &ServiceHistory, keep_alive: KeepAlive) -> History {
    let ms = |us: u64| us as f64 / 1e3;
    History {
        keep_alive,
        requests: h.arrivals.arrivals,
        span_s: h.arrivals.span.as_secs_f64(),
        gaps: h
            .arrivals
            .gaps
            .iter()
            .map(|b| GapBin {
                low_ms: ms(b.low_us),
                high_ms: ms(b.high_us),
                count: b.count,
            })
            .collect(),
        starts: h.starts,
        start_ms: h
            .recent_starts
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect(),
        cold: h.cold,
        warm: h.warm,
        service_ms: h.service_mean.as_secs_f64() * 1e3,
        keep_alive_mode: hako_model::KeepAliveMode::Fixed,
        predictor: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn converts_the_proxys_measurements() {
        let m = hako_proxy::metrics::AppMetrics::default();
        let t0 = Instant::now();
        m.record_arrival(t0);
        m.record_arrival(t0 + Duration::from_millis(1500));
        m.record_start(Duration::from_micros(42_500));
        let h = history(&m.history(), KeepAlive::idle(Duration::from_secs(1)));
        assert_eq!((h.requests, h.starts), (2, 1));
        assert_eq!(h.start_ms, [42.5]);
        assert!((h.span_s - 1.5).abs() < 1e-9);
        assert_eq!(h.gaps.len(), 1);
        assert!(h.gaps[0].low_ms <= 1500.0 && 1500.0 <= h.gaps[0].high_ms);
        assert_eq!(h.keep_alive.idle_timeout, Some(Duration::from_secs(1)));
    }
}
