//! The autoscaler in the daemon: every [`SAMPLE_INTERVAL`] it samples the concurrency of each
//! app with instances or starts under way (the only ones it may scale) from the proxy —
//! requests in flight at its instances plus the cold requests the activator holds — feeds
//! the app's [`Autoscaler`] (`hako_policy::autoscale`, the design and its math in
//! docs/autoscaling.md), and applies its decisions through the lifecycle: a scale-up
//! starts instances (each start's event carries the decision, e.g. `scale 1→3: concurrency
//! 12.4 over 2s, target 4`), a scale-down drains the instances [`pick_drain`] chooses (the
//! fewest requests in flight first; never one holding a WebSocket unless it is past its max
//! lifetime). Every decision is a `scale` event with its reason.
//!
//! Who owns what (so the two loops never fight): the keep-alive loop ([`crate::keepalive`])
//! owns the lower end — the minimum, the idle stop of the last instances, recycles and
//! outdated instances. The autoscaler owns the count above it: it never decides while the app
//! has fewer live instances than its minimum (the keep-alive is starting them), ignores its
//! own "below the minimum" answer, never scales below `max(min, 1)` and never from zero (the
//! first instance comes from a request or the minimum). So the idle timeout, not the
//! autoscaler, takes an app to zero, and the autoscaler does not start it again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hako_model::{App, Event, EventKind, StopReason};
use hako_policy::autoscale::{
    AutoscaleConfig, Autoscaler, Sample, ScaleDecision, ScaleReason, pick_drain,
};
use tokio::time::Instant;

use crate::apps::Apps;
use crate::event_log::EventLog;
use crate::lifecycle::{Cause, DRAIN_TIMEOUT, Lifecycle};
use crate::metrics::{ScaleDirection, Telemetry};
use crate::traffic::Traffic;
use crate::views::{AppView, Clock};

/// How often each app's concurrency is sampled (the policy wants 100–250 ms).
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// The loop's state: one autoscaler (its recent samples) per app.
pub(crate) struct AutoscaleLoop {
    pub(crate) apps: Arc<Apps>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// What the proxies see of each instance, and their wait queues.
    pub(crate) traffic: Arc<dyn Traffic>,
    pub(crate) events: Arc<EventLog>,
    /// The policy's time zero.
    pub(crate) epoch: Instant,
    /// Counts the decisions for `/metrics` (`hako_autoscaler_decisions_total`).
    pub(crate) telemetry: Arc<Telemetry>,
    /// Per app storage key.
    scalers: HashMap<String, Autoscaler>,
}

/// The policy's settings for `app`: its target, the documented windows.
fn config_of(app: &App) -> AutoscaleConfig {
    AutoscaleConfig {
        target_concurrency: app.spec.target_concurrency,
        ..AutoscaleConfig::default()
    }
}

impl AutoscaleLoop {
    pub(crate) fn new(
        apps: Arc<Apps>,
        lifecycle: Arc<Lifecycle>,
        traffic: Arc<dyn Traffic>,
        events: Arc<EventLog>,
        epoch: Instant,
        telemetry: Arc<Telemetry>,
    ) -> AutoscaleLoop {
        AutoscaleLoop {
            apps,
            lifecycle,
            traffic,
            events,
            epoch,
            telemetry,
            scalers: HashMap::new(),
        }
    }

    /// Samples and decides every [`SAMPLE_INTERVAL`] until the task is dropped.
    pub(crate) async fn run(mut self) {
        let mut every = tokio::time::interval(SAMPLE_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            self.tick(Instant::now()).await;
        }
    }

    /// One sample of every app at `now`, and what the autoscaler decided from it (applied).
    pub(crate) async fn tick(&mut self, now: Instant) -> Vec<(String, ScaleDecision)> {
        let clock = Clock { epoch: self.epoch };
        let t = clock.time(now);
        // Only apps with instances or starts: the autoscaler never starts the first instance,
        // so an app with neither has nothing to scale (its samples start again with its next
        // instance). A tick costs what runs, not what is stored. Linear in those apps: each
        // app's scaler moves from the last tick's map into this tick's (one hash lookup each);
        // the scalers of apps that are gone or idle stay behind and drop.
        let busy = self.lifecycle.busy();
        let apps = self.apps.of_keys(&busy, false);
        let mut previous = std::mem::take(&mut self.scalers);
        self.scalers.reserve(apps.len());
        let mut decided = Vec::new();
        for app in apps {
            let key = app.storage_key();
            let scaler = previous
                .remove(&key)
                .unwrap_or_else(|| Autoscaler::new(config_of(&app)));
            let scaler = self.scalers.entry(key).or_insert(scaler);
            scaler.config.target_concurrency = app.spec.target_concurrency;
            let view = AppView::read(&self.lifecycle, &*self.traffic, &app, clock, t);
            let in_flight: u32 = view.views.iter().map(|v| v.in_flight).sum();
            let waiting = u32::try_from(self.traffic.waiting(&app.spec.name)).unwrap_or(u32::MAX);
            scaler.observe(t, Sample::new(in_flight, waiting));
            let (live, ready) = view.live_and_ready();
            if live < app.spec.min {
                continue; // the keep-alive is starting the minimum
            }
            let Some(d) = scaler.decide(t, live, ready, app.spec.min, app.spec.max) else {
                continue;
            };
            if matches!(d.reason, ScaleReason::BelowMinimum { .. }) {
                continue;
            }
            self.apply(&app, &view, t, d).await;
            decided.push((app.spec.name.clone(), d));
        }
        decided
    }

    /// Starts or drains instances for `d`, and records the decision.
    async fn apply(&self, app: &App, view: &AppView, t: hako_policy::Time, d: ScaleDecision) {
        let reason = d.to_string();
        let direction = if d.is_up() {
            ScaleDirection::Up
        } else {
            ScaleDirection::Down
        };
        self.telemetry.record_scale(&app.spec.name, direction);
        let words = if d.is_up() {
            let mut started = 0;
            for _ in d.from..d.to {
                if self
                    .lifecycle
                    .start_in_background(app, Cause::Policy(reason.clone()))
                {
                    started += 1;
                }
            }
            format!("{reason}; starting {started}")
        } else {
            // Never fewer ready instances than the new size (or than are ready now): while
            // instances start, the ready ones keep serving until those take over.
            let (_, ready) = view.live_and_ready();
            let n = d
                .from
                .saturating_sub(d.to)
                .min(ready.saturating_sub(d.to.min(ready))) as usize;
            let lifetime = app.spec.max_lifetime.map(|l| l.0);
            let picks = pick_drain(t, &view.views, n, lifetime);
            let mut drained = Vec::new();
            for i in picks {
                if let Some(id) = view.ids.get(i)
                    && self.lifecycle.retire_in_background(
                        id,
                        StopReason::Policy,
                        reason.clone(),
                        DRAIN_TIMEOUT,
                    )
                {
                    drained.push(id.clone());
                }
            }
            let wanted = (d.from - d.to) as usize;
            let mut w = format!("{reason}; draining {}", list(&drained));
            if drained.len() < wanted {
                w.push_str(&format!(
                    " ({} fewer for now: the others hold a WebSocket, or are needed until the starting ones are ready)",
                    wanted - drained.len()
                ));
            }
            w
        };
        self.events
            .record(Event::new(&app.spec.name, EventKind::Scale, words))
            .await;
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests;
