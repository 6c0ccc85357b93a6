//! hako's simulator (issue 4, point 2): many sites, each driven through the same keep-alive,
//! predictor and pre-warm code (`hako-policy`) the daemon runs, on a simulated clock. The
//! autoscaler evaluation (one app under changing load, three scaling policies) is [`autoscale`].
//!
//! Deterministic: every site has its own random stream derived from (seed, site number), so a
//! seed gives the same [`Report`] on every machine. Event-driven: a site is only visited at its
//! request arrivals and at the moments the policy asks to be called again — never on a tick —
//! and sites are independent (one instance serves all of a site's concurrent requests), so they
//! are simulated one after another and only the instance intervals are merged for the peak.
//!
//! ```
//! use std::time::Duration;
//! let mut config = hako_sim::SimConfig::azure_like(100, 7);
//! config.duration = Duration::from_secs(3600);
//! let report = hako_sim::run(&config).unwrap();
//! assert!(report.requests > 0);
//! println!("{report}");                                   // a table
//! let json = serde_json::to_string(&report).unwrap();    // for tools
//! assert!(json.contains("cold_ratio"));
//! ```
#![forbid(unsafe_code)]

mod arrivals;
pub mod autoscale;
pub mod config;
mod predict;
mod report;
pub mod rng;
mod site;
pub mod trace;

pub use config::{Bursts, Diurnal, Popularity, SimConfig, Synthetic, Workload};
pub use predict::{Prediction, predict};
pub use report::{Report, StopCounts};
pub use trace::{LineError, Trace, TraceError};

use hako_policy::Time;

use arrivals::{Arrivals, SyntheticArrivals};
use rng::Rng;
use site::{SiteParams, Tally, run_site};

/// Errors of a simulation run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range.
    #[error("invalid simulation config: {0}")]
    InvalidConfig(String),
    /// The service-level model cannot predict this configuration.
    #[error("the model cannot predict this run: {0}")]
    Model(#[from] hako_policy::slo::SloError),
}

/// Site `i`'s two random streams: arrivals, and everything else (start times).
fn site_rngs(seed: u64, i: usize) -> (Rng, Rng) {
    let i = i as u64;
    (Rng::new(seed, 2 * i), Rng::new(seed, 2 * i + 1))
}

/// The synthetic workload's request arrivals until `horizon` seconds, one sorted list of arrival
/// times (seconds) per site: exactly the requests [`run`] generates for `synthetic` under `seed`
/// (the same random streams), for replaying them elsewhere — e.g. against a real `hako serve`,
/// or as a [`Trace`] through [`run`] again.
pub fn synthetic_arrivals(synthetic: &Synthetic, seed: u64, horizon: f64) -> Vec<Vec<f64>> {
    let rates = synthetic.site_rates(seed);
    rates
        .iter()
        .enumerate()
        .map(|(i, rate)| {
            let (mut arrival_rng, _) = site_rngs(seed, i);
            let mut arrivals = Arrivals::Synthetic(SyntheticArrivals::new(
                *rate,
                synthetic.diurnal,
                synthetic.bursts,
                horizon,
                &mut arrival_rng,
            ));
            let mut times = Vec::new();
            while arrivals.peek() < horizon {
                times.push(arrivals.peek());
                arrivals.advance(&mut arrival_rng);
            }
            times
        })
        .collect()
}

/// Run one simulation. Deterministic for `config.seed`; with one seed, runs that differ only in
/// policy see exactly the same requests (common random numbers), so policies compare fairly.
pub fn run(config: &SimConfig) -> Result<Report, SimError> {
    config.validate()?;
    let horizon = Time::ZERO + config.duration;
    let horizon_s = config.duration.as_secs_f64();
    let params = SiteParams {
        keep_alive: &config.keep_alive,
        predictor: config.predictor.as_ref(),
        prewarm: config.prewarm,
        start_time: &config.start_time,
        service: config.service_time,
        horizon,
    };
    let mut tally = Tally::default();
    let sites = match &config.workload {
        Workload::Synthetic(s) => {
            let rates = s.site_rates(config.seed);
            for (i, rate) in rates.iter().enumerate() {
                let (mut arrival_rng, mut rng) = site_rngs(config.seed, i);
                let generated =
                    SyntheticArrivals::new(*rate, s.diurnal, s.bursts, horizon_s, &mut arrival_rng);
                run_site(
                    &params,
                    &mut Arrivals::Synthetic(generated),
                    &mut arrival_rng,
                    &mut rng,
                    &mut tally,
                );
            }
            rates.len()
        }
        Workload::Trace(t) => {
            for (i, times) in t.arrivals.iter().enumerate() {
                let (mut arrival_rng, mut rng) = site_rngs(config.seed, i);
                run_site(
                    &params,
                    &mut Arrivals::Trace { times, pos: 0 },
                    &mut arrival_rng,
                    &mut rng,
                    &mut tally,
                );
            }
            t.sites.len()
        }
    };
    Ok(Report::from_tally(
        tally,
        config.seed,
        sites,
        horizon.as_nanos(),
        config.memory_per_instance_mib,
    ))
}
