//! A lost node: `sites` static sites run on host3 (the other hosts cordoned meanwhile, then
//! active again); host3's agent is killed with SIGKILL (its instances die with it). From the
//! kill on, the open-loop generator sends each site 5 requests/s through the front (every
//! request given up after 15 s; at most 128 in flight), while the benchmark polls etcd
//! every 10 ms for host3's node record, which goes when its lease expires. A site has
//! recovered at the end of its first request, sent after the kill, that got a 200; the
//! figure is the last site's, from the kill, and from the lease's expiry as observed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::bed::{Bed, host};
use crate::efficiency::loadgen;

/// The node lost.
const NODE: usize = 3;
/// Requests per second to each site.
const RATE: f64 = 5.0;
/// How long the load runs from the kill (the agents' lease is 5 s by default).
const WINDOW: f64 = 25.0;

/// What the loss measured.
#[derive(Debug)]
pub struct Loss {
    pub sites: usize,
    /// From the kill to the last site's first 200.
    pub recovery_s: f64,
    /// From the kill to the node record's removal (its lease expired).
    pub lease_expired_s: f64,
    /// Each site's recovery, from the kill.
    pub per_site_s: Vec<f64>,
}

impl Loss {
    /// Recovery after the lease expired.
    pub fn after_lease_s(&self) -> f64 {
        self.recovery_s - self.lease_expired_s
    }
}

pub fn run(bed: &mut Bed, code: &Path, sites: usize) -> anyhow::Result<Loss> {
    let node = bed.bed.node(NODE).name.clone();
    let names: Vec<String> = (0..sites).map(|i| format!("lost{i}")).collect();
    eprintln!("bench cluster: starting {sites} sites on {node}, then kill -9 of its agent");
    bed.sites_on(NODE, &names, code)?;

    let requests: Vec<Vec<u8>> = names
        .iter()
        .map(|n| crate::phases::request(&host(n), "/index.html"))
        .collect();
    let every = 1.0 / (RATE * sites as f64);
    let schedule: Vec<(f64, u32)> = (0..(WINDOW / every) as usize)
        .map(|i| (i as f64 * every, (i % sites) as u32))
        .collect();
    let config = loadgen::Config {
        proxy: bed.proxy,
        concurrency: 128,
        queue: 1024,
        max_requests: schedule.len(),
        timeout: Duration::from_secs(15),
    };
    let record = format!("/nodes/{node}");
    let stop = AtomicBool::new(false);
    bed.bed.kill_agent(NODE).context("cannot kill the agent")?;
    let t0 = Instant::now();
    let (load, expired) = std::thread::scope(|scope| {
        let load = scope.spawn(|| loadgen::run(&config, &schedule, &requests, t0, &stop));
        let expired = wait_gone(bed, &record, t0);
        if expired.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        (load.join().expect("the load thread panicked"), expired)
    });
    let lease_expired_s = expired?;
    let load = load?;
    let mut per_site_s = Vec::with_capacity(sites);
    for (i, name) in names.iter().enumerate() {
        let first = first_ok(&load.outcomes, i as u32).with_context(|| {
            format!(
                "{name} never answered 200 within {WINDOW} s of the kill (first errors: {:?})",
                load.errors
            )
        })?;
        per_site_s.push(first);
        let on = bed.node_of(name)?;
        if on == node {
            bail!("{name} answers from {on}, the lost node");
        }
    }
    let recovery_s = per_site_s.iter().copied().fold(0.0, f64::max);
    for name in &names {
        bed.cli(&["app", "delete", name, "--yes"])?;
    }
    Ok(Loss {
        sites,
        recovery_s,
        lease_expired_s,
        per_site_s,
    })
}

/// Polls etcd every 10 ms until `key` is gone; seconds from `t0`.
fn wait_gone(bed: &Bed, key: &str, t0: Instant) -> anyhow::Result<f64> {
    let limit = Duration::from_secs_f64(WINDOW);
    loop {
        if bed.bed.etcd().get(key)?.is_none() {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > limit {
            bail!("{key} is still in etcd {limit:?} after the kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The end (seconds from the start of the load) of site `site`'s first request answered 200.
fn first_ok(outcomes: &[loadgen::Outcome], site: u32) -> Option<f64> {
    outcomes
        .iter()
        .filter(|o| o.site == site && o.status == 200)
        .map(|o| o.due + f64::from(o.late) + f64::from(o.latency))
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(site: u32, due: f64, latency: f32, status: u16) -> loadgen::Outcome {
        loadgen::Outcome {
            site,
            due,
            late: 0.0,
            latency,
            status,
        }
    }

    #[test]
    fn a_site_recovers_at_the_end_of_its_first_200() {
        let outcomes = [
            o(0, 0.0, 9.0, 502),
            o(0, 6.0, 0.5, 200),
            o(0, 6.25, 0.125, 200),
            o(1, 1.0, 0.1, 503),
        ];
        assert_eq!(first_ok(&outcomes, 0), Some(6.375));
        assert_eq!(first_ok(&outcomes, 1), None);
        let l = Loss {
            sites: 1,
            recovery_s: 6.5,
            lease_expired_s: 5.0,
            per_site_s: vec![6.5],
        };
        assert_eq!(l.after_lease_s(), 1.5);
    }
}
