//! The model's closed forms and numeric evaluation against independent Monte Carlo runs of the
//! same system (fixed seeds), and the recommendation against the closed-form inverse.

use std::time::Duration;

use super::*;
use crate::keepalive::KeepAlive;
use crate::prewarm::Prewarm;

/// SplitMix64: a tiny deterministic generator for the Monte Carlo checks.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.next_f64()).ln() / rate
    }
}

/// What a Monte Carlo run measured.
struct Measured {
    cold: f64,
    mean_wait: f64,
    p99_wait: f64,
    on_per_hour: f64,
}

/// One app, one instance at a time, idle timeout `t` after the last request end (service `d`),
/// optional fixed `lifetime` instead, optional pre-warm `after` the last request.
struct System {
    t: Option<f64>,
    lifetime: Option<f64>,
    d: f64,
    after: Option<f64>,
}

fn monte_carlo(
    sys: &System,
    n: usize,
    mut gap: impl FnMut(&mut Rng) -> f64,
    start: &StartTime,
    seed: u64,
) -> Measured {
    let mut rng = Rng(seed);
    let (mut now, mut on, mut colds) = (0.0f64, 0.0f64, 0usize);
    let mut waits = Vec::with_capacity(n);
    // Current instance: (start, ready, stop).
    let mut inst: Option<(f64, f64, f64)> = None;
    let mut last_request = 0.0;
    let sample_start = |rng: &mut Rng| start.sample(rng.next_f64()).as_secs_f64();
    for _ in 0..n {
        now += gap(&mut rng);
        if let (Some(p), Some((a, _, stop)), Some(t)) = (sys.after, inst, sys.t)
            && last_request + p >= stop
            && last_request + p < now
        {
            // Pre-warm: the old instance has stopped; a fresh one starts at last request + p.
            on += stop - a;
            let s0 = last_request + p;
            let ready = s0 + sample_start(&mut rng);
            inst = Some((s0, ready, ready + t));
        }
        match inst {
            Some((s0, ready, stop)) if now < stop => {
                let served = now.max(ready);
                if now < ready {
                    colds += 1;
                }
                waits.push(served - now);
                // Idle timeout: the stop moves to T after this request ends; lifetime: it stays.
                let new_stop = sys.t.map_or(stop, |t| stop.max(served + sys.d + t));
                inst = Some((s0, ready, new_stop));
            }
            other => {
                if let Some((a, _, b)) = other {
                    on += b - a;
                }
                colds += 1;
                let ready = now + sample_start(&mut rng);
                waits.push(ready - now);
                let stop = match (sys.t, sys.lifetime) {
                    (Some(t), _) => ready + sys.d + t,
                    (None, Some(l)) => now + l,
                    (None, None) => f64::INFINITY,
                };
                inst = Some((now, ready, stop));
            }
        }
        last_request = now;
    }
    if let Some((a, _, b)) = inst {
        on += b.min(now) - a;
    }
    waits.sort_by(f64::total_cmp);
    Measured {
        cold: colds as f64 / n as f64,
        mean_wait: waits.iter().sum::<f64>() / n as f64,
        p99_wait: waits[(0.99 * n as f64) as usize],
        on_per_hour: 3600.0 * on / now,
    }
}

fn scenario(access: Access, start: StartTime, d_ms: u64, keep_alive: KeepAlive) -> Scenario {
    Scenario {
        access,
        start,
        service_time: Duration::from_millis(d_ms),
        keep_alive,
        prewarm: Prewarm::None,
    }
}

fn close(model: f64, measured: f64, rel: f64, abs: f64, what: &str) {
    let err = (model - measured).abs();
    assert!(
        err <= rel * measured.abs() + abs,
        "{what}: model {model} vs Monte Carlo {measured} (error {err})"
    );
}

#[test]
fn poisson_idle_closed_form_matches_monte_carlo_including_start_time() {
    let start = StartTime::samples_secs([0.5, 1.0, 2.0, 4.0]).unwrap();
    for (rate, t) in [(0.05, 20u64), (0.5, 2), (2.0, 1), (0.01, 60)] {
        let sc = scenario(
            Access::poisson(rate).unwrap(),
            start.clone(),
            100,
            KeepAlive::idle(Duration::from_secs(t)),
        );
        let e = evaluate(&sc).unwrap();
        assert_eq!(e.method, Method::ClosedForm);
        let sys = System {
            t: Some(t as f64),
            lifetime: None,
            d: 0.1,
            after: None,
        };
        let m = monte_carlo(&sys, 300_000, |r| r.exp(rate), &start, 7 + t);
        let what = format!("rate {rate}, T {t}");
        close(
            e.cold_probability,
            m.cold,
            0.03,
            1e-3,
            &format!("{what} P(cold)"),
        );
        close(
            e.mean_wait_ms / 1e3,
            m.mean_wait,
            0.04,
            1e-3,
            &format!("{what} mean wait"),
        );
        close(
            e.p99_wait_ms / 1e3,
            m.p99_wait,
            0.05,
            0.02,
            &format!("{what} p99 wait"),
        );
        close(
            e.instance_seconds_per_hour,
            m.on_per_hour,
            0.03,
            1.0,
            &format!("{what} instance-s/h"),
        );
    }
}

#[test]
fn start_time_matters_the_plain_exponential_underestimates() {
    // λS = 2: with a 1 s start and 2 req/s, e^(−λT) alone misses the requests that arrive
    // during the start.
    let sc = scenario(
        Access::poisson(2.0).unwrap(),
        StartTime::constant(Duration::from_secs(1)),
        0,
        KeepAlive::idle(Duration::from_secs(1)),
    );
    let e = evaluate(&sc).unwrap();
    let naive = (-2.0f64).exp();
    let exact = 3.0 / (2.0 + 2.0f64.exp());
    assert!((e.cold_probability - exact).abs() < 1e-12);
    assert!(e.cold_probability > 1.5 * naive);
}

#[test]
fn fixed_lifetime_closed_form_matches_monte_carlo() {
    let start = StartTime::constant(Duration::from_millis(800));
    for (rate, l) in [(0.1, 180u64), (1.0, 30), (0.005, 600)] {
        let sc = scenario(
            Access::poisson(rate).unwrap(),
            start.clone(),
            0,
            KeepAlive::fixed_lifetime(Duration::from_secs(l)),
        );
        let e = evaluate(&sc).unwrap();
        let sys = System {
            t: None,
            lifetime: Some(l as f64),
            d: 0.0,
            after: None,
        };
        let m = monte_carlo(&sys, 200_000, |r| r.exp(rate), &start, 99 + l);
        let what = format!("rate {rate}, L {l}");
        close(
            e.cold_probability,
            m.cold,
            0.03,
            1e-3,
            &format!("{what} P(cold)"),
        );
        close(
            e.instance_seconds_per_hour,
            m.on_per_hour,
            0.03,
            1.0,
            &format!("{what} instance-s/h"),
        );
    }
}

#[test]
fn numeric_renewal_agrees_with_the_closed_form_for_exponential_gaps() {
    // Exponential gaps given as an empirical histogram, tiny start time: both paths agree.
    let mut rng = Rng(5);
    let gaps: Vec<f64> = (0..200_000).map(|_| rng.exp(0.1)).collect();
    let start = StartTime::constant(Duration::from_millis(1));
    let ka = KeepAlive::idle(Duration::from_secs(15));
    let closed = evaluate(&scenario(
        Access::poisson(0.1).unwrap(),
        start.clone(),
        0,
        ka.clone(),
    ))
    .unwrap();
    let numeric = evaluate(&scenario(Access::gaps(gaps).unwrap(), start, 0, ka)).unwrap();
    assert_eq!(numeric.method, Method::Numeric);
    close(
        numeric.cold_probability,
        closed.cold_probability,
        0.02,
        0.0,
        "P(cold)",
    );
    close(
        numeric.instance_seconds_per_hour,
        closed.instance_seconds_per_hour,
        0.02,
        0.0,
        "instance-s/h",
    );
}

/// A bimodal app: bursts of requests 2 s apart, then a quiet ~10 minutes (cron-like).
fn bimodal(rng: &mut Rng) -> f64 {
    if rng.next_f64() < 0.8 {
        2.0
    } else {
        570.0 + 60.0 * rng.next_f64()
    }
}

#[test]
fn numeric_model_with_prewarm_matches_monte_carlo() {
    let mut rng = Rng(11);
    let gaps: Vec<f64> = (0..50_000).map(|_| bimodal(&mut rng)).collect();
    let access = Access::gaps(gaps).unwrap();
    let start = StartTime::constant(Duration::from_millis(200));
    let t = 30.0;
    for after in [None, Some(560.0), Some(580.0)] {
        let mut sc = scenario(
            access.clone(),
            start.clone(),
            0,
            KeepAlive::idle(Duration::from_secs(30)),
        );
        if let Some(a) = after {
            sc.prewarm = Prewarm::AfterIdle {
                after: Duration::from_secs_f64(a),
            };
        }
        let e = evaluate(&sc).unwrap();
        let sys = System {
            t: Some(t),
            lifetime: None,
            d: 0.0,
            after,
        };
        let m = monte_carlo(&sys, 200_000, bimodal, &start, 3);
        let what = format!("pre-warm {after:?}");
        close(
            e.cold_probability,
            m.cold,
            0.05,
            2e-3,
            &format!("{what} P(cold)"),
        );
        close(
            e.instance_seconds_per_hour,
            m.on_per_hour,
            0.05,
            1.0,
            &format!("{what} instance-s/h"),
        );
    }
}

#[test]
fn recommendation_matches_the_closed_form_inverse() {
    // P(cold) = (1+λS)/(λS + e^(λT')) ≤ p  ⇔  T' ≥ ln((1+λS)/p − λS)/λ.
    let (rate, s, d, p) = (1.0 / 60.0, 0.5, 0.05, 0.01);
    let sc = scenario(
        Access::poisson(rate).unwrap(),
        StartTime::constant(Duration::from_secs_f64(s)),
        50,
        KeepAlive::default(),
    );
    let r = recommend(&sc, Target::ColdProbability(p)).unwrap();
    let t_exact = ((1.0 + rate * s) / p - rate * s).ln() / rate - d;
    let t = r.keep_alive.idle_timeout.unwrap().as_secs_f64();
    assert!(
        t >= t_exact && t < t_exact + 1.0,
        "recommended {t}, exact {t_exact}"
    );
    assert_eq!(r.keep_alive.min_instances, 0);
    assert!(r.estimate.cold_probability <= p);
    let text = r.to_string();
    assert!(
        text.starts_with("idle timeout ") && text.contains("cold requests 0.99"),
        "{text}"
    );
    // One second less would miss the target.
    let mut shorter = sc.clone();
    shorter.keep_alive = KeepAlive {
        idle_timeout: Some(Duration::from_secs_f64(t - 1.0)),
        ..r.keep_alive.clone()
    };
    assert!(evaluate(&shorter).unwrap().cold_probability > p);
}

#[test]
fn recommendation_for_a_wait_target_and_for_a_busy_site() {
    let start = StartTime::constant(Duration::from_millis(300));
    let rare = scenario(
        Access::poisson(1.0 / 600.0).unwrap(),
        start.clone(),
        0,
        KeepAlive::default(),
    );
    let r = recommend(&rare, Target::P99Wait(Duration::from_millis(50))).unwrap();
    assert!(r.estimate.p99_wait_ms <= 50.0);
    assert!(r.estimate.cold_probability <= 0.01 + 1e-9);
    // "Never cold" costs as much as always-on (a days-long timeout is always-on in effect).
    let r = recommend(&rare, Target::ColdProbability(0.0)).unwrap();
    assert_eq!(r.estimate.cold_probability, 0.0);
    assert!(r.estimate.instance_seconds_per_hour > 3599.0);
    assert!(matches!(
        recommend(&rare, Target::ColdProbability(1.5)),
        Err(SloError::BadTarget(_))
    ));
}

#[test]
fn recommendation_uses_prewarm_when_idle_times_cluster() {
    let mut rng = Rng(21);
    let gaps: Vec<f64> = (0..20_000).map(|_| bimodal(&mut rng)).collect();
    let sc = scenario(
        Access::gaps(gaps).unwrap(),
        StartTime::constant(Duration::from_millis(200)),
        0,
        KeepAlive::default(),
    );
    let target = Target::ColdProbability(0.05);
    let r = recommend(&sc, target).unwrap();
    assert!(r.estimate.cold_probability <= 0.05);
    assert!(
        matches!(r.prewarm, Prewarm::AfterIdle { .. }),
        "got {:?}",
        r.prewarm
    );
    // Cheaper than the best plain idle timeout (which must cover the ~10 min gaps).
    let plain = evaluate(&Scenario {
        keep_alive: KeepAlive::idle(Duration::from_secs(630)),
        ..sc.clone()
    })
    .unwrap();
    assert!(r.estimate.instance_seconds_per_hour < 0.5 * plain.instance_seconds_per_hour);
}

#[test]
fn keep_alive_only_recommendations_never_pre_warm() {
    let mut rng = Rng(21);
    let gaps: Vec<f64> = (0..20_000).map(|_| bimodal(&mut rng)).collect();
    let sc = scenario(
        Access::gaps(gaps).unwrap(),
        StartTime::constant(Duration::from_millis(200)),
        0,
        KeepAlive::default(),
    );
    let target = Target::ColdProbability(0.05);
    let all = recommend(&sc, target).unwrap();
    let plain = recommend_among(&sc, target, Candidates::KeepAliveOnly).unwrap();
    assert_eq!(plain.prewarm, Prewarm::None);
    assert!(plain.estimate.cold_probability <= 0.05);
    assert!(
        plain.estimate.instance_seconds_per_hour > all.estimate.instance_seconds_per_hour,
        "pre-warm was the cheaper choice, so leaving it out costs more"
    );
    // One second less than the recommended idle timeout misses the target.
    let t = plain.keep_alive.idle_timeout.unwrap();
    let shorter = evaluate(&Scenario {
        keep_alive: KeepAlive::idle(t - Duration::from_secs(1)),
        ..sc.clone()
    })
    .unwrap();
    assert!(shorter.cold_probability > 0.05);
}

#[test]
fn always_on_and_unsupported_combinations() {
    let start = StartTime::constant(Duration::from_secs(1));
    let sc = scenario(
        Access::poisson(0.01).unwrap(),
        start.clone(),
        0,
        KeepAlive::always_on(2),
    );
    let e = evaluate(&sc).unwrap();
    assert_eq!(e.method, Method::AlwaysOn);
    assert_eq!(e.cold_probability, 0.0);
    assert!((e.instance_seconds_per_hour - 7200.0 * (1.0 + 1.0 / 86_400.0)).abs() < 1e-6);
    let mut predicted = scenario(
        Access::poisson(0.01).unwrap(),
        start.clone(),
        0,
        KeepAlive::default(),
    );
    predicted.prewarm = Prewarm::Predicted {
        lead: Duration::from_secs(1),
    };
    assert!(matches!(
        evaluate(&predicted),
        Err(SloError::Unsupported(_))
    ));
    let lifetime_gaps = scenario(
        Access::gaps([1.0, 2.0]).unwrap(),
        start,
        0,
        KeepAlive::fixed_lifetime(Duration::from_secs(60)),
    );
    let err = evaluate(&lifetime_gaps).unwrap_err();
    assert!(err.to_string().contains("hako sim"));
}
