//! Prometheus text exposition of every app's request metrics.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{AppMetricsSnapshot, HistogramSnapshot};

/// A metric's name, help text, and how to read it from a snapshot.
type Metric<T> = (&'static str, &'static str, fn(&AppMetricsSnapshot) -> T);

/// Render metrics of all apps in the Prometheus text format (version 0.0.4).
/// Latencies are summaries in seconds with quantiles 0.5, 0.95 and 0.99.
pub fn prometheus(apps: &BTreeMap<String, AppMetricsSnapshot>) -> String {
    let mut out = String::new();
    let counters: [Metric<u64>; 6] = [
        (
            "hako_proxy_cold_requests_total",
            "Requests that waited for an instance to start.",
            |m| m.cold,
        ),
        (
            "hako_proxy_warm_requests_total",
            "Requests that found a ready instance.",
            |m| m.warm,
        ),
        (
            "hako_proxy_rejected_requests_total",
            "Requests turned away by a full wait queue.",
            |m| m.rejected,
        ),
        (
            "hako_proxy_retries_total",
            "Requests retried on another instance.",
            |m| m.retries,
        ),
        (
            "hako_proxy_scheduled_requests_total",
            "Requests of the app's scheduled runs (not visitors).",
            |m| m.scheduled,
        ),
        (
            "hako_proxy_ignored_requests_total",
            "Requests from the app's ignored clients (not visitors).",
            |m| m.ignored,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (app, m) in apps {
            let _ = writeln!(out, "{name}{{app=\"{}\"}} {}", escape(app), get(m));
        }
    }
    let name = "hako_proxy_responses_total";
    let _ = writeln!(
        out,
        "# HELP {name} Responses by status class.\n# TYPE {name} counter"
    );
    for (app, m) in apps {
        let classes = [
            m.status_1xx,
            m.status_2xx,
            m.status_3xx,
            m.status_4xx,
            m.status_5xx,
        ];
        for (i, count) in classes.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{app=\"{}\",class=\"{}xx\"}} {count}",
                escape(app),
                i + 1
            );
        }
    }
    let summaries: [Metric<HistogramSnapshot>; 2] = [
        (
            "hako_proxy_wait_seconds",
            "Time cold requests waited for a start.",
            |m| m.wait.clone(),
        ),
        (
            "hako_proxy_upstream_seconds",
            "Time from sending to an instance until its response head.",
            |m| m.upstream.clone(),
        ),
    ];
    for (name, help, get) in summaries {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
        for (app, m) in apps {
            let h = get(m);
            let app = escape(app);
            for (q, v) in [("0.5", h.p50_ms), ("0.95", h.p95_ms), ("0.99", h.p99_ms)] {
                let _ = writeln!(
                    out,
                    "{name}{{app=\"{app}\",quantile=\"{q}\"}} {}",
                    v / 1000.0
                );
            }
            let _ = writeln!(
                out,
                "{name}_sum{{app=\"{app}\"}} {}",
                h.mean_ms * h.count as f64 / 1000.0
            );
            let _ = writeln!(out, "{name}_count{{app=\"{app}\"}} {}", h.count);
        }
    }
    out
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::AppMetrics;
    use std::time::Duration;

    #[test]
    fn renders_counters_and_summaries_per_app() {
        let m = AppMetrics::default();
        m.record_cold(Duration::from_millis(20));
        m.record_status(503);
        m.record_upstream(Duration::from_millis(2));
        let apps = BTreeMap::from([("blog".to_owned(), m.snapshot())]);
        let text = prometheus(&apps);
        assert!(
            text.contains("hako_proxy_cold_requests_total{app=\"blog\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hako_proxy_responses_total{app=\"blog\",class=\"5xx\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hako_proxy_wait_seconds_count{app=\"blog\"} 1\n"),
            "{text}"
        );
        let p99 = text
            .lines()
            .find(|l| l.starts_with("hako_proxy_upstream_seconds{app=\"blog\",quantile=\"0.99\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .expect("p99 line");
        assert!((p99 - 0.002).abs() < 0.0002, "{p99}");
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
