//! Driving: one request per site, in a shuffled order at an even rate over the window, from
//! the bounded open-loop generator ([`crate::efficiency::loadgen`]). No site has an instance
//! when its request comes, so every request is a cold start; its latency is from sending to
//! the answer's last byte.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Options;
use super::sites::host_name;
use crate::efficiency::loadgen::{self, Outcome};

/// What driving measured.
#[derive(Debug, Clone)]
pub struct Driven {
    pub seconds: f64,
    /// Requests without a 2xx answer.
    pub failed: usize,
    /// Requests not sent (the generator's queue was full).
    pub dropped: u64,
    pub cold_p50_ms: Option<f64>,
    pub cold_p99_ms: Option<f64>,
    /// p99 of the first and the last tenth of the requests (few apps running against all).
    pub first_p99_ms: Option<f64>,
    pub last_p99_ms: Option<f64>,
    /// p99 of the static and of the PHP sites.
    pub static_p99_ms: Option<f64>,
    pub php_p99_ms: Option<f64>,
    pub errors: Vec<String>,
}

/// Sends every site its request.
pub fn run(serve: &crate::daemon::HakoServe, o: &Options) -> anyhow::Result<Driven> {
    let schedule = schedule(o.sites, o.window.as_secs_f64(), 0x5eed_de75);
    let requests: Vec<Vec<u8>> = (0..o.sites)
        .map(|i| crate::phases::request(&host_name(i), "/"))
        .collect();
    let config = loadgen::Config {
        proxy: serve.proxy,
        concurrency: o.concurrency,
        queue: o.concurrency * 8,
        max_requests: o.sites,
        timeout: Duration::from_secs(30),
    };
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let report = loadgen::run(&config, &schedule, &requests, t0, &stop)?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut outcomes = report.outcomes;
    outcomes.sort_by(|a, b| a.due.total_cmp(&b.due));
    let tenth = (outcomes.len() / 10).max(1).min(outcomes.len());
    let (php, plain): (Vec<Outcome>, Vec<Outcome>) = outcomes
        .iter()
        .partition(|x| super::sites::is_php(x.site as usize, o.php_share));
    Ok(Driven {
        seconds,
        failed: outcomes
            .iter()
            .filter(|o| !(200..300).contains(&o.status))
            .count(),
        dropped: report.dropped,
        cold_p50_ms: percentile_ms(&outcomes, 50.0),
        cold_p99_ms: percentile_ms(&outcomes, 99.0),
        first_p99_ms: percentile_ms(&outcomes[..tenth], 99.0),
        last_p99_ms: percentile_ms(&outcomes[outcomes.len() - tenth..], 99.0),
        static_p99_ms: percentile_ms(&plain, 99.0),
        php_p99_ms: percentile_ms(&php, 99.0),
        errors: report.errors,
    })
}

/// One request per site at an even rate over `window` seconds, the sites in an order
/// shuffled by `seed`: (due second, site).
pub fn schedule(sites: usize, window: f64, seed: u64) -> Vec<(f64, u32)> {
    let mut order: Vec<u32> = (0..sites as u32).collect();
    let mut state = seed;
    // Fisher–Yates with splitmix64: reproducible, no dependency.
    for i in (1..order.len()).rev() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    let step = window / sites.max(1) as f64;
    order
        .into_iter()
        .enumerate()
        .map(|(k, site)| (k as f64 * step, site))
        .collect()
}

/// Nearest-rank percentile (0–100) of the answered requests' latency, ms.
fn percentile_ms(outcomes: &[Outcome], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.status != 0)
        .map(|o| f64::from(o.latency) * 1e3)
        .collect();
    crate::efficiency::real::percentile(&mut v, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_once_in_the_window_evenly() {
        let s = schedule(1000, 60.0, 1);
        assert_eq!(s.len(), 1000);
        let mut sites: Vec<u32> = s.iter().map(|x| x.1).collect();
        // Shuffled, not in site order.
        assert_ne!(sites, (0..1000).collect::<Vec<_>>());
        sites.sort_unstable();
        assert_eq!(sites, (0..1000).collect::<Vec<_>>());
        assert_eq!(s[0].0, 0.0);
        assert!(s.windows(2).all(|w| (w[1].0 - w[0].0 - 0.06).abs() < 1e-9));
        assert!(s.last().unwrap().0 < 60.0);
        assert_eq!(schedule(1000, 60.0, 1), s, "reproducible");
    }

    #[test]
    fn percentiles_skip_unanswered_requests() {
        let o = |latency: f32, status: u16| Outcome {
            site: 0,
            due: 0.0,
            late: 0.0,
            latency,
            status,
        };
        let v = [o(0.010, 200), o(0.020, 200), o(5.0, 0)];
        assert_eq!(percentile_ms(&v, 50.0).map(f64::round), Some(10.0));
        assert_eq!(percentile_ms(&v, 99.0).map(f64::round), Some(20.0));
        assert_eq!(percentile_ms(&[], 99.0), None);
    }
}
