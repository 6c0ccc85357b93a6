//! A [`Scrape`] in the Prometheus text format (0.0.4), written by `prometheus-client`'s
//! encoder through a collector made for each scrape. Metric names, types and help texts are
//! all here; README's "Metrics" section lists them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::{AppScrape, STATES, Scrape};
use hako_proxy::metrics::ExposedHistogram;

/// Labels of one series.
type Labels = Vec<(&'static str, String)>;

/// Counts per operation.
type PerOp = Vec<(&'static str, u64)>;

/// The text exposition of `scrape`.
pub(crate) fn encode(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector(scrape)));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    out
}

#[derive(Debug)]
struct ScrapeCollector(Scrape);

/// How a family's series read their value.
enum Kind<'a> {
    Counter(&'a dyn Fn(&AppScrape) -> Vec<(Labels, u64)>),
    Gauge(&'a dyn Fn(&AppScrape) -> Vec<(Labels, i64)>),
    Histogram(&'a dyn Fn(&AppScrape) -> &ExposedHistogram),
}

fn app(a: &AppScrape) -> Labels {
    vec![("app", a.name.clone())]
}

fn with(a: &AppScrape, key: &'static str, value: &str) -> Labels {
    vec![("app", a.name.clone()), (key, value.to_string())]
}

fn per_key(
    a: &AppScrape,
    key: &'static str,
    map: &std::collections::BTreeMap<String, u64>,
) -> Vec<(Labels, u64)> {
    map.iter().map(|(k, n)| (with(a, key, k), *n)).collect()
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let apps = &self.0.apps;
        let families: [(&str, &str, Kind<'_>); 15] = [
            (
                "hako_requests",
                "Requests per app by how they were served: cold (waited for a start), warm (found a ready instance), rejected (the wait queue was full), abandoned (the client left first).",
                Kind::Counter(&|a| {
                    let r = &a.requests;
                    [
                        ("cold", r.cold),
                        ("warm", r.warm),
                        ("rejected", r.rejected),
                        ("abandoned", r.abandoned),
                    ]
                    .into_iter()
                    .map(|(k, n)| (with(a, "kind", k), n))
                    .collect()
                }),
            ),
            (
                "hako_requests_by_class",
                "Requests per app by who sent them: visitor, scheduled (the app's own schedules, sent by hako), ignored (its ignored clients: uptime checkers, bots). Only visitors keep an app awake.",
                Kind::Counter(&|a| {
                    let r = &a.requests;
                    [
                        ("visitor", r.visitors),
                        ("scheduled", r.scheduled),
                        ("ignored", r.ignored),
                    ]
                    .into_iter()
                    .map(|(k, n)| (with(a, "class", k), n))
                    .collect()
                }),
            ),
            (
                "hako_request_retries",
                "Requests retried on another instance because they never reached the first.",
                Kind::Counter(&|a| vec![(app(a), a.requests.retries)]),
            ),
            (
                "hako_responses",
                "Responses per app by status class (from the app or from hako).",
                Kind::Counter(&|a| {
                    let r = &a.requests;
                    [
                        ("1xx", r.status_1xx),
                        ("2xx", r.status_2xx),
                        ("3xx", r.status_3xx),
                        ("4xx", r.status_4xx),
                        ("5xx", r.status_5xx),
                    ]
                    .into_iter()
                    .map(|(k, n)| (with(a, "class", k), n))
                    .collect()
                }),
            ),
            (
                "hako_cold_start_wait_seconds",
                "How long cold requests waited for an instance to start.",
                Kind::Histogram(&|a| &a.requests.exposed_wait),
            ),
            (
                "hako_upstream_seconds",
                "Time from sending a request to an instance until its response head.",
                Kind::Histogram(&|a| &a.requests.exposed_upstream),
            ),
            (
                "hako_instance_start_seconds",
                "Time from asking for an instance until it was ready (listening and healthy).",
                Kind::Histogram(&|a| &a.requests.exposed_start),
            ),
            (
                "hako_instances",
                "Instances per app by state: starting, ready, draining.",
                Kind::Gauge(&|a| {
                    STATES
                        .iter()
                        .map(|s| {
                            (
                                with(a, "state", s),
                                a.instances.get(s).copied().unwrap_or(0) as i64,
                            )
                        })
                        .collect()
                }),
            ),
            (
                "hako_instance_starts",
                "Instances that became ready, by start path: cold (the app's command ran), pool (a warm-pool container), restore (from a checkpoint).",
                Kind::Counter(&|a| per_key(a, "path", &a.requests.start_paths)),
            ),
            (
                "hako_instance_start_failures",
                "Starts that failed, by kind: image, spec, capacity, crashed, not_listening, unhealthy, node, gone.",
                Kind::Counter(&|a| per_key(a, "kind", &a.requests.start_failures)),
            ),
            (
                "hako_instance_stops",
                "Instances stopped, by reason: idle, lifetime, outdated, policy, unreachable, deleted, node_drain, exited, shutdown.",
                Kind::Counter(&|a| per_key(a, "reason", &a.requests.stops)),
            ),
            (
                "hako_warm_pool_parked",
                "Containers parked in the app's warm pool, ready for its next cold start.",
                Kind::Gauge(&|a| vec![(app(a), a.parked as i64)]),
            ),
            (
                "hako_app_memory_bytes",
                "Memory the app's instances' cgroups hold now.",
                Kind::Gauge(&|a| vec![(app(a), a.memory_bytes as i64)]),
            ),
            (
                "hako_autoscaler_decisions",
                "Autoscaler decisions per app, up or down.",
                Kind::Counter(&|a| {
                    vec![
                        (
                            with(a, "direction", super::ScaleDirection::Up.label()),
                            a.scale_up,
                        ),
                        (
                            with(a, "direction", super::ScaleDirection::Down.label()),
                            a.scale_down,
                        ),
                    ]
                }),
            ),
            (
                "hako_schedule_runs",
                "Runs of the app's schedules (--cron) by result: ok (a 2xx/3xx answer, a command that exited 0) or failed.",
                Kind::Counter(&|a| {
                    vec![
                        (with(a, "result", "ok"), a.schedule_runs_ok),
                        (with(a, "result", "failed"), a.schedule_runs_failed),
                    ]
                }),
            ),
        ];
        for (name, help, kind) in families {
            match kind {
                Kind::Counter(read) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    for a in apps {
                        for (labels, v) in read(a) {
                            ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
                        }
                    }
                }
                Kind::Gauge(read) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    for a in apps {
                        for (labels, v) in read(a) {
                            ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
                        }
                    }
                }
                Kind::Histogram(read) => {
                    let mut m =
                        encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
                    for a in apps {
                        let h = read(a);
                        let labels = app(a);
                        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                            h.sum_seconds,
                            h.count,
                            &h.buckets,
                            None,
                        )?;
                    }
                }
            }
        }
        if let Some(node) = &self.0.node {
            let c = &node.capacity;
            let gauges: [(&str, &str, f64); 7] = [
                (
                    "hako_node_cpus",
                    "CPUs an instance on this node can get at most.",
                    c.cpus as f64,
                ),
                (
                    "hako_node_memory_bytes",
                    "Memory an instance on this node can get at most (the host's, less what its cgroup limits).",
                    c.memory_bytes as f64,
                ),
                (
                    "hako_node_max_pids",
                    "Processes an instance on this node can get at most (the kernel's pid_max).",
                    c.max_pids as f64,
                ),
                (
                    "hako_node_memory_available_bytes",
                    "The host's MemAvailable.",
                    node.memory_available_bytes.unwrap_or(0) as f64,
                ),
                (
                    "hako_node_instances",
                    "Instances on this node, every app.",
                    node.instances as f64,
                ),
                (
                    "hako_node_instance_memory_bytes",
                    "Memory held by every instance's cgroup on this node.",
                    node.instance_memory_bytes as f64,
                ),
                (
                    "hako_node_instance_cpu_seconds",
                    "CPU time the instances running now have used so far (falls when an instance stops).",
                    node.instance_cpu_seconds,
                ),
            ];
            for (name, help, v) in gauges {
                if name == "hako_node_memory_available_bytes"
                    && node.memory_available_bytes.is_none()
                {
                    continue;
                }
                let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(v).encode(m)?;
            }
            let counters: [(&str, &str, &PerOp); 2] = [
                (
                    "hako_store_errors",
                    "Failed calls to the store (embedded or etcd), by operation.",
                    &node.store_errors,
                ),
                (
                    "hako_runtime_errors",
                    "Failures of the container runtime on this node, by operation: create, stop, wait, cleanup, pool, restore.",
                    &node.runtime_errors,
                ),
            ];
            for (name, help, rows) in counters {
                let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                for (op, n) in rows {
                    let labels: Labels = vec![("op", op.to_string())];
                    ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
                }
            }
            let m = encoder.encode_descriptor(
                "hako_log_followers",
                "Log streams being followed now (hako app logs --follow).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(node.log_followers as i64).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::NodeScrape;
    use hako_model::{NodeCapacity, StartPath, StopReason};
    use hako_policy::wake::RequestClass;
    use std::time::Duration;

    fn scrape() -> Scrape {
        let m = hako_proxy::metrics::AppMetrics::default();
        m.record_cold(Duration::from_millis(30));
        m.record_warm();
        m.record_status(200);
        m.record_start(Duration::from_millis(20));
        m.record_start_path(StartPath::Pool);
        m.record_stop(StopReason::Idle);
        m.record_class(RequestClass::Visitor);
        m.record_class(RequestClass::Scheduled);
        m.record_class(RequestClass::Ignored);
        m.record_class(RequestClass::Ignored);
        let mut blog = AppScrape {
            name: "blog".into(),
            requests: m.snapshot(),
            parked: 1,
            scale_up: 2,
            schedule_runs_failed: 1,
            ..AppScrape::default()
        };
        blog.instances = STATES.iter().map(|s| (*s, 0)).collect();
        blog.instances.insert("ready", 2);
        Scrape {
            apps: vec![blog],
            node: Some(NodeScrape {
                capacity: NodeCapacity {
                    cpus: 2,
                    memory_bytes: 4 << 30,
                    max_pids: 32768,
                },
                memory_available_bytes: Some(1 << 30),
                instances: 2,
                instance_memory_bytes: 10 << 20,
                instance_cpu_seconds: 1.5,
                store_errors: vec![("get", 0), ("put", 3)],
                runtime_errors: vec![("create", 1)],
                log_followers: 1,
            }),
        }
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn every_family_in_the_text_format_with_per_app_labels() {
        let text = encode(scrape());
        assert_eq!(
            value(&text, r#"hako_requests_total{app="blog",kind="cold"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"hako_requests_total{app="blog",kind="warm"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"hako_responses_total{app="blog",class="2xx"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"hako_instances{app="blog",state="ready"}"#),
            2.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_instance_starts_total{app="blog",path="pool"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_instance_stops_total{app="blog",reason="idle"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_instance_start_failures_total{app="blog",kind="crashed"}"#
            ),
            0.0
        );
        assert_eq!(value(&text, r#"hako_warm_pool_parked{app="blog"}"#), 1.0);
        assert_eq!(
            value(
                &text,
                r#"hako_requests_by_class_total{app="blog",class="visitor"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_requests_by_class_total{app="blog",class="ignored"}"#
            ),
            2.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_autoscaler_decisions_total{app="blog",direction="up"}"#
            ),
            2.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_schedule_runs_total{app="blog",result="failed"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&text, r#"hako_schedule_runs_total{app="blog",result="ok"}"#),
            0.0
        );
        // The 30 ms wait is in the 50 ms bucket, not in the 25 ms one.
        assert_eq!(
            value(
                &text,
                r#"hako_cold_start_wait_seconds_bucket{app="blog",le="0.025"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_cold_start_wait_seconds_bucket{app="blog",le="0.05"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                r#"hako_cold_start_wait_seconds_bucket{app="blog",le="+Inf"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&text, r#"hako_instance_start_seconds_count{app="blog"}"#),
            1.0
        );
        assert_eq!(value(&text, r#"hako_store_errors_total{op="put"}"#), 3.0);
        assert_eq!(
            value(&text, r#"hako_runtime_errors_total{op="create"}"#),
            1.0
        );
        assert_eq!(value(&text, "hako_node_cpus"), 2.0);
        assert_eq!(value(&text, "hako_log_followers"), 1.0);
        assert!(
            text.contains("# TYPE hako_cold_start_wait_seconds histogram"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "the 0.0.4 text format has no EOF marker"
        );
    }

    #[test]
    fn without_the_node_only_apps_are_shown() {
        let mut s = scrape();
        s.node = None;
        let text = encode(s);
        assert!(!text.contains("hako_node_"), "{text}");
        assert!(!text.contains("hako_store_errors"), "{text}");
        assert!(text.contains("hako_requests_total{app=\"blog\""));
    }
}
