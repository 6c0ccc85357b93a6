//! Pre-start: when an instance nears its max lifetime while its app has traffic, start its
//! successor early enough to be ready before the old one leaves (the seed's "pre-start the next
//! container", issue 11 (c)).
//!
//! Without it, the keep-alive's lifetime rule answers [`Action::Replace`] *at* the lifetime:
//! the successor starts then, and requests that arrive during its start wait for it (or the old
//! instance serves past its lifetime). With it, the successor is started `lead` before the
//! lifetime (choose `lead` above the app's slowest measured start — 5–10 ms for a static site,
//! ~140 ms for WordPress — with room to spare: the default is 10 s); when the lifetime comes the
//! keep-alive sees a second ready instance, so it drains or stops the old one at once and no
//! request waits. An idle instance gets no successor: the next request starts one as usual.
//!
//! Pure like the rest: the daemon adds these decisions to the keep-alive's and applies them.
//! A successor is recognised by its start time: a live instance started inside an old
//! instance's pre-start window is that instance's successor, so asking again is harmless.
//!
//! ```
//! use std::time::Duration;
//! use hako_policy::prestart::PreStart;
//! use hako_policy::{Action, InstanceView, KeepAlive, Time};
//!
//! let ka = KeepAlive { max_lifetime: Some(Duration::from_secs(3600)), ..KeepAlive::default() };
//! let mut old = InstanceView::ready(Time::from_secs(0), Time::from_secs(1));
//! old.in_flight = 3; // the site has traffic
//! let pre = PreStart::default(); // lead 10 s
//! assert!(pre.decide(Time::from_secs(3589), &[old], &ka).is_empty());
//! assert_eq!(pre.next_check(Time::from_secs(100), &[old], &ka), Some(Time::from_secs(3590)));
//! let d = pre.decide(Time::from_secs(3590), &[old], &ka);
//! assert_eq!(d[0].action, Action::Start);
//! // Once the successor is there (starting or ready), nothing more.
//! let succ = InstanceView::starting(Time::from_secs(3590));
//! assert!(pre.decide(Time::from_secs(3595), &[old, succ], &ka).is_empty());
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keepalive::{Action, Decision, InstanceView, KeepAlive, Reason};
use crate::time::Time;

/// Pre-start settings of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreStart {
    /// How long before the max lifetime the successor starts.
    #[serde(with = "hako_model::units::serde_duration")]
    pub lead: Duration,
    /// The app "has traffic" on an instance busy now or active within this window.
    #[serde(with = "hako_model::units::serde_duration")]
    pub traffic_window: Duration,
}

impl Default for PreStart {
    fn default() -> Self {
        PreStart {
            lead: Duration::from_secs(10),
            traffic_window: Duration::from_secs(60),
        }
    }
}

impl PreStart {
    /// `Start` decisions for the successors due now (indices are not needed: a successor is
    /// just a new instance of the app).
    pub fn decide(
        &self,
        now: Time,
        instances: &[InstanceView],
        keep_alive: &KeepAlive,
    ) -> Vec<Decision> {
        let Some(limit) = keep_alive.max_lifetime else {
            return Vec::new();
        };
        let lead = self.lead.min(limit);
        // Old instances in their pre-start window with traffic, earliest window first.
        let mut olds: Vec<&InstanceView> = instances
            .iter()
            .filter(|i| i.draining_since.is_none() && i.ready_at.is_some())
            .filter(|i| {
                let end = i.started_at + limit;
                now >= end - lead && now < end
            })
            .filter(|i| i.is_busy() || now - i.idle_since() < self.traffic_window)
            .collect();
        olds.sort_by_key(|i| i.started_at);
        // Candidate successors: live instances, youngest last; each serves one old instance.
        let mut succ: Vec<Time> = instances
            .iter()
            .filter(|i| i.draining_since.is_none())
            .map(|i| i.started_at)
            .collect();
        succ.sort_unstable();
        let mut out = Vec::new();
        for old in olds {
            let window_start = old.started_at + limit - lead;
            if let Some(k) = succ.iter().position(|s| *s >= window_start) {
                succ.remove(k);
                continue;
            }
            out.push(Decision::new(
                Action::Start,
                Reason::PreStart {
                    age: now - old.started_at,
                    limit,
                },
            ));
        }
        out
    }

    /// When [`decide`](Self::decide) could next start a successor if nothing else happens.
    pub fn next_check(
        &self,
        now: Time,
        instances: &[InstanceView],
        keep_alive: &KeepAlive,
    ) -> Option<Time> {
        let limit = keep_alive.max_lifetime?;
        let lead = self.lead.min(limit);
        instances
            .iter()
            .filter(|i| i.draining_since.is_none() && i.ready_at.is_some())
            .map(|i| i.started_at + limit - lead)
            .filter(|t| *t > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Time {
        Time::from_secs(secs)
    }

    fn ka(lifetime: u64) -> KeepAlive {
        KeepAlive {
            max_lifetime: Some(Duration::from_secs(lifetime)),
            ..KeepAlive::default()
        }
    }

    #[test]
    fn an_idle_instance_gets_no_successor() {
        let mut old = InstanceView::ready(at(0), at(1));
        old.last_active = at(500);
        let pre = PreStart::default();
        assert!(pre.decide(at(995), &[old], &ka(1000)).is_empty());
        // Active 30 s ago: within the traffic window.
        old.last_active = at(965);
        assert_eq!(pre.decide(at(995), &[old], &ka(1000)).len(), 1);
        // No lifetime, no pre-start.
        let forever = KeepAlive {
            max_lifetime: None,
            ..KeepAlive::default()
        };
        assert!(pre.decide(at(995), &[old], &forever).is_empty());
        assert_eq!(pre.next_check(at(0), &[old], &forever), None);
    }

    #[test]
    fn the_successor_is_ready_before_the_lifetime_and_the_keepalive_then_retires_the_old_one() {
        let keep = ka(1000);
        let pre = PreStart {
            lead: Duration::from_secs(5),
            ..PreStart::default()
        };
        let mut old = InstanceView::ready(at(0), at(1));
        old.in_flight = 1;
        let d = pre.decide(at(995), &[old], &keep);
        assert_eq!(d.len(), 1);
        assert!(d[0].to_string().contains("pre-start"), "{}", d[0]);
        // The daemon started it at 995; it is ready 0.14 s later (a WordPress start).
        let started = at(995);
        let mut succ = InstanceView::ready(started, started + Duration::from_millis(140));
        succ.last_active = started + Duration::from_millis(140);
        assert!(pre.decide(at(997), &[old, succ], &keep).is_empty());
        // At the lifetime the keep-alive drains the old one at once: a ready successor exists.
        let d = keep.decide(at(1000), &[old, succ]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::Drain { instance: 0 });
        // Without the pre-start the successor starts at the lifetime (successor first: the
        // old one keeps serving until it is ready), a start's time later than with it.
        let d = keep.decide(at(1000), &[old]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::Replace { instance: 0 });
    }

    #[test]
    fn each_old_instance_gets_its_own_successor() {
        let keep = ka(1000);
        let pre = PreStart::default();
        let mut a = InstanceView::ready(at(0), at(1));
        let mut b = InstanceView::ready(at(2), at(3));
        a.in_flight = 1;
        b.in_flight = 1;
        // An instance started long ago is nobody's successor.
        let c = InstanceView::ready(at(500), at(501));
        assert_eq!(pre.decide(at(995), &[a, b, c], &keep).len(), 2);
        let s1 = InstanceView::starting(at(995));
        assert_eq!(pre.decide(at(996), &[a, b, c, s1], &keep).len(), 1);
        assert_eq!(pre.next_check(at(0), &[a, b, c], &keep), Some(at(990)));
    }
}
