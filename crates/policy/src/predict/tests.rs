//! The predictive keep-alive's decisions on a simulated clock. (The whole-trace checks — it
//! pre-warms periodic sites, and does no worse than fixed on memoryless ones — run in
//! `hako-sim`, with the same code.)

use std::time::Duration;

use super::*;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn at(secs: f64) -> Time {
    Time::from_secs_f64(secs)
}

/// A predictor that has seen `n` requests `period` seconds apart, the last at `last`.
fn periodic(period: f64, n: u32, last: f64) -> PredictiveKeepAlive {
    let mut p = PredictiveKeepAlive::new(KeepAlive::idle(s(300)));
    for k in (0..n).rev() {
        p.observe(at(last - period * f64::from(k)));
    }
    p
}

#[test]
fn thin_history_means_the_fixed_keep_alive_decides_exactly_as_before() {
    let p = periodic(900.0, 5, 9000.0);
    assert_eq!(
        p.window(),
        Window::Fixed {
            why: Fallback::Thin {
                seen: 4,
                needed: 10
            }
        }
    );
    let mut inst = InstanceView::ready(at(9000.0), at(9000.1));
    inst.last_active = at(9000.2);
    for t in [9100.0, 9300.1, 9300.2, 9400.0] {
        assert_eq!(
            p.decide(at(t), &[inst]),
            p.keep_alive.decide(at(t), &[inst])
        );
        assert_eq!(
            p.next_check(at(t), &[inst]),
            p.keep_alive.next_check(at(t), &[inst])
        );
    }
    assert!(p.window().to_string().contains("only 4 idle periods"));
}

#[test]
fn a_periodic_app_is_unloaded_after_its_visit_and_pre_warmed_before_the_next() {
    // A cron-driven site: every 15 minutes, the latest request at 9000 s.
    let p = periodic(900.0, 11, 9000.0);
    let Window::Prewarm {
        prewarm_after,
        keep_until,
    } = p.window()
    else {
        panic!("{}", p.window());
    };
    // The window brackets the period tightly: ≈ −4% … +4%.
    let (a, b) = (prewarm_after.as_secs_f64(), keep_until.as_secs_f64());
    assert!(
        a > 850.0 && a < 900.0 && b > 900.0 && b < 950.0,
        "{a} … {b}"
    );

    // The instance that served the request (ended 9000.3 s) goes after the 2-s linger.
    let mut served = InstanceView::ready(at(8999.9), at(9000.0));
    served.last_active = at(9000.3);
    assert!(p.decide(at(9002.2), &[served]).is_empty());
    let d = p.decide(at(9002.3), &[served]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Stop { instance: 0 });
    assert!(d[0].to_string().contains("predicted idle"), "{}", d[0]);

    // No instance: the next call is the pre-warm, before the request expected at 9900 s.
    let wake = p
        .next_check(at(9002.3), &[])
        .expect("a pre-warm is planned");
    assert_eq!(wake, at(9000.0) + prewarm_after);
    assert!(p.decide(wake - s(1), &[]).is_empty());
    let d = p.decide(wake, &[]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Start);
    assert!(matches!(d[0].reason, Reason::Prewarm { expected_in } if expected_in > Duration::ZERO));

    // The pre-warmed instance (started at the wake, ready 10 ms later) is kept to the window's
    // end even though it serves nothing, and stopped then.
    let warm = InstanceView::ready(wake, wake + Duration::from_millis(10));
    assert!(p.decide(at(9899.0), &[warm]).is_empty());
    assert!(p.decide(wake + s(40), &[warm]).is_empty());
    let end = at(9000.0) + keep_until;
    assert_eq!(p.next_check(wake + s(1), &[warm]), Some(end));
    let d = p.decide(end, &[warm]);
    assert_eq!(d[0].action, Action::Stop { instance: 0 });
    // Once it is live, no second pre-warm.
    assert!(
        !p.decide(wake + s(1), &[warm])
            .iter()
            .any(|d| d.action == Action::Start)
    );
}

#[test]
fn given_deadlines_replace_the_learned_ones_and_keep_its_reasons_and_pre_warm() {
    // The periodic site's instance served the visit that ended at 9000.3 s, then an uptime
    // check at 9001 s (quiet work, held 5 s): the daemon's deadline is the later of the two.
    let p = periodic(900.0, 11, 9000.0);
    let mut served = InstanceView::ready(at(8999.9), at(9000.0));
    served.last_active = at(9001.0);
    let activity = crate::wake::Activity {
        woken_for_quiet: false,
        last_visitor: Some(at(9000.3)),
        last_quiet: Some(at(9001.0)),
    };
    let visitor = p.idle_deadline(&activity.visitor_view(&served));
    assert_eq!(visitor, Some(at(9000.3) + s(2)));
    let deadlines = [crate::wake::idle_deadline(
        visitor,
        &activity,
        &served,
        s(5),
    )];
    let end = at(9001.0) + s(5);
    assert_eq!(deadlines[0], Some(end));
    assert!(
        p.decide_with_deadlines(end - Duration::from_millis(1), &[served], &deadlines)
            .is_empty()
    );
    assert_eq!(
        p.next_check_with_deadlines(at(9003.0), &[served], &deadlines),
        Some(end)
    );
    let d = p.decide_with_deadlines(end, &[served], &deadlines);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Stop { instance: 0 });
    assert!(d[0].to_string().contains("predicted idle"), "{}", d[0]);
    // With no instance left the pre-warm is planned and made as without given deadlines.
    let wake = p.next_check(end, &[]).expect("a pre-warm is planned");
    assert_eq!(p.next_check_with_deadlines(end, &[], &[]), Some(wake));
    let d = p.decide_with_deadlines(wake, &[], &[]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, Action::Start);
}

#[test]
fn a_busy_instance_is_never_stopped_and_the_minimum_is_kept() {
    let mut p = periodic(900.0, 11, 9000.0);
    let mut busy = InstanceView::ready(at(8999.9), at(9000.0));
    busy.in_flight = 1;
    assert!(p.decide(at(9500.0), &[busy]).is_empty());
    p.keep_alive.min_instances = 1;
    let idle = InstanceView::ready(at(8999.9), at(9000.0));
    assert!(p.decide(at(9500.0), &[idle]).is_empty());
}

#[test]
fn a_frequent_periodic_client_is_kept_alive_through_its_gaps_not_reloaded() {
    // An uptime check every 10 s: unloading between checks is not worth a start.
    let p = periodic(10.0, 30, 300.0);
    let Window::KeepAlive { keep_alive } = p.window() else {
        panic!("{}", p.window());
    };
    assert!(keep_alive > s(10) && keep_alive < s(11), "{keep_alive:?}");
    let inst = InstanceView::ready(at(0.0), at(0.1));
    let mut inst = inst;
    inst.last_active = at(300.0);
    assert!(p.decide(at(310.0), &[inst]).is_empty());
    assert_eq!(p.decide(at(311.0), &[inst]).len(), 1);
}

#[test]
fn memoryless_or_out_of_range_histories_fall_back() {
    // Exponential gaps (quantiles at evenly spaced probabilities), mean 120 s.
    let mut p = PredictiveKeepAlive::new(KeepAlive::idle(s(300)));
    let mut t = 0.0;
    p.observe(at(t));
    for k in 0..200 {
        let u = (f64::from(k) * 0.618_034).fract();
        t += 2.0 - 118.0 * (1.0 - u).ln();
        p.observe(at(t));
    }
    let Window::Fixed {
        why: Fallback::Spread { cv, .. },
    } = p.window()
    else {
        panic!("{}", p.window());
    };
    assert!(cv > 0.8 && cv < 1.2, "cv {cv}");
    // Gaps of two days: beyond the histogram.
    let far = periodic(2.0 * 86_400.0, 12, 30.0 * 86_400.0);
    assert!(matches!(
        far.window(),
        Window::Fixed {
            why: Fallback::OutOfRange { .. }
        }
    ));
}

#[test]
fn short_gaps_and_late_reports_are_not_idle_periods() {
    let mut p = PredictiveKeepAlive::new(KeepAlive::idle(s(300)));
    p.observe(at(100.0));
    p.observe(at(100.5)); // same visit
    p.observe(at(50.0)); // out of order: ignored
    assert_eq!(p.history().total(), 0);
    assert_eq!(p.last_request(), Some(at(100.5)));
    p.observe(at(160.5));
    assert_eq!(p.history().total(), 1);
    let json = serde_json::to_string(p.settings()).unwrap();
    assert!(json.contains(r#""linger":"2s""#), "{json}");
    let back: PredictorSettings = serde_json::from_str(r#"{"margin":0.1}"#).unwrap();
    assert_eq!(back.margin, 0.1);
    assert_eq!(back.min_unload_gap, s(30));
}
