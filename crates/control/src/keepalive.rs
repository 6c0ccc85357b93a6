//! The keep-alive loop: applies the pure keep-alive policy (`hako_policy`) to every app's
//! instances — the lifecycle's view of them plus the proxy's live counters (open requests,
//! upgraded connections, last activity of visitors and of quiet work, [`crate::views`]) — and
//! asks the lifecycle to act.
//!
//! Who decides what: the keep-alive owns an app's lower end and every instance's own life —
//! the minimum, idle stops (never below the minimum), lifetime recycles and outdated
//! instances (both successor first). The autoscaler ([`crate::autoscale`]) owns the number
//! of instances above one: it adds instances under load and drains them when the load is
//! gone, never below `max(min, 1)`; it never starts the first instance (a request or the
//! minimum does) and never stops the last (the idle timeout does). It sleeps exactly
//! until the policy's next check, or until something changes.
//!
//! Time is tokio's clock, mapped onto the policy's [`Time`] from an epoch: the loop's timing is
//! tested on a paused clock.

use std::sync::Arc;
use std::time::Duration;

use hako_model::App;
use hako_policy::{Action, KeepAlive, Time};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::apps::Apps;
use crate::lifecycle::{Cause, DRAIN_TIMEOUT, Lifecycle};
use crate::predict::Predictors;
use crate::traffic::Traffic;
use crate::views::{AppView, Clock};

/// The policy of one app, from its spec.
pub(crate) fn policy_of(app: &App) -> KeepAlive {
    KeepAlive {
        idle_timeout: Some(app.spec.idle_timeout.0),
        max_lifetime: app.spec.max_lifetime.map(|d| d.0),
        min_instances: app.spec.min,
        connection_aware: true,
        drain_timeout: Some(DRAIN_TIMEOUT),
    }
}

/// What the loop reads and who it asks.
pub(crate) struct KeepAliveLoop {
    pub(crate) apps: Arc<Apps>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// What the proxies see of each instance.
    pub(crate) traffic: Arc<dyn Traffic>,
    pub(crate) wake: Arc<Notify>,
    /// The policy's time zero.
    pub(crate) epoch: Instant,
    /// The predictive keep-alive of apps that ask for it, and pre-start (`predict.rs`).
    pub(crate) predictors: Arc<Predictors>,
}

impl KeepAliveLoop {
    fn time(&self, t: Instant) -> Time {
        Time(t.saturating_duration_since(self.epoch).as_nanos() as u64)
    }

    /// Runs until the task is dropped.
    pub(crate) async fn run(self) {
        loop {
            let now = Instant::now();
            let next = self.tick(now);
            let sleep = next
                .map(|t| t.saturating_since(self.time(Instant::now())))
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(5), Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// One pass over the apps at `now` (those it may act on): decide, ask the lifecycle, and return the earliest
    /// time a decision could change without anything happening. Idle deadlines count visitors
    /// only: scheduled runs and ignored clients hold an instance no longer than they need
    /// ([`crate::views::QUIET_LINGER`]).
    pub(crate) fn tick(&self, now: Instant) -> Option<Time> {
        let now_t = self.time(now);
        let clock = Clock { epoch: self.epoch };
        let mut next: Option<Time> = None;
        // Only apps the policy may act on: with instances or starts (idle stops, recycles),
        // a minimum to keep, or a predictor that may pre-warm. An app with none of these has
        // no decision to take, and skipping it keeps a tick proportional to what runs.
        let busy = self.lifecycle.busy();
        let apps = self.apps.of_keys(&busy, true);
        self.predictors.retain(&apps);
        for app in apps {
            let policy = policy_of(&app);
            let view = AppView::read(&self.lifecycle, &*self.traffic, &app, clock, now_t);
            let ids = &view.ids;
            let (decisions, next_app) = self.predictors.decide(
                &app,
                &policy,
                self.traffic.as_ref(),
                now_t,
                |t| clock.time(t),
                &view,
            );
            for d in decisions {
                let reason = d.reason.to_string();
                match d.action {
                    Action::Stop { instance } | Action::Drain { instance } => {
                        if let Some(id) = ids.get(instance) {
                            self.lifecycle.retire_in_background(
                                id,
                                d.reason.stop_reason(),
                                reason,
                                DRAIN_TIMEOUT,
                            );
                        }
                    }
                    Action::Start => {
                        self.lifecycle
                            .start_in_background(&app, Cause::Policy(reason));
                    }
                    Action::Replace { instance } => {
                        if let Some(id) = ids.get(instance) {
                            self.lifecycle.replace_in_background(
                                &app,
                                id,
                                d.reason.stop_reason(),
                                reason,
                            );
                        }
                    }
                }
            }
            if let Some(t) = next_app {
                next = Some(next.map_or(t, |n: Time| n.min(t)));
            }
        }
        next
    }
}

#[cfg(test)]
mod tests;
