//! The simulated side of the experiment: 10,000 Azure-like sites over 24 hours through the
//! simulator (the daemon's own keep-alive and pre-warm code), the service-level model's
//! prediction for the same runs (→ `model_vs_sim_err`), a lower bound for every policy that
//! does not know future requests, and the simulator replaying the real run's exact requests.

use std::time::Duration;

use hako_policy::KeepAlive;
use hako_policy::prewarm::Prewarm;
use hako_policy::slo::StartTime;
use hako_sim::{Report, SimConfig, Synthetic, Workload as SimWorkload};

use super::workload::Workload;

/// A policy every site gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Keep one instance always (min 1).
    pub always_on: bool,
    /// The idle timeout (workload time).
    pub idle_timeout: Duration,
    /// Predicted pre-warm lead, if any (workload time): the oracle, which knows the trace.
    pub lead: Option<Duration>,
    /// The real predictive keep-alive (`--keep-alive predictive`, `hako_policy::predict`),
    /// falling back to `idle_timeout`.
    pub predictor: bool,
}

impl Policy {
    pub fn always_on() -> Policy {
        Policy {
            always_on: true,
            idle_timeout: Duration::from_secs(300),
            lead: None,
            predictor: false,
        }
    }

    pub fn cycling(idle_timeout: Duration) -> Policy {
        Policy {
            always_on: false,
            idle_timeout,
            lead: None,
            predictor: false,
        }
    }

    /// The oracle's pre-warm: it knows every next request of the trace.
    pub fn predicted(idle_timeout: Duration, lead: Duration) -> Policy {
        Policy {
            always_on: false,
            idle_timeout,
            lead: Some(lead),
            predictor: false,
        }
    }

    /// The real predictor over the fixed `idle_timeout`.
    pub fn predictor(idle_timeout: Duration) -> Policy {
        Policy {
            always_on: false,
            idle_timeout,
            lead: None,
            predictor: true,
        }
    }

    /// The daemon's keep-alive for this policy (as `hako serve` builds it from an app).
    pub fn keep_alive(&self) -> KeepAlive {
        KeepAlive {
            idle_timeout: Some(self.idle_timeout),
            min_instances: u32::from(self.always_on),
            ..KeepAlive::default()
        }
    }

    pub fn prewarm(&self) -> Prewarm {
        match self.lead {
            Some(lead) => Prewarm::Predicted { lead },
            None => Prewarm::None,
        }
    }

    /// The same policy with its times divided by `speedup` (for the compressed real run).
    pub fn compressed(&self, speedup: f64) -> Policy {
        Policy {
            always_on: self.always_on,
            idle_timeout: self.idle_timeout.div_f64(speedup),
            lead: self.lead.map(|l| l.div_f64(speedup)),
            predictor: self.predictor,
        }
    }

    /// A short label, e.g. "cycling 5m" or "predicted 30s (lead 2s)".
    pub fn label(&self) -> String {
        let d = |d: Duration| crate::efficiency::human(d);
        match (self.always_on, self.lead) {
            (true, _) => "always-on".into(),
            (false, None) if self.predictor => {
                format!("predictor (fallback {})", d(self.idle_timeout))
            }
            (false, None) => format!("cycling {}", d(self.idle_timeout)),
            (false, Some(l)) => {
                format!("predicted {} (lead {})", d(self.idle_timeout), d(l))
            }
        }
    }
}

/// One simulated policy over the large workload.
#[derive(Debug, Clone)]
pub struct SimPoint {
    pub policy: Policy,
    pub report: Report,
    /// The model's cold ratio and memory-time share, where it covers the policy.
    pub model: Option<(f64, f64)>,
}

impl SimPoint {
    /// The model's error against the simulator: the larger relative error of the cold ratio
    /// and of the memory-time share (absolute where the simulator's value is below 0.01%, e.g.
    /// always-on's few cold requests while the first instances start).
    pub fn model_err(&self) -> Option<f64> {
        let (cold, mem) = self.model?;
        let rel = |m: f64, s: f64| {
            if s >= 1e-4 {
                (m - s).abs() / s
            } else {
                (m - s).abs()
            }
        };
        Some(rel(cold, self.report.cold_ratio).max(rel(mem, self.report.memory_time_vs_always_on)))
    }
}

/// The large simulated workload.
#[derive(Debug, Clone)]
pub struct Large {
    pub sites: usize,
    pub duration: Duration,
    pub seed: u64,
    pub start_time: StartTime,
    pub memory_mib: f64,
    /// The workload as a trace, when it is not the plain Azure-like one (timer-driven sites
    /// mixed in: [`super::latency::timer_trace`]).
    pub trace: Option<std::sync::Arc<hako_sim::Trace>>,
}

impl Large {
    fn config(&self, policy: &Policy) -> SimConfig {
        let mut c = SimConfig::azure_like(self.sites, self.seed);
        c.duration = self.duration;
        c.start_time = self.start_time.clone();
        c.keep_alive = policy.keep_alive();
        c.prewarm = policy.prewarm();
        c.predictor = policy
            .predictor
            .then(hako_policy::predict::PredictorSettings::default);
        c.memory_per_instance_mib = self.memory_mib;
        if let Some(t) = &self.trace {
            c.workload = SimWorkload::Trace((**t).clone());
        }
        c
    }

    /// Simulates `policy` and asks the model (which covers always-on and idle timeouts, not
    /// predicted pre-warm).
    pub fn run(&self, policy: &Policy) -> anyhow::Result<SimPoint> {
        let config = self.config(policy);
        let report = hako_sim::run(&config)?;
        // The model covers the fixed keep-alive on the synthetic workload only.
        let model = if policy.predictor || self.trace.is_some() {
            None
        } else {
            match hako_sim::predict(&config) {
                Ok(p) => Some((p.cold_ratio, p.memory_time_vs_always_on)),
                Err(hako_sim::SimError::Model(_)) => None,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(SimPoint {
            policy: policy.clone(),
            report,
            model,
        })
    }

    /// The least memory-time share (of always-on) any policy that does not know when the next
    /// request comes can have with at most `cold_target` cold requests.
    ///
    /// Why: a site's requests are Poisson at a rate that only varies with the diurnal cycle
    /// and bursts, so by PASTA (Poisson arrivals see time averages) the share of a site's
    /// requests that find no instance equals the share of its time without one, for every
    /// policy that does not anticipate arrivals — whatever its timeouts. Cutting each site's
    /// day into 15-minute slices (and burst / no burst, as the model does), the cheapest way to
    /// stay within a cold budget is then to have no instance exactly in the slices with the
    /// lowest rates until the budget is spent (a fractional knapsack); start times only add.
    pub fn bound(&self, cold_target: f64) -> f64 {
        bound(
            &Synthetic::azure_like(self.sites),
            self.seed,
            self.duration,
            cold_target,
        )
    }
}

fn bound(s: &Synthetic, seed: u64, duration: Duration, cold_target: f64) -> f64 {
    const SLICE: f64 = 900.0;
    let horizon = duration.as_secs_f64();
    let rates = s.site_rates(seed);
    let (burst_frac, burst_mult) = s.bursts.map_or((0.0, 0.0), |b| {
        (
            (b.per_day * b.duration.as_secs_f64() / 86_400.0).min(1.0),
            b.rate_multiplier,
        )
    });
    // (rate, seconds) units.
    let mut units: Vec<(f64, f64)> = Vec::new();
    let slices = (horizon / SLICE).ceil().max(1.0) as usize;
    for &rate in &rates {
        for k in 0..slices {
            let t0 = k as f64 * SLICE;
            let dt = SLICE.min(horizon - t0);
            let level = s.diurnal.map_or(1.0, |d| {
                let mid = t0 + dt / 2.0;
                1.0 + d.amplitude
                    * (std::f64::consts::TAU * (mid / 86_400.0 - d.peak_hour / 24.0)).cos()
            });
            units.push((rate * level, dt * (1.0 - burst_frac)));
            if burst_frac > 0.0 {
                units.push((rate * (level + burst_mult), dt * burst_frac));
            }
        }
    }
    let requests: f64 = units.iter().map(|(r, w)| r * w).sum();
    let total_time = rates.len() as f64 * horizon;
    units.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut budget = cold_target * requests;
    let mut off = 0.0;
    for (r, w) in units {
        let cost = r * w;
        if cost <= budget {
            budget -= cost;
            off += w;
        } else {
            off += if r > 0.0 { budget / r } else { w };
            break;
        }
    }
    ((total_time - off) / total_time).max(0.0)
}

/// The simulator on the real run's exact requests, over the measured window only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Twin {
    pub requests: u64,
    pub cold: u64,
    /// Instance-seconds within the window.
    pub instance_seconds: f64,
}

impl Twin {
    pub fn cold_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.cold as f64 / self.requests as f64
        }
    }
}

/// Replays `workload` through the simulator with `policy` (already in real time) and
/// `start_time`, and returns what falls in [`warmup`, end): the run up to the warm-up is
/// deterministic and causal, so the window is the full run minus the run cut at the warm-up.
pub fn twin(
    workload: &Workload,
    policy: &Policy,
    start_time: &StartTime,
    warmup: f64,
) -> anyhow::Result<Twin> {
    let mut c = SimConfig::azure_like(1, 0);
    c.workload = SimWorkload::Trace(workload.trace());
    c.start_time = start_time.clone();
    c.keep_alive = policy.keep_alive();
    c.prewarm = policy.prewarm();
    c.service_time = Duration::from_millis(1);
    c.duration = Duration::from_secs_f64(workload.span);
    let full = hako_sim::run(&c)?;
    let (req0, cold0, is0) = if warmup > 0.0 {
        c.duration = Duration::from_secs_f64(warmup);
        let w = hako_sim::run(&c)?;
        (w.requests, w.cold_requests, w.instance_seconds)
    } else {
        (0, 0, 0.0)
    };
    Ok(Twin {
        requests: full.requests - req0,
        cold: full.cold_requests - cold0,
        instance_seconds: full.instance_seconds - is0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn large(sites: usize, hours: u64) -> Large {
        Large {
            sites,
            duration: Duration::from_secs(hours * 3600),
            seed: 3,
            start_time: StartTime::constant(Duration::from_millis(50)),
            memory_mib: 10.0,
            trace: None,
        }
    }

    #[test]
    fn bound_falls_with_the_cold_budget_and_lies_below_idle_timeouts() {
        let l = large(2000, 24);
        let b = |c: f64| l.bound(c);
        assert!((b(0.0) - 1.0).abs() < 1e-12);
        assert!(b(1.0) < 1e-9);
        assert!(b(0.001) > b(0.01) && b(0.01) > b(0.05));
        // Every idle timeout the simulator runs sits above the bound at its own cold ratio.
        for t in [60, 300, 1200] {
            let p = l.run(&Policy::cycling(Duration::from_secs(t))).unwrap();
            let r = &p.report;
            assert!(
                r.memory_time_vs_always_on >= b(r.cold_ratio),
                "{t}s: {} < bound {}",
                r.memory_time_vs_always_on,
                b(r.cold_ratio)
            );
        }
    }

    #[test]
    fn model_covers_idle_timeouts_and_always_on_but_not_prediction() {
        let l = large(300, 6);
        let on = l.run(&Policy::always_on()).unwrap();
        assert_eq!(on.report.cold_requests, 0);
        assert!((on.report.memory_time_vs_always_on - 1.0).abs() < 0.01);
        let c = l.run(&Policy::cycling(Duration::from_secs(300))).unwrap();
        let err = c.model_err().expect("the model covers idle timeouts");
        assert!(err < 0.25, "model vs sim {err}");
        let p = l
            .run(&Policy::predicted(
                Duration::from_secs(30),
                Duration::from_secs(2),
            ))
            .unwrap();
        assert!(p.model.is_none() && p.model_err().is_none());
        // The oracle's pre-warm removes (nearly) every cold request that cycling had.
        assert!(p.report.cold_ratio < c.report.cold_ratio / 5.0);
    }

    #[test]
    fn twin_window_is_the_full_run_minus_the_warmup() {
        let w = Workload::azure_like(
            100,
            2,
            4.0,
            120.0,
            crate::efficiency::workload::Mix {
                php: 0.3,
                wordpress: 0.1,
            },
        )
        .unwrap();
        let policy = Policy::cycling(Duration::from_secs(300)).compressed(4.0);
        assert_eq!(policy.idle_timeout, Duration::from_secs(75));
        let st = StartTime::constant(Duration::from_millis(50));
        let all = twin(&w, &policy, &st, 0.0).unwrap();
        let window = twin(&w, &policy, &st, 60.0).unwrap();
        assert_eq!(all.requests as usize, w.requests());
        assert_eq!(window.requests as usize, w.requests_from(60.0));
        assert!(window.cold <= all.cold);
        assert!(window.instance_seconds < all.instance_seconds);
        assert!(window.instance_seconds <= 100.0 * 60.0 + 1e-6);
    }

    #[test]
    fn labels_and_compression() {
        assert_eq!(Policy::always_on().label(), "always-on");
        assert_eq!(
            Policy::cycling(Duration::from_secs(300)).label(),
            "cycling 5m"
        );
        let p = Policy::predicted(Duration::from_secs(30), Duration::from_secs(2));
        assert_eq!(p.label(), "predicted 30s (lead 2s)");
        let c = p.compressed(4.0);
        assert_eq!(c.idle_timeout, Duration::from_millis(7500));
        assert_eq!(c.lead, Some(Duration::from_millis(500)));
        assert_eq!(
            c.prewarm(),
            Prewarm::Predicted {
                lead: Duration::from_millis(500)
            }
        );
        assert_eq!(Policy::always_on().keep_alive().min_instances, 1);
    }
}
