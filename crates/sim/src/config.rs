//! What to simulate: the sites and their traffic, the start times, and the policy under test.

use std::time::Duration;

use hako_policy::KeepAlive;
use hako_policy::predict::PredictorSettings;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::StartTime;

use crate::SimError;
use crate::rng::Rng;
use crate::trace::Trace;

/// One simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the same seed and config give the same report.
    pub seed: u64,
    /// Simulated time (a trace is cut here too).
    pub duration: Duration,
    /// The sites and their requests.
    pub workload: Workload,
    /// Start-time distribution (e.g. samples measured by `hako`).
    pub start_time: StartTime,
    /// How long each request takes once it reaches an instance.
    pub service_time: Duration,
    /// The keep-alive policy of every site (the daemon's code).
    pub keep_alive: KeepAlive,
    /// The pre-warm policy of every site. For [`Prewarm::Predicted`] the simulator supplies the
    /// **oracle**: it knows each site's next request (perfect foresight, the best case for
    /// prediction; no real policy can do it).
    pub prewarm: Prewarm,
    /// The **predictor**: `Some` runs every site under hako's predictive keep-alive
    /// (`hako_policy::predict`, the daemon's `--keep-alive predictive`), which learns each site's
    /// idle times from its own past requests only, with `keep_alive` as its fallback and rules;
    /// `None`: the fixed keep-alive.
    pub predictor: Option<PredictorSettings>,
    /// Memory of one instance, MiB (for MiB-seconds).
    pub memory_per_instance_mib: f64,
}

/// Where the requests come from.
#[derive(Debug, Clone)]
pub enum Workload {
    /// Generated traffic.
    Synthetic(Synthetic),
    /// A recorded trace, replayed as is.
    Trace(Trace),
}

/// Generated traffic for `sites` sites.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// Number of sites.
    pub sites: usize,
    /// How the mean request rate is spread over the sites.
    pub popularity: Popularity,
    /// Day/night modulation of every site's rate.
    pub diurnal: Option<Diurnal>,
    /// Occasional bursts on top of the base rate.
    pub bursts: Option<Bursts>,
}

/// Mean request rate per site (requests per second).
#[derive(Debug, Clone, PartialEq)]
pub enum Popularity {
    /// Every site gets `rate`.
    Uniform {
        /// Requests per second per site.
        rate: f64,
    },
    /// Zipf: the site of rank k gets `total_rate · k^(−exponent) / H`.
    Zipf {
        /// Requests per second over all sites.
        total_rate: f64,
        /// Zipf exponent (≈ 1 for web popularity).
        exponent: f64,
    },
    /// Log-normal rates (independent per site, drawn from the seed), capped at `max_rate`.
    LogNormal {
        /// Median site rate, requests per second.
        median_rate: f64,
        /// Standard deviation of log10(rate).
        sigma_log10: f64,
        /// Cap on a site's rate.
        max_rate: f64,
    },
}

/// rate(t) = mean · (1 + amplitude · cos(2π (t − peak) / 24 h)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diurnal {
    /// 0 (flat) to 1 (silent at the trough).
    pub amplitude: f64,
    /// Hour of the day (0–24, from the start of the run) with the highest rate.
    pub peak_hour: f64,
}

/// Bursts: each site sees `per_day` bursts a day on average (Poisson), each lasting
/// `duration`, during which extra requests arrive at `rate_multiplier` × the site's mean rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bursts {
    /// Expected bursts per site per day.
    pub per_day: f64,
    /// Length of a burst.
    pub duration: Duration,
    /// Extra rate during a burst, as a multiple of the site's mean rate.
    pub rate_multiplier: f64,
}

impl Synthetic {
    /// An Azure-Functions-like long tail (Shahrad et al., "Serverless in the Wild", ATC'20):
    /// site rates are log-normal with 45% of sites invoked at most once an hour and 81% at
    /// most once a minute on average (log10 rate: median −3.33, σ 1.77 — fitted to those two
    /// points of the paper's CDF), capped at 1 request/s per site; a diurnal cycle of ±50%
    /// peaking at 14:00; one 5-minute burst of 10× the site's rate per site per day.
    pub fn azure_like(sites: usize) -> Synthetic {
        Synthetic {
            sites,
            popularity: Popularity::LogNormal {
                median_rate: 10f64.powf(-3.3336),
                sigma_log10: 1.7717,
                max_rate: 1.0,
            },
            diurnal: Some(Diurnal {
                amplitude: 0.5,
                peak_hour: 14.0,
            }),
            bursts: Some(Bursts {
                per_day: 1.0,
                duration: Duration::from_secs(300),
                rate_multiplier: 10.0,
            }),
        }
    }

    /// Each site's mean rate, requests per second (deterministic for `seed`).
    pub fn site_rates(&self, seed: u64) -> Vec<f64> {
        let n = self.sites;
        match self.popularity {
            Popularity::Uniform { rate } => vec![rate; n],
            Popularity::Zipf {
                total_rate,
                exponent,
            } => {
                let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-exponent)).collect();
                let h: f64 = weights.iter().sum();
                weights.iter().map(|w| total_rate * w / h).collect()
            }
            Popularity::LogNormal {
                median_rate,
                sigma_log10,
                max_rate,
            } => {
                let mut rng = Rng::new(seed, u64::MAX);
                (0..n)
                    .map(|_| (median_rate * 10f64.powf(sigma_log10 * rng.normal())).min(max_rate))
                    .collect()
            }
        }
    }
}

impl SimConfig {
    /// 24 simulated hours of the Azure-like workload over `sites` sites, hako's default
    /// keep-alive, a 50 ms start, 20 ms requests, 64 MiB instances.
    pub fn azure_like(sites: usize, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            duration: Duration::from_secs(24 * 3600),
            workload: Workload::Synthetic(Synthetic::azure_like(sites)),
            start_time: StartTime::constant(Duration::from_millis(50)),
            service_time: Duration::from_millis(20),
            keep_alive: KeepAlive::default(),
            prewarm: Prewarm::None,
            predictor: None,
            memory_per_instance_mib: 64.0,
        }
    }

    /// Check the settings; the error says which one to fix.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |what: String| Err(SimError::InvalidConfig(what));
        if self.duration.is_zero() {
            return bad("duration must be positive".into());
        }
        if !(self.memory_per_instance_mib.is_finite() && self.memory_per_instance_mib >= 0.0) {
            return bad("memory per instance must be a non-negative number of MiB".into());
        }
        let Workload::Synthetic(s) = &self.workload else {
            return Ok(());
        };
        if s.sites == 0 {
            return bad("at least one site is needed".into());
        }
        let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
        match s.popularity {
            Popularity::Uniform { rate } if !rate_ok(rate) => {
                return bad(format!("site rate {rate} must be a non-negative number"));
            }
            Popularity::Zipf {
                total_rate,
                exponent,
            } if !rate_ok(total_rate) || !exponent.is_finite() => {
                return bad(format!(
                    "zipf total rate {total_rate} / exponent {exponent} must be finite, rate ≥ 0"
                ));
            }
            Popularity::LogNormal {
                median_rate,
                sigma_log10,
                max_rate,
            } if !(rate_ok(median_rate) && rate_ok(max_rate) && rate_ok(sigma_log10)) => {
                return bad("log-normal median, sigma and max rate must be finite and ≥ 0".into());
            }
            _ => {}
        }
        if let Some(d) = s.diurnal
            && !((0.0..=1.0).contains(&d.amplitude) && d.peak_hour.is_finite())
        {
            return bad(format!(
                "diurnal amplitude {} must be within 0..=1",
                d.amplitude
            ));
        }
        if let Some(b) = s.bursts
            && !(rate_ok(b.per_day) && rate_ok(b.rate_multiplier))
        {
            return bad("bursts per day and rate multiplier must be finite and ≥ 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_like_rates_have_the_papers_long_tail() {
        let rates = Synthetic::azure_like(20_000).site_rates(1);
        let frac =
            |limit: f64| rates.iter().filter(|r| **r <= limit).count() as f64 / rates.len() as f64;
        assert!(
            (frac(1.0 / 60.0) - 0.81).abs() < 0.015,
            "≤ 1/min: {}",
            frac(1.0 / 60.0)
        );
        assert!(
            (frac(1.0 / 3600.0) - 0.45).abs() < 0.015,
            "≤ 1/h: {}",
            frac(1.0 / 3600.0)
        );
        assert!(rates.iter().all(|r| *r <= 1.0));
    }

    #[test]
    fn zipf_rates_sum_to_the_total_and_fall_with_rank() {
        let z = Synthetic {
            sites: 100,
            popularity: Popularity::Zipf {
                total_rate: 50.0,
                exponent: 1.0,
            },
            diurnal: None,
            bursts: None,
        };
        let r = z.site_rates(0);
        assert!((r.iter().sum::<f64>() - 50.0).abs() < 1e-9);
        assert!((r[0] / r[9] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let mut c = SimConfig::azure_like(10, 1);
        assert!(c.validate().is_ok());
        if let Workload::Synthetic(s) = &mut c.workload {
            s.diurnal = Some(Diurnal {
                amplitude: 1.5,
                peak_hour: 0.0,
            });
        }
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("amplitude"), "{e}");
        c.duration = Duration::ZERO;
        assert!(c.validate().unwrap_err().to_string().contains("duration"));
    }
}
