//! The service-level model: cold-start probability, added wait and memory-time of one app
//! under a keep-alive policy. Derivations: docs/slo.md.
//!
//! The model assumes one instance serves all of an app's concurrent requests (hako's activator
//! coalesces a start; an instance takes many requests at once) and a constant service time `D`.
//! With idle timeout `T`, an instance stops once no request arrived for `T' = T + D` after its
//! last activity, so the model works with `T'`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SloError;
use super::access::Access;
use super::start_time::StartTime;
use crate::keepalive::KeepAlive;
use crate::prewarm::Prewarm;

/// Everything the model needs about one app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// How requests arrive.
    pub access: Access,
    /// How long a start takes.
    pub start: StartTime,
    /// How long a request takes once it reaches an instance (constant).
    pub service_time: Duration,
    /// The keep-alive policy.
    pub keep_alive: KeepAlive,
    /// The pre-warm policy (the model handles `None` and `AfterIdle`).
    pub prewarm: Prewarm,
}

/// How an estimate was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact closed form (Poisson arrivals).
    ClosedForm,
    /// Numeric evaluation over the gap distribution (renewal approximation, docs/slo.md).
    Numeric,
    /// At least one instance always runs: no cold starts in steady state.
    AlwaysOn,
}

/// The model's answer for one scenario (steady state).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Fraction of requests that wait for a start (P(cold)).
    pub cold_probability: f64,
    /// Mean added wait per request (all requests, warm ones count as 0), milliseconds.
    pub mean_wait_ms: f64,
    /// 99th percentile of the added wait, milliseconds.
    pub p99_wait_ms: f64,
    /// Expected instance-seconds per hour (memory-time: multiply by the instance's memory).
    pub instance_seconds_per_hour: f64,
    /// Expected requests per hour.
    pub requests_per_hour: f64,
    /// How it was computed.
    pub method: Method,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.method {
            Method::ClosedForm => "closed form",
            Method::Numeric => "numeric",
            Method::AlwaysOn => "always on",
        };
        write!(
            f,
            "cold requests {:.4}%, added wait mean {:.1} ms, p99 {:.1} ms, {:.0} instance-seconds/hour at {:.1} requests/hour ({method})",
            self.cold_probability * 100.0,
            self.mean_wait_ms,
            self.p99_wait_ms,
            self.instance_seconds_per_hour,
            self.requests_per_hour
        )
    }
}

/// Evaluate `scenario` (see the module documentation for the assumptions).
pub fn evaluate(scenario: &Scenario) -> Result<Estimate, SloError> {
    let ka = &scenario.keep_alive;
    let d = scenario.service_time.as_secs_f64();
    let s = &scenario.start;
    let rate = scenario.access.rate();
    if ka.min_instances >= 1 || (ka.idle_timeout.is_none() && ka.max_lifetime.is_none()) {
        return Ok(always_on(scenario, rate));
    }
    let (cold, mean_wait, tail, on_fraction, method): (f64, f64, Tail<'_>, f64, Method) =
        match (ka.idle_timeout, scenario.prewarm) {
            (_, Prewarm::Predicted { .. }) => {
                return Err(SloError::Unsupported("predicted pre-warm"));
            }
            (Some(t), prewarm) => {
                let t_eff = t.as_secs_f64() + d;
                match (&scenario.access, prewarm) {
                    (Access::Poisson { rate }, Prewarm::None) => poisson_idle(*rate, t_eff, s),
                    (access, prewarm) => renewal_idle(access, t.as_secs_f64(), t_eff, s, prewarm),
                }
            }
            (None, prewarm) => {
                let lifetime = ka.max_lifetime.unwrap_or(Duration::MAX).as_secs_f64();
                match (&scenario.access, prewarm) {
                    (Access::Poisson { rate }, Prewarm::None) => {
                        poisson_lifetime(*rate, lifetime, s)
                    }
                    _ => {
                        return Err(SloError::Unsupported(
                            "fixed lifetime without Poisson arrivals",
                        ));
                    }
                }
            }
        };
    Ok(Estimate {
        cold_probability: cold.clamp(0.0, 1.0),
        mean_wait_ms: mean_wait * 1e3,
        p99_wait_ms: quantile_of_tail(&tail, 0.99, s.max()) * 1e3,
        instance_seconds_per_hour: 3600.0 * on_fraction,
        requests_per_hour: 3600.0 * rate,
        method,
    })
}

/// P(W > w) for the added wait W.
type Tail<'a> = Box<dyn Fn(f64) -> f64 + 'a>;

fn always_on(scenario: &Scenario, rate: f64) -> Estimate {
    let ka = &scenario.keep_alive;
    let m = f64::from(ka.min_instances.max(1));
    // A recycle starts the successor first: one start time of overlap per lifetime.
    let overlap = ka
        .max_lifetime
        .map_or(0.0, |l| scenario.start.mean() / l.as_secs_f64().max(1e-9));
    Estimate {
        cold_probability: 0.0,
        mean_wait_ms: 0.0,
        p99_wait_ms: 0.0,
        instance_seconds_per_hour: 3600.0 * m * (1.0 + overlap),
        requests_per_hour: 3600.0 * rate,
        method: Method::AlwaysOn,
    }
}

/// Poisson arrivals, idle timeout `t_eff` (= T + D): exact renewal-cycle closed forms.
/// With q = e^(−λT'): requests per cycle 1/q + λE[S], colds per cycle 1 + λE[S].
fn poisson_idle(rate: f64, t_eff: f64, s: &StartTime) -> (f64, f64, Tail<'_>, f64, Method) {
    let q = (-rate * t_eff).exp();
    let es = s.mean();
    let per_cycle = rate * q * es + 1.0; // requests per cycle, times q
    let cold = (1.0 + rate * es) * q / per_cycle;
    let mean_wait = (es + rate * s.second_moment() / 2.0) * q / per_cycle;
    let on = (rate * q * es + 1.0 - q) / per_cycle;
    let tail: Tail<'_> = Box::new(move |w| (s.tail(w) + rate * s.excess(w)) * q / per_cycle);
    (cold, mean_wait, tail, on, Method::ClosedForm)
}

/// Poisson arrivals, fixed lifetime L from the start (stop at L, next request starts anew).
fn poisson_lifetime(rate: f64, lifetime: f64, s: &StartTime) -> (f64, f64, Tail<'_>, f64, Method) {
    let n = 1.0 + rate * lifetime; // requests per cycle
    let es = s.mean();
    let cold = (1.0 + rate * es) / n;
    let mean_wait = (es + rate * s.second_moment() / 2.0) / n;
    let on = rate * lifetime / n;
    let tail: Tail<'_> = Box::new(move |w| (s.tail(w) + rate * s.excess(w)) / n);
    (cold, mean_wait, tail, on, Method::ClosedForm)
}

/// Any gap distribution, idle timeout (T' = T + D), optional pre-warm `after` the last request.
/// Each request is classified by the gap G since the previous one (renewal approximation).
fn renewal_idle<'a>(
    access: &'a Access,
    t: f64,
    t_eff: f64,
    s: &'a StartTime,
    prewarm: Prewarm,
) -> (f64, f64, Tail<'a>, f64, Method) {
    let es = s.mean();
    let mean_gap = access.mean_gap();
    let f_t = access.cdf(t_eff);
    // On-time of the instance that served the previous request: min(G, T').
    let idle_tail_on = access.partial_mean(t_eff) + t_eff * (1.0 - f_t);
    let p = match prewarm {
        Prewarm::AfterIdle { after } if after.as_secs_f64() > t_eff => Some(after.as_secs_f64()),
        _ => None,
    };
    let Some(p) = p else {
        let cold = 1.0 - f_t;
        let on = idle_tail_on + cold * es;
        let tail: Tail<'a> = Box::new(move |w| (1.0 - access.cdf(t_eff)) * s.tail(w));
        return (cold, cold * es, tail, on / mean_gap, Method::Numeric);
    };
    // Pre-warm: an instance starts at P, is ready at P + s, idles out at P + s + T.
    let n = s.len() as f64;
    let (mut cold, mut wait, mut on) = (0.0, 0.0, idle_tail_on);
    for sp in s.values() {
        let (b2, b3) = (p + sp, p + sp + t);
        let full = access.prob_between(t_eff, p) + (1.0 - access.cdf(b3));
        let partial = access.prob_between(p, b2);
        cold += (full + partial) / n;
        wait += (full * es + b2 * partial - access.mean_between(p, b2)) / n;
        on += (es * access.prob_between(t_eff, p) + access.mean_between(p, b3)
            - p * access.prob_between(p, b3)
            + (1.0 - access.cdf(b3)) * (sp + t + es))
            / n;
    }
    let tail: Tail<'a> = Box::new(move |w| {
        s.values()
            .map(|sp| {
                let (b2, b3) = (p + sp, p + sp + t);
                let full = access.prob_between(t_eff, p) + (1.0 - access.cdf(b3));
                full * s.tail(w) + access.prob_between(p, b2 - w)
            })
            .sum::<f64>()
            / n
    });
    (cold, wait, tail, on / mean_gap, Method::Numeric)
}

/// The smallest w ≥ 0 with P(W > w) ≤ 1 − q (by bisection; the tail is non-increasing).
fn quantile_of_tail(tail: &Tail<'_>, q: f64, max: f64) -> f64 {
    let target = 1.0 - q;
    if tail(0.0) <= target {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, max);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if tail(mid) <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}
