//! The policies' view of an app's instances: the lifecycle's table (started, ready, draining,
//! outdated) joined with what the proxy counts live — open requests and upgraded
//! connections, and activity split into visitors and quiet work (scheduled runs, ignored
//! clients) — on the policies' clock. Shared by the keep-alive loop and the autoscaler. The
//! live counts come through [`Traffic`]: the daemon's router, or the fronts of a cluster.

use std::time::Duration;

use hako_model::App;
use hako_policy::wake::{Activity, RequestClass};
use hako_policy::{InstanceView, Time};
use tokio::time::Instant;

use crate::lifecycle::Lifecycle;
use crate::traffic::Traffic;

/// How long quiet work (a scheduled run, an ignored client's request) holds an instance after
/// it ends: an instance woken only for it stops this long after, whatever the idle timeout.
pub(crate) const QUIET_LINGER: Duration = Duration::from_secs(5);

/// Maps tokio's clock onto the policies' [`Time`] from an epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) epoch: Instant,
}

impl Clock {
    pub(crate) fn time(&self, t: Instant) -> Time {
        Time(t.saturating_duration_since(self.epoch).as_nanos() as u64)
    }
}

/// One app's instances as the policies see them. `ids[i]` is the instance of `views[i]`;
/// `views` continues with one starting view per start asked for whose container does not exist
/// yet (no id).
#[derive(Debug, Default)]
pub(crate) struct AppView {
    pub(crate) ids: Vec<String>,
    pub(crate) views: Vec<InstanceView>,
    /// Who kept each instance busy (per id).
    pub(crate) activity: Vec<Activity>,
    /// Whether each instance is being replaced (its successor is starting).
    pub(crate) replacing: Vec<bool>,
}

impl AppView {
    /// Reads the lifecycle's instances of `app` and the proxy's counts of them at `now`.
    pub(crate) fn read(
        lifecycle: &Lifecycle,
        traffic: &dyn Traffic,
        app: &App,
        clock: Clock,
        now: Time,
    ) -> AppView {
        let seen = traffic.activity(&app.spec.name);
        let current = app.fingerprint();
        let mut out = AppView::default();
        for (id, t) in lifecycle.tracked(app) {
            let snap = seen.get(&id);
            let started_at = clock.time(t.started);
            let ready_at = t.ready.map(|r| clock.time(r));
            let last_active = snap
                .map(|s| clock.time(s.last_active))
                .or(ready_at)
                .unwrap_or(started_at);
            out.views.push(InstanceView {
                started_at,
                ready_at,
                last_active,
                in_flight: snap.map_or(0, |s| s.in_flight),
                upgraded: snap.map_or(0, |s| s.upgraded),
                draining_since: t.draining_since.map(|d| clock.time(d)),
                outdated: t.fingerprint != current,
            });
            let quiet_first = snap
                .and_then(|s| s.first_request)
                .is_some_and(|c| matches!(c, RequestClass::Scheduled | RequestClass::Ignored));
            out.activity.push(Activity {
                woken_for_quiet: t.for_request && quiet_first,
                last_visitor: snap.and_then(|s| s.last_visitor).map(|v| clock.time(v)),
                last_quiet: snap.and_then(|s| s.last_quiet).map(|q| clock.time(q)),
            });
            out.replacing.push(t.replacing);
            out.ids.push(id);
        }
        for _ in 0..lifecycle.launching(app) {
            out.views.push(InstanceView::starting(now));
        }
        out
    }

    /// Each instance's idle deadline: the one the keep-alive's rule (`visitor_deadline`, the
    /// fixed idle timeout or the predictor's) gives its visitors' activity; quiet work holds
    /// it no longer than [`QUIET_LINGER`] past its end.
    pub(crate) fn idle_deadlines(
        &self,
        visitor_deadline: impl Fn(&InstanceView) -> Option<Time>,
    ) -> Vec<Option<Time>> {
        self.views
            .iter()
            .enumerate()
            .map(|(i, view)| match self.activity.get(i) {
                Some(act) => {
                    let visitor = visitor_deadline(&act.visitor_view(view));
                    hako_policy::wake::idle_deadline(visitor, act, view, QUIET_LINGER)
                }
                None => visitor_deadline(view),
            })
            .collect()
    }

    /// Live instances (ready or starting, not draining, not being replaced) and the ready
    /// ones among them, starts asked for included: what the autoscaler counts.
    pub(crate) fn live_and_ready(&self) -> (u32, u32) {
        let mut live = 0;
        let mut ready = 0;
        for (i, v) in self.views.iter().enumerate() {
            let replacing = self.replacing.get(i).copied().unwrap_or(false);
            if v.draining_since.is_some() || replacing {
                continue;
            }
            live += 1;
            if v.ready_at.is_some() {
                ready += 1;
            }
        }
        (live, ready)
    }
}
