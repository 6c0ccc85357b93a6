//! `hako sim` and `hako slo`: the simulator and the service-level model, from the command line.
//!
//! Both run the same policy code as the daemon (`hako_policy`): `hako sim` over thousands of
//! simulated sites (Azure-like long tail by default, or a recorded trace), `hako slo` as closed
//! forms for one app (P(cold), added wait, memory-time) and the cheapest keep-alive for a target.

use std::path::PathBuf;
use std::time::Duration;

use hako_model::HumanDuration;
use hako_policy::KeepAlive;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::{Access, Scenario, StartTime, Target};

use super::{Exit, Failure, OrExit, out};

/// Options of `hako sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Number of sites (Azure-like popularity: most are called less than once a minute).
    #[arg(long, default_value_t = 10_000)]
    pub sites: usize,
    /// Simulated time, e.g. 24h.
    #[arg(long, default_value = "24h")]
    pub duration: HumanDuration,
    /// The seed: the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Idle timeout of every site.
    #[arg(long, default_value = "5m")]
    pub idle_timeout: HumanDuration,
    /// Instances kept per site even when idle.
    #[arg(long, default_value_t = 0)]
    pub min: u32,
    /// Start time of an instance, e.g. 40ms (use `hako app show` to see measured ones).
    #[arg(long, default_value = "50ms")]
    pub start_time: HumanDuration,
    /// Memory of one instance in MiB (for MiB-seconds).
    #[arg(long, default_value_t = 30.0)]
    pub memory_mib: f64,
    /// Replay a trace instead: a CSV of `timestamp_seconds,site` lines.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Options of `hako slo`.
#[derive(Debug, clap::Args)]
pub struct SloArgs {
    /// Mean request rate of the app, requests per second (Poisson arrivals).
    #[arg(long)]
    pub rate: f64,
    /// Start time of an instance, e.g. 40ms.
    #[arg(long, default_value = "50ms")]
    pub start_time: HumanDuration,
    /// Idle timeout to evaluate.
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

pub fn sim(args: SimArgs) -> Result<u8, Failure> {
    let mut config = hako_sim::SimConfig::azure_like(args.sites, args.seed);
    config.duration = args.duration.0;
    config.keep_alive = KeepAlive {
        idle_timeout: Some(args.idle_timeout.0),
        min_instances: args.min,
        ..KeepAlive::default()
    };
    config.start_time = StartTime::constant(args.start_time.0);
    config.memory_per_instance_mib = args.memory_mib;
    if let Some(path) = &args.trace {
        let trace = hako_sim::Trace::from_path(path).or_exit(Exit::Usage)?;
        config.workload = hako_sim::Workload::Trace(trace);
    }
    let started = std::time::Instant::now();
    let report = hako_sim::run(&config).or_exit(Exit::Usage)?;
    let took = started.elapsed();
    if args.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("serializable")
        ));
    } else {
        out(&format!(
            "{report}\n(simulated in {:.1} s)\n",
            took.as_secs_f64()
        ));
    }
    Ok(0)
}

pub fn slo(args: SloArgs) -> Result<u8, Failure> {
    let scenario = Scenario {
        access: Access::poisson(args.rate).or_exit(Exit::Usage)?,
        start: StartTime::constant(args.start_time.0),
        service_time: Duration::from_millis(10),
        keep_alive: KeepAlive {
            idle_timeout: Some(args.idle_timeout.0),
            ..KeepAlive::default()
        },
        prewarm: Prewarm::None,
    };
    let target = match (args.target_cold, args.target_p99_wait) {
        (Some(p), _) => Some(Target::ColdProbability(p)),
        (None, Some(d)) => Some(Target::P99Wait(d.0)),
        (None, None) => None,
    };
    match target {
        None => {
            let e = hako_policy::slo::evaluate(&scenario).or_exit(Exit::Usage)?;
            if args.json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&e).expect("serializable")
                ));
            } else {
                out(&format!("{e}\n"));
            }
        }
        Some(t) => {
            let r = hako_policy::slo::recommend(&scenario, t).or_exit(Exit::Usage)?;
            if args.json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&r).expect("serializable")
                ));
            } else {
                out(&format!("{r}\n"));
            }
        }
    }
    Ok(0)
}
