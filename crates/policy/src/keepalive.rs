//! The keep-alive policy: when an app's instances stop, recycle, or must be started.
//!
//! The daemon (and the simulator, with the same code) keeps a small view of each instance of an
//! app ([`InstanceView`]) and calls [`KeepAlive::decide`] with the current [`Time`]. Each returned
//! [`Decision`] names an [`Action`] and a [`Reason`] the daemon records as an event. Then it sleeps
//! until [`KeepAlive::next_check`] — or until activity changes the picture: the contract is
//! "call `decide` again at `next_check`, when an instance becomes ready, and when an instance's
//! open requests and connections drop to zero". Between those moments nothing time-driven can
//! change, so no polling tick is needed.
//!
//! Rules, in order:
//! 1. A draining instance stops once it has no open request or upgraded connection
//!    ([`Reason::Drained`]), or when it has drained for `drain_timeout` ([`Reason::DrainTimeout`]).
//!    A ready instance made from an older version of its app ([`InstanceView::outdated`]) gives
//!    way ([`Reason::Outdated`]): when ready instances of the current version exist it drains
//!    (stops if idle) and they take its requests; otherwise, while it is in use (busy or within
//!    its idle timeout) or kept for the minimum, it is replaced — successor first, so no request
//!    meets a moment without a ready instance — and an idle one just stops (the next request
//!    starts the current version).
//! 2. Fewer live (non-draining) instances than `min_instances`: start more ([`Reason::BelowMinimum`]).
//! 3. Max lifetime: a ready instance older than `max_lifetime` is recycled. With `connection_aware`
//!    a busy one (a request or upgraded connection open) drains when another ready instance can
//!    take the new requests (e.g. a successor pre-started by [`crate::prestart`]), and is
//!    replaced successor first when it is the last one; without it, it drains at once. If it
//!    is the last ready instance and it is
//!    still needed (busy, within its idle timeout, or needed for `min_instances`) the decision is
//!    [`Action::Replace`]: start the successor first, drain the old one once the successor is ready.
//! 4. Idle timeout: a ready instance with no open request or upgraded connection whose last
//!    activity is at least `idle_timeout` ago stops — unless that would leave fewer than
//!    `min_instances` ready instances (the oldest stop first). Never while anything is open.
//!
//! How the daemon uses it (one app):
//! ```
//! use std::time::Duration;
//! use hako_policy::{Action, InstanceView, KeepAlive, Time};
//!
//! let policy = KeepAlive::idle(Duration::from_secs(300));
//! // The daemon's view of the app's instances (kept up to date by the proxy's counters).
//! let mut instances = vec![InstanceView::ready(Time::from_secs(0), Time::from_secs(1))];
//! instances[0].last_active = Time::from_secs(40); // last request ended at 40 s
//!
//! let now = Time::from_secs(340); // the daemon's monotonic clock, mapped onto `Time`
//! for d in policy.decide(now, &instances) {
//!     // Record `d.reason` as an event, then act:
//!     match d.action {
//!         Action::Stop { instance } => assert_eq!(instance, 0), // stop routing, stop it
//!         Action::Drain { .. } | Action::Replace { .. } | Action::Start => unreachable!(),
//!     }
//! }
//! // Then sleep until the next check (or until activity: readiness, last request closing).
//! let wake = policy.next_check(Time::from_secs(100), &instances);
//! assert_eq!(wake, Some(Time::from_secs(340)));
//! ```
//! On `Start` and `Replace`, add the new instance to the views as starting
//! ([`InstanceView::starting`]) at once, or the next call asks again; on `Drain`, set
//! `draining_since`.

mod decision;
mod view;

pub use decision::{Action, Decision, Reason};
pub use view::InstanceView;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// Keep-alive settings of one app. In JSON, durations are human strings ("5m") or null:
/// `{"idle_timeout":"5m","max_lifetime":"24h","min_instances":0,"connection_aware":true,"drain_timeout":"10m"}`.
///
/// Defaults ([`KeepAlive::default`]): idle timeout 5 min, max lifetime 24 h, no minimum,
/// connection-aware, drain timeout 10 min. FastContainer's commercial service used 20 min idle and
/// 24 h max lifetime; hako picks 5 min because the service-level model (docs/slo.md) shows it
/// already keeps a site with one request a minute at e^(−5) ≈ 0.7% cold requests, while a rarely
/// visited site costs a quarter of the memory-time it would under 20 min.
/// Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeepAlive {
    /// Stop an instance this long after its last activity; `None`: never stop for idleness
    /// (with `max_lifetime` this is the seed's "fixed lifetime" mode).
    #[serde(with = "hako_model::units::serde_duration_opt")]
    pub idle_timeout: Option<Duration>,
    /// Recycle an instance this long after it started; `None`: no limit.
    #[serde(with = "hako_model::units::serde_duration_opt")]
    pub max_lifetime: Option<Duration>,
    /// Keep at least this many live instances (0: scale to zero).
    pub min_instances: u32,
    /// Wait for open requests and upgraded connections to close before a lifetime recycle.
    pub connection_aware: bool,
    /// Longest wait for open requests/connections when draining or recycling; `None`: forever.
    #[serde(with = "hako_model::units::serde_duration_opt")]
    pub drain_timeout: Option<Duration>,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            idle_timeout: Some(Duration::from_secs(5 * 60)),
            max_lifetime: Some(Duration::from_secs(24 * 3600)),
            min_instances: 0,
            connection_aware: true,
            drain_timeout: Some(Duration::from_secs(10 * 60)),
        }
    }
}

impl KeepAlive {
    /// Idle-timeout policy with no lifetime limit and no minimum (the model's basic case).
    pub fn idle(timeout: Duration) -> KeepAlive {
        KeepAlive {
            idle_timeout: Some(timeout),
            max_lifetime: None,
            ..KeepAlive::default()
        }
    }

    /// The seed's fixed-lifetime mode: every instance lives `lifetime` from its start, then
    /// stops (connection-aware); the next request starts a new one.
    pub fn fixed_lifetime(lifetime: Duration) -> KeepAlive {
        KeepAlive {
            idle_timeout: None,
            max_lifetime: Some(lifetime),
            ..KeepAlive::default()
        }
    }

    /// Always-on: `n` instances kept running, recycled every `max_lifetime` without a gap.
    pub fn always_on(n: u32) -> KeepAlive {
        KeepAlive {
            min_instances: n,
            ..KeepAlive::default()
        }
    }

    /// What to do now with the instances of one app (indices refer to `instances`).
    pub fn decide(&self, now: Time, instances: &[InstanceView]) -> Vec<Decision> {
        self.decide_with(now, instances, &FixedIdle(self.idle_timeout))
    }

    /// [`decide`](Self::decide) with each instance's idle deadline given by the caller
    /// (`deadlines[i]` for `instances[i]`; `None` or missing: no idle stop) instead of
    /// `idle_since + idle_timeout` — e.g. from [`crate::wake::idle_deadline`], so that scheduled
    /// runs and ignored clients do not keep an instance up. Every other rule is unchanged.
    pub fn decide_with_deadlines(
        &self,
        now: Time,
        instances: &[InstanceView],
        deadlines: &[Option<Time>],
    ) -> Vec<Decision> {
        self.decide_with(now, instances, &Given(deadlines))
    }

    /// [`next_check`](Self::next_check) with the idle deadlines given by the caller.
    pub fn next_check_with_deadlines(
        &self,
        now: Time,
        instances: &[InstanceView],
        deadlines: &[Option<Time>],
    ) -> Option<Time> {
        self.next_check_with(now, instances, &Given(deadlines))
    }

    /// The idle deadline the fixed rule gives `inst`: `idle_since + idle_timeout`.
    pub fn idle_deadline(&self, inst: &InstanceView) -> Option<Time> {
        FixedIdle(self.idle_timeout).deadline(0, inst)
    }

    /// [`decide`](Self::decide) with another idle rule (rule 4): the predictive keep-alive
    /// gives each instance its own idle deadline; every other rule stays the same.
    pub(crate) fn decide_with(
        &self,
        now: Time,
        instances: &[InstanceView],
        idle_rule: &dyn IdleRule,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        let min = self.min_instances as usize;

        // Rule 1: draining instances.
        for (i, inst) in instances.iter().enumerate() {
            let Some(since) = inst.draining_since else {
                continue;
            };
            if !inst.is_busy() {
                out.push(Decision::new(Action::Stop { instance: i }, Reason::Drained));
            } else if let Some(limit) = self.drain_timeout {
                let waited = now - since;
                if waited >= limit {
                    let open = inst.in_flight + inst.upgraded;
                    out.push(Decision::new(
                        Action::Stop { instance: i },
                        Reason::DrainTimeout { open, waited },
                    ));
                }
            }
        }

        // Rule 2: the minimum.
        let live = instances
            .iter()
            .filter(|i| i.draining_since.is_none())
            .count();
        // Starting live instances not yet claimed as the successor of a replaced one.
        let mut spare_starting = instances
            .iter()
            .filter(|i| i.draining_since.is_none() && i.ready_at.is_none())
            .count();

        // Rule 1, continued: outdated instances give way. Ready, live instances of the
        // current version take their requests if there are any; otherwise an outdated
        // instance still in use (or kept for the minimum) is replaced successor first.
        let current_ready = instances
            .iter()
            .filter(|i| i.draining_since.is_none() && i.ready_at.is_some() && !i.outdated)
            .count();
        for (i, inst) in instances.iter().enumerate() {
            if !inst.outdated || inst.draining_since.is_some() || inst.ready_at.is_none() {
                continue;
            }
            let in_use = inst.is_busy() || idle_rule.deadline(i, inst).is_some_and(|d| now < d);
            let action = if current_ready == 0 && (min > 0 || in_use) {
                if spare_starting > 0 {
                    spare_starting -= 1; // its successor is starting
                    continue;
                }
                Action::Replace { instance: i }
            } else if inst.is_busy() {
                Action::Drain { instance: i }
            } else {
                Action::Stop { instance: i }
            };
            out.push(Decision::new(action, Reason::Outdated));
        }
        if live < min {
            for _ in live..min {
                out.push(Decision::new(
                    Action::Start,
                    Reason::BelowMinimum {
                        live,
                        min: self.min_instances,
                    },
                ));
            }
        }

        // Candidates for rules 3 and 4: ready, live, current instances, oldest first.
        let mut order: Vec<usize> = (0..instances.len())
            .filter(|&i| {
                let inst = &instances[i];
                inst.draining_since.is_none() && inst.ready_at.is_some() && !inst.outdated
            })
            .collect();
        order.sort_by_key(|&i| (instances[i].started_at, i));
        let mut ready_live = order.len();

        for &i in &order {
            let inst = &instances[i];
            let busy = inst.is_busy();
            let deadline = idle_rule.deadline(i, inst);
            let idle_expired = deadline.is_some_and(|d| now >= d);

            // Rule 3: max lifetime.
            if let Some(lifetime) = self.max_lifetime {
                let age = now - inst.started_at;
                if age >= lifetime {
                    let reason = Reason::MaxLifetime {
                        age,
                        limit: lifetime,
                    };
                    if busy && self.connection_aware {
                        // Another ready instance (e.g. a pre-started successor) takes the new
                        // requests: drain this one, its open requests finish. Otherwise a
                        // successor starts first, then this one drains (never a moment
                        // without a ready instance, never a cut request).
                        if ready_live > min.max(1) {
                            out.push(Decision::new(Action::Drain { instance: i }, reason));
                            ready_live -= 1;
                        } else if spare_starting > 0 {
                            spare_starting -= 1;
                        } else {
                            out.push(Decision::new(Action::Replace { instance: i }, reason));
                        }
                        continue;
                    }
                    let in_use = busy || (deadline.is_some() && !idle_expired);
                    let needed = ready_live <= min || (ready_live == 1 && in_use);
                    if needed {
                        if spare_starting > 0 {
                            // A successor is starting: drain this one once it is ready.
                            spare_starting -= 1;
                        } else {
                            out.push(Decision::new(Action::Replace { instance: i }, reason));
                        }
                        continue;
                    }
                    let action = if busy {
                        Action::Drain { instance: i }
                    } else {
                        Action::Stop { instance: i }
                    };
                    out.push(Decision::new(action, reason));
                    ready_live -= 1;
                    continue;
                }
            }

            // Rule 4: idle timeout (never below the minimum of ready instances).
            if !busy && idle_expired && ready_live > min {
                out.push(Decision::new(
                    Action::Stop { instance: i },
                    idle_rule.reason(now, i, inst),
                ));
                ready_live -= 1;
            }
        }
        out
    }

    /// The earliest time after `now` at which [`decide`](Self::decide) could decide something
    /// new if nothing else happens (no request, no readiness change); `None` when only activity
    /// can change anything.
    pub fn next_check(&self, now: Time, instances: &[InstanceView]) -> Option<Time> {
        self.next_check_with(now, instances, &FixedIdle(self.idle_timeout))
    }

    /// [`next_check`](Self::next_check) under another idle rule.
    pub(crate) fn next_check_with(
        &self,
        now: Time,
        instances: &[InstanceView],
        idle_rule: &dyn IdleRule,
    ) -> Option<Time> {
        let mut next: Option<Time> = None;
        let mut consider = |t: Time| {
            if t > now {
                next = Some(next.map_or(t, |n: Time| n.min(t)));
            }
        };
        for (i, inst) in instances.iter().enumerate() {
            if let Some(since) = inst.draining_since {
                if let Some(limit) = self.drain_timeout {
                    consider(since + limit);
                }
                continue;
            }
            if inst.ready_at.is_none() {
                continue; // readiness is an event the caller reports
            }
            if let Some(lifetime) = self.max_lifetime {
                let end = inst.started_at + lifetime;
                consider(end);
                if let Some(grace) = self.drain_timeout {
                    consider(end + grace);
                }
            }
            if let Some(deadline) = idle_rule.deadline(i, inst) {
                // While busy the deadline is at least this far; re-checked when it comes.
                consider(deadline);
            }
        }
        next
    }
}

/// Idle deadlines given per instance (see [`KeepAlive::decide_with_deadlines`]).
struct Given<'a>(&'a [Option<Time>]);

impl IdleRule for Given<'_> {
    fn deadline(&self, i: usize, _: &InstanceView) -> Option<Time> {
        self.0.get(i).copied().flatten()
    }

    fn reason(&self, now: Time, i: usize, inst: &InstanceView) -> Reason {
        let since = inst.idle_since();
        Reason::Idle {
            idle: now - since,
            timeout: self.deadline(i, inst).map_or(Duration::MAX, |d| d - since),
        }
    }
}

/// When an idle instance stops (rule 4). The fixed keep-alive gives every instance the same
/// idle timeout; the predictive one ([`crate::predict`]) a deadline from the app's history.
pub(crate) trait IdleRule {
    /// When instance `i`, ready and live, stops if it stays idle; `None`: never for idleness.
    fn deadline(&self, i: usize, inst: &InstanceView) -> Option<Time>;
    /// Why it stops, at `now` (at or past its deadline).
    fn reason(&self, now: Time, i: usize, inst: &InstanceView) -> Reason;
}

/// The fixed idle timeout: `idle_since + timeout`.
struct FixedIdle(Option<Duration>);

impl IdleRule for FixedIdle {
    fn deadline(&self, _: usize, inst: &InstanceView) -> Option<Time> {
        self.0.map(|t| inst.idle_since() + t)
    }

    fn reason(&self, now: Time, _: usize, inst: &InstanceView) -> Reason {
        Reason::Idle {
            idle: now - inst.idle_since(),
            timeout: self.0.unwrap_or(Duration::MAX),
        }
    }
}

#[cfg(test)]
mod tests;
