//! hako's autoscaler on a simulated clock, with deterministic load patterns. The statistical
//! checks (false alarms per hour on Poisson load, fixed seeds) are in `hako-sim`.

use std::time::Duration;

use super::*;

const TICK_MS: u64 = 200;

fn config(target: f64) -> AutoscaleConfig {
    AutoscaleConfig {
        target_concurrency: target,
        ..AutoscaleConfig::default()
    }
}

/// A small fixed pseudo-random sequence (xorshift) for jittery but reproducible loads.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Drive `scaler` with `load(t_secs)` every 200 ms from `from` to `to` seconds, applying its
/// decisions (instances are ready at once); returns the decisions with their times.
fn drive(
    scaler: &mut Autoscaler,
    current: &mut u32,
    from: f64,
    to: f64,
    min: u32,
    max: u32,
    mut load: impl FnMut(f64) -> f64,
) -> Vec<(f64, ScaleDecision)> {
    let mut out = Vec::new();
    let mut k = (from * 1000.0 / TICK_MS as f64).round() as u64;
    loop {
        let t = (k * TICK_MS) as f64 / 1000.0;
        if t >= to {
            break;
        }
        let now = Time::from_nanos(k * TICK_MS * 1_000_000);
        let c = load(t);
        scaler.observe(
            now,
            Sample {
                in_flight: c,
                queued: 0.0,
            },
        );
        if let Some(d) = scaler.decide(now, *current, *current, min, max) {
            assert!(d.to >= min.max(1) && d.to <= max, "out of bounds: {d}");
            *current = d.to;
            out.push((t, d));
        }
        k += 1;
    }
    out
}

#[test]
fn a_4x_step_is_seen_within_two_seconds_and_sized_for_the_new_load() {
    let mut s = Autoscaler::new(config(4.0));
    let mut j = Jitter(7);
    let mut current = 1;
    // ±1 of noise around 2.75 (69% of one instance's 4), then around 11 from 120 s.
    let mut load = move |t: f64| {
        let base = if t < 120.0 { 2.75 } else { 11.0 };
        base + 2.0 * j.next() - 1.0
    };
    let before = drive(&mut s, &mut current, 0.0, 120.0, 1, 10, &mut load);
    assert!(before.is_empty(), "scaled on steady load: {before:?}");
    let after = drive(&mut s, &mut current, 120.0, 130.0, 1, 10, &mut load);
    let (t, first) = after.first().expect("the step was seen");
    assert!(*t - 120.0 <= 2.0, "seen after {:.1}s", t - 120.0);
    assert!(first.is_up());
    assert!(first.to_string().starts_with("scale 1→"), "{first}");
    assert!(
        first.to_string().contains("threshold 8.0"),
        "2× capacity: {first}"
    );
    assert_eq!(current, 3, "sized for 11 at 4 each: {after:?}");
}

#[test]
fn short_bursts_on_steady_load_do_not_scale_up() {
    let mut s = Autoscaler::new(config(10.0));
    let mut j = Jitter(11);
    let mut current = 1;
    // Mean 5.5 with ±3 jitter, and every 20 s a 600 ms burst to 30 (three times capacity).
    let d = drive(&mut s, &mut current, 0.0, 3600.0, 1, 10, |t| {
        if (10.0..10.6).contains(&(t % 20.0)) {
            30.0
        } else {
            5.5 + 6.0 * j.next() - 3.0
        }
    });
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn a_ramp_that_never_doubles_is_caught_by_the_steady_path() {
    let mut s = Autoscaler::new(config(10.0));
    let mut j = Jitter(5);
    let mut current = 1;
    // From 5 to 15 over 200 s from 300 s: crosses one instance's 10 at 400 s, never reaches 20.
    let level = |t: f64| 5.0 + 10.0 * ((t - 300.0) / 200.0).clamp(0.0, 1.0);
    let d = drive(&mut s, &mut current, 0.0, 520.0, 1, 10, |t| {
        level(t) + 2.0 * j.next() - 1.0
    });
    let (t, first) = d.first().expect("the ramp was seen");
    assert!(first.is_up());
    assert!(first.to_string().contains("over 10s") || first.to_string().contains("over 5s"));
    // Seen once the 10-s mean clears the capacity by the measured noise: the trend itself is
    // not counted as noise (a plain standard deviation of 10-s means over a ramp would be).
    assert!(
        *t > 400.0 && level(*t) < 12.5,
        "seen at {t:.1}s, load {:.2}",
        level(*t)
    );
    assert_eq!(current, 2);
}

#[test]
fn scales_down_only_after_a_calm_delay_to_what_the_peak_needs() {
    let mut s = Autoscaler::new(config(4.0));
    let mut current = 1;
    let ups = drive(&mut s, &mut current, 0.0, 70.0, 1, 10, |t| {
        if t < 60.0 { 3.0 } else { 14.0 }
    });
    assert_eq!(current, 4, "{ups:?}");
    let t_up = ups.last().unwrap().0;
    // Back to 7 (two instances' worth).
    let downs = drive(&mut s, &mut current, 70.0, 200.0, 1, 10, |_| 7.0);
    let (t, d) = downs.first().expect("scaled down");
    assert!(*t - t_up >= 30.0, "down {:.1}s after the last up", t - t_up);
    assert!(!d.is_up() && d.to_string().contains("over 30s"), "{d}");
    // The 10-s block holding the drop may ask for 3 first; then 2 — and never below.
    assert_eq!(current, 2, "{downs:?}");
    assert!(downs.len() <= 2, "{downs:?}");
    let (_, last) = downs.last().unwrap();
    assert!(last.to_string().contains("concurrency at most"), "{last}");
    // Idle: down to the minimum, never to zero (that is the keep-alive's job).
    let idle = drive(&mut s, &mut current, 200.0, 300.0, 0, 10, |_| 0.0);
    assert_eq!(current, 1, "{idle:?}");
}

#[test]
fn bounds_come_first_and_no_second_scale_up_while_instances_start() {
    let mut s = Autoscaler::new(config(4.0));
    let now = Time::from_secs(1);
    let d = s.decide(now, 0, 0, 2, 5).unwrap();
    assert_eq!((d.from, d.to), (0, 2));
    assert_eq!(d.to_string(), "scale 0→2: below the minimum of 2");
    let d = s.decide(now, 7, 7, 2, 5).unwrap();
    assert_eq!(d.to_string(), "scale 7→5: above the maximum of 5");
    // No instance at all: the activator's job.
    for k in 0..20 {
        s.observe(Time::from_nanos(k * 200_000_000), Sample::new(0, 30));
    }
    let now = Time::from_nanos(19 * 200_000_000);
    assert_eq!(s.decide(now, 0, 0, 0, 5), None);
    // A flood on a fresh app (no baseline yet): scale up, capped at max.
    let d = s.decide(now, 1, 1, 0, 5).unwrap();
    assert_eq!((d.from, d.to), (1, 5));
    // While the new instances start: nothing more.
    assert_eq!(s.decide(now, 5, 1, 0, 8), None);
}

#[test]
fn sparse_or_missing_samples_decide_nothing() {
    let mut s = Autoscaler::new(config(4.0));
    assert_eq!(s.decide(Time::from_secs(10), 1, 1, 1, 5), None);
    s.observe(Time::from_secs(10), Sample::new(100, 0));
    s.observe(Time::from_secs(11), Sample::new(100, 0));
    assert_eq!(
        s.decide(Time::from_secs(11), 1, 1, 1, 5),
        None,
        "two samples are no window"
    );
    // Garbage settings do not panic.
    let mut odd = Autoscaler::new(AutoscaleConfig {
        target_concurrency: f64::NAN,
        z: -1.0,
        surge_factor: f64::NAN,
        surge_window: Duration::ZERO,
        steady_window: Duration::ZERO,
        ..AutoscaleConfig::default()
    });
    for k in 0..50 {
        odd.observe(Time::from_nanos(k * 100_000_000), Sample::new(3, 0));
        let _ = odd.decide(Time::from_nanos(k * 100_000_000), 1, 1, 1, 5);
    }
}

#[test]
fn config_reads_human_durations() {
    let c: AutoscaleConfig =
        serde_json::from_str(r#"{"target_concurrency":4,"surge_window":"1s","down_delay":"1m"}"#)
            .unwrap();
    assert_eq!(c.target_concurrency, 4.0);
    assert_eq!(c.surge_window, Duration::from_secs(1));
    assert_eq!(c.down_delay, Duration::from_secs(60));
    assert_eq!(c.z, 3.0);
    let back = serde_json::to_string(&AutoscaleConfig::default()).unwrap();
    assert!(back.contains(r#""surge_window":"2s""#), "{back}");
}
