//! `hako slo`: the service-level model from the command line.
//!
//! - `hako slo APP [--target-cold P | --target-p99-wait D]` answers for a live app from its own
//!   measurements (arrival gaps, start times, request time) and its current keep-alive policy,
//!   through `GET /v1/apps/APP/slo`; with a target, it recommends the cheapest keep-alive
//!   setting that meets it and the `hako app update` that applies it.
//! - `hako slo --rate R [--start-time D] [--idle-timeout D]` evaluates Poisson traffic with the
//!   closed forms, without a daemon.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hako_api::Client;
use hako_api::slo::SloReport;
use hako_model::HumanDuration;
use hako_model::units::format_duration;
use hako_policy::KeepAlive;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::{Access, Scenario, StartTime, Target};

use super::{Exit, Failure, OrExit, out};

/// Options of `hako slo`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["app", "rate"])))]
pub struct SloArgs {
    /// A running app: answer from its own measurements and keep-alive policy (asks `hako serve`).
    #[arg(conflicts_with_all = ["start_time", "idle_timeout"])]
    pub app: Option<String>,
    /// Instead of an app: a mean request rate, requests per second (Poisson arrivals).
    #[arg(long)]
    pub rate: Option<f64>,
    /// With --rate: start time of an instance, e.g. 40ms.
    #[arg(long, default_value = "50ms")]
    pub start_time: HumanDuration,
    /// With --rate: idle timeout to evaluate.
    #[arg(long, default_value = "5m")]
    pub idle_timeout: HumanDuration,
    /// Recommend the cheapest keep-alive with at most this fraction of cold requests (e.g. 0.01).
    #[arg(long, value_name = "FRACTION", conflicts_with = "target_p99_wait")]
    pub target_cold: Option<f64>,
    /// Recommend the cheapest keep-alive whose p99 added wait is at most this (e.g. 50ms).
    #[arg(long, value_name = "DURATION")]
    pub target_p99_wait: Option<HumanDuration>,
    #[arg(long)]
    pub json: bool,
}

impl SloArgs {
    fn target(&self) -> Option<Target> {
        match (self.target_cold, self.target_p99_wait) {
            (Some(p), _) => Some(Target::ColdProbability(p)),
            (None, Some(d)) => Some(Target::P99Wait(d.0)),
            (None, None) => None,
        }
    }
}

pub async fn execute(args: SloArgs, data_dir: &Path) -> Result<u8, Failure> {
    let Some(app) = args.app.clone() else {
        return model_only(args);
    };
    let client = Client::from_env(data_dir)
        .context("cannot find hako's API (is `hako serve` running? set HAKO_API and HAKO_TOKEN for a remote one)")
        .or_exit(Exit::Failure)?;
    let target = args.target();
    let report = tokio::task::spawn_blocking(move || client.slo(&app, target))
        .await
        .map_err(|e| Failure::new(Exit::Failure, e))?
        .map_err(super::api_failure)?;
    if args.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("serializable")
        ));
    } else {
        out(&describe(&report));
    }
    Ok(0)
}

/// The report for people.
fn describe(r: &SloReport) -> String {
    let h = &r.history;
    let mut s = format!("app {}: {} request(s)", r.app, h.requests);
    if let Some(gap) = h.mean_gap_s {
        s += &format!(" over {} (mean gap {})", span(h.span_s), span(gap));
    }
    s += &format!("; {} start(s) measured", h.starts);
    if let (Some(mean), Some(max)) = (h.start_mean_ms, h.start_max_ms) {
        s += &format!(" (latest: mean {mean:.1} ms, max {max:.1} ms)");
    }
    s += &format!("; requests take {:.1} ms\n", h.service_ms);
    if let Some(ka) = &r.keep_alive {
        s += &format!("keep-alive now: {}\n", keep_alive(ka));
    }
    if r.keep_alive_mode == hako_model::KeepAliveMode::Predictive {
        match &r.predictor {
            Some(p) => {
                s += &format!(
                    "predictive keep-alive: {} ({} idle period(s) seen, {} pre-warm start(s)); the model below estimates the fixed keep-alive, the observed line is what the predictor did\n",
                    p.window, p.idle_periods, p.pre_warm_starts
                )
            }
            None => s += "predictive keep-alive: nothing learned yet\n",
        }
    }
    if let Some(f) = h.observed_cold_fraction {
        s += &format!(
            "observed: {:.2}% of requests waited for a start ({} of {})\n",
            f * 100.0,
            h.cold,
            h.cold + h.warm
        );
    }
    if let Some(why) = &r.unavailable {
        s += &format!("no estimate: {why}\n");
    }
    if let Some(e) = &r.current {
        s += &format!("model, current policy: {e}\n");
    }
    let target = match (r.target_cold, r.target_p99_wait_ms) {
        (Some(p), _) => Some(format!("at most {}% cold requests", p * 100.0)),
        (None, Some(ms)) => Some(format!("p99 added wait at most {ms} ms")),
        (None, None) => None,
    };
    if let (Some(t), Some(rec)) = (target, &r.recommendation) {
        s += &format!("cheapest for {t}: {rec}\n");
        match apply(r, &rec.keep_alive) {
            Some(flags) => s += &format!("  apply with: hako app update {} {flags}\n", r.app),
            None => s += "  that is the current setting\n",
        }
    }
    s
}

/// The `hako app update` flags that turn the current keep-alive into `want`, if any differ.
fn apply(r: &SloReport, want: &KeepAlive) -> Option<String> {
    let now = r.keep_alive.as_ref()?;
    let mut flags = Vec::new();
    if want.min_instances != now.min_instances {
        flags.push(format!("--min {}", want.min_instances));
    }
    if want.min_instances == 0
        && want.idle_timeout != now.idle_timeout
        && let Some(t) = want.idle_timeout
    {
        flags.push(format!("--idle-timeout {}", format_duration(t)));
    }
    (!flags.is_empty()).then(|| flags.join(" "))
}

fn keep_alive(ka: &KeepAlive) -> String {
    let d = |d: Option<Duration>| d.map_or("none".into(), format_duration);
    format!(
        "idle timeout {}, max lifetime {}, min {} instance(s)",
        d(ka.idle_timeout),
        d(ka.max_lifetime),
        ka.min_instances
    )
}

/// Seconds in a readable unit: "42.0 s", "3.5 min", "2.1 h".
fn span(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs >= 1.0 {
        format!("{secs:.1} s")
    } else {
        format!("{:.1} ms", secs * 1e3)
    }
}

/// `hako slo --rate R …`: Poisson closed forms, no daemon.
fn model_only(args: SloArgs) -> Result<u8, Failure> {
    let rate = args.rate.unwrap_or_default();
    let scenario = Scenario {
        access: Access::poisson(rate).or_exit(Exit::Usage)?,
        start: StartTime::constant(args.start_time.0),
        service_time: Duration::from_millis(10),
        keep_alive: KeepAlive {
            idle_timeout: Some(args.idle_timeout.0),
            ..KeepAlive::default()
        },
        prewarm: Prewarm::None,
    };
    match args.target() {
        None => {
            let e = hako_policy::slo::evaluate(&scenario).or_exit(Exit::Usage)?;
            print(&e, args.json);
        }
        Some(t) => {
            let r = hako_policy::slo::recommend(&scenario, t).or_exit(Exit::Usage)?;
            print(&r, args.json);
        }
    }
    Ok(0)
}

fn print<T: serde::Serialize + std::fmt::Display>(value: &T, json: bool) {
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(value).expect("serializable")
        ));
    } else {
        out(&format!("{value}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hako_api::slo::{GapBin, History, report};

    fn history(idle: u64, min: u32) -> History {
        History {
            keep_alive: KeepAlive {
                min_instances: min,
                ..KeepAlive::idle(Duration::from_secs(idle))
            },
            requests: 101,
            span_s: 90.0 * 0.02 + 10.0 * 3.0,
            gaps: vec![
                GapBin {
                    low_ms: 19.9,
                    high_ms: 20.1,
                    count: 90,
                },
                GapBin {
                    low_ms: 2990.0,
                    high_ms: 3010.0,
                    count: 10,
                },
            ],
            starts: 11,
            start_ms: vec![40.0; 11],
            cold: 11,
            warm: 90,
            service_ms: 1.0,
            keep_alive_mode: Default::default(),
            predictor: None,
        }
    }

    #[test]
    fn the_text_names_the_numbers_and_the_command_to_apply() {
        let r = report(
            "blog",
            Some(history(1, 0)),
            Some(Target::ColdProbability(0.01)),
        );
        let text = describe(&r);
        for want in [
            "app blog: 101 request(s) over 31.8 s (mean gap 318.0 ms); 11 start(s) measured (latest: mean 40.0 ms, max 40.0 ms)",
            "keep-alive now: idle timeout 1s, max lifetime none, min 0 instance(s)",
            "observed: 10.89% of requests waited for a start (11 of 101)",
            "model, current policy: cold requests 10.0000%",
            "cheapest for at most 1% cold requests: idle timeout 3s",
            "apply with: hako app update blog --idle-timeout 3s",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
        // Already at the recommendation.
        let r = report(
            "blog",
            Some(history(3, 0)),
            Some(Target::ColdProbability(0.01)),
        );
        assert!(describe(&r).contains("that is the current setting"));
        // From always-on to scale-to-zero.
        let r = report(
            "blog",
            Some(history(3, 1)),
            Some(Target::ColdProbability(0.01)),
        );
        assert!(
            describe(&r).contains("apply with: hako app update blog --min 0\n"),
            "{}",
            describe(&r)
        );
    }

    #[test]
    fn too_little_history_is_said_plainly() {
        let mut h = history(1, 0);
        h.requests = 9;
        let text = describe(&report("blog", Some(h), None));
        assert!(text.contains("no estimate: too little history"), "{text}");
        assert!(!text.contains("model, current policy"), "{text}");
    }
}
