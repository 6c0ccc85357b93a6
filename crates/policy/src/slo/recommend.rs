//! The inverse of the model: the cheapest keep-alive (fewest instance-seconds) that meets a
//! service-level target.
//!
//! Candidates: scale-to-zero with the shortest sufficient idle timeout (found by bisection —
//! P(cold) and the wait percentiles only fall as the timeout grows, while memory-time only rises);
//! for an empirical gap histogram also idle timeout plus a pre-warm after each of the gap
//! histogram's quantiles; and always-on (one instance). The cheapest that meets the target wins.
//! [`recommend_among`] can leave pre-warm out, for a daemon that only applies keep-alive settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SloError;
use super::access::Access;
use super::model::{Estimate, Scenario, evaluate};
use crate::keepalive::KeepAlive;
use crate::prewarm::Prewarm;
use hako_model::units::format_duration;

/// A service-level target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// At most this fraction of requests meets a cold start (e.g. 0.01: "99% never wait").
    ColdProbability(f64),
    /// The 99th percentile of the added wait is at most this.
    P99Wait(Duration),
}

impl Target {
    fn met_by(&self, e: &Estimate) -> bool {
        match self {
            Target::ColdProbability(p) => e.cold_probability <= p * (1.0 + 1e-9),
            Target::P99Wait(d) => e.p99_wait_ms <= d.as_secs_f64() * 1e3 * (1.0 + 1e-9),
        }
    }

    fn validate(&self) -> Result<(), SloError> {
        match self {
            Target::ColdProbability(p) if !(0.0..=1.0).contains(p) => Err(SloError::BadTarget(
                format!("cold probability {p} must be between 0 and 1 (e.g. 0.01 for 1%)"),
            )),
            _ => Ok(()),
        }
    }
}

/// The cheapest policy found and what the model expects of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The recommended keep-alive (other settings copied from the scenario's).
    pub keep_alive: KeepAlive,
    /// The recommended pre-warm.
    pub prewarm: Prewarm,
    /// The model's estimate for it.
    pub estimate: Estimate,
}

impl std::fmt::Display for Recommendation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ka = &self.keep_alive;
        if ka.min_instances > 0 {
            write!(f, "always on ({} instance(s))", ka.min_instances)?;
        } else {
            let idle = ka.idle_timeout.map_or("none".into(), format_duration);
            write!(f, "idle timeout {idle}")?;
        }
        if let Prewarm::AfterIdle { after } = self.prewarm {
            write!(
                f,
                ", pre-warm {} after the last request",
                format_duration(after)
            )?;
        }
        write!(f, ": {}", self.estimate)
    }
}

/// Which policies a recommendation may choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Candidates {
    /// Idle timeouts, pre-warm after a gap quantile (for an empirical gap histogram), always-on.
    #[default]
    All,
    /// Only what an app's keep-alive settings express: an idle timeout or `min_instances`.
    KeepAliveOnly,
}

/// Longest idle timeout considered (7 days).
const MAX_IDLE_SECS: u64 = 7 * 24 * 3600;

/// Recommend the cheapest keep-alive for `base`'s access pattern, start time and service time
/// that meets `target`. Always-on always meets a target, so there is always an answer.
pub fn recommend(base: &Scenario, target: Target) -> Result<Recommendation, SloError> {
    recommend_among(base, target, Candidates::All)
}

/// [`recommend`], choosing only among `candidates`.
pub fn recommend_among(
    base: &Scenario,
    target: Target,
    candidates: Candidates,
) -> Result<Recommendation, SloError> {
    target.validate()?;
    let mut best: Option<Recommendation> = None;
    let mut consider = |r: Recommendation| {
        if best.as_ref().is_none_or(|b| {
            r.estimate.instance_seconds_per_hour < b.estimate.instance_seconds_per_hour
        }) {
            best = Some(r);
        }
    };

    if let Some(r) = shortest_idle(base, target, Prewarm::None, MAX_IDLE_SECS)? {
        consider(r);
    }
    if let (Access::Gaps(_), Candidates::All) = (&base.access, candidates) {
        let d = base.service_time.as_secs_f64();
        let lead = base.start.mean();
        for i in 1..20 {
            let at = base.access.quantile(f64::from(i) * 0.05) - lead;
            if at <= 1.0 + d {
                continue;
            }
            let after = Duration::from_secs_f64(at);
            // Keep T' = T + D below the pre-warm point, or the pre-warm never fires.
            let max_t = (at - d).floor() as u64;
            if max_t < 1 {
                continue;
            }
            if let Some(r) = shortest_idle(base, target, Prewarm::AfterIdle { after }, max_t - 1)? {
                consider(r);
            }
        }
    }
    let always = candidate(
        base,
        KeepAlive {
            min_instances: 1,
            ..base.keep_alive.clone()
        },
        Prewarm::None,
    )?;
    consider(always);
    best.ok_or(SloError::Unsupported("a scenario with no candidate policy"))
}

fn candidate(
    base: &Scenario,
    keep_alive: KeepAlive,
    prewarm: Prewarm,
) -> Result<Recommendation, SloError> {
    let scenario = Scenario {
        keep_alive: keep_alive.clone(),
        prewarm,
        ..base.clone()
    };
    Ok(Recommendation {
        estimate: evaluate(&scenario)?,
        keep_alive,
        prewarm,
    })
}

fn idle_policy(base: &Scenario, secs: u64) -> KeepAlive {
    KeepAlive {
        idle_timeout: Some(Duration::from_secs(secs)),
        min_instances: 0,
        ..base.keep_alive.clone()
    }
}

/// The shortest idle timeout in whole seconds within [1, max] that meets `target`.
fn shortest_idle(
    base: &Scenario,
    target: Target,
    prewarm: Prewarm,
    max: u64,
) -> Result<Option<Recommendation>, SloError> {
    if max < 1 {
        return Ok(None);
    }
    let at = |secs| candidate(base, idle_policy(base, secs), prewarm);
    let top = at(max)?;
    if !target.met_by(&top.estimate) {
        return Ok(None);
    }
    let low = at(1)?;
    if target.met_by(&low.estimate) {
        return Ok(Some(low));
    }
    let (mut lo, mut hi, mut found) = (1, max, top);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let r = at(mid)?;
        if target.met_by(&r.estimate) {
            hi = mid;
            found = r;
        } else {
            lo = mid;
        }
    }
    Ok(Some(found))
}
