//! One scaling policy through one trace: a discrete-event simulation of an app's instances.
//!
//! The app: each ready instance serves up to `slots` requests at once (its workers); a request
//! that finds every slot taken waits in one FIFO queue (the proxy holding it) until a slot frees
//! or a new instance becomes ready. Every `sample_every` the policy observes the concurrency —
//! requests in flight on all instances plus those queued, the proxy's view — and decides. A
//! scale-up starts instances that are ready `start_time` later; a scale-down drains the
//! instances [`pick_drain`] chooses (no new requests; they stop when their last one ends).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hako_policy::autoscale::{Sample, ScaleDecision, Scaler, pick_drain};
use hako_policy::{InstanceView, Time};

use super::AutoscaleBench;
use super::load::Request;

/// What happened to the app under one policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// Every decision, with its time (seconds).
    pub decisions: Vec<(f64, ScaleDecision)>,
    /// Each request's wait for a slot (seconds), in arrival order.
    pub waits: Vec<f64>,
    /// Σ instance lifetimes (start → stop or end of trace), seconds.
    pub instance_seconds: f64,
    /// Fewest and most live instances seen.
    pub live_range: (u32, u32),
    /// Mean of the sampled concurrency.
    pub mean_concurrency: f64,
}

struct Inst {
    started: f64,
    ready_at: f64,
    in_flight: u32,
    draining: bool,
    stopped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request on instance `usize` ends.
    Done(usize),
    /// Instance `usize` becomes ready.
    Ready(usize),
}

fn ns(t: f64) -> u64 {
    (t * 1e9).round().max(0.0) as u64
}

fn time(t: f64) -> Time {
    Time::from_nanos(ns(t))
}

/// Simulate `scaler` on `requests` for `duration` seconds.
pub(crate) fn simulate(
    bench: &AutoscaleBench,
    scaler: &mut dyn Scaler,
    requests: &[Request],
    duration: f64,
) -> Outcome {
    let slots = bench.slots.max(1);
    let start_time = bench.start_time.as_secs_f64();
    let tick = bench.sample_every.as_secs_f64().max(1e-3);
    let (min, max) = (bench.min, bench.max.max(bench.min).max(1));
    let mut insts: Vec<Inst> = (0..min.max(1))
        .map(|_| Inst {
            started: 0.0,
            ready_at: 0.0,
            in_flight: 0,
            draining: false,
            stopped: false,
        })
        .collect();
    let mut stops: Vec<(f64, f64)> = Vec::new();
    let mut events: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    let mut queue: VecDeque<usize> = VecDeque::new(); // request indices
    let mut waits = vec![0.0; requests.len()];
    let mut decisions = Vec::new();
    let mut next_request = 0usize;
    let mut next_tick = tick;
    let mut live_range = (u32::MAX, 0u32);
    let (mut samples, mut sampled) = (0u64, 0.0f64);

    // Serve request `q` on instance `i` at `now`.
    let serve = |i: usize,
                 q: usize,
                 now: f64,
                 insts: &mut Vec<Inst>,
                 events: &mut BinaryHeap<Reverse<(u64, Event)>>,
                 waits: &mut Vec<f64>| {
        insts[i].in_flight += 1;
        waits[q] = now - requests[q].arrival;
        events.push(Reverse((ns(now + requests[q].service), Event::Done(i))));
    };

    loop {
        let t_req = requests
            .get(next_request)
            .map_or(f64::INFINITY, |r| r.arrival);
        let t_evt = events
            .peek()
            .map_or(f64::INFINITY, |Reverse((t, _))| *t as f64 / 1e9);
        let now = t_req.min(t_evt).min(next_tick);
        if now >= duration {
            break;
        }
        if t_evt <= now {
            let Reverse((_, event)) = events.pop().expect("peeked");
            match event {
                Event::Done(i) => {
                    insts[i].in_flight -= 1;
                    if insts[i].draining {
                        if insts[i].in_flight == 0 && !insts[i].stopped {
                            insts[i].stopped = true;
                            stops.push((insts[i].started, now));
                        }
                    } else if let Some(q) = queue.pop_front() {
                        serve(i, q, now, &mut insts, &mut events, &mut waits);
                    }
                }
                Event::Ready(i) => {
                    while insts[i].in_flight < slots
                        && !insts[i].draining
                        && let Some(q) = queue.pop_front()
                    {
                        serve(i, q, now, &mut insts, &mut events, &mut waits);
                    }
                }
            }
        } else if t_req <= now {
            let q = next_request;
            next_request += 1;
            let best = insts
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    !i.draining && !i.stopped && i.ready_at <= now && i.in_flight < slots
                })
                .min_by_key(|(_, i)| i.in_flight)
                .map(|(k, _)| k);
            match best {
                Some(i) if queue.is_empty() => {
                    serve(i, q, now, &mut insts, &mut events, &mut waits)
                }
                _ => queue.push_back(q),
            }
        } else {
            next_tick += tick;
            let in_flight: u32 = insts.iter().map(|i| i.in_flight).sum();
            let t = time(now);
            samples += 1;
            sampled += f64::from(in_flight) + queue.len() as f64;
            scaler.observe(t, Sample::new(in_flight, queue.len() as u32));
            let live: Vec<usize> = (0..insts.len())
                .filter(|&k| !insts[k].draining && !insts[k].stopped)
                .collect();
            let current = live.len() as u32;
            let ready = live.iter().filter(|&&k| insts[k].ready_at <= now).count() as u32;
            live_range = (live_range.0.min(current), live_range.1.max(current));
            let Some(d) = scaler.decide(t, current, ready, min, max) else {
                continue;
            };
            decisions.push((now, d));
            if d.to > d.from {
                for _ in d.from..d.to {
                    let k = insts.len();
                    insts.push(Inst {
                        started: now,
                        ready_at: now + start_time,
                        in_flight: 0,
                        draining: false,
                        stopped: false,
                    });
                    events.push(Reverse((ns(now + start_time), Event::Ready(k))));
                }
            } else {
                let views: Vec<InstanceView> = live
                    .iter()
                    .map(|&k| {
                        let i = &insts[k];
                        InstanceView {
                            started_at: time(i.started),
                            ready_at: (i.ready_at <= now).then(|| time(i.ready_at)),
                            last_active: time(i.started),
                            in_flight: i.in_flight,
                            upgraded: 0,
                            draining_since: None,
                            outdated: false,
                        }
                    })
                    .collect();
                let n = (d.from - d.to) as usize;
                for v in pick_drain(t, &views, n, None) {
                    let k = live[v];
                    insts[k].draining = true;
                    if insts[k].in_flight == 0 {
                        insts[k].stopped = true;
                        stops.push((insts[k].started, now));
                    }
                }
            }
            let after = insts.iter().filter(|i| !i.draining && !i.stopped).count() as u32;
            live_range = (live_range.0.min(after), live_range.1.max(after));
        }
    }
    // Requests still queued at the end waited until then.
    for q in queue {
        waits[q] = duration - requests[q].arrival;
    }
    let mut instance_seconds: f64 = stops.iter().map(|(a, b)| b - a).sum();
    instance_seconds += insts
        .iter()
        .filter(|i| !i.stopped)
        .map(|i| (duration - i.started).max(0.0))
        .sum::<f64>();
    waits.truncate(next_request);
    Outcome {
        decisions,
        waits,
        instance_seconds,
        live_range,
        mean_concurrency: if samples > 0 {
            sampled / samples as f64
        } else {
            0.0
        },
    }
}
