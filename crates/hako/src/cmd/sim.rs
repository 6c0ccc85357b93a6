//! `hako sim`: the simulator from the command line. It runs the same policy code as the daemon
//! (`hako_policy`) over thousands of simulated sites (Azure-like long tail by default, or a
//! recorded trace), under the fixed keep-alive or the predictive one. `hako slo` (the
//! service-level model) is in [`super::slo`].

use std::path::PathBuf;

use hako_model::HumanDuration;
use hako_policy::KeepAlive;
use hako_policy::predict::PredictorSettings;
use hako_policy::slo::StartTime;

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
    /// `fixed`: stop after the idle timeout; `predictive`: learn each site's idle times from its
    /// own requests (pre-warm before, unload between, for periodic sites), falling back to the
    /// idle timeout while history is thin or too spread.
    #[arg(long, value_enum, default_value = "fixed")]
    pub keep_alive: KeepAliveMode,
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

/// Which keep-alive the simulated sites run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepAliveMode {
    /// The idle timeout.
    Fixed,
    /// The predictive keep-alive (hybrid idle-time histogram).
    Predictive,
}

pub fn sim(args: SimArgs) -> Result<u8, Failure> {
    let mut config = hako_sim::SimConfig::azure_like(args.sites, args.seed);
    config.duration = args.duration.0;
    config.keep_alive = KeepAlive {
        idle_timeout: Some(args.idle_timeout.0),
        min_instances: args.min,
        ..KeepAlive::default()
    };
    config.predictor =
        (args.keep_alive == KeepAliveMode::Predictive).then(PredictorSettings::default);
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
