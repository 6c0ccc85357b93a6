//! Which requests keep an app awake. Visitors do. Two kinds of "quiet" work do not:
//! - **scheduled runs** (an app's cron entries, [`crate::schedule`]): hako wakes the app for
//!   them, counts them apart from visitors, and they hold an instance only for what the run
//!   needs — its own duration plus `linger`;
//! - **ignored clients** (uptime checkers, probes, bots by User-Agent or path, from
//!   [`IgnoredClients`]): answered like anyone (waking the app if asleep), but they hold the
//!   instance no longer than a scheduled run does.
//!
//! The daemon keeps an [`Activity`] per instance (the proxy [`classify`]s each request), asks
//! its keep-alive policy for the deadline the *visitor* activity gives
//! ([`Activity::visitor_view`] → `KeepAlive::idle_deadline` or
//! `PredictiveKeepAlive::idle_deadline`), combines it with the quiet work by [`idle_deadline`],
//! and passes the deadlines to `KeepAlive::decide_with_deadlines`. Quiet work never shortens a
//! deadline: an instance started for visitors or capacity keeps its normal idle timeout.
//!
//! ```
//! use std::time::Duration;
//! use hako_policy::wake::{Activity, RequestClass, idle_deadline};
//! use hako_policy::{InstanceView, KeepAlive, Time};
//!
//! let ka = KeepAlive::idle(Duration::from_secs(300));
//! // Woken at 0 by the 15-minute wp-cron run, ready at 0.14 s, the run ended at 2 s.
//! let inst = InstanceView::ready(Time::ZERO, Time::from_nanos(140_000_000));
//! let mut act = Activity { woken_for_quiet: true, ..Activity::default() };
//! act.record(RequestClass::Scheduled, Time::from_secs(2));
//! let visitor = ka.idle_deadline(&act.visitor_view(&inst));
//! let linger = Duration::from_secs(5);
//! assert_eq!(idle_deadline(visitor, &act, &inst, linger), Some(Time::from_secs(7)));
//! // A visitor came at 60 s: from then on the idle timeout counts from the visitor.
//! act.record(RequestClass::Visitor, Time::from_secs(60));
//! let visitor = ka.idle_deadline(&act.visitor_view(&inst));
//! assert_eq!(idle_deadline(visitor, &act, &inst, linger), Some(Time::from_secs(360)));
//! ```

use std::time::Duration;

use hako_model::IgnoredClients;
use serde::Serialize;

use crate::keepalive::InstanceView;
use crate::time::Time;

/// Who a request is for, as far as keeping the app awake goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestClass {
    /// A visitor: keeps the app awake for its idle timeout.
    Visitor,
    /// A run of one of the app's schedules.
    Scheduled,
    /// A client on the app's ignored list.
    Ignored,
}

impl RequestClass {
    /// Whether this request restarts the idle timer.
    pub fn keeps_awake(self) -> bool {
        self == RequestClass::Visitor
    }
}

/// Classify a request: `scheduled` when hako itself sent it for a schedule; otherwise ignored
/// when its User-Agent contains one of `ignored.user_agents` (ASCII case-insensitive) or its
/// path (the part before `?`) matches one of `ignored.paths` (exactly, or by prefix for a
/// pattern ending in `*`); else a visitor.
pub fn classify(
    user_agent: Option<&str>,
    path: &str,
    scheduled: bool,
    ignored: &IgnoredClients,
) -> RequestClass {
    if scheduled {
        return RequestClass::Scheduled;
    }
    if let Some(ua) = user_agent {
        let ua = ua.to_ascii_lowercase();
        if ignored
            .user_agents
            .iter()
            .any(|p| !p.is_empty() && ua.contains(&p.to_ascii_lowercase()))
        {
            return RequestClass::Ignored;
        }
    }
    let path = path.split('?').next().unwrap_or(path);
    let path_matches = |p: &String| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == p,
    };
    if ignored.paths.iter().any(path_matches) {
        return RequestClass::Ignored;
    }
    RequestClass::Visitor
}

/// What an instance has done, split by who asked (kept by the daemon per instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Activity {
    /// The instance was started for quiet work (a schedule's run or an ignored client's cold
    /// request), not for visitors or capacity.
    pub woken_for_quiet: bool,
    /// Latest start or end of a visitor's request on it.
    pub last_visitor: Option<Time>,
    /// Latest start or end of quiet work on it.
    pub last_quiet: Option<Time>,
}

impl Activity {
    /// Note a request of `class` starting or ending at `at`.
    pub fn record(&mut self, class: RequestClass, at: Time) {
        let slot = if class.keeps_awake() {
            &mut self.last_visitor
        } else {
            &mut self.last_quiet
        };
        *slot = Some(slot.map_or(at, |t| t.max(at)));
    }

    /// `inst` as the keep-alive should see it: only visitor activity counts as activity.
    pub fn visitor_view(&self, inst: &InstanceView) -> InstanceView {
        InstanceView {
            last_active: self.last_visitor.unwrap_or(inst.started_at),
            ..*inst
        }
    }
}

/// The instance's idle deadline: the one its visitor activity gives (`visitor_deadline`, from
/// the keep-alive policy; `None`: it never stops for idleness), and no earlier than `linger`
/// after its latest quiet work. An instance woken for quiet work that no visitor has used stops
/// `linger` after that work (or after it became ready), whatever the idle timeout.
pub fn idle_deadline(
    visitor_deadline: Option<Time>,
    activity: &Activity,
    inst: &InstanceView,
    linger: Duration,
) -> Option<Time> {
    let ready = inst.ready_at.unwrap_or(inst.started_at);
    let quiet_end = activity.last_quiet.map(|q| q.max(ready) + linger);
    if activity.woken_for_quiet && activity.last_visitor.is_none() {
        return Some(quiet_end.unwrap_or(ready + linger));
    }
    let visitor = visitor_deadline?;
    Some(quiet_end.map_or(visitor, |q| q.max(visitor)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeepAlive;
    use crate::keepalive::Action;

    fn at(secs: u64) -> Time {
        Time::from_secs(secs)
    }

    #[test]
    fn classifies_by_schedule_user_agent_and_path() {
        let ignored = IgnoredClients {
            user_agents: vec!["UptimeRobot".into()],
            paths: vec!["/healthz".into(), "/status/*".into()],
        };
        let c = |ua: Option<&str>, path: &str| classify(ua, path, false, &ignored);
        assert_eq!(
            c(Some("Mozilla/5.0+(compatible; uptimerobot/2.0)"), "/"),
            RequestClass::Ignored
        );
        assert_eq!(
            c(Some("Mozilla/5.0 Firefox"), "/healthz?x=1"),
            RequestClass::Ignored
        );
        assert_eq!(c(None, "/status/db"), RequestClass::Ignored);
        assert_eq!(c(None, "/healthz/more"), RequestClass::Visitor);
        assert_eq!(c(None, "/status"), RequestClass::Visitor);
        assert_eq!(c(Some("curl/8"), "/"), RequestClass::Visitor);
        assert_eq!(
            classify(Some("UptimeRobot"), "/", true, &ignored),
            RequestClass::Scheduled
        );
        assert!(!RequestClass::Ignored.keeps_awake());
        assert_eq!(
            classify(Some("x"), "/", false, &IgnoredClients::default()),
            RequestClass::Visitor
        );
    }

    #[test]
    fn quiet_work_holds_an_instance_only_for_what_it_needs() {
        let ka = KeepAlive::idle(Duration::from_secs(300));
        let linger = Duration::from_secs(5);
        // Woken by an uptime check at 0 (ready at 1), answered by 1.
        let inst = InstanceView::ready(at(0), at(1));
        let mut act = Activity {
            woken_for_quiet: true,
            ..Activity::default()
        };
        act.record(RequestClass::Ignored, at(1));
        let d = idle_deadline(
            ka.idle_deadline(&act.visitor_view(&inst)),
            &act,
            &inst,
            linger,
        );
        assert_eq!(d, Some(at(6)));
        // The keep-alive applies it: stopped at 6 s, not at 301 s.
        let deadlines = [d];
        assert!(
            ka.decide_with_deadlines(at(5), &[inst], &deadlines)
                .is_empty()
        );
        let stop = ka.decide_with_deadlines(at(6), &[inst], &deadlines);
        assert_eq!(stop[0].action, Action::Stop { instance: 0 });
        assert_eq!(
            ka.next_check_with_deadlines(at(2), &[inst], &deadlines),
            Some(at(6))
        );

        // An instance kept for visitors: a scheduled run neither shortens nor (unless it ends
        // late) extends its idle timeout.
        let mut act = Activity::default();
        act.record(RequestClass::Visitor, at(100));
        act.record(RequestClass::Scheduled, at(200));
        let visitor = ka.idle_deadline(&act.visitor_view(&inst));
        assert_eq!(visitor, Some(at(400)));
        assert_eq!(idle_deadline(visitor, &act, &inst, linger), Some(at(400)));
        act.record(RequestClass::Scheduled, at(398));
        assert_eq!(idle_deadline(visitor, &act, &inst, linger), Some(at(403)));
        // Never stopping for idleness stays never (unless woken only for quiet work).
        assert_eq!(idle_deadline(None, &act, &inst, linger), None);
        // Started for capacity, touched only by a probe: its normal idle timeout.
        let mut act = Activity::default();
        act.record(RequestClass::Ignored, at(50));
        let visitor = ka.idle_deadline(&act.visitor_view(&inst));
        assert_eq!(idle_deadline(visitor, &act, &inst, linger), Some(at(301)));
    }
}
