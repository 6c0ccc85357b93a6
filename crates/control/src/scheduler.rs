//! Scheduled wake-ups: each app's schedules (`--cron '*/15 * * * * GET /wp-cron.php'`, or a
//! command) run at their fire times whether the site is awake or not. A request goes through
//! the proxy to the app's first host like a visitor's — starting an instance if none is ready
//! — but marked with the daemon's schedule token, so the proxy counts it apart from visitors
//! and the keep-alive lets an instance it woke stop [`crate::views::QUIET_LINGER`] after it
//! (not after the idle timeout). A command runs in a fresh instance of its own, never routed.
//! Each run is a `scheduled` event with how it ended; `hako app metrics` counts them.
//!
//! Fire times come from the pure `hako_policy::schedule::SchedulePlan` (cron in UTC); the
//! wall clock is read as the daemon's start time plus tokio's clock since then, so the loop
//! is tested on a paused clock. Runs the daemon missed while it was down are not made up;
//! fire times missed while one tick was late collapse into one run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hako_model::{App, Event, EventKind, ScheduleAction, ScheduleEntry};
use hako_policy::schedule::SchedulePlan;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::apps::Apps;
use crate::event_log::EventLog;
use crate::lifecycle::Lifecycle;

/// Longest a scheduled run may take (a request's answer, a command's end).
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest the loop sleeps: new or changed schedules are seen within this.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Sends a scheduled run's request to an app.
#[async_trait]
pub(crate) trait Requester: Send + Sync + 'static {
    /// `method path` to `app` (its first host), marked as a scheduled run; the status.
    async fn request(&self, app: &App, method: &str, path: &str) -> Result<u16, String>;
}

/// Through this daemon's proxy, with the schedule token.
pub(crate) struct ThroughProxy {
    pub(crate) proxy: SocketAddr,
    pub(crate) token: String,
}

#[async_trait]
impl Requester for ThroughProxy {
    async fn request(&self, app: &App, method: &str, path: &str) -> Result<u16, String> {
        let host = app.spec.hosts.first().cloned().unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hako-scheduler\r\n{}: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            hako_proxy::SCHEDULE_HEADER,
            self.token
        );
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(self.proxy).await?;
            s.write_all(head.as_bytes()).await?;
            // The status line; the rest is read and dropped (bounded), then the server closes.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let mut total = 0usize;
            loop {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                total += n;
                if buf.len() < 256 {
                    buf.extend_from_slice(&chunk[..n.min(256)]);
                }
                if total > 64 << 20 {
                    break;
                }
            }
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(RUN_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                format!(
                    "no answer within {}",
                    hako_model::HumanDuration(RUN_TIMEOUT)
                )
            })?
            .map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&buf);
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| "no HTTP answer".to_string())
    }
}

/// Runs of one app's schedules so far (for `hako app metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RunCounts {
    /// Runs that ended well (a 2xx/3xx answer, a command that exited 0).
    pub(crate) ok: u64,
    /// Runs that failed (another status, no answer, a command that failed or timed out).
    pub(crate) failed: u64,
}

/// Counts per app name, shared with the API's metrics.
pub(crate) type RunStats = Arc<Mutex<HashMap<String, RunCounts>>>;

/// The scheduler's state: each app's plan (its next fire times).
pub(crate) struct Scheduler {
    pub(crate) apps: Arc<Apps>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) events: Arc<EventLog>,
    pub(crate) requester: Arc<dyn Requester>,
    pub(crate) stats: RunStats,
    /// Unix time (seconds) at `epoch`.
    pub(crate) epoch_unix: i64,
    pub(crate) epoch: Instant,
    /// Per app storage key: its schedules as planned, and the plan.
    plans: HashMap<String, (Vec<ScheduleEntry>, SchedulePlan)>,
}

/// A run that is due now.
#[derive(Debug, Clone)]
pub(crate) struct DueRun {
    pub(crate) app: App,
    pub(crate) entry: ScheduleEntry,
    /// Earlier fire times that collapsed into this run.
    pub(crate) missed: u32,
}

impl Scheduler {
    pub(crate) fn new(
        apps: Arc<Apps>,
        lifecycle: Arc<Lifecycle>,
        events: Arc<EventLog>,
        requester: Arc<dyn Requester>,
        epoch_unix: i64,
    ) -> Scheduler {
        Scheduler {
            apps,
            lifecycle,
            events,
            requester,
            stats: RunStats::default(),
            epoch_unix,
            epoch: Instant::now(),
            plans: HashMap::new(),
        }
    }

    /// The wall clock in Unix seconds, on tokio's clock.
    fn unix_now(&self, now: Instant) -> i64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs() as i64
    }

    /// Runs due schedules until the task is dropped.
    pub(crate) async fn run(mut self) {
        loop {
            let now = Instant::now();
            for run in self.due(now) {
                let this = self.runner();
                tokio::spawn(async move { this.run_one(run).await });
            }
            tokio::time::sleep(self.sleep(now)).await;
        }
    }

    /// The runs due at `now` (each fire time once); plans follow the apps' schedules.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<DueRun> {
        let unix = self.unix_now(now);
        // Only apps with schedules are copied: a tick costs what is scheduled.
        let apps = self.apps.select(|a| !a.spec.schedules.is_empty());
        let keys: std::collections::HashSet<String> = apps.iter().map(App::storage_key).collect();
        self.plans.retain(|key, _| keys.contains(key));
        let mut out = Vec::new();
        for app in apps {
            let key = app.storage_key();
            if app.spec.schedules.is_empty() {
                self.plans.remove(&key);
                continue;
            }
            let stale = self
                .plans
                .get(&key)
                .is_none_or(|(entries, _)| *entries != app.spec.schedules);
            if stale {
                match SchedulePlan::new(&app.spec.schedules, unix) {
                    Ok(plan) => {
                        self.plans
                            .insert(key.clone(), (app.spec.schedules.clone(), plan));
                    }
                    Err(e) => {
                        // The API checks every expression; an app stored otherwise is skipped.
                        tracing::warn!(app = %app.spec.name, error = %e, "cannot plan schedules");
                        continue;
                    }
                }
            }
            let Some((entries, plan)) = self.plans.get_mut(&key) else {
                continue;
            };
            for d in plan.due(unix) {
                if let Some(entry) = entries.get(d.index) {
                    out.push(DueRun {
                        app: app.clone(),
                        entry: entry.clone(),
                        missed: d.missed,
                    });
                }
            }
        }
        out
    }

    /// How long to sleep after a tick at `now`: until the next fire time, at most a second.
    pub(crate) fn sleep(&self, now: Instant) -> Duration {
        let unix = self.unix_now(now);
        let next = self.plans.values().filter_map(|(_, p)| p.next_wake()).min();
        match next {
            Some(t) if t > unix => Duration::from_secs((t - unix) as u64).min(MAX_SLEEP),
            _ => MAX_SLEEP,
        }
    }

    /// What a run needs, for a task of its own.
    pub(crate) fn runner(&self) -> Runner {
        Runner {
            lifecycle: self.lifecycle.clone(),
            events: self.events.clone(),
            requester: self.requester.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Carries out one run.
#[derive(Clone)]
pub(crate) struct Runner {
    lifecycle: Arc<Lifecycle>,
    events: Arc<EventLog>,
    requester: Arc<dyn Requester>,
    stats: RunStats,
}

impl Runner {
    /// Runs `run` and records it; true if it ended well.
    pub(crate) async fn run_one(&self, run: DueRun) -> bool {
        let what = run.entry.to_string();
        let missed = if run.missed > 0 {
            format!(" ({} earlier fire times missed, run once)", run.missed)
        } else {
            String::new()
        };
        let ok = match &run.entry.action {
            ScheduleAction::Http { method, path } => {
                let started = Instant::now();
                let answer = self.requester.request(&run.app, method, path).await;
                let took = started.elapsed().as_secs_f64() * 1e3;
                let (ok, words) = match answer {
                    Ok(status) => (
                        (200..400).contains(&status),
                        format!("schedule '{what}' ran: {status} in {took:.0} ms{missed}"),
                    ),
                    Err(e) => (false, format!("schedule '{what}' failed: {e}{missed}")),
                };
                self.events
                    .record(Event::new(&run.app.spec.name, EventKind::Scheduled, words))
                    .await;
                ok
            }
            ScheduleAction::Command { command } => self
                .lifecycle
                .run_job(&run.app, &what, command, RUN_TIMEOUT)
                .await
                .is_ok_and(|r| !r.timed_out && r.status.code() == 0),
        };
        let mut stats = self.stats.lock().expect("run stats lock");
        let counts = stats.entry(run.app.spec.name.clone()).or_default();
        if ok {
            counts.ok += 1;
        } else {
            counts.failed += 1;
        }
        ok
    }
}

#[cfg(test)]
mod tests;
