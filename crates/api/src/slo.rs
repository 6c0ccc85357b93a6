//! The service level of a live app (`GET /v1/apps/NAME/slo`, `hako slo APP`): the daemon's
//! measurements of the app ([`History`]: the gaps between its request arrivals, its
//! instances' start times, its request time, its keep-alive policy) fed to the service-level
//! model of `hako_policy::slo`, which answers for the current policy and, given a target,
//! recommends the cheapest keep-alive settings that meet it ([`SloReport`]).
//!
//! With too little history (fewer than [`MIN_REQUESTS`] requests, or no measured start) the
//! report says so in `unavailable` instead of estimating from noise.

use std::time::Duration;

use hako_policy::KeepAlive;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::{
    Access, Candidates, Estimate, Recommendation, Scenario, StartTime, Target, evaluate,
    recommend_among,
};
use serde::{Deserialize, Serialize};

/// Fewest requests (so one fewer gaps) the model is asked to estimate from. With n gaps a
/// cold fraction p is known to about ±√(p(1−p)/n): ±7% points at 50.
pub const MIN_REQUESTS: u64 = 50;

/// What the daemon measured of one app since it started routing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The keep-alive policy the daemon applies to the app now.
    pub keep_alive: KeepAlive,
    /// Requests that arrived.
    pub requests: u64,
    /// Seconds from the first request to the latest.
    pub span_s: f64,
    /// The gaps between consecutive arrivals, by histogram bucket (non-empty ones, ascending).
    pub gaps: Vec<GapBin>,
    /// Instance starts measured (asked for → ready).
    pub starts: u64,
    /// The latest start times, milliseconds (up to 256).
    pub start_ms: Vec<f64>,
    /// Requests that waited for a start.
    pub cold: u64,
    /// Requests that found a ready instance.
    pub warm: u64,
    /// Mean time from sending a request to an instance until its response head, milliseconds.
    pub service_ms: f64,
    /// The app's keep-alive: the model estimates the fixed one; with `predictive` the
    /// requests' measured cold fraction shows what the predictor does.
    #[serde(default)]
    pub keep_alive_mode: hako_model::KeepAliveMode,
    /// What the predictive keep-alive learned, for a predictive app.
    #[serde(default)]
    pub predictor: Option<PredictorReport>,
}

/// What the daemon's predictive keep-alive learned of an app (`--keep-alive predictive`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorReport {
    /// Its window in words ("unload after each visit, pre-warm 881.2s after the last request,
    /// keep until 937.3s", or why the idle timeout still decides).
    pub window: String,
    /// Idle periods (gaps between visits) it has seen.
    pub idle_periods: u64,
    /// Instances it started ahead of an expected request.
    pub pre_warm_starts: u64,
}

/// `count` gaps between `low_ms` and `high_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GapBin {
    /// Shortest gap of the bucket, milliseconds.
    pub low_ms: f64,
    /// Longest gap of the bucket, milliseconds.
    pub high_ms: f64,
    /// Gaps in it.
    pub count: u64,
}

impl GapBin {
    /// The value the model takes for every gap of the bucket: its middle, seconds.
    fn seconds(&self) -> f64 {
        (self.low_ms + self.high_ms) / 2.0 / 1e3
    }
}

/// The answer of `GET /v1/apps/NAME/slo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    /// The app.
    pub app: String,
    /// The keep-alive policy the daemon applies (absent if the daemon does not route the app).
    pub keep_alive: Option<KeepAlive>,
    /// The measurements, summarised.
    pub history: Summary,
    /// Why there is no estimate (too little history, or what the model cannot cover).
    pub unavailable: Option<String>,
    /// The model's answer for the current policy.
    pub current: Option<Estimate>,
    /// The target asked for: at most this fraction of cold requests.
    pub target_cold: Option<f64>,
    /// The target asked for: p99 added wait at most this, milliseconds.
    pub target_p99_wait_ms: Option<f64>,
    /// The cheapest keep-alive settings that meet the target (idle timeout or min instances).
    pub recommendation: Option<Recommendation>,
    /// The arrival-gap histogram the model used.
    pub gaps: Vec<GapBin>,
    /// The start times the model used, milliseconds.
    pub start_ms: Vec<f64>,
    /// The app's keep-alive (`fixed` or `predictive`).
    #[serde(default)]
    pub keep_alive_mode: hako_model::KeepAliveMode,
    /// What the predictive keep-alive learned, for a predictive app.
    #[serde(default)]
    pub predictor: Option<PredictorReport>,
}

/// The measurements in a few numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests that arrived.
    pub requests: u64,
    /// Seconds from the first request to the latest.
    pub span_s: f64,
    /// Mean gap between requests, seconds.
    pub mean_gap_s: Option<f64>,
    /// Instance starts measured.
    pub starts: u64,
    /// Mean of the latest start times, milliseconds.
    pub start_mean_ms: Option<f64>,
    /// Longest of the latest start times, milliseconds.
    pub start_max_ms: Option<f64>,
    /// Mean request time (to the response head), milliseconds.
    pub service_ms: f64,
    /// Requests that waited for a start.
    pub cold: u64,
    /// Requests that found a ready instance.
    pub warm: u64,
    /// cold / (cold + warm): what the requests actually met, to hold the model against.
    pub observed_cold_fraction: Option<f64>,
}

impl Summary {
    fn of(h: &History) -> Summary {
        let gaps: u64 = h.gaps.iter().map(|b| b.count).sum();
        let n_starts = h.start_ms.len() as f64;
        let counted = h.cold + h.warm;
        Summary {
            requests: h.requests,
            span_s: h.span_s,
            mean_gap_s: (gaps > 0).then(|| h.span_s / gaps as f64),
            starts: h.starts,
            start_mean_ms: (n_starts > 0.0).then(|| h.start_ms.iter().sum::<f64>() / n_starts),
            start_max_ms: h.start_ms.iter().copied().reduce(f64::max),
            service_ms: h.service_ms,
            cold: h.cold,
            warm: h.warm,
            observed_cold_fraction: (counted > 0).then(|| h.cold as f64 / counted as f64),
        }
    }
}

/// The report for `app` from the daemon's `history` (None: the daemon does not route the app),
/// with a recommendation if a `target` is given.
pub fn report(app: &str, history: Option<History>, target: Option<Target>) -> SloReport {
    let (target_cold, target_p99_wait_ms) = match target {
        Some(Target::ColdProbability(p)) => (Some(p), None),
        Some(Target::P99Wait(d)) => (None, Some(d.as_secs_f64() * 1e3)),
        None => (None, None),
    };
    let mut r = SloReport {
        app: app.to_string(),
        keep_alive: history.as_ref().map(|h| h.keep_alive.clone()),
        history: history.as_ref().map(Summary::of).unwrap_or_default(),
        unavailable: None,
        current: None,
        target_cold,
        target_p99_wait_ms,
        recommendation: None,
        gaps: history.as_ref().map(|h| h.gaps.clone()).unwrap_or_default(),
        start_ms: history
            .as_ref()
            .map(|h| h.start_ms.clone())
            .unwrap_or_default(),
        keep_alive_mode: history
            .as_ref()
            .map(|h| h.keep_alive_mode)
            .unwrap_or_default(),
        predictor: history.as_ref().and_then(|h| h.predictor.clone()),
    };
    let Some(h) = history else {
        r.unavailable = Some(format!(
            "hako serve does not route app {app} (yet): nothing measured"
        ));
        return r;
    };
    let scenario = match scenario(&h) {
        Ok(s) => s,
        Err(why) => {
            r.unavailable = Some(why);
            return r;
        }
    };
    match evaluate(&scenario) {
        Ok(e) => r.current = Some(e),
        Err(e) => {
            r.unavailable = Some(e.to_string());
            return r;
        }
    }
    if let Some(t) = target {
        match recommend_among(&scenario, t, Candidates::KeepAliveOnly) {
            Ok(rec) => r.recommendation = Some(rec),
            Err(e) => r.unavailable = Some(e.to_string()),
        }
    }
    r
}

/// The model's input from the history, or why there is too little of it.
fn scenario(h: &History) -> Result<Scenario, String> {
    if h.requests < MIN_REQUESTS || h.start_ms.is_empty() {
        return Err(format!(
            "too little history: {} request(s) and {} measured start(s) since hako serve started routing the app; the model needs at least {MIN_REQUESTS} requests and 1 start, ask again later",
            h.requests,
            h.start_ms.len()
        ));
    }
    let access = Access::histogram(h.gaps.iter().map(|b| (b.seconds(), b.count as f64)))
        .map_err(|e| format!("too little history: {e}"))?;
    let start = StartTime::samples_secs(h.start_ms.iter().map(|ms| ms / 1e3))
        .map_err(|e| format!("the measured start times are unusable: {e}"))?;
    Ok(Scenario {
        access,
        start,
        service_time: Duration::try_from_secs_f64(h.service_ms / 1e3).unwrap_or_default(),
        keep_alive: h.keep_alive.clone(),
        prewarm: Prewarm::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` requests: gaps of 20 ms, every tenth 3 s; starts of 40 ms.
    fn history(n: u64, idle: Duration) -> History {
        let long = (n - 1) / 10;
        let short = n - 1 - long;
        History {
            keep_alive: KeepAlive::idle(idle),
            requests: n,
            span_s: short as f64 * 0.02 + long as f64 * 3.0,
            gaps: vec![
                GapBin {
                    low_ms: 19.9,
                    high_ms: 20.1,
                    count: short,
                },
                GapBin {
                    low_ms: 2990.0,
                    high_ms: 3010.0,
                    count: long,
                },
            ],
            starts: long + 1,
            start_ms: vec![40.0; long as usize + 1],
            cold: long + 1,
            warm: n - long - 1,
            service_ms: 1.0,
            keep_alive_mode: hako_model::KeepAliveMode::Fixed,
            predictor: None,
        }
    }

    #[test]
    fn the_model_answers_from_the_measured_gaps() {
        let h = history(101, Duration::from_secs(1));
        let r = report("blog", Some(h), None);
        assert_eq!(r.unavailable, None);
        let e = r.current.unwrap();
        // 10 of 100 gaps are longer than the 1 s idle timeout.
        assert!((e.cold_probability - 0.1).abs() < 1e-9, "{e:?}");
        assert!((e.mean_wait_ms - 4.0).abs() < 1e-6, "{e:?}");
        assert!((r.history.observed_cold_fraction.unwrap() - 11.0 / 101.0).abs() < 1e-12);
        assert_eq!(r.history.start_mean_ms, Some(40.0));
        assert!((r.history.mean_gap_s.unwrap() - (90.0 * 0.02 + 30.0) / 100.0).abs() < 1e-9);
        assert!(r.recommendation.is_none());
    }

    #[test]
    fn a_target_gets_the_cheapest_keep_alive_setting() {
        let h = history(101, Duration::from_secs(1));
        let r = report("blog", Some(h), Some(Target::ColdProbability(0.01)));
        let rec = r.recommendation.unwrap();
        assert_eq!(rec.prewarm, Prewarm::None);
        // The 3 s gaps must fit in the idle timeout: 3 s (whole seconds, T' = T + 1 ms).
        assert_eq!(rec.keep_alive.idle_timeout, Some(Duration::from_secs(3)));
        assert_eq!(rec.keep_alive.min_instances, 0);
        assert_eq!(rec.estimate.cold_probability, 0.0);
        assert_eq!(r.target_cold, Some(0.01));
    }

    #[test]
    fn too_little_history_is_said_not_estimated() {
        let r = report("blog", Some(history(12, Duration::from_secs(1))), None);
        let why = r.unavailable.unwrap();
        assert!(
            why.contains("too little history") && why.contains("12 request"),
            "{why}"
        );
        assert!(r.current.is_none());
        let mut no_start = history(200, Duration::from_secs(1));
        no_start.start_ms.clear();
        let r = report("blog", Some(no_start), Some(Target::ColdProbability(0.01)));
        assert!(r.unavailable.unwrap().contains("0 measured start"));
        assert!(r.recommendation.is_none());
        let r = report("blog", None, None);
        assert!(r.unavailable.unwrap().contains("does not route"));
        assert_eq!(r.keep_alive, None);
    }

    #[test]
    fn reports_round_trip_through_json() {
        let r = report(
            "blog",
            Some(history(101, Duration::from_secs(1))),
            Some(Target::P99Wait(Duration::from_millis(50))),
        );
        assert_eq!(r.target_p99_wait_ms, Some(50.0));
        let json = serde_json::to_string(&r).unwrap();
        let back: SloReport = serde_json::from_str(&json).unwrap();
        // serde_json reads floats to within an ulp or so, not always bit-exactly.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        let (e, e2) = (r.current.unwrap(), back.current.unwrap());
        assert!(close(e.cold_probability, e2.cold_probability));
        assert!(close(
            e.instance_seconds_per_hour,
            e2.instance_seconds_per_hour
        ));
        assert_eq!(e.method, e2.method);
        let (rec, rec2) = (r.recommendation.unwrap(), back.recommendation.unwrap());
        assert_eq!(
            (rec.keep_alive, rec.prewarm),
            (rec2.keep_alive, rec2.prewarm)
        );
        assert_eq!(
            (back.keep_alive, back.gaps, back.start_ms),
            (r.keep_alive, r.gaps, r.start_ms)
        );
    }
}
