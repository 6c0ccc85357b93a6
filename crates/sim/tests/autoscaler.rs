//! The autoscaler evaluation on the simulated clock (issue 14): hako's autoscaler sees a ×4
//! step within 2 s, makes fewer than one needless scale-up per hour on noisy steady load, and
//! never leaves the app's bounds; the comparators behave as their designs say. Fixed seeds.

use hako_sim::autoscale::{AutoscaleBench, AutoscaleReport, run};

fn bench(seed: u64, noisy_hours: f64) -> AutoscaleBench {
    AutoscaleBench {
        seed,
        noisy_hours,
        sweep_surge: Vec::new(),
        ..AutoscaleBench::default()
    }
}

fn report(seed: u64, noisy_hours: f64) -> AutoscaleReport {
    let r = run(&bench(seed, noisy_hours));
    println!("{r}");
    r
}

#[test]
fn a_4x_step_is_seen_within_two_seconds_and_the_bounds_hold() {
    for seed in [1, 2, 3] {
        let r = report(seed, 0.25);
        let hako = r.policy("step", "hako").unwrap();
        let detect = hako.detect_s.expect("the step was seen");
        assert!(detect <= 2.0, "seed {seed}: seen after {detect:.2}s");
        // The Knative-like policy needs its 2-s tick at least; the seed's needs minutes.
        let kpa = r.policy("step", "kpa").unwrap().detect_s.unwrap();
        let seed_p = r.policy("step", "seed").unwrap().detect_s.unwrap();
        assert!(kpa > detect && seed_p > 60.0, "kpa {kpa}, seed {seed_p}");
        // Fewer requests waited over 100 ms under hako than under either comparator.
        let waited = |p: &str| r.policy("step", p).unwrap().waited_over_100ms;
        assert!(waited("hako") < waited("kpa") && waited("kpa") < waited("seed"));
        for t in &r.traces {
            for p in &t.policies {
                assert!(
                    p.live_min >= r.bench.min && p.live_max <= r.bench.max,
                    "{} on {}: {}..{} instances",
                    p.policy,
                    t.trace,
                    p.live_min,
                    p.live_max
                );
            }
        }
    }
}

#[test]
fn fewer_than_one_needless_scale_up_per_hour_on_noisy_steady_load() {
    // 20 hours over two seeds (the rate is a few per 10 h: one seed alone is a small sample).
    let (mut needless, mut hours) = (0u32, 0.0);
    for seed in [1, 2] {
        let r = report(seed, 10.0);
        let hako = r.policy("noisy", "hako").unwrap();
        needless += hako.needless_ups;
        hours += r.traces.iter().find(|t| t.trace == "noisy").unwrap().hours;
        // A false alarm is cheap: its extra instance is gone about 30 s later.
        if let Some(hold) = hako.needless_hold_s {
            assert!(hold < 200.0, "a false alarm held {hold:.0} instance-s");
        }
    }
    let per_h = f64::from(needless) / hours;
    assert!(per_h < 1.0, "{needless} needless scale-ups in {hours} h");
}

#[test]
fn the_report_ends_with_the_benchmark_line() {
    let mut b = bench(1, 0.1);
    b.sweep_surge = vec![1.5, 3.0];
    let r = run(&b);
    let text = r.to_string();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("autoscaler: hako_step_detect_s="),
        "{last}"
    );
    for key in [
        "kpa_step_detect_s=",
        "seed_step_detect_s=",
        "hako_false_per_h=",
        "kpa_false_per_h=",
    ] {
        assert!(last.contains(key), "{last}");
    }
    assert_eq!(r.sweep.len(), 2);
    // A lower surge bar can only alarm more often.
    assert!(r.sweep[0].false_per_h >= r.sweep[1].false_per_h);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["traces"][0]["policies"][0]["detect_s"].is_number());
    // Deterministic: the same seed gives the same report.
    assert_eq!(run(&b), r);
}
