//! The autoscaler evaluation's report: typed for tools (`Serialize`), a table for people
//! (`Display`) ending with the benchmark's one summary line.

use std::fmt;

use serde::Serialize;

use super::AutoscaleBench;

/// One policy on one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRun {
    /// "hako", "kpa" or "seed".
    pub policy: String,
    /// Seconds from the load needing more instances to the first scale-up; `None`: no change
    /// in the trace, or never seen.
    pub detect_s: Option<f64>,
    /// Scale-up decisions.
    pub ups: u32,
    /// Scale-down decisions.
    pub downs: u32,
    /// Scale-ups the intended load did not need at all (false alarms).
    pub needless_ups: u32,
    /// Instances beyond the need added by scale-ups that were needed.
    pub overshoot_instances: u32,
    /// Those per hour of trace.
    pub needless_per_h: f64,
    /// Mean instance-seconds one needless scale-up held (its extra instances, until the count
    /// was back where it was): the memory-time a false alarm costs, in instances × seconds.
    pub needless_hold_s: Option<f64>,
    /// Memory-time in instance-seconds.
    pub instance_seconds: f64,
    /// Requests that waited over 100 ms for a slot.
    pub waited_over_100ms: u64,
    /// 99th percentile of that wait, ms.
    pub wait_p99_ms: f64,
    /// Fewest live instances seen.
    pub live_min: u32,
    /// Most live instances seen.
    pub live_max: u32,
    /// Mean concurrency sampled (in flight plus queued, as the policy saw it).
    pub mean_concurrency: f64,
    /// The first decisions, as their event text.
    pub first_decisions: Vec<String>,
}

/// One trace through every policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRun {
    /// Its name.
    pub trace: String,
    /// Its length, hours.
    pub hours: f64,
    /// Requests in it.
    pub requests: u64,
    /// When the intended load first needed more instances, seconds.
    pub change_at_s: Option<f64>,
    /// The policies' results.
    pub policies: Vec<PolicyRun>,
}

/// hako's autoscaler at one `surge_factor`: the trade between seeing a surge and false alarms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Multiple of capacity the 2-s mean must exceed for the fast path.
    pub surge_factor: f64,
    /// Detection delay of the ×4 step, seconds.
    pub step_detect_s: Option<f64>,
    /// Requests of the step trace that waited over 100 ms.
    pub step_waited_over_100ms: u64,
    /// Needless scale-ups per hour on the noisy trace.
    pub false_per_h: f64,
    /// Instance-seconds of the noisy trace.
    pub noisy_instance_seconds: f64,
    /// Instance-seconds one false alarm held.
    pub false_alarm_hold_s: Option<f64>,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoscaleReport {
    /// The settings it ran with.
    pub bench: AutoscaleBench,
    /// Every trace.
    pub traces: Vec<TraceRun>,
    /// hako's `surge_factor` sweep.
    pub sweep: Vec<SweepRow>,
}

impl AutoscaleReport {
    /// One policy's result on one trace.
    pub fn policy(&self, trace: &str, policy: &str) -> Option<&PolicyRun> {
        self.traces
            .iter()
            .find(|t| t.trace == trace)?
            .policies
            .iter()
            .find(|p| p.policy == policy)
    }

    /// The benchmark's last line:
    /// `autoscaler: hako_step_detect_s=… kpa_step_detect_s=… seed_step_detect_s=… hako_false_per_h=… kpa_false_per_h=…`
    /// (a delay that never came prints as `none`).
    pub fn summary_line(&self) -> String {
        let detect = |p: &str| {
            self.policy("step", p)
                .and_then(|r| r.detect_s)
                .map_or("none".to_owned(), |d| format!("{d:.2}"))
        };
        let false_h = |p: &str| {
            self.policy("noisy", p)
                .map_or("none".to_owned(), |r| format!("{:.2}", r.needless_per_h))
        };
        format!(
            "autoscaler: hako_step_detect_s={} kpa_step_detect_s={} seed_step_detect_s={} hako_false_per_h={} kpa_false_per_h={}",
            detect("hako"),
            detect("kpa"),
            detect("seed"),
            false_h("hako"),
            false_h("kpa")
        )
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("—".to_owned(), |v| format!("{v:.digits$}"))
}

impl fmt::Display for AutoscaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.bench;
        writeln!(
            f,
            "app: target {} in flight per instance, {} workers, {:.0} ms mean requests, {:.0} ms starts, \
             {}–{} instances, {} req/s base, sampled every {:.0} ms (seed {})",
            b.target,
            b.slots,
            b.service_mean.as_secs_f64() * 1e3,
            b.start_time.as_secs_f64() * 1e3,
            b.min,
            b.max,
            b.base_rate,
            b.sample_every.as_secs_f64() * 1e3,
            b.seed
        )?;
        writeln!(
            f,
            "{:<6} {:<5} {:>9} {:>4} {:>5} {:>8} {:>10} {:>9} {:>9} {:>11} {:>9} {:>9}",
            "trace",
            "policy",
            "detect_s",
            "ups",
            "downs",
            "needless",
            "needless/h",
            "hold_is",
            "overshoot",
            "instance_s",
            "wait>100",
            "p99_ms"
        )?;
        for t in &self.traces {
            for p in &t.policies {
                writeln!(
                    f,
                    "{:<6} {:<5} {:>9} {:>4} {:>5} {:>8} {:>10.2} {:>9} {:>9} {:>11.0} {:>9} {:>9.1}",
                    t.trace,
                    p.policy,
                    opt(p.detect_s, 2),
                    p.ups,
                    p.downs,
                    p.needless_ups,
                    p.needless_per_h,
                    opt(p.needless_hold_s, 0),
                    p.overshoot_instances,
                    p.instance_seconds,
                    p.waited_over_100ms,
                    p.wait_p99_ms
                )?;
            }
        }
        if !self.sweep.is_empty() {
            writeln!(
                f,
                "hako's surge factor: step detection vs false alarms on the noisy trace"
            )?;
            writeln!(
                f,
                "{:>6} {:>9} {:>9} {:>8} {:>9} {:>15}",
                "factor", "detect_s", "wait>100", "false/h", "hold_is", "noisy_instance_s"
            )?;
            for r in &self.sweep {
                writeln!(
                    f,
                    "{:>6.2} {:>9} {:>9} {:>8.2} {:>9} {:>15.0}",
                    r.surge_factor,
                    opt(r.step_detect_s, 2),
                    r.step_waited_over_100ms,
                    r.false_per_h,
                    opt(r.false_alarm_hold_s, 0),
                    r.noisy_instance_seconds
                )?;
            }
        }
        write!(f, "{}", self.summary_line())
    }
}
