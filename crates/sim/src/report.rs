//! What a run measured: a table for people (`Display`) and JSON for tools (`Serialize`).

use std::fmt;

use serde::Serialize;

use crate::site::Tally;

/// Instance stops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StopCounts {
    /// Idle timeout.
    pub idle: u64,
    /// Max lifetime.
    pub max_lifetime: u64,
    /// Draining finished.
    pub drained: u64,
    /// Drain timeout.
    pub drain_timeout: u64,
}

/// The result of one simulation run. Deterministic: the same config gives the same report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The seed used.
    pub seed: u64,
    /// Number of sites.
    pub sites: usize,
    /// Simulated time, hours.
    pub simulated_hours: f64,
    /// Requests served.
    pub requests: u64,
    /// Requests that waited for a start.
    pub cold_requests: u64,
    /// cold_requests / requests.
    pub cold_ratio: f64,
    /// Mean added wait over all requests, ms.
    pub wait_mean_ms: f64,
    /// Median added wait, ms.
    pub wait_p50_ms: f64,
    /// 99th percentile added wait, ms.
    pub wait_p99_ms: f64,
    /// Largest added wait, ms.
    pub wait_max_ms: f64,
    /// Instances started (by requests, the minimum, recycles and pre-warm).
    pub instance_starts: u64,
    /// Of those, started by pre-warm.
    pub prewarm_starts: u64,
    /// Stops by reason.
    pub stops: StopCounts,
    /// Memory-time in instance-seconds.
    pub instance_seconds: f64,
    /// Memory-time in MiB-seconds (instance-seconds × memory per instance).
    pub mib_seconds: f64,
    /// Mean number of running instances.
    pub mean_running: f64,
    /// Most instances running at once.
    pub peak_running: u64,
    /// Most instances running at once within each simulated hour.
    pub peak_running_by_hour: Vec<u64>,
    /// Instance-seconds within each simulated hour.
    pub instance_seconds_by_hour: Vec<f64>,
    /// Instance-seconds if every site had one instance always on.
    pub always_on_instance_seconds: f64,
    /// instance_seconds / always_on_instance_seconds.
    pub memory_time_vs_always_on: f64,
}

impl Report {
    /// Build the report from a run's tally.
    pub(crate) fn from_tally(
        mut tally: Tally,
        seed: u64,
        sites: usize,
        horizon_ns: u64,
        memory_mib: f64,
    ) -> Report {
        let secs = horizon_ns as f64 / 1e9;
        let n = tally.requests;
        tally.waits_ns.sort_unstable();
        let waits = &tally.waits_ns;
        let zeros = n.saturating_sub(waits.len() as u64);
        let pct = |q: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            // Nearest rank over all requests; the first `zeros` ranks are warm (0).
            let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
            if rank <= zeros {
                0.0
            } else {
                waits[(rank - zeros - 1) as usize] as f64 / 1e6
            }
        };
        let wait_sum: f64 = waits.iter().map(|w| *w as f64).sum();
        let instance_seconds: f64 = tally
            .intervals
            .iter()
            .map(|(a, b)| b.saturating_sub(*a) as f64 / 1e9)
            .sum();
        let (peak, by_hour) = peaks(&tally.intervals, horizon_ns);
        let always_on = sites as f64 * secs;
        Report {
            seed,
            sites,
            simulated_hours: secs / 3600.0,
            requests: n,
            cold_requests: tally.cold,
            cold_ratio: if n == 0 {
                0.0
            } else {
                tally.cold as f64 / n as f64
            },
            wait_mean_ms: if n == 0 {
                0.0
            } else {
                wait_sum / n as f64 / 1e6
            },
            wait_p50_ms: pct(0.50),
            wait_p99_ms: pct(0.99),
            wait_max_ms: waits.last().map_or(0.0, |w| *w as f64 / 1e6),
            instance_starts: tally.starts,
            prewarm_starts: tally.prewarm_starts,
            stops: StopCounts {
                idle: tally.stops_idle,
                max_lifetime: tally.stops_lifetime,
                drained: tally.stops_drained,
                drain_timeout: tally.stops_drain_timeout,
            },
            instance_seconds,
            mib_seconds: instance_seconds * memory_mib,
            mean_running: if secs > 0.0 {
                instance_seconds / secs
            } else {
                0.0
            },
            peak_running: peak,
            peak_running_by_hour: by_hour,
            instance_seconds_by_hour: per_hour(&tally.intervals, horizon_ns),
            always_on_instance_seconds: always_on,
            memory_time_vs_always_on: if always_on > 0.0 {
                instance_seconds / always_on
            } else {
                0.0
            },
        }
    }
}

/// Instance-seconds falling into each hour.
fn per_hour(intervals: &[(u64, u64)], horizon_ns: u64) -> Vec<f64> {
    const HOUR: u64 = 3_600_000_000_000;
    let mut out = vec![0.0; horizon_ns.div_ceil(HOUR).max(1) as usize];
    for &(a, b) in intervals {
        let mut t = a;
        while t < b {
            let h = (t / HOUR) as usize;
            let end = b.min((t / HOUR + 1) * HOUR);
            if let Some(slot) = out.get_mut(h) {
                *slot += (end - t) as f64 / 1e9;
            }
            t = end;
        }
    }
    out
}

/// The most instances running at once, overall and per hour (a sweep over start/stop events;
/// at equal times stops come first, so back-to-back instances do not overlap).
fn peaks(intervals: &[(u64, u64)], horizon_ns: u64) -> (u64, Vec<u64>) {
    const HOUR: u64 = 3_600_000_000_000;
    let hours = horizon_ns.div_ceil(HOUR).max(1) as usize;
    let mut events: Vec<(u64, i8)> = Vec::with_capacity(intervals.len() * 2);
    for &(a, b) in intervals {
        if b > a {
            events.push((a, 1));
            events.push((b, -1));
        }
    }
    events.sort_unstable();
    let mut by_hour = vec![0u64; hours];
    let (mut running, mut peak) = (0i64, 0u64);
    let mut hour = 0usize;
    for (t, delta) in events {
        let h = ((t / HOUR) as usize).min(hours - 1);
        // Instances running when an hour begins count toward that hour.
        while hour < h {
            hour += 1;
            by_hour[hour] = by_hour[hour].max(running as u64);
        }
        running += i64::from(delta);
        peak = peak.max(running as u64);
        by_hour[h] = by_hour[h].max(running as u64);
    }
    (peak, by_hour)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, String); 13] = [
            ("sites", self.sites.to_string()),
            (
                "simulated",
                format!("{:.2} h (seed {})", self.simulated_hours, self.seed),
            ),
            ("requests", self.requests.to_string()),
            (
                "cold requests",
                format!("{} ({:.4}%)", self.cold_requests, self.cold_ratio * 100.0),
            ),
            (
                "added wait",
                format!(
                    "mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    self.wait_mean_ms, self.wait_p50_ms, self.wait_p99_ms, self.wait_max_ms
                ),
            ),
            (
                "instance starts",
                format!(
                    "{} ({} pre-warm)",
                    self.instance_starts, self.prewarm_starts
                ),
            ),
            (
                "stops",
                format!(
                    "idle {}, max lifetime {}, drained {}, drain timeout {}",
                    self.stops.idle,
                    self.stops.max_lifetime,
                    self.stops.drained,
                    self.stops.drain_timeout
                ),
            ),
            ("instance-seconds", format!("{:.0}", self.instance_seconds)),
            ("MiB-seconds", format!("{:.0}", self.mib_seconds)),
            ("mean running", format!("{:.2}", self.mean_running)),
            ("peak running", self.peak_running.to_string()),
            (
                "always-on",
                format!("{:.0} instance-seconds", self.always_on_instance_seconds),
            ),
            (
                "vs always-on",
                format!(
                    "{:.2}% of the memory-time",
                    self.memory_time_vs_always_on * 100.0
                ),
            ),
        ];
        for (k, v) in &rows {
            writeln!(f, "{k:<17} {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_count_warm_requests_as_zero() {
        let tally = Tally {
            requests: 100,
            cold: 2,
            waits_ns: vec![5_000_000, 1_000_000],
            ..Tally::default()
        };
        let r = Report::from_tally(tally, 1, 1, 3_600_000_000_000, 64.0);
        assert_eq!(r.wait_p50_ms, 0.0);
        assert_eq!(r.wait_p99_ms, 1.0);
        assert_eq!(r.wait_max_ms, 5.0);
        assert!((r.wait_mean_ms - 0.06).abs() < 1e-12);
        assert!((r.cold_ratio - 0.02).abs() < 1e-12);
    }

    #[test]
    fn peaks_and_memory_time_from_intervals() {
        let h = 3_600_000_000_000u64;
        let tally = Tally {
            // Two overlapping in hour 0, one back-to-back at the boundary, one spanning hour 1.
            intervals: vec![(0, h / 2), (h / 4, h), (h, h + 10), (h / 2, 2 * h)],
            ..Tally::default()
        };
        let r = Report::from_tally(tally, 1, 4, 2 * h, 100.0);
        assert_eq!(r.peak_running, 2);
        assert_eq!(r.peak_running_by_hour, vec![2, 2]);
        let hours = &r.instance_seconds_by_hour;
        assert_eq!(hours.len(), 2);
        assert!(
            (hours[0] - (1800.0 + 2700.0 + 1800.0)).abs() < 1e-6,
            "{hours:?}"
        );
        assert!((hours[1] - (3600.0 + 1e-8)).abs() < 1e-6, "{hours:?}");
        let secs = 1800.0 + 2700.0 + 1e-8 + 5400.0;
        assert!((r.instance_seconds - secs).abs() < 1e-6);
        assert!((r.mib_seconds - 100.0 * secs).abs() < 1e-3);
        assert!((r.memory_time_vs_always_on - secs / (4.0 * 7200.0)).abs() < 1e-12);
        assert!(r.to_string().contains("peak running      2"));
    }
}
