//! What `GET /metrics` shows, in the Prometheus text format (0.0.4) written by the
//! `prometheus-client` crate: at each scrape the daemon reads its live figures into a
//! [`Scrape`] — the proxy's per-app counters and histograms, the lifecycle's instances by
//! state, the agent's warm pools, memory use and runtime errors, the store's errors — and
//! [`exposition`] encodes it. Nothing is kept twice: the counters live where they are counted.
//!
//! Labels are per app (and per kind, state, reason), never per instance: a host with many
//! short-lived instances keeps a bounded number of series.

mod exposition;
pub(crate) mod store_errors;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hako_api::Scope;
use hako_model::{InstanceInfo, InstanceState, NodeCapacity};
use hako_proxy::AppMetricsSnapshot;

pub(crate) use exposition::encode;
pub(crate) use store_errors::{CountedStore, StoreErrors};

/// Which way an autoscaler decision went (`hako_autoscaler_decisions_total{direction}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ScaleDirection {
    Up,
    Down,
}

impl ScaleDirection {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ScaleDirection::Up => "up",
            ScaleDirection::Down => "down",
        }
    }
}

/// Figures the daemon counts itself (not the proxy, lifecycle or agent).
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    /// Failed store calls by operation.
    pub(crate) store_errors: std::sync::Arc<StoreErrors>,
    /// Log streams being followed now.
    pub(crate) log_followers: AtomicU64,
    /// The autoscaler's decisions per app and direction ([`Telemetry::record_scale`]).
    scale_decisions: Mutex<BTreeMap<(String, ScaleDirection), u64>>,
}

impl Telemetry {
    /// One autoscaler decision for `app`.
    pub(crate) fn record_scale(&self, app: &str, direction: ScaleDirection) {
        *self
            .scale_decisions
            .lock()
            .expect("scale decisions lock")
            .entry((app.to_string(), direction))
            .or_default() += 1;
    }

    pub(crate) fn scale_decisions(&self, app: &str, direction: ScaleDirection) -> u64 {
        self.scale_decisions
            .lock()
            .expect("scale decisions lock")
            .get(&(app.to_string(), direction))
            .copied()
            .unwrap_or(0)
    }

    /// A follower started; it counts until the returned guard is dropped.
    pub(crate) fn follower(self: &std::sync::Arc<Self>) -> FollowerGuard {
        self.log_followers.fetch_add(1, Relaxed);
        FollowerGuard(self.clone())
    }
}

/// Counts one log follower while it lives.
pub(crate) struct FollowerGuard(std::sync::Arc<Telemetry>);

impl Drop for FollowerGuard {
    fn drop(&mut self) {
        self.0.log_followers.fetch_sub(1, Relaxed);
    }
}

/// One app's figures at a scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppScrape {
    pub(crate) name: String,
    /// The proxy's counters and histograms (zeros for an app it does not route yet).
    pub(crate) requests: AppMetricsSnapshot,
    /// Instances by state.
    pub(crate) instances: BTreeMap<&'static str, u64>,
    /// Containers parked in its warm pool.
    pub(crate) parked: u64,
    /// Memory its instances' cgroups hold now, in bytes.
    pub(crate) memory_bytes: u64,
    /// Autoscaler decisions up and down.
    pub(crate) scale_up: u64,
    pub(crate) scale_down: u64,
    /// Runs of its schedules that ended well, and that failed.
    pub(crate) schedule_runs_ok: u64,
    pub(crate) schedule_runs_failed: u64,
}

/// The node's own figures at a scrape.
#[derive(Debug, Clone)]
pub(crate) struct NodeScrape {
    pub(crate) capacity: NodeCapacity,
    /// `MemAvailable` of the host, in bytes, when it can be read.
    pub(crate) memory_available_bytes: Option<u64>,
    /// Every instance on the node.
    pub(crate) instances: u64,
    /// Memory of every instance's cgroup, in bytes.
    pub(crate) instance_memory_bytes: u64,
    /// CPU time every running instance used so far, in seconds.
    pub(crate) instance_cpu_seconds: f64,
    pub(crate) store_errors: Vec<(&'static str, u64)>,
    pub(crate) runtime_errors: Vec<(&'static str, u64)>,
    pub(crate) log_followers: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape {
    pub(crate) apps: Vec<AppScrape>,
    pub(crate) node: Option<NodeScrape>,
}

/// The label of an instance state.
pub(crate) fn state_label(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Starting => "starting",
        InstanceState::Ready => "ready",
        InstanceState::Draining => "draining",
    }
}

/// Every instance state's label, in a stable order.
pub(crate) const STATES: [&str; 3] = ["starting", "ready", "draining"];

/// Where a scrape reads from.
pub(crate) struct Sources<'a> {
    pub(crate) scope: &'a Scope,
    pub(crate) router: &'a hako_proxy::Router,
    pub(crate) instances: Vec<InstanceInfo>,
    /// This host's agent, when it runs instances (a cluster front has none).
    pub(crate) agent: Option<&'a hako_agent::Agent>,
    /// What one instance can get at most.
    pub(crate) capacity: NodeCapacity,
    /// App name → its storage key (for the agent's per-app figures).
    pub(crate) keys: BTreeMap<String, String>,
    pub(crate) telemetry: &'a Telemetry,
    /// App name → runs of its schedules (ok, failed) on this daemon.
    pub(crate) schedule_runs: BTreeMap<String, (u64, u64)>,
}

/// Reads every figure `scope` may see.
pub(crate) fn gather(src: Sources<'_>) -> Scrape {
    let metrics = src.router.all_metrics();
    let mut memory_by_id = BTreeMap::new();
    let mut cpu_ns = 0u64;
    for i in &src.instances {
        if let Some(s) = src.agent.and_then(|a| a.stats(&i.id)) {
            memory_by_id.insert(i.id.clone(), s.memory_current);
            cpu_ns += s.cpu_usage_ns;
        }
    }
    let apps = src
        .scope
        .apps
        .iter()
        .map(|name| {
            let mine: Vec<&InstanceInfo> =
                src.instances.iter().filter(|i| &i.app == name).collect();
            let mut instances: BTreeMap<&'static str, u64> =
                STATES.iter().map(|s| (*s, 0)).collect();
            for i in &mine {
                *instances.entry(state_label(i.state)).or_default() += 1;
            }
            let parked = match (src.keys.get(name), src.agent) {
                (Some(k), Some(agent)) => agent.pooled(k).len() as u64,
                _ => 0,
            };
            AppScrape {
                name: name.clone(),
                requests: metrics
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| hako_proxy::metrics::AppMetrics::default().snapshot()),
                instances,
                parked,
                memory_bytes: mine.iter().filter_map(|i| memory_by_id.get(&i.id)).sum(),
                scale_up: src.telemetry.scale_decisions(name, ScaleDirection::Up),
                scale_down: src.telemetry.scale_decisions(name, ScaleDirection::Down),
                schedule_runs_ok: src.schedule_runs.get(name).map_or(0, |r| r.0),
                schedule_runs_failed: src.schedule_runs.get(name).map_or(0, |r| r.1),
            }
        })
        .collect();
    let node = src.scope.node.then(|| NodeScrape {
        capacity: src.capacity,
        memory_available_bytes: memory_available(),
        instances: src.instances.len() as u64,
        instance_memory_bytes: memory_by_id.values().sum(),
        instance_cpu_seconds: cpu_ns as f64 / 1e9,
        store_errors: src.telemetry.store_errors.read(),
        runtime_errors: src
            .agent
            .map(|a| {
                a.runtime_errors()
                    .into_iter()
                    .map(|(op, n)| (op.label(), n))
                    .collect()
            })
            .unwrap_or_default(),
        log_followers: src.telemetry.log_followers.load(Relaxed),
    });
    Scrape { apps, node }
}

/// The host's `MemAvailable`, in bytes.
fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
