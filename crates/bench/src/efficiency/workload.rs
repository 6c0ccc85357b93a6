//! The real run's workload: a window of the simulator's Azure-like day, compressed in time.
//!
//! Compression by a factor `k` (`--speedup`) multiplies every rate by `k` and divides every
//! time of the policy (idle timeout, pre-warm lead) by `k`. The products that decide cold
//! starts and memory-time (rate × idle timeout) are unchanged, so a site keeps its P(cold) and
//! its share of time with an instance; only the start time (real, not compressed) weighs `k`
//! times more than in the workload's own time, which makes the real run pessimistic for
//! cycling. A run of `span` real seconds covers `k · span` seconds of the day, centred on
//! 08:00, where the diurnal cycle crosses its daily mean: the window's mean load is the day's.
//!
//! The requests are exactly the simulator's ([`hako_sim::synthetic_arrivals`] with the same
//! seed), so the simulator can replay the same trace ([`Workload::trace`]).

use hako_sim::rng::Rng;
use hako_sim::{Synthetic, Trace};

/// Which server a site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `busybox httpd` serving index.html.
    Static,
    /// `php -S` running index.php (stops on INT).
    Php,
    /// WordPress: Apache + mod_php from the `wordpress` image, its own MariaDB database.
    WordPress,
}

impl Kind {
    /// How many kinds there are.
    pub const COUNT: usize = 3;
    /// Every kind, in [`Kind::index`] order.
    pub const ALL: [Kind; Kind::COUNT] = [Kind::Static, Kind::Php, Kind::WordPress];

    /// Its place in per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            Kind::Static => 0,
            Kind::Php => 1,
            Kind::WordPress => 2,
        }
    }

    /// Its name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Static => "static",
            Kind::Php => "PHP",
            Kind::WordPress => "WordPress",
        }
    }
}

/// What share of the sites runs each server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    pub php: f64,
    pub wordpress: f64,
}

/// The compressed requests of every site.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Server of each site.
    pub kinds: Vec<Kind>,
    /// Each site's request times, real seconds from the start of a run, sorted.
    pub arrivals: Vec<Vec<f64>>,
    /// Length of a run, real seconds.
    pub span: f64,
    /// Where the window starts in the day, seconds after midnight (workload time).
    pub day_offset: f64,
}

/// The hour of the day the window is centred on (the diurnal cycle of the Azure-like preset
/// peaks at 14:00 with ±50%: at 08:00 it crosses its mean).
pub const CENTRE_HOUR: f64 = 8.0;

impl Workload {
    /// `sites` Azure-like sites (seed `seed`) with the servers of `mix`, compressed `speedup`
    /// times into `span` real seconds.
    pub fn azure_like(
        sites: usize,
        seed: u64,
        speedup: f64,
        span: f64,
        mix: Mix,
    ) -> anyhow::Result<Workload> {
        let window = span * speedup;
        if !(speedup >= 1.0 && span > 0.0 && window <= 86_400.0) {
            anyhow::bail!(
                "speedup {speedup} × run {span:.0} s must cover at most one day (and speedup ≥ 1)"
            );
        }
        let day_offset = (CENTRE_HOUR * 3600.0 - window / 2.0).max(0.0);
        let synthetic = Synthetic::azure_like(sites);
        let arrivals = hako_sim::synthetic_arrivals(&synthetic, seed, day_offset + window)
            .into_iter()
            .map(|times| {
                times
                    .into_iter()
                    .filter(|t| *t >= day_offset)
                    .map(|t| (t - day_offset) / speedup)
                    .collect()
            })
            .collect();
        Ok(Workload {
            kinds: kinds(sites, seed, mix),
            arrivals,
            span,
            day_offset,
        })
    }

    /// Number of requests.
    pub fn requests(&self) -> usize {
        self.arrivals.iter().map(Vec::len).sum()
    }

    /// Requests at or after `from` real seconds.
    pub fn requests_from(&self, from: f64) -> usize {
        self.arrivals
            .iter()
            .map(|a| a.len() - a.partition_point(|t| *t < from))
            .sum()
    }

    /// The requests as a trace for the simulator (real seconds), sites named by number.
    pub fn trace(&self) -> Trace {
        Trace {
            sites: (0..self.arrivals.len()).map(|i| i.to_string()).collect(),
            arrivals: self.arrivals.clone(),
            end: self
                .arrivals
                .iter()
                .filter_map(|a| a.last())
                .fold(0.0, |m: f64, t| m.max(*t)),
        }
    }

    /// Every request as (real seconds, site), in time order.
    pub fn schedule(&self) -> Vec<(f64, u32)> {
        let mut all: Vec<(f64, u32)> = self
            .arrivals
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.iter().map(move |t| (*t, i as u32)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all
    }
}

/// Exactly `round(mix.wordpress · sites)` WordPress sites and `round(mix.php · sites)` PHP
/// sites, the rest static, placed by a shuffle of the site numbers on the seed's own stream
/// (not the arrivals'): a site's server is independent of its traffic.
pub fn kinds(sites: usize, seed: u64, mix: Mix) -> Vec<Kind> {
    let count = |share: f64| ((share * sites as f64).round() as usize).min(sites);
    let wordpress = count(mix.wordpress);
    let php = count(mix.php).min(sites - wordpress);
    let mut order: Vec<usize> = (0..sites).collect();
    let mut rng = Rng::new(seed, u64::MAX - 1);
    // Fisher–Yates.
    for i in (1..sites).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        order.swap(i, j);
    }
    let mut out = vec![Kind::Static; sites];
    for (rank, site) in order.into_iter().enumerate() {
        if rank < wordpress {
            out[site] = Kind::WordPress;
        } else if rank < wordpress + php {
            out[site] = Kind::Php;
        }
    }
    out
}

/// One change of a site's minimum instance count by the pre-warm driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinChange {
    /// Real seconds from the start of the run.
    pub at: f64,
    /// The site.
    pub site: u32,
    /// The new minimum (1: start one now if none runs; 0: back to plain cycling).
    pub min: u32,
}

/// The pre-warm driver's plan for predicted pre-warm with a perfect predictor (the simulator's
/// `Prewarm::Predicted` oracle): before every request that finds its site idle for longer than
/// `idle_timeout` (so its instance has stopped), raise the site's minimum to 1 `lead` before
/// the request — the daemon's keep-alive loop starts an instance — and lower it back to 0 when
/// the request is due, so the instance idles out by the normal rules. A site's first request
/// counts as after a long idle time. Requires `lead < idle_timeout` (pairs never interleave).
pub fn prewarm_plan(arrivals: &[Vec<f64>], idle_timeout: f64, lead: f64) -> Vec<MinChange> {
    assert!(
        lead < idle_timeout,
        "lead {lead} must be below {idle_timeout}"
    );
    let mut plan = Vec::new();
    for (site, times) in arrivals.iter().enumerate() {
        let mut prev: Option<f64> = None;
        for &t in times {
            if prev.is_none_or(|p| t - p > idle_timeout) {
                let site = site as u32;
                plan.push(MinChange {
                    at: (t - lead).max(0.0),
                    site,
                    min: 1,
                });
                plan.push(MinChange {
                    at: t,
                    site,
                    min: 0,
                });
            }
            prev = Some(t);
        }
    }
    plan.sort_by(|a, b| a.at.total_cmp(&b.at));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_compressed_and_centred_on_the_mean_hour() {
        let w = Workload::azure_like(200, 3, 4.0, 900.0, MIX).unwrap();
        assert_eq!(w.day_offset, 8.0 * 3600.0 - 1800.0);
        assert!(w.requests() > 0);
        for a in &w.arrivals {
            assert!(a.windows(2).all(|p| p[0] <= p[1]));
            assert!(a.iter().all(|t| (0.0..900.0).contains(t)), "{a:?}");
        }
        // Compression keeps the requests: the same window at speedup 1 over 4× the time.
        let slow = Workload::azure_like(200, 3, 1.0, 3600.0, MIX).unwrap();
        assert_eq!(slow.day_offset, w.day_offset);
        assert_eq!(slow.requests(), w.requests());
        assert!(
            (slow.arrivals[0].first().unwrap_or(&0.0) / 4.0
                - w.arrivals[0].first().unwrap_or(&0.0))
            .abs()
                < 1e-9
        );
        let schedule = w.schedule();
        assert_eq!(schedule.len(), w.requests());
        assert!(schedule.windows(2).all(|p| p[0].0 <= p[1].0));
        assert_eq!(w.trace().requests(), w.requests());
        assert!(w.requests_from(450.0) < w.requests());
        assert!(Workload::azure_like(10, 1, 100.0, 3600.0, MIX).is_err());
    }

    const MIX: Mix = Mix {
        php: 0.3,
        wordpress: 0.1,
    };

    #[test]
    fn the_mix_is_exact_deterministic_and_spread() {
        let k = kinds(1000, 5, MIX);
        let count = |kind| k.iter().filter(|k| **k == kind).count();
        assert_eq!(
            (
                count(Kind::WordPress),
                count(Kind::Php),
                count(Kind::Static)
            ),
            (100, 300, 600)
        );
        assert_eq!(k, kinds(1000, 5, MIX));
        assert_ne!(k, kinds(1000, 6, MIX));
        // Not a block: WordPress sites in every tenth of the site numbers.
        for tenth in k.chunks(100) {
            assert!(tenth.contains(&Kind::WordPress), "{tenth:?}");
        }
        let none = Mix {
            php: 0.0,
            wordpress: 0.0,
        };
        assert!(kinds(100, 5, none).iter().all(|k| *k == Kind::Static));
        let all = Mix {
            php: 1.0,
            wordpress: 0.5,
        };
        let k = kinds(10, 5, all);
        assert_eq!(k.iter().filter(|k| **k == Kind::WordPress).count(), 5);
        assert_eq!(k.iter().filter(|k| **k == Kind::Php).count(), 5);
    }

    #[test]
    fn prewarm_plan_covers_requests_after_idle_periods_only() {
        let arrivals = vec![vec![5.0, 6.0, 20.0, 21.0], vec![0.5]];
        let plan = prewarm_plan(&arrivals, 10.0, 1.0);
        // Site 0: before 5.0 (first) and 20.0 (14 s idle); not 6.0 or 21.0. Site 1: at 0.
        assert_eq!(
            plan,
            vec![
                MinChange {
                    at: 0.0,
                    site: 1,
                    min: 1
                },
                MinChange {
                    at: 0.5,
                    site: 1,
                    min: 0
                },
                MinChange {
                    at: 4.0,
                    site: 0,
                    min: 1
                },
                MinChange {
                    at: 5.0,
                    site: 0,
                    min: 0
                },
                MinChange {
                    at: 19.0,
                    site: 0,
                    min: 1
                },
                MinChange {
                    at: 20.0,
                    site: 0,
                    min: 0
                },
            ]
        );
    }
}
