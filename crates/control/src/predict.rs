//! The keep-alive loop's policies: the fixed idle timeout, the predictive keep-alive of apps
//! with `keep_alive: predictive` (`hako_policy::predict`, docs/predictor.md) and the
//! pre-start of every app (`hako_policy::prestart`). Either keep-alive's idle deadlines count
//! visitors only: scheduled runs and ignored clients hold an instance no longer than they need
//! ([`crate::views::AppView::idle_deadlines`]), and the predictor learns from visitors' idle
//! periods only (the proxy reports no others).
//!
//! Per predictive app, a [`PredictiveKeepAlive`] kept across passes of the loop: each pass
//! first feeds it the app's idle periods the proxy saw since the last pass (each period's two
//! ends, then the latest arrival: the same as feeding every arrival, see
//! `hako_proxy::metrics::IdlePeriods`), then asks it instead of the fixed [`KeepAlive`]. Its
//! pre-warm starts are the lifecycle's `Cause::Policy` starts with the decision's reason
//! ("pre-warm: a request is expected in …"), counted for `hako slo APP`.
//!
//! Pre-start, for every app: an instance nearing its max lifetime while its app has traffic
//! gets its successor started `lead` (10 s) before, so that it is ready when the old one
//! leaves; the keep-alive then retires the old one at once.

use std::collections::HashMap;
use std::sync::Mutex;

use hako_model::{App, KeepAliveMode};
use hako_policy::predict::PredictiveKeepAlive;
use hako_policy::prestart::PreStart;
use hako_policy::{Decision, InstanceView, KeepAlive, Reason, Time};
use tokio::time::Instant;

use crate::traffic::Traffic;
use crate::views::AppView;

/// What `hako slo APP` shows of an app's predictor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PredictorState {
    /// What it learned, in words ("unload after each visit, pre-warm 881.2s after the last
    /// request, keep until 937.3s", or why the idle timeout still decides).
    pub window: String,
    /// Idle periods it has seen.
    pub idle_periods: u64,
    /// Instances it started ahead of an expected request.
    pub pre_warm_starts: u64,
}

struct Learner {
    /// The app (by storage key) it learned.
    uid: String,
    predictor: PredictiveKeepAlive,
    pre_warm_starts: u64,
}

/// The predictors of the predictive apps, and the pre-start rule.
#[derive(Default)]
pub(crate) struct Predictors {
    apps: Mutex<HashMap<String, Learner>>,
    prestart: PreStart,
}

impl Predictors {
    /// The decisions for `app`'s instances (`view`) at `now`, and when to look again:
    /// the predictive or fixed keep-alive's, plus pre-start's. `time` maps tokio's clock onto
    /// the policy's.
    pub(crate) fn decide(
        &self,
        app: &App,
        policy: &KeepAlive,
        traffic: &dyn Traffic,
        now: Time,
        time: impl Fn(Instant) -> Time,
        view: &AppView,
    ) -> (Vec<Decision>, Option<Time>) {
        let views: &[InstanceView] = &view.views;
        let (mut decisions, mut next) = match app.spec.keep_alive {
            KeepAliveMode::Fixed => {
                self.apps
                    .lock()
                    .expect("predictors lock")
                    .remove(&app.spec.name);
                let deadlines = view.idle_deadlines(|v| policy.idle_deadline(v));
                (
                    policy.decide_with_deadlines(now, views, &deadlines),
                    policy.next_check_with_deadlines(now, views, &deadlines),
                )
            }
            KeepAliveMode::Predictive => {
                let mut apps = self.apps.lock().expect("predictors lock");
                let learner = apps
                    .entry(app.spec.name.clone())
                    .or_insert_with(|| Learner {
                        uid: app.storage_key(),
                        predictor: PredictiveKeepAlive::new(policy.clone()),
                        pre_warm_starts: 0,
                    });
                if learner.uid != app.storage_key() {
                    // Another app of the same name: it learns from scratch.
                    *learner = Learner {
                        uid: app.storage_key(),
                        predictor: PredictiveKeepAlive::new(policy.clone()),
                        pre_warm_starts: 0,
                    };
                }
                learner.predictor.keep_alive = policy.clone();
                let seen = traffic.idle_periods(&app.spec.name);
                for (from, to) in seen.periods {
                    learner.predictor.observe(time(from));
                    learner.predictor.observe(time(to));
                }
                if let Some(last) = seen.last_arrival {
                    learner.predictor.observe(time(last));
                }
                let predictor = &learner.predictor;
                let deadlines = view.idle_deadlines(|v| predictor.idle_deadline(v));
                let d = predictor.decide_with_deadlines(now, views, &deadlines);
                let next = predictor.next_check_with_deadlines(now, views, &deadlines);
                learner.pre_warm_starts += d
                    .iter()
                    .filter(|d| matches!(d.reason, Reason::Prewarm { .. }))
                    .count() as u64;
                (d, next)
            }
        };
        decisions.extend(self.prestart.decide(now, views, policy));
        if let Some(t) = self.prestart.next_check(now, views, policy) {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        (decisions, next)
    }

    /// What the predictor of `app` learned, if it is predictive and has run.
    pub(crate) fn state(&self, app: &str) -> Option<PredictorState> {
        let apps = self.apps.lock().expect("predictors lock");
        let l = apps.get(app)?;
        Some(PredictorState {
            window: l.predictor.window().to_string(),
            idle_periods: u64::from(l.predictor.history().total()),
            pre_warm_starts: l.pre_warm_starts,
        })
    }

    /// Forgets the predictors of apps that are gone.
    pub(crate) fn retain(&self, current: &[App]) {
        self.apps
            .lock()
            .expect("predictors lock")
            .retain(|name, l| {
                current
                    .iter()
                    .any(|a| &a.spec.name == name && a.storage_key() == l.uid)
            });
    }
}
