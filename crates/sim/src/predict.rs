//! The service-level model's prediction for a whole simulated workload, to set beside the
//! simulator's report (e.g. the experiment's `model_vs_sim_err`).
//!
//! Synthetic workloads: for each site, the day is cut into 15-minute slices; within a slice the
//! rate is taken constant (quasi-static: the diurnal cycle is slow next to the idle timeout) and
//! the Poisson closed forms of `hako_policy::slo` apply. Bursts enter as a mixture: a fraction
//! `per_day · duration / 24 h` of the time runs at (1 + multiplier) × the rate. Traces: each
//! site's own gap histogram through the numeric model (one request: one cold request).

use std::time::Duration;

use hako_policy::slo::{Access, Scenario, SloError, evaluate};
use serde::Serialize;

use crate::SimError;
use crate::config::{SimConfig, Workload};

/// The model's expectation for a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// Expected requests.
    pub requests: f64,
    /// Expected cold requests.
    pub cold_requests: f64,
    /// cold_requests / requests.
    pub cold_ratio: f64,
    /// Expected instance-seconds.
    pub instance_seconds: f64,
    /// instance_seconds / (sites × duration).
    pub memory_time_vs_always_on: f64,
}

const SLICE_S: f64 = 900.0;

/// Predict `config`'s report with the model.
pub fn predict(config: &SimConfig) -> Result<Prediction, SimError> {
    config.validate()?;
    if config.predictor.is_some() {
        return Err(SimError::Model(SloError::Unsupported(
            "the predictive keep-alive (it learns as it goes)",
        )));
    }
    let duration = config.duration.as_secs_f64();
    let scenario = |access: Access| Scenario {
        access,
        start: config.start_time.clone(),
        service_time: config.service_time,
        keep_alive: config.keep_alive.clone(),
        prewarm: config.prewarm,
    };
    let (mut requests, mut cold, mut on) = (0.0, 0.0, 0.0);
    let sites = match &config.workload {
        Workload::Synthetic(s) => {
            let rates = s.site_rates(config.seed);
            let (burst_frac, burst_mult) = s.bursts.map_or((0.0, 0.0), |b| {
                (
                    (b.per_day * b.duration.as_secs_f64() / 86_400.0).min(1.0),
                    b.rate_multiplier,
                )
            });
            let slices = (duration / SLICE_S).ceil().max(1.0) as usize;
            for &rate in &rates {
                for k in 0..slices {
                    let t0 = k as f64 * SLICE_S;
                    let dt = SLICE_S.min(duration - t0);
                    let level = s.diurnal.map_or(1.0, |d| {
                        let mid = t0 + dt / 2.0;
                        1.0 + d.amplitude
                            * (std::f64::consts::TAU * (mid / 86_400.0 - d.peak_hour / 24.0)).cos()
                    });
                    for (weight, r) in [
                        (1.0 - burst_frac, rate * level),
                        (burst_frac, rate * level + rate * burst_mult),
                    ] {
                        if weight <= 0.0 || r <= 0.0 {
                            continue;
                        }
                        let e = evaluate(&scenario(Access::poisson(r)?))?;
                        let n = r * dt * weight;
                        requests += n;
                        cold += n * e.cold_probability;
                        on += e.instance_seconds_per_hour / 3600.0 * dt * weight;
                    }
                }
            }
            rates.len()
        }
        Workload::Trace(t) => {
            for times in &t.arrivals {
                let times: Vec<f64> = times.iter().copied().filter(|t| *t < duration).collect();
                let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
                requests += times.len() as f64;
                match Access::gaps(gaps.iter().copied()) {
                    Ok(access) => {
                        let e = evaluate(&scenario(access))?;
                        cold += 1.0 + (times.len() as f64 - 1.0) * e.cold_probability;
                        let span = times.last().unwrap_or(&0.0) - times.first().unwrap_or(&0.0);
                        on += e.instance_seconds_per_hour / 3600.0 * span;
                    }
                    Err(_) if !times.is_empty() => {
                        cold += 1.0;
                        let idle = config.keep_alive.idle_timeout.unwrap_or(Duration::ZERO);
                        on += config.start_time.mean() + (config.service_time + idle).as_secs_f64();
                    }
                    Err(_) => {}
                }
            }
            t.sites.len()
        }
    };
    let always_on = sites as f64 * duration;
    Ok(Prediction {
        requests,
        cold_requests: cold,
        cold_ratio: if requests > 0.0 { cold / requests } else { 0.0 },
        instance_seconds: on,
        memory_time_vs_always_on: if always_on > 0.0 { on / always_on } else { 0.0 },
    })
}
