//! Keep-alive decisions on a simulated clock.

use std::time::Duration;

use super::*;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn at(secs: u64) -> Time {
    Time::from_secs(secs)
}

fn stops(decisions: &[Decision]) -> Vec<usize> {
    decisions
        .iter()
        .filter_map(|d| match d.action {
            Action::Stop { instance } => Some(instance),
            _ => None,
        })
        .collect()
}

#[test]
fn idle_stop_happens_exactly_at_the_timeout() {
    let ka = KeepAlive::idle(s(60));
    let mut inst = InstanceView::ready(at(0), at(2));
    inst.last_active = at(10);
    let just_before = at(70) - Duration::from_nanos(1);
    assert!(ka.decide(just_before, &[inst]).is_empty());
    assert_eq!(ka.next_check(just_before, &[inst]), Some(at(70)));
    let d = ka.decide(at(70), &[inst]);
    assert_eq!(stops(&d), vec![0]);
    assert_eq!(
        d[0].reason,
        Reason::Idle {
            idle: s(60),
            timeout: s(60)
        }
    );
    assert!(d[0].to_string().contains("idle for 60.0s"));
}

#[test]
fn readiness_counts_as_activity() {
    let ka = KeepAlive::idle(s(30));
    // Started at 0, slow start, ready at 20: idle clock starts at 20, not 0.
    let inst = InstanceView::ready(at(0), at(20));
    assert!(ka.decide(at(49), &[inst]).is_empty());
    assert_eq!(ka.next_check(at(0), &[inst]), Some(at(50)));
    assert_eq!(stops(&ka.decide(at(50), &[inst])), vec![0]);
}

#[test]
fn never_stops_while_a_request_or_upgraded_connection_is_open() {
    let ka = KeepAlive {
        max_lifetime: Some(s(100)),
        drain_timeout: None,
        ..KeepAlive::idle(s(10))
    };
    let mut with_request = InstanceView::ready(at(0), at(1));
    with_request.in_flight = 1;
    let mut with_socket = InstanceView::ready(at(0), at(1));
    with_socket.upgraded = 2;
    for t in [5, 11, 50, 99, 100, 1000, 100_000] {
        for inst in [with_request, with_socket] {
            let d = ka.decide(at(t), &[inst]);
            assert!(
                stops(&d).is_empty(),
                "stopped a busy instance at {t}s: {d:?}"
            );
            assert!(!d.iter().any(|d| matches!(d.action, Action::Drain { .. })));
        }
    }
}

#[test]
fn fixed_lifetime_stops_at_the_lifetime_and_waits_for_open_requests() {
    let ka = KeepAlive::fixed_lifetime(s(180));
    let mut inst = InstanceView::ready(at(0), at(1));
    inst.last_active = at(179);
    assert!(ka.decide(at(179), &[inst]).is_empty());
    assert_eq!(ka.next_check(at(179), &[inst]), Some(at(180)));
    let d = ka.decide(at(180), &[inst]);
    assert_eq!(stops(&d), vec![0]);
    assert!(matches!(d[0].reason, Reason::MaxLifetime { .. }));

    // Busy at the lifetime: no wait for a quiet moment — a successor starts first, and once
    // it is ready the old one drains (its open request finishes there).
    inst.in_flight = 1;
    let d = ka.decide(at(180), &[inst]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Replace { instance: 0 });
    assert!(
        ka.decide(at(180), &[inst, InstanceView::starting(at(180))])
            .is_empty(),
        "one successor, asked once"
    );
    let successor = InstanceView::ready(at(180), at(181));
    let d = ka.decide(at(181), &[inst, successor]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Drain { instance: 0 });
}

#[test]
fn connection_aware_wait_is_bounded_by_the_drain_timeout() {
    let ka = KeepAlive {
        drain_timeout: Some(s(60)),
        ..KeepAlive::fixed_lifetime(s(100))
    };
    let mut inst = InstanceView::ready(at(0), at(1));
    inst.upgraded = 1;
    assert!(ka.decide(at(99), &[inst]).is_empty());
    assert_eq!(ka.next_check(at(50), &[inst]), Some(at(100)));
    // A WebSocket open at the lifetime: a successor takes over, then this one drains; the
    // drain (not the recycle) waits for the connection, at most the drain timeout.
    let d = ka.decide(at(100), &[inst]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Replace { instance: 0 });
    let successor = InstanceView::ready(at(100), at(101));
    let d = ka.decide(at(101), &[inst, successor]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Drain { instance: 0 });
    inst.draining_since = Some(at(101));
    assert!(ka.decide(at(160), &[inst, successor]).is_empty());
    assert_eq!(stops(&ka.decide(at(161), &[inst, successor])), vec![0]);
}

#[test]
fn recycling_the_last_warm_instance_starts_a_successor_first() {
    let ka = KeepAlive {
        max_lifetime: Some(s(3600)),
        ..KeepAlive::idle(s(300))
    };
    let mut old = InstanceView::ready(at(0), at(1));
    old.last_active = at(3590);
    let d = ka.decide(at(3600), &[old]);
    assert_eq!(
        d,
        vec![Decision::new(
            Action::Replace { instance: 0 },
            Reason::MaxLifetime {
                age: s(3600),
                limit: s(3600)
            }
        )]
    );
    // The successor is starting: no second Replace, no stop yet.
    let successor = InstanceView::starting(at(3600));
    assert!(ka.decide(at(3601), &[old, successor]).is_empty());
    // The successor is ready: the old one goes.
    let successor = InstanceView::ready(at(3600), at(3602));
    assert_eq!(stops(&ka.decide(at(3602), &[old, successor])), vec![0]);
}

#[test]
fn recycling_a_busy_instance_without_connection_awareness_drains_it() {
    let ka = KeepAlive {
        connection_aware: false,
        max_lifetime: Some(s(100)),
        ..KeepAlive::idle(s(300))
    };
    let mut old = InstanceView::ready(at(0), at(1));
    old.in_flight = 3;
    let mut other = InstanceView::ready(at(90), at(91));
    other.last_active = at(690);
    let d = ka.decide(at(100), &[old, other]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Drain { instance: 0 });
    // Draining: stop once quiet, or at the drain timeout (lifetimes aside from here on).
    let ka = KeepAlive {
        max_lifetime: None,
        ..ka
    };
    old.draining_since = Some(at(100));
    assert!(ka.decide(at(200), &[old, other]).is_empty());
    assert_eq!(ka.next_check(at(200), &[old]), Some(at(700)));
    let d = ka.decide(at(700), &[old, other]);
    assert_eq!(stops(&d), vec![0]);
    assert_eq!(
        d[0].reason,
        Reason::DrainTimeout {
            open: 3,
            waited: s(600)
        }
    );
    old.in_flight = 0;
    let d = ka.decide(at(201), &[old, other]);
    assert_eq!(
        d,
        vec![Decision::new(Action::Stop { instance: 0 }, Reason::Drained)]
    );
}

#[test]
fn keeps_the_minimum_and_stops_the_oldest_extra() {
    let ka = KeepAlive {
        min_instances: 2,
        ..KeepAlive::idle(s(60))
    };
    // Below the minimum: start the missing ones.
    let d = ka.decide(at(0), &[]);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.action == Action::Start));
    assert_eq!(d[0].reason, Reason::BelowMinimum { live: 0, min: 2 });
    // Three idle instances: only the oldest stops.
    let insts = [
        InstanceView::ready(at(20), at(21)),
        InstanceView::ready(at(10), at(11)),
        InstanceView::ready(at(30), at(31)),
    ];
    assert_eq!(stops(&ka.decide(at(10_000), &insts)), vec![1]);
    // A draining instance does not count toward the minimum.
    let mut draining = InstanceView::ready(at(0), at(1));
    draining.draining_since = Some(at(5));
    draining.in_flight = 1;
    let d = ka.decide(at(6), &[draining, InstanceView::ready(at(0), at(1))]);
    assert_eq!(d.iter().filter(|d| d.action == Action::Start).count(), 1);
}

#[test]
fn always_on_recycles_without_a_gap() {
    let ka = KeepAlive::always_on(1);
    let old = InstanceView::ready(at(0), at(1));
    let day = 24 * 3600;
    // Idle for a day, but it is the minimum: replaced, not stopped.
    let d = ka.decide(at(day), &[old]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Replace { instance: 0 });
    let successor = InstanceView::starting(at(day));
    assert!(ka.decide(at(day + 1), &[old, successor]).is_empty());
}

#[test]
fn next_check_is_none_when_only_activity_matters() {
    let ka = KeepAlive {
        max_lifetime: None,
        ..KeepAlive::idle(s(60))
    };
    assert_eq!(ka.next_check(at(0), &[]), None);
    assert_eq!(ka.next_check(at(0), &[InstanceView::starting(at(0))]), None);
    // Past deadline but protected by the minimum: no busy loop.
    let ka = KeepAlive {
        min_instances: 1,
        ..ka
    };
    let inst = InstanceView::ready(at(0), at(1));
    assert!(ka.decide(at(500), &[inst]).is_empty());
    assert_eq!(ka.next_check(at(500), &[inst]), None);
}

/// Drive one instance through requests on a simulated clock, applying the decisions the way the
/// daemon does, and check the stop lands exactly at last activity + timeout.
#[test]
fn simulated_clock_run_stops_exactly_once_at_the_right_time() {
    let ka = KeepAlive::idle(s(30));
    let mut insts = vec![InstanceView::ready(at(0), at(1))];
    // Requests: (start, end).
    let requests = [(5u64, 7u64), (20, 45), (44, 46)];
    let mut events: Vec<(u64, i32)> = Vec::new();
    for (a, b) in requests {
        events.push((a, 1));
        events.push((b, -1));
    }
    events.sort();
    let mut now = at(0);
    let mut stopped_at = None;
    let mut i = 0;
    while insts.len() == 1 {
        let next_event = events.get(i).map(|e| at(e.0));
        let wake = ka.next_check(now, &insts);
        let t = match (next_event, wake) {
            (Some(e), Some(w)) => e.min(w),
            (Some(e), None) => e,
            (None, Some(w)) => w,
            (None, None) => break,
        };
        now = t;
        while i < events.len() && at(events[i].0) == now {
            let inst = &mut insts[0];
            inst.in_flight = (inst.in_flight as i32 + events[i].1) as u32;
            inst.last_active = now;
            i += 1;
        }
        let d = ka.decide(now, &insts);
        if !stops(&d).is_empty() {
            stopped_at = Some(now);
            insts.clear();
        }
    }
    assert_eq!(stopped_at, Some(at(76)));
}

#[test]
fn json_uses_human_durations_and_defaults_missing_fields() {
    let json = serde_json::to_string(&KeepAlive::default()).unwrap();
    assert_eq!(
        json,
        r#"{"idle_timeout":"5m","max_lifetime":"24h","min_instances":0,"connection_aware":true,"drain_timeout":"10m"}"#
    );
    let back: KeepAlive = serde_json::from_str(&json).unwrap();
    assert_eq!(back, KeepAlive::default());
    let ka: KeepAlive =
        serde_json::from_str(r#"{"idle_timeout":"20m","max_lifetime":null,"min_instances":1}"#)
            .unwrap();
    assert_eq!(ka.idle_timeout, Some(s(1200)));
    assert_eq!(ka.max_lifetime, None);
    assert_eq!(ka.min_instances, 1);
    assert_eq!(ka.drain_timeout, KeepAlive::default().drain_timeout);
    // One meaning of units everywhere: a bare number is no duration (was: seconds).
    let err = serde_json::from_str::<KeepAlive>(r#"{"idle_timeout":90}"#).unwrap_err();
    assert!(err.to_string().contains("add one, like 90s"), "{err}");
    let err = serde_json::from_str::<KeepAlive>(r#"{"idle_timeout":"soon"}"#).unwrap_err();
    assert!(
        err.to_string().contains("\"soon\" is not a duration"),
        "{err}"
    );
}

#[test]
fn decisions_serialize_for_events() {
    let d = Decision::new(
        Action::Stop { instance: 2 },
        Reason::Idle {
            idle: s(300),
            timeout: s(300),
        },
    );
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        json,
        r#"{"action":{"kind":"stop","instance":2},"reason":{"kind":"idle","idle":"5m","timeout":"5m"}}"#
    );
    assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
}

#[test]
fn outdated_instances_in_use_are_replaced_successor_first() {
    let mut old = InstanceView::ready(at(0), at(1));
    old.outdated = true;
    let policy = KeepAlive::idle(s(300));
    // In use (busy, or within its idle timeout) with nothing current to take over: the
    // successor first, even when the app scales to zero.
    for inst in [
        old,
        InstanceView {
            in_flight: 1,
            ..old
        },
    ] {
        let d = policy.decide(at(10), &[inst]);
        assert_eq!(
            d,
            [Decision::new(
                Action::Replace { instance: 0 },
                Reason::Outdated
            )]
        );
    }
    // Its successor is ready: the old one drains (busy) or stops (idle).
    let current = InstanceView::ready(at(10), at(11));
    let busy = InstanceView {
        in_flight: 1,
        ..old
    };
    assert_eq!(
        policy.decide(at(11), &[busy, current]),
        [Decision::new(
            Action::Drain { instance: 0 },
            Reason::Outdated
        )]
    );
    assert_eq!(stops(&policy.decide(at(11), &[old, current])), vec![0]);
    // Past its idle timeout and idle: it just stops; the next request starts the new version.
    let d = policy.decide(at(400), &[old]);
    assert_eq!(
        d,
        [Decision::new(
            Action::Stop { instance: 0 },
            Reason::Outdated
        )]
    );
    // A minimum: successor first, and only once while the successor starts.
    let keep = KeepAlive {
        min_instances: 1,
        ..KeepAlive::idle(s(300))
    };
    let d = keep.decide(at(10), &[old]);
    assert_eq!(
        d,
        [Decision::new(
            Action::Replace { instance: 0 },
            Reason::Outdated
        )]
    );
    let d = keep.decide(at(10), &[old, InstanceView::starting(at(10))]);
    assert!(d.is_empty(), "{d:?}");
    // Outdated and idle past its timeout: still only the one decision, never a second stop.
    let d = policy.decide(at(1000), &[old]);
    assert_eq!(d.len(), 1);
    // A starting outdated instance is left alone until it is ready.
    let mut starting = InstanceView::starting(at(5));
    starting.outdated = true;
    assert!(policy.decide(at(10), &[starting]).is_empty());
}
