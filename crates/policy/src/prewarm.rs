//! Pre-warm: start an instance shortly before a request is expected, so it finds a ready one.
//!
//! Two simple hooks, both pure like [`KeepAlive`](crate::KeepAlive):
//! - [`Prewarm::AfterIdle`]: Shahrad et al.'s (ATC'20) "pre-warming window" for apps whose
//!   idle times cluster: once per idle period, `after` the app's last request, start an
//!   instance if none is live. The keep-alive's idle timeout then keeps it for its window
//!   (ready time + idle timeout) unless a request arrives.
//! - [`Prewarm::Predicted`]: an outside predictor (a schedule, a histogram, a model) supplies the
//!   time of the next expected request; an instance is started `lead` before it.
//!
//! A pre-started instance is a normal instance: it serves, idles and stops by the keep-alive rules.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keepalive::{Action, Decision, InstanceView, Reason};
use crate::time::Time;

/// Pre-warm setting of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prewarm {
    /// No pre-warm: only requests (and `min_instances`) start instances.
    #[default]
    None,
    /// Start an instance `after` the last request when none is live, once per idle period.
    /// Choose `after` longer than the idle timeout plus the request time: otherwise the
    /// instance is still up at `after`, and the pre-start happens at the next policy call after
    /// it stops, which only stretches the keep-alive.
    AfterIdle {
        /// Delay after the last request.
        after: Duration,
    },
    /// Start an instance `lead` before the predicted next request when none is live.
    Predicted {
        /// How long before the predicted request to start.
        lead: Duration,
    },
}

/// What pre-warm needs to know about an app.
#[derive(Debug, Clone, Copy)]
pub struct AppView<'a> {
    /// The app's instances (the same slice the keep-alive sees).
    pub instances: &'a [InstanceView],
    /// Arrival time of the app's latest request, if any.
    pub last_request: Option<Time>,
    /// When the app's latest instance start (for any reason) began, if any.
    pub last_start: Option<Time>,
    /// The predictor's expected time of the next request, for [`Prewarm::Predicted`].
    pub predicted_next: Option<Time>,
}

impl AppView<'_> {
    fn has_live_instance(&self) -> bool {
        self.instances.iter().any(|i| i.draining_since.is_none())
    }

    /// The moment a pre-start is due under `prewarm` (whether or not it is still needed).
    fn due(&self, prewarm: Prewarm) -> Option<(Time, Time)> {
        match prewarm {
            Prewarm::None => None,
            Prewarm::AfterIdle { after } => {
                let r = self.last_request?;
                Some((r + after, r + after))
            }
            Prewarm::Predicted { lead } => {
                let p = self.predicted_next?;
                Some((p - lead, p))
            }
        }
    }
}

impl Prewarm {
    /// A `Start` decision if an instance should be pre-started now.
    pub fn decide(&self, now: Time, app: &AppView<'_>) -> Option<Decision> {
        let (due, expected) = app.due(*self)?;
        let already = app.last_start.is_some_and(|s| s >= due);
        if now < due || already || app.has_live_instance() {
            return None;
        }
        if matches!(self, Prewarm::Predicted { .. }) && now >= expected {
            return None; // the prediction has passed: nothing to get ready for
        }
        Some(Decision::new(
            Action::Start,
            Reason::Prewarm {
                expected_in: expected - now,
            },
        ))
    }

    /// When [`decide`](Self::decide) could next answer `Start` if nothing else happens.
    pub fn next_check(&self, now: Time, app: &AppView<'_>) -> Option<Time> {
        let (due, _) = app.due(*self)?;
        let already = app.last_start.is_some_and(|s| s >= due);
        (due > now && !already).then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Time {
        Time::from_secs(secs)
    }

    #[test]
    fn after_idle_fires_once_per_idle_period() {
        let p = Prewarm::AfterIdle {
            after: Duration::from_secs(600),
        };
        let mut app = AppView {
            instances: &[],
            last_request: Some(at(100)),
            last_start: Some(at(50)),
            predicted_next: None,
        };
        assert_eq!(p.next_check(at(400), &app), Some(at(700)));
        assert!(p.decide(at(699), &app).is_none());
        let d = p.decide(at(700), &app).expect("due at 700");
        assert_eq!(d.action, Action::Start);
        assert!(d.to_string().contains("pre-warm"));
        // Started at 700: not again in this idle period.
        app.last_start = Some(at(700));
        assert!(p.decide(at(5000), &app).is_none());
        assert_eq!(p.next_check(at(5000), &app), None);
        // A new request opens a new idle period.
        app.last_request = Some(at(6000));
        assert_eq!(p.next_check(at(6000), &app), Some(at(6600)));
    }

    #[test]
    fn no_prewarm_while_an_instance_is_live() {
        let p = Prewarm::AfterIdle {
            after: Duration::from_secs(10),
        };
        let live = [InstanceView::ready(at(0), at(1))];
        let app = AppView {
            instances: &live,
            last_request: Some(at(0)),
            last_start: Some(at(0)),
            predicted_next: None,
        };
        assert!(p.decide(at(20), &app).is_none());
        assert!(Prewarm::None.decide(at(20), &app).is_none());
        assert_eq!(Prewarm::None.next_check(at(20), &app), None);
    }

    #[test]
    fn predicted_starts_lead_before_and_not_after_the_prediction() {
        let p = Prewarm::Predicted {
            lead: Duration::from_secs(5),
        };
        let app = AppView {
            instances: &[],
            last_request: None,
            last_start: None,
            predicted_next: Some(at(100)),
        };
        assert_eq!(p.next_check(at(0), &app), Some(at(95)));
        let d = p.decide(at(96), &app).expect("within lead");
        assert_eq!(
            d.reason,
            Reason::Prewarm {
                expected_in: Duration::from_secs(4)
            }
        );
        assert!(p.decide(at(100), &app).is_none());
    }
}
