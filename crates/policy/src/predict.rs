//! The predictive keep-alive: Shahrad et al.'s hybrid histogram policy ("Serverless in the
//! Wild", ATC'20), sized for hako's seconds-scale idle times and millisecond starts. It knows
//! nothing of the future: it learns each app's idle times from the requests it has seen.
//!
//! Per app, a histogram of idle periods (gaps between requests of at least `linger`; see
//! [`IdleHistogram`]). From it, a [`Window`] measured from the app's last request:
//! - pre-warm at the `head` (5th) percentile minus a margin, keep the instance until the `tail`
//!   (99th) percentile plus a margin, and unload in between (`linger` after the last request).
//!   A cron job every 15 minutes then costs ≈ 8% of its period in memory instead of the whole
//!   idle timeout, and finds a warm instance every time;
//! - when the head is earlier than `min_unload_gap`, no unload: keep alive to the tail;
//! - while the history is thin, mostly beyond 36 h, or too spread (coefficient of variation of
//!   the idle periods ≥ `max_cv`: memoryless traffic has 1), the app's fixed keep-alive
//!   decides, exactly as without the predictor. On memoryless traffic no window can beat the
//!   fixed keep-alive (docs/predictor.md): the fallback is the right answer there, not a defeat.
//!
//! Everything else — draining, `min_instances`, max lifetime, never stopping a busy instance —
//! is the fixed [`KeepAlive`]'s rules, run by the same code.
//!
//! How the daemon uses it (one app; it keeps the [`PredictiveKeepAlive`] as the app's state):
//! ```
//! use std::time::Duration;
//! use hako_policy::predict::{PredictiveKeepAlive, Window};
//! use hako_policy::{Action, InstanceView, KeepAlive, Time};
//!
//! let mut p = PredictiveKeepAlive::new(KeepAlive::idle(Duration::from_secs(300)));
//! // A cron-driven site: a request every 15 minutes (the proxy reports every arrival).
//! for k in 0..12 {
//!     p.observe(Time::from_secs(900 * k));
//! }
//! assert!(matches!(p.window(), Window::Prewarm { .. }));
//! // The instance that served the request at 9900 s was unloaded 2 s later. The daemon sleeps
//! // until the pre-warm is due, a little before the request expected at 10 800 s:
//! let wake = p.next_check(Time::from_secs(9_902), &[]).unwrap();
//! assert!(wake > Time::from_secs(10_700) && wake < Time::from_secs(10_800));
//! let d = p.decide(wake, &[]);
//! assert_eq!(d[0].action, Action::Start); // pre-warm; the keep-alive keeps it past 10 800 s
//! ```
//! The contract is [`KeepAlive`]'s ("call `decide` at `next_check`, when an instance becomes
//! ready, and when its open requests drop to zero") plus: call [`observe`](PredictiveKeepAlive::observe)
//! at every request arrival (before `decide`).

mod histogram;
mod window;

pub use histogram::IdleHistogram;
pub use window::{Fallback, PredictorSettings, Window, window};

use std::time::Duration;

use serde::Serialize;

use crate::keepalive::{Action, Decision, IdleRule, InstanceView, KeepAlive, Reason};
use crate::time::Time;

/// One app's predictive keep-alive: its fixed settings (fallback and every other rule), the
/// predictor's settings, and what it has learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictiveKeepAlive {
    /// The app's keep-alive: idle timeout used as the fallback; lifetime, minimum and drain rules.
    pub keep_alive: KeepAlive,
    settings: PredictorSettings,
    history: IdleHistogram,
    last_request: Option<Time>,
    /// The window the history gives, recomputed when an idle period is recorded.
    window: Window,
}

impl PredictiveKeepAlive {
    /// A predictor with default settings and no history over `keep_alive`.
    pub fn new(keep_alive: KeepAlive) -> PredictiveKeepAlive {
        PredictiveKeepAlive::with_settings(keep_alive, PredictorSettings::default())
    }

    /// A predictor with `settings` and no history.
    pub fn with_settings(
        keep_alive: KeepAlive,
        settings: PredictorSettings,
    ) -> PredictiveKeepAlive {
        let history = IdleHistogram::default();
        PredictiveKeepAlive {
            keep_alive,
            window: window(&history, &settings),
            settings,
            history,
            last_request: None,
        }
    }

    /// The predictor's settings.
    pub fn settings(&self) -> &PredictorSettings {
        &self.settings
    }

    /// Change the settings (the history is kept).
    pub fn set_settings(&mut self, settings: PredictorSettings) {
        self.settings = settings;
        self.window = window(&self.history, &self.settings);
    }

    /// The idle periods seen so far.
    pub fn history(&self) -> &IdleHistogram {
        &self.history
    }

    /// Arrival time of the latest request.
    pub fn last_request(&self) -> Option<Time> {
        self.last_request
    }

    /// A request arrived at `now`: the gap since the previous one is an idle period if it is
    /// at least `linger` long. Arrivals out of order (earlier than the latest) are ignored.
    pub fn observe(&mut self, now: Time) {
        if let Some(last) = self.last_request {
            if now < last {
                return;
            }
            let gap = now - last;
            if gap >= self.settings.linger {
                self.history
                    .record(gap.as_secs_f64(), self.settings.history.max(2));
                self.window = window(&self.history, &self.settings);
            }
        }
        self.last_request = Some(now);
    }

    /// What the history says now.
    pub fn window(&self) -> Window {
        self.window
    }

    /// What to do now with the app's instances (indices refer to `instances`): the fixed
    /// keep-alive's decisions with the learned idle deadlines, plus a pre-warm start.
    pub fn decide(&self, now: Time, instances: &[InstanceView]) -> Vec<Decision> {
        let rule = self.rule();
        let mut out = self.keep_alive.decide_with(now, instances, &rule);
        if let Some(d) = rule.prewarm(now, instances) {
            out.push(d);
        }
        out
    }

    /// When [`decide`](Self::decide) could next decide something if nothing else happens.
    pub fn next_check(&self, now: Time, instances: &[InstanceView]) -> Option<Time> {
        let rule = self.rule();
        let keep = self.keep_alive.next_check_with(now, instances, &rule);
        let pre = rule
            .prewarm_due()
            .filter(|t| *t > now && !has_live(instances));
        match (keep, pre) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// [`decide`](Self::decide) with each instance's idle deadline given by the caller
    /// (`deadlines[i]` for `instances[i]`; `None` or missing: no idle stop) instead of the
    /// learned one — e.g. the learned deadline of its visitors' activity, held no longer than
    /// quiet work needs ([`crate::wake::idle_deadline`]). Reasons and the pre-warm stay the
    /// predictor's.
    pub fn decide_with_deadlines(
        &self,
        now: Time,
        instances: &[InstanceView],
        deadlines: &[Option<Time>],
    ) -> Vec<Decision> {
        let rule = GivenDeadlines {
            learned: self.rule(),
            deadlines,
        };
        let mut out = self.keep_alive.decide_with(now, instances, &rule);
        if let Some(d) = rule.learned.prewarm(now, instances) {
            out.push(d);
        }
        out
    }

    /// [`next_check`](Self::next_check) with the idle deadlines given by the caller.
    pub fn next_check_with_deadlines(
        &self,
        now: Time,
        instances: &[InstanceView],
        deadlines: &[Option<Time>],
    ) -> Option<Time> {
        let rule = GivenDeadlines {
            learned: self.rule(),
            deadlines,
        };
        let keep = self.keep_alive.next_check_with(now, instances, &rule);
        let pre = rule
            .learned
            .prewarm_due()
            .filter(|t| *t > now && !has_live(instances));
        match (keep, pre) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When this instance stops if it stays idle (for simulators that must know when a busy
    /// instance's end matters); `None`: not for idleness.
    pub fn idle_deadline(&self, inst: &InstanceView) -> Option<Time> {
        self.rule().deadline(0, inst)
    }

    fn rule(&self) -> Learned {
        Learned {
            window: self.window(),
            fallback: self.keep_alive.idle_timeout,
            linger: self.settings.linger,
            margin: self.settings.margin.clamp(0.0, 0.5),
            last_request: self.last_request,
        }
    }
}

fn has_live(instances: &[InstanceView]) -> bool {
    instances.iter().any(|i| i.draining_since.is_none())
}

/// The idle rule of the current window.
struct Learned {
    window: Window,
    fallback: Option<Duration>,
    linger: Duration,
    margin: f64,
    last_request: Option<Time>,
}

impl Learned {
    /// When the pre-warm start is due, in pre-warm mode.
    fn prewarm_due(&self) -> Option<Time> {
        match self.window {
            Window::Prewarm { prewarm_after, .. } => Some(self.last_request? + prewarm_after),
            _ => None,
        }
    }

    fn prewarm(&self, now: Time, instances: &[InstanceView]) -> Option<Decision> {
        let Window::Prewarm {
            prewarm_after,
            keep_until,
        } = self.window
        else {
            return None;
        };
        let last = self.last_request?;
        if now < last + prewarm_after || now >= last + keep_until || has_live(instances) {
            return None;
        }
        // The window's start without the margin: when the earliest expected request comes.
        let expected = last + prewarm_after.div_f64(1.0 - self.margin);
        Some(Decision::new(
            Action::Start,
            Reason::Prewarm {
                expected_in: expected - now,
            },
        ))
    }

    /// An instance started by the pre-warm for the current idle period (it started well after
    /// the last request, which a request-started instance never does).
    fn prewarmed(&self, inst: &InstanceView, prewarm_after: Duration) -> bool {
        self.last_request
            .is_some_and(|last| inst.started_at >= last + prewarm_after / 2)
    }
}

/// The learned rule's reasons with deadlines the caller gives.
struct GivenDeadlines<'a> {
    learned: Learned,
    deadlines: &'a [Option<Time>],
}

impl IdleRule for GivenDeadlines<'_> {
    fn deadline(&self, i: usize, _: &InstanceView) -> Option<Time> {
        self.deadlines.get(i).copied().flatten()
    }

    fn reason(&self, now: Time, i: usize, inst: &InstanceView) -> Reason {
        self.learned.reason(now, i, inst)
    }
}

impl IdleRule for Learned {
    fn deadline(&self, _: usize, inst: &InstanceView) -> Option<Time> {
        match self.window {
            Window::Fixed { .. } => self.fallback.map(|t| inst.idle_since() + t),
            Window::KeepAlive { keep_alive } => Some(inst.idle_since() + keep_alive),
            Window::Prewarm {
                prewarm_after,
                keep_until,
            } => Some(match self.last_request {
                Some(last) if self.prewarmed(inst, prewarm_after) => last + keep_until,
                _ => inst.idle_since() + self.linger,
            }),
        }
    }

    fn reason(&self, now: Time, _: usize, inst: &InstanceView) -> Reason {
        let idle = now - inst.idle_since();
        match self.window {
            Window::Fixed { .. } => Reason::Idle {
                idle,
                timeout: self.fallback.unwrap_or(Duration::MAX),
            },
            Window::KeepAlive { keep_alive } => Reason::PredictedIdle {
                idle,
                window_start: Duration::ZERO,
                window_end: keep_alive,
            },
            Window::Prewarm {
                prewarm_after,
                keep_until,
            } => Reason::PredictedIdle {
                idle,
                window_start: prewarm_after,
                window_end: keep_until,
            },
        }
    }
}

#[cfg(test)]
mod tests;
