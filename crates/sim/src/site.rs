//! One site's discrete-event simulation, driven by the daemon's own keep-alive and pre-warm code.
//!
//! Events: request arrivals (from [`Arrivals`]) and policy wake-ups. A wake-up is the earliest of
//! the policy's `next_check`, a starting instance becoming ready, and (for an instance the policy
//! waits on) its open requests finishing — exactly the moments the daemon calls the policy. Under
//! the fixed keep-alive an arrival only changes activity, which can only postpone a time-driven
//! decision, so arrivals do not call the policy: the pending wake-up, if early, finds nothing to
//! do and computes the next. The predictor is asked at an arrival that changed its window or
//! when it unloads after each visit (its deadlines can then move earlier).
//!
//! Routing is the proxy's: a ready, non-draining instance with the fewest open requests serves a
//! request at once; otherwise the request waits for a starting instance, or starts one (the
//! activator: concurrent requests share one start).

use std::collections::VecDeque;

use hako_policy::Time;
use hako_policy::keepalive::{Action, Decision, InstanceView, KeepAlive, Reason};
use hako_policy::predict::{PredictiveKeepAlive, PredictorSettings, Window};
use hako_policy::prewarm::{AppView, Prewarm};
use hako_policy::slo::StartTime;

use crate::arrivals::Arrivals;
use crate::rng::Rng;

/// Everything the run accumulates over all sites.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub requests: u64,
    pub cold: u64,
    /// Added waits of cold requests, nanoseconds (warm requests wait 0).
    pub waits_ns: Vec<u64>,
    /// (start, stop) of every instance, nanoseconds.
    pub intervals: Vec<(u64, u64)>,
    pub starts: u64,
    pub prewarm_starts: u64,
    pub stops_idle: u64,
    pub stops_lifetime: u64,
    pub stops_drained: u64,
    pub stops_drain_timeout: u64,
}

struct Inst {
    started: Time,
    ready: Time,
    last_active: Time,
    /// End times of requests routed to it (FIFO: the service time is constant).
    ends: VecDeque<Time>,
    draining_since: Option<Time>,
}

/// The shared, read-only parts of a run.
pub(crate) struct SiteParams<'a> {
    pub keep_alive: &'a KeepAlive,
    pub predictor: Option<&'a PredictorSettings>,
    pub prewarm: Prewarm,
    pub start_time: &'a StartTime,
    pub service: std::time::Duration,
    pub horizon: Time,
}

/// Simulate one site until the horizon, adding to `tally`. Arrivals draw from `arrival_rng` and
/// start times from `rng`, so runs of different policies with one seed see the same requests.
pub(crate) fn run_site(
    p: &SiteParams<'_>,
    arrivals: &mut Arrivals<'_>,
    arrival_rng: &mut Rng,
    rng: &mut Rng,
    tally: &mut Tally,
) {
    let mut insts: Vec<Inst> = Vec::new();
    let mut views: Vec<InstanceView> = Vec::new();
    let mut stops: Vec<usize> = Vec::new();
    let mut last_request: Option<Time> = None;
    let mut last_start: Option<Time> = None;
    let mut keep = Keep::new(p);
    let mut wake = Time::ZERO; // the policy runs at the start (e.g. min_instances)
    loop {
        let next_arrival = Time::from_secs_f64(arrivals.peek());
        let now = next_arrival.min(wake);
        if now >= p.horizon {
            break;
        }
        for inst in &mut insts {
            settle(inst, now);
        }
        if next_arrival == now {
            arrivals.advance(arrival_rng);
            last_request = Some(now);
            let consult = keep.observe(now);
            tally.requests += 1;
            if let Some(ready) = route(p, &mut insts, now, rng, tally, &mut last_start) {
                wake = wake.min(ready);
            }
            // A fixed keep-alive's deadlines only move later with activity; the predictor's
            // can move earlier (a new window, or unloading after each visit): ask it then.
            if now < wake && !consult {
                continue;
            }
        }
        // A wake-up: ask the policies, apply, and compute the next wake-up.
        fill_views(&insts, now, p, &mut views);
        let predicted_next = oracle(p, arrivals);
        let app = AppView {
            instances: &views,
            last_request,
            last_start,
            predicted_next,
        };
        let mut decisions = keep.decide(now, &views);
        decisions.extend(p.prewarm.decide(now, &app));
        stops.clear();
        for d in &decisions {
            match d.action {
                Action::Start | Action::Replace { .. } => {
                    if matches!(d.reason, Reason::Prewarm { .. }) {
                        tally.prewarm_starts += 1;
                    }
                    start(p, &mut insts, now, rng, tally, &mut last_start);
                }
                Action::Drain { instance } => insts[instance].draining_since = Some(now),
                Action::Stop { instance } => {
                    stops.push(instance);
                    match d.reason {
                        Reason::Idle { .. } => tally.stops_idle += 1,
                        Reason::MaxLifetime { .. } => tally.stops_lifetime += 1,
                        Reason::Drained => tally.stops_drained += 1,
                        _ => tally.stops_drain_timeout += 1,
                    }
                }
            }
        }
        stops.sort_unstable_by(|a, b| b.cmp(a));
        stops.dedup();
        for &i in &stops {
            let inst = insts.remove(i);
            tally
                .intervals
                .push((inst.started.as_nanos(), now.as_nanos()));
        }
        fill_views(&insts, now, p, &mut views);
        let predicted_next = oracle(p, arrivals);
        let app = AppView {
            instances: &views,
            last_request,
            last_start,
            predicted_next,
        };
        wake = next_wake(p, &keep, &insts, &views, &app, now);
    }
    for inst in insts {
        tally
            .intervals
            .push((inst.started.as_nanos(), p.horizon.as_nanos()));
    }
}

/// The simulator's predictor for [`Prewarm::Predicted`]: an oracle that knows the next arrival
/// (perfect foresight), so a run measures the most that prediction can gain.
fn oracle(p: &SiteParams<'_>, arrivals: &Arrivals<'_>) -> Option<Time> {
    let next = arrivals.peek();
    (matches!(p.prewarm, Prewarm::Predicted { .. }) && next.is_finite())
        .then(|| Time::from_secs_f64(next))
}

/// Retire requests that have ended by `now`.
fn settle(inst: &mut Inst, now: Time) {
    while let Some(&end) = inst.ends.front() {
        if end > now {
            break;
        }
        inst.last_active = inst.last_active.max(end);
        inst.ends.pop_front();
    }
}

/// Route a request arriving `now`; returns the ready time of an instance it started.
fn route(
    p: &SiteParams<'_>,
    insts: &mut Vec<Inst>,
    now: Time,
    rng: &mut Rng,
    tally: &mut Tally,
    last_start: &mut Option<Time>,
) -> Option<Time> {
    let ready = insts
        .iter_mut()
        .filter(|i| i.draining_since.is_none() && i.ready <= now)
        .min_by_key(|i| i.ends.len());
    if let Some(inst) = ready {
        inst.ends.push_back(now + p.service);
        inst.last_active = inst.last_active.max(now);
        return None;
    }
    tally.cold += 1;
    let starting = insts
        .iter_mut()
        .filter(|i| i.draining_since.is_none())
        .min_by_key(|i| i.ready);
    if let Some(inst) = starting {
        tally.waits_ns.push((inst.ready - now).as_nanos() as u64);
        inst.ends.push_back(inst.ready + p.service);
        return None;
    }
    let ready = start(p, insts, now, rng, tally, last_start);
    tally.waits_ns.push((ready - now).as_nanos() as u64);
    insts
        .last_mut()
        .expect("just started")
        .ends
        .push_back(ready + p.service);
    Some(ready)
}

/// Start an instance now; returns when it will be ready.
fn start(
    p: &SiteParams<'_>,
    insts: &mut Vec<Inst>,
    now: Time,
    rng: &mut Rng,
    tally: &mut Tally,
    last_start: &mut Option<Time>,
) -> Time {
    let ready = now + p.start_time.sample(rng.uniform());
    insts.push(Inst {
        started: now,
        ready,
        last_active: now,
        ends: VecDeque::new(),
        draining_since: None,
    });
    tally.starts += 1;
    *last_start = Some(now);
    ready
}

fn fill_views(insts: &[Inst], now: Time, p: &SiteParams<'_>, views: &mut Vec<InstanceView>) {
    views.clear();
    views.extend(insts.iter().map(|inst| {
        let is_ready = inst.ready <= now;
        let mut last = inst.last_active;
        if is_ready {
            last = last.max(inst.ready);
            if let Some(&end) = inst.ends.back() {
                last = last.max(end - p.service); // the latest request start
            }
        }
        InstanceView {
            started_at: inst.started,
            ready_at: is_ready.then_some(inst.ready),
            last_active: last,
            in_flight: if is_ready { inst.ends.len() as u32 } else { 0 },
            upgraded: 0,
            draining_since: inst.draining_since,
            outdated: false,
        }
    }));
}

fn next_wake(
    p: &SiteParams<'_>,
    keep: &Keep<'_>,
    insts: &[Inst],
    views: &[InstanceView],
    app: &AppView<'_>,
    now: Time,
) -> Time {
    // A prediction already due (the oracle's next request is within the lead): act at once.
    if matches!(p.prewarm, Prewarm::Predicted { .. }) && p.prewarm.decide(now, app).is_some() {
        return now;
    }
    let mut wake = Time::MAX;
    let mut consider = |t: Option<Time>| {
        if let Some(t) = t.filter(|t| *t > now) {
            wake = wake.min(t);
        }
    };
    consider(keep.next_check(now, views));
    consider(p.prewarm.next_check(now, app));
    for (inst, view) in insts.iter().zip(views) {
        if view.ready_at.is_none() {
            consider(Some(inst.ready));
        } else if view.is_busy() {
            // The policy waits for its requests to end: draining, a lifetime recycle, or an
            // idle deadline (counted from the latest request start) already passed.
            let waiting_on_it = inst.draining_since.is_some()
                || p.keep_alive
                    .max_lifetime
                    .is_some_and(|l| now - inst.started >= l)
                || keep.idle_deadline(view).is_some_and(|d| d <= now);
            if waiting_on_it {
                consider(inst.ends.back().copied());
            }
        }
    }
    wake
}

/// The site's keep-alive: the fixed policy, or the predictor with this site's own history.
enum Keep<'a> {
    Fixed(&'a KeepAlive),
    Predictive(Box<PredictiveKeepAlive>),
}

impl<'a> Keep<'a> {
    fn new(p: &SiteParams<'a>) -> Keep<'a> {
        match p.predictor {
            None => Keep::Fixed(p.keep_alive),
            Some(settings) => Keep::Predictive(Box::new(PredictiveKeepAlive::with_settings(
                p.keep_alive.clone(),
                settings.clone(),
            ))),
        }
    }

    /// Note an arrival; whether the policy must be asked now (its deadlines may have moved
    /// earlier: the window changed, or it unloads after each visit).
    fn observe(&mut self, now: Time) -> bool {
        let Keep::Predictive(k) = self else {
            return false;
        };
        let before = k.window();
        k.observe(now);
        let after = k.window();
        after != before || matches!(after, Window::Prewarm { .. })
    }

    fn decide(&self, now: Time, views: &[InstanceView]) -> Vec<Decision> {
        match self {
            Keep::Fixed(k) => k.decide(now, views),
            Keep::Predictive(k) => k.decide(now, views),
        }
    }

    fn next_check(&self, now: Time, views: &[InstanceView]) -> Option<Time> {
        match self {
            Keep::Fixed(k) => k.next_check(now, views),
            Keep::Predictive(k) => k.next_check(now, views),
        }
    }

    fn idle_deadline(&self, view: &InstanceView) -> Option<Time> {
        match self {
            Keep::Fixed(k) => k.idle_deadline(view),
            Keep::Predictive(k) => k.idle_deadline(view),
        }
    }
}
